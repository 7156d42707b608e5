//! Answers to the room's own commands: help, status, open incidents, a drill asked for
//! in the coordination room, an admin-only command, an unknown command.

use crate::model::IncidentId;
use crate::render::distance_words;

use super::Cx;

/// `!nw help`: the neighborhood's help, or the coordination room's.
pub(super) fn help(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str) {
    let r = cx.renderer(room);
    let key = if cx.net.neighborhood_of_room(room).is_some() {
        "nw.help"
    } else {
        "nw.help_coordination"
    };
    cx.reply(
        room,
        in_reply_to,
        r.notice(key, &[("example", r.example())], None),
    );
}

/// `!nw status`: the neighborhood's incidents and settings, or the whole network's.
pub(super) fn status(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    open: usize,
    confirmed: usize,
) {
    let net = cx.net;
    let r = cx.renderer(room);
    let (open, confirmed) = (open.to_string(), confirmed.to_string());
    let message = match net.neighborhood_of_room(room) {
        Some(n) => r.notice(
            "nw.status",
            &[
                ("neighborhood", &n.name),
                ("open", &open),
                ("confirmed", &confirmed),
                ("needed", &n.settings.confirmations.to_string()),
                ("radius", &distance_words(&r, n.settings.alert_radius_m)),
            ],
            None,
        ),
        None => r.notice(
            "nw.status_network",
            &[
                ("neighborhoods", &net.neighborhoods().len().to_string()),
                (
                    "rooms",
                    &net.neighborhoods()
                        .iter()
                        .map(|n| n.rooms.len())
                        .sum::<usize>()
                        .to_string(),
                ),
                ("open", &open),
                ("confirmed", &confirmed),
            ],
            None,
        ),
    };
    cx.reply(room, in_reply_to, message);
}

/// `!nw incidents`: the open incidents with their age (those not found are left out),
/// and how many more there are.
pub(super) fn incidents(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    open: &[(IncidentId, i64)],
    more: usize,
) {
    let r = cx.renderer(room);
    let items: Vec<String> = open
        .iter()
        .filter_map(|(id, age_min)| {
            let inc = cx.incident(id)?;
            let age = if *age_min < 120 {
                r.plain("nw.age_min", &[("n", &age_min.to_string())])
            } else {
                r.plain("nw.age_h", &[("n", &(age_min / 60).to_string())])
            };
            Some(r.plain(
                "nw.incident_item",
                &[
                    ("id", id.as_str()),
                    ("place", &inc.label),
                    ("status", &r.status_words(inc)),
                    ("age", &age),
                ],
            ))
        })
        .collect();
    let message = if items.is_empty() {
        r.notice("nw.incidents_none", &[], None)
    } else if more > 0 {
        r.notice(
            "nw.incidents_more",
            &[("list", &r.list(&items)), ("more", &more.to_string())],
            None,
        )
    } else {
        r.notice("nw.incidents", &[("list", &r.list(&items))], None)
    };
    cx.reply(room, in_reply_to, message);
}

/// `!nw drill` in the coordination room, which has no neighborhood to drill.
pub(super) fn drill_in_coordination(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str) {
    let r = cx.renderer(room);
    cx.reply(
        room,
        in_reply_to,
        r.notice("nw.drill_coordination", &[], None),
    );
}

/// A command only room admins may give.
pub(super) fn admin_only(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str) {
    let r = cx.renderer(room);
    cx.reply(room, in_reply_to, r.notice("nw.admin_only", &[], None));
}

/// A `!nw` word that is no command.
pub(super) fn unknown_command(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str, given: &str) {
    let r = cx.renderer(room);
    cx.reply(
        room,
        in_reply_to,
        r.notice("nw.unknown", &[("given", given)], None),
    );
}
