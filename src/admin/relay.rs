//! `!nw relay request ROOM | accept ID | decline ID | remove ID | list`: relay links with
//! two-sided consent (the state machine is `links`), stored in the input's commit and in
//! force for the next relay decision; the other side and the coordination room are told.

use std::sync::Arc;

use super::{AdminCx, Outcome, OverlayChange};
use crate::command::RelayCommand;
use crate::decision::{AuditChange, Decision, LinkOutcome};
use crate::links::{self, Link, LinkAction, LinkState};
use crate::model::IncidentId;

pub(super) fn run(cx: &AdminCx<'_>, cmd: RelayCommand) -> Outcome {
    let say = |outcome| {
        Outcome::say(Decision::LinkReply {
            room: Arc::clone(cx.room),
            in_reply_to: Arc::clone(cx.event_id),
            outcome,
        })
    };
    let Some(here) = cx.net.neighborhood_of_room(cx.room).map(|n| n.id.clone()) else {
        return say(LinkOutcome::InCoordination);
    };
    let (action, given) = match cmd {
        RelayCommand::Usage => return say(LinkOutcome::Usage),
        RelayCommand::List => {
            let live = cx
                .overlay
                .links()
                .filter(|l| l.state.is_live() && l.joins(&here))
                .cloned()
                .collect();
            return say(LinkOutcome::List(live));
        }
        RelayCommand::Request(target) => {
            let target = target.trim();
            let Some(to) = cx.net.neighborhood_of_room(target) else {
                return say(LinkOutcome::UnknownRoom(target.to_owned()));
            };
            let all: Vec<&Link> = cx.overlay.links().collect();
            if let Err(r) = links::check_request(&all, &here, &to.id) {
                return say(LinkOutcome::Refused(r));
            }
            let link = Link {
                // Links are never deleted: their count never repeats, nor its code.
                id: links::link_id(IncidentId::from_seq(all.len() as u64).as_str()),
                from: here,
                from_room: cx.room.to_string(),
                to: to.id.clone(),
                to_room: target.to_owned(),
                state: LinkState::Requested,
                requested_by: cx.by.to_owned(),
                requested_at_ms: cx.now.timestamp_millis(),
                changed_by: None,
                changed_at_ms: None,
            };
            let told = Arc::from(link.to_room.as_str());
            return put_link(cx, told, link, None);
        }
        RelayCommand::Accept(id) => (LinkAction::Accept, id),
        RelayCommand::Decline(id) => (LinkAction::Decline, id),
        RelayCommand::Remove(id) => (LinkAction::Remove, id),
    };
    let Some(link) = links::parse_link_id(&given).and_then(|id| cx.overlay.link(&id)) else {
        return say(LinkOutcome::UnknownLink(given));
    };
    match links::transition(link, action, &here, cx.room) {
        Err(r) => say(LinkOutcome::Refused(r)),
        Ok(state) => {
            let mut link = link.clone();
            let old = link.state;
            link.state = state;
            link.changed_by = Some(cx.by.to_owned());
            link.changed_at_ms = Some(cx.now.timestamp_millis());
            // The other side hears of it in the room the link was asked from or to.
            let told = if link.from == here {
                &link.to_room
            } else {
                &link.from_room
            };
            let told = Arc::from(told.as_str());
            put_link(cx, told, link, Some(old))
        }
    }
}

/// A new or changed link: stored and applied, answered in the room, told to the other
/// side (`told`), audited.
fn put_link(cx: &AdminCx<'_>, told: Arc<str>, link: Link, old: Option<LinkState>) -> Outcome {
    let mut decisions = vec![
        Decision::LinkReply {
            room: Arc::clone(cx.room),
            in_reply_to: Arc::clone(cx.event_id),
            outcome: LinkOutcome::Changed(link.clone()),
        },
        Decision::LinkNotice {
            room: told,
            link: link.clone(),
        },
    ];
    decisions.extend(cx.audit(AuditChange::Link {
        link: link.clone(),
        old,
    }));
    Outcome {
        changes: vec![OverlayChange::Link(link)],
        decisions,
        drill: None,
    }
}
