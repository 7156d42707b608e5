//! Answers to a verifier's action (`!confirm`, `!false`, `!clear` or a reaction): done,
//! refused, unchanged, and an incident id that names no incident.

use std::sync::Arc;

use crate::model::{Action, IncidentId};

use super::Cx;

/// The action was taken: the incident's new status and the rooms told; none when the
/// incident is not found.
pub(super) fn action_done(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    id: &IncidentId,
    rooms: usize,
) {
    let Some(inc) = cx.incident(id) else {
        return;
    };
    let r = cx.renderer(room);
    let status = r.status_words(inc);
    cx.reply(
        room,
        in_reply_to,
        r.notice(
            "action.done",
            &[
                ("id", inc.id.as_str()),
                ("status", &status),
                ("rooms", &rooms.to_string()),
            ],
            Some(inc.tag()),
        ),
    );
}

/// The sender may not take `action`.
pub(super) fn action_refused(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str, action: Action) {
    let r = cx.renderer(room);
    let what = r.plain(action.catalog_key(), &[]);
    cx.reply(
        room,
        in_reply_to,
        r.notice(
            "action.refused",
            &[("action", &what), ("example", r.example())],
            None,
        ),
    );
}

/// The incident already has the status the action asks for; none when it is not found.
pub(super) fn action_unchanged(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    id: &IncidentId,
) {
    let Some(inc) = cx.incident(id) else {
        return;
    };
    let r = cx.renderer(room);
    let status = r.status_words(inc);
    cx.reply(
        room,
        in_reply_to,
        r.notice(
            "action.unchanged",
            &[("id", inc.id.as_str()), ("status", &status)],
            Some(inc.tag()),
        ),
    );
}

/// No incident is `given`: the open ones, if any.
pub(super) fn unknown_incident(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    given: &str,
    open: &[(IncidentId, Arc<str>)],
) {
    let r = cx.renderer(room);
    let message = if open.is_empty() {
        r.notice("action.unknown_none", &[("given", given)], None)
    } else {
        let items: Vec<String> = open
            .iter()
            .map(|(id, place)| {
                r.plain("action.open_item", &[("id", id.as_str()), ("place", place)])
            })
            .collect();
        r.notice(
            "action.unknown",
            &[("given", given), ("open", &r.list(&items))],
            None,
        )
    };
    cx.reply(room, in_reply_to, message);
}
