//! The coordination room's notices about an incident: opened, relayed, its status
//! changed, retracted, expired; and the network file read again.

use crate::decision::{CoordinationKind, ReloadOutcome};
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

/// The coordination room's notice about the network file read again: what now applies
/// and what changed, or why it was refused.
pub(super) fn network_reload(cx: &mut Cx<'_, '_>, room: &str, outcome: &ReloadOutcome) {
    let r = cx.coordination();
    let message = match outcome {
        ReloadOutcome::Refused(reason) => {
            r.notice("coord.reload_refused", &[("reason", reason.as_str())], None)
        }
        ReloadOutcome::Applied(changes) => {
            let hoods = cx.net.neighborhoods();
            let rooms: usize = hoods.iter().map(|n| n.rooms.len()).sum();
            let mut parts = vec![(
                "coord.reloaded",
                vec![
                    (
                        "neighborhoods",
                        r.count("count.neighborhoods", hoods.len() as u64),
                    ),
                    ("room_count", r.count("count.rooms", rooms as u64)),
                ],
            )];
            let names = |v: &[String]| vec![("names", v.join(", "))];
            for (key, list) in [
                ("coord.reload_added", &changes.added),
                ("coord.reload_removed", &changes.removed),
                ("coord.reload_changed", &changes.changed),
            ] {
                if !list.is_empty() {
                    parts.push((key, names(list)));
                }
            }
            if !changes.network.is_empty() {
                parts.push((
                    "coord.reload_network",
                    vec![("keys", changes.network.join(", "))],
                ));
            }
            if changes.is_empty() {
                parts.push(("coord.reload_unchanged", Vec::new()));
            }
            if !changes.restart_needed.is_empty() {
                parts.push((
                    "coord.reload_restart",
                    vec![("sections", changes.restart_needed.join(", "))],
                ));
            }
            r.notice_parts(&parts, None)
        }
    };
    cx.notice(room, message);
}
