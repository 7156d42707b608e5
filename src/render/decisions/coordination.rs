//! The coordination room's notices about an incident: opened, relayed, its status
//! changed, retracted, expired.

use crate::decision::CoordinationKind;
use crate::model::IncidentId;

use super::Cx;

/// The coordination room's notice about incident `id`; none when the incident is not found.
pub(super) fn coordination(
    cx: &mut Cx<'_, '_>,
    room: &str,
    id: &IncidentId,
    kind: &CoordinationKind,
    needed: u32,
) {
    let Some(inc) = cx.incident(id) else {
        return;
    };
    let r = cx.coordination();
    let hood = cx.hood_name(&inc.neighborhood);
    let status = r.status_words(inc);
    let message = match kind {
        CoordinationKind::Incident => r.notice(
            "coord.incident",
            &[
                ("id", inc.id.as_str()),
                ("status", &status),
                ("neighborhood", hood),
                ("place", &inc.label),
                (
                    "reports",
                    &r.count("count.reports", inc.reporter_count() as u64),
                ),
                ("needed", &needed.to_string()),
            ],
            Some(inc.tag()),
        ),
        CoordinationKind::Relayed { rooms } => r.notice(
            "coord.relayed",
            &[
                ("id", inc.id.as_str()),
                ("room_count", &r.count("count.rooms", *rooms as u64)),
            ],
            Some(inc.tag()),
        ),
        CoordinationKind::Status { reason } => {
            let mut parts = vec![(
                "coord.status",
                vec![
                    ("id", inc.id.to_string()),
                    ("status", status.clone()),
                    ("neighborhood", hood.to_owned()),
                    ("place", inc.label.to_string()),
                    (
                        "room_count",
                        r.count("count.rooms", inc.relayed_to.len() as u64),
                    ),
                ],
            )];
            if let Some(reason) = reason {
                parts.push(("update.reason", vec![("reason", reason.to_string())]));
            }
            r.notice_parts(&parts, Some(inc.tag()))
        }
        CoordinationKind::Retracted => r.notice(
            "coord.retracted",
            &[
                ("id", inc.id.as_str()),
                ("neighborhood", hood),
                (
                    "reports",
                    &r.count("count.reports", inc.reporter_count() as u64),
                ),
            ],
            Some(inc.tag()),
        ),
        CoordinationKind::Expired => {
            let h = cx.net.settings(&inc.neighborhood).expiry_hours;
            r.notice(
                "update.expired",
                &[("id", inc.id.as_str()), ("hours", &h.to_string())],
                Some(inc.tag()),
            )
        }
    };
    cx.notice(room, message);
}
