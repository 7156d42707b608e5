//! Answers to a verifier's action (`!confirm`, `!false`, `!clear` or a reaction): done,
//! done in this neighborhood only, refused, unchanged, and an incident id that names no
//! incident; and the incident's home asked to decide what another neighborhood said.

use std::sync::Arc;

use crate::decision::Decision;
use crate::model::{Action, IncidentId, Status};
use crate::render::who_key;

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

/// An action from another alerted neighborhood than the incident's home: done in this
/// room's neighborhood only (a false alarm or all clear), or kept as support (a
/// confirmation); the home decides for everyone. None when the incident or the room's
/// neighborhood is not found.
pub(super) fn action_here(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    id: &IncidentId,
    action: Action,
    rooms: usize,
) {
    let (Some(inc), Some(nb)) = (cx.incident(id), cx.net.neighborhood_of_room(room)) else {
        return;
    };
    let r = cx.renderer(room);
    let key = match action {
        // Confirming what this neighborhood marked takes its mark back.
        Action::Confirm if inc.status == Status::Confirmed => "action.unmarked",
        Action::Confirm => "action.support",
        Action::FalseAlarm | Action::Clear => "action.here",
    };
    let message = r.notice(
        key,
        &[
            ("id", inc.id.as_str()),
            ("neighborhood", &nb.name),
            ("here", &r.status_words_in(inc, &nb.id)),
            ("status", &r.status_words(inc)),
            ("rooms", &rooms.to_string()),
        ],
        Some(inc.tag()),
    );
    cx.reply(room, in_reply_to, message);
}

/// The incident's home (one of its rooms, or the coordination room) asked to decide what
/// another neighborhood said of the incident, with the commands that decide it.
pub(super) fn origin_asked(cx: &mut Cx<'_, '_>, room: &str, id: &IncidentId, d: &Decision) {
    let Decision::OriginAsked {
        from,
        action,
        by_moderator,
        reason,
        ..
    } = d
    else {
        return;
    };
    let Some(inc) = cx.incident(id) else {
        return;
    };
    let from = cx.hood_name(from).to_owned();
    let r = cx.renderer(room);
    let key = match action {
        // A confirmed incident's only support is a mark taken back: nothing to decide.
        Action::Confirm if inc.status == Status::Confirmed => "asked.withdrawn",
        Action::Confirm => "asked.support",
        Action::FalseAlarm => "asked.false_alarm",
        Action::Clear => "asked.clear",
    };
    let args = vec![
        ("id", inc.id.to_string()),
        ("place", inc.label.to_string()),
        ("who", r.plain(who_key(*by_moderator), &[])),
        ("neighborhood", from),
        ("status", r.status_words(inc)),
    ];
    let mut parts = vec![(key, args)];
    if let Some(reason) = reason {
        parts.push(("update.reason", vec![("reason", reason.to_string())]));
    }
    let message = r.notice_parts(&parts, Some(inc.tag()));
    cx.notice(room, message);
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
