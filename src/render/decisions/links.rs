//! Answers to `!nw relay …` (a link between two neighborhoods requested, accepted,
//! declined, removed, listed or refused) and the notice to the other side.

use crate::decision::LinkOutcome;
use crate::effect::OutgoingMessage;
use crate::links::{Link, LinkRefusal, LinkState};
use crate::render::Renderer;

use super::Cx;

/// The answer to `!nw relay …` in `room`.
pub(super) fn link_reply(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    outcome: &LinkOutcome,
) {
    let r = cx.renderer(room);
    let here = cx
        .net
        .neighborhood_of_room(room)
        .map_or("", |n| n.id.as_str());
    let message = outcome_words(cx, &r, here, outcome);
    cx.reply(room, in_reply_to, message);
}

/// The notice in `room`, a room of either side, that a link changed, naming who changed
/// it.
pub(super) fn link_notice(cx: &mut Cx<'_, '_>, room: &str, link: &Link) {
    let r = cx.renderer(room);
    let here = cx
        .net
        .neighborhood_of_room(room)
        .map_or(&*link.to, |n| n.id.as_str());
    let key = match link.state {
        LinkState::Requested => "link.notice_requested",
        LinkState::Accepted => "link.notice_accepted",
        LinkState::Declined => "link.notice_declined",
        LinkState::Removed => "link.notice_removed",
    };
    let by = if link.state == LinkState::Requested {
        link.requested_by.as_str()
    } else {
        link.changed_by.as_deref().unwrap_or_default()
    };
    let message = r.notice(
        key,
        &[
            ("id", &link.id),
            ("here", cx.hood_name(here)),
            ("other", cx.hood_name(link.other_side(here))),
            ("by", by),
        ],
        None,
    );
    cx.notice(room, message);
}

/// The answer to `!nw relay …` in a room of neighborhood `here`.
fn outcome_words(
    cx: &Cx<'_, '_>,
    r: &Renderer<'_>,
    here: &str,
    outcome: &LinkOutcome,
) -> OutgoingMessage {
    let item = |l: &Link| {
        r.plain(
            "link.list_item",
            &[
                ("id", &l.id),
                ("other", cx.hood_name(l.other_side(here))),
                ("state", &r.plain(l.state.catalog_key(), &[])),
            ],
        )
    };
    let name = cx.hood_name(here);
    match outcome {
        LinkOutcome::Changed(l) => {
            let key = match l.state {
                LinkState::Requested => "link.requested",
                LinkState::Accepted => "link.accepted",
                LinkState::Declined => "link.declined",
                LinkState::Removed => "link.removed",
            };
            r.notice(
                key,
                &[
                    ("id", &l.id),
                    ("here", name),
                    ("other", cx.hood_name(l.other_side(here))),
                    ("room", &l.to_room),
                ],
                None,
            )
        }
        LinkOutcome::List(links) if links.is_empty() => {
            r.notice("link.list_none", &[("here", name)], None)
        }
        LinkOutcome::List(links) => {
            let items: Vec<String> = links.iter().map(item).collect();
            r.notice(
                "link.list",
                &[("here", name), ("list", &r.list(&items))],
                None,
            )
        }
        LinkOutcome::Refused(LinkRefusal::SameNeighborhood) => r.notice("link.same", &[], None),
        LinkOutcome::Refused(LinkRefusal::AlreadyLinked { id, state }) => r.notice(
            "link.already",
            &[
                ("id", id),
                ("here", name),
                ("state", &r.plain(state.catalog_key(), &[])),
            ],
            None,
        ),
        LinkOutcome::Refused(LinkRefusal::OtherSide { to, room }) => r.notice(
            "link.other_side",
            &[("to", cx.hood_name(to)), ("room", room)],
            None,
        ),
        LinkOutcome::Refused(LinkRefusal::OtherRoom { room }) => {
            r.notice("link.other_room", &[("room", room)], None)
        }
        LinkOutcome::Refused(LinkRefusal::NotASide) => r.notice("link.not_a_side", &[], None),
        LinkOutcome::Refused(LinkRefusal::Closed { state }) => r.notice(
            "link.closed",
            &[("state", &r.plain(state.catalog_key(), &[]))],
            None,
        ),
        LinkOutcome::UnknownRoom(given) => r.notice("link.unknown_room", &[("given", given)], None),
        LinkOutcome::UnknownLink(given) => r.notice("link.unknown_link", &[("given", given)], None),
        LinkOutcome::Usage => r.notice("link.usage", &[], None),
        LinkOutcome::InCoordination => r.notice("link.coordination", &[], None),
    }
}
