//! The alert in each relayed room: the alert and its location when relayed, then the
//! edit and the thread reply when its reports or status change.

use crate::config::Neighborhood;
use crate::decision::UpdateKind;
use crate::effect::{Effect, MsgType, OutgoingMessage};
use crate::model::{ConfirmedBy, Incident, IncidentId, Status};
use crate::render::{Renderer, who_key};

use super::Cx;

/// The alert relayed to `room`, then its `m.location`; nothing when the incident is not
/// found or `room` is in no neighborhood.
pub(super) fn relay(cx: &mut Cx<'_, '_>, room: &str, id: &IncidentId) {
    let (Some(inc), Some(to)) = (cx.incident(id), cx.net.neighborhood_of_room(room)) else {
        return;
    };
    let r = Renderer::for_neighborhood(cx.cat, to);
    let loc = r.alert_location(inc);
    let mut message = r.alert(inc, to, &to.gazetteer);
    message.incident = Some(inc.tag_in(room));
    cx.push(Effect::Relay {
        room: room.to_string(),
        message,
        home: to.id.as_str() == &*inc.neighborhood,
    });
    cx.push(Effect::Location {
        room: room.to_string(),
        incident: inc.tag_in(room),
        geo_uri: loc.geo_uri,
        body: loc.description,
    });
}

/// The alert in `room` edited to the incident's state, then a thread reply saying what
/// changed; nothing when the incident is not found or `room` is in no neighborhood.
pub(super) fn update_alert(cx: &mut Cx<'_, '_>, room: &str, id: &IncidentId, update: &UpdateKind) {
    let (Some(inc), Some(to)) = (cx.incident(id), cx.net.neighborhood_of_room(room)) else {
        return;
    };
    let r = Renderer::for_neighborhood(cx.cat, to);
    let mut message = r.alert(inc, to, &to.gazetteer);
    // Edits never notify (MSC3958): a change people must hear about is also a
    // notifying thread reply, with the mentions the alert had.
    message.mentions_room = false;
    message.incident = Some(inc.tag_in(room));
    let hours = cx.net.settings(&inc.neighborhood).expiry_hours.to_string();
    cx.push(Effect::Edit {
        room: room.to_string(),
        message,
    });
    cx.push(Effect::ThreadReply {
        room: room.to_string(),
        message: thread_reply(&r, inc, room, to, update, hours),
    });
}

/// Under the alert in `room` of `to`, which marked it (or took its mark back): what
/// holds here and that the incident's home decides for everyone. A new mark notifies.
fn marked_reply(
    r: &Renderer<'_>,
    inc: &Incident,
    room: &str,
    to: &Neighborhood,
) -> OutgoingMessage {
    let mut args = vec![
        ("id", inc.id.to_string()),
        ("place", inc.label.to_string()),
        ("neighborhood", to.name.clone()),
        ("status", r.status_words(inc)),
        ("here", r.status_words_in(inc, &to.id)),
    ];
    let Some(m) = inc.mark_of(&to.id) else {
        return r.notice_parts(&[("update.unmarked_here", args)], Some(inc.tag_in(room)));
    };
    args.push(("who", r.plain(who_key(m.by_moderator), &[])));
    let mut parts = vec![("update.marked_here", args)];
    if let Some(reason) = &m.reason {
        parts.push(("update.reason", vec![("reason", reason.to_string())]));
    }
    // A change people must hear about, as a status change is.
    let mut message = r.notice_parts(&parts, Some(inc.tag_in(room)));
    message.msgtype = MsgType::Text;
    message.mentions_room = r.alert_mentions_room(inc);
    message
}

/// What changed, under the alert in `room`: quiet for reports, retraction and expiry; a
/// notifying message for a new status.
fn thread_reply(
    r: &Renderer<'_>,
    inc: &Incident,
    room: &str,
    to: &Neighborhood,
    update: &UpdateKind,
    hours: String,
) -> OutgoingMessage {
    let mut args = vec![
        ("id", inc.id.to_string()),
        (
            "reports",
            r.count("count.reports", inc.reporter_count() as u64),
        ),
        ("last", r.time(inc.last_seen)),
        ("hours", hours),
    ];
    match update {
        UpdateKind::Reports => r.notice_parts(&[("update.reports", args)], Some(inc.tag_in(room))),
        UpdateKind::Retracted => {
            r.notice_parts(&[("update.retracted", args)], Some(inc.tag_in(room)))
        }
        UpdateKind::Expired => r.notice_parts(&[("update.expired", args)], Some(inc.tag_in(room))),
        UpdateKind::MarkedHere | UpdateKind::UnmarkedHere => marked_reply(r, inc, room, to),
        UpdateKind::Status { reason } => {
            let key = match (inc.status, inc.confirmed_by) {
                (Status::FalseAlarm, _) => "update.false_alarm",
                (Status::Resolved, _) => "update.resolved",
                (Status::Expired, _) => "update.expired",
                (_, Some(ConfirmedBy::Verifier)) => "update.confirmed_by_verifier",
                _ => "update.confirmed",
            };
            args.push(("place", inc.label.to_string()));
            let mut parts = vec![(key, args)];
            if let Some(reason) = reason {
                parts.push(("update.reason", vec![("reason", reason.to_string())]));
            }
            let mut m = r.notice_parts(&parts, Some(inc.tag_in(room)));
            m.msgtype = MsgType::Text;
            m.mentions_room = r.alert_mentions_room(inc);
            m
        }
    }
}
