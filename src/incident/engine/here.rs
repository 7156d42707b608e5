//! A verifier action from another alerted neighborhood than the incident's home
//! (PRODUCT.md §3, issue 24): a false alarm or all clear holds in that neighborhood's
//! rooms only ("marked false alarm here by a moderator of …"), a confirmation is
//! support; either way the home (its rooms and the coordination room) is asked to
//! decide. The home confirming again takes every such mark back.
//!
//! Owns: the incident's `marked_here` and `support` lists and the decisions that show
//! them. Must not touch: the incident's own status (only its home, a network-wide
//! verifier or the coordination room change it, in `verify`).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, Tx};
use crate::config::Network;
use crate::decision::{CoordinationKind, Decision, UpdateKind};
use crate::lifecycle::Transition;
use crate::model::{Action, Incident, IncidentId, LocalMark, Status};
use crate::store::Store;

/// A verifier action being applied.
pub(super) struct Asked<'a> {
    /// Where it was taken.
    pub(super) room: &'a Arc<str>,
    /// The command's event (none for a reaction: no reply).
    pub(super) command: Option<&'a Arc<str>>,
    /// The incident and its slot.
    pub(super) id: IncidentId,
    pub(super) key: usize,
    /// What was asked.
    pub(super) action: Action,
    /// By a room moderator (else by a listed verifier).
    pub(super) by_moderator: bool,
    /// The reason given, for a false alarm.
    pub(super) reason: Option<Arc<str>>,
}

/// What an action from another neighborhood does there.
enum Here {
    /// Its rooms show this status.
    Mark(Status),
    /// Its rooms show the incident's own status again.
    Unmark,
    /// Recorded as its support.
    Support,
    /// Nothing new.
    Unchanged,
}

impl<S: Store> Engine<S> {
    /// Applies `a`, taken in a room of neighborhood `nb`, which is not the incident's
    /// home; `transition` is what the action would do to the incident's own status.
    pub(super) fn act_here(
        &mut self,
        tx: &mut Tx,
        a: Asked<'_>,
        nb: &Arc<str>,
        transition: Transition,
        now: DateTime<Utc>,
    ) {
        let net = Arc::clone(&self.net);
        let Some(mut inc) = self.incidents.at_mut(a.key) else {
            return;
        };
        let marked = inc.mark_of(nb).map(|m| m.status);
        let here = match (a.action, transition, marked) {
            (Action::Confirm, _, Some(_)) => Here::Unmark,
            (Action::Confirm, Transition::To(_), None) if !inc.support.contains(nb) => {
                Here::Support
            }
            (Action::FalseAlarm | Action::Clear, Transition::To(s), m)
                if inc.status.is_open() && m != Some(s) =>
            {
                Here::Mark(s)
            }
            _ => Here::Unchanged,
        };
        let update = match here {
            Here::Unchanged => {
                drop(inc);
                if let Some(c) = a.command {
                    tx.decisions.push(Decision::ActionUnchanged {
                        room: Arc::clone(a.room),
                        in_reply_to: Arc::clone(c),
                        incident: a.id,
                    });
                }
                return;
            }
            Here::Mark(status) => {
                inc.marked_here.retain(|m| m.neighborhood != *nb);
                inc.marked_here.push(LocalMark {
                    neighborhood: Arc::clone(nb),
                    status,
                    by_moderator: a.by_moderator,
                    reason: a.reason.clone(),
                    at: now,
                });
                Some(UpdateKind::MarkedHere)
            }
            Here::Unmark => {
                inc.marked_here.retain(|m| m.neighborhood != *nb);
                Some(UpdateKind::UnmarkedHere)
            }
            Here::Support => {
                inc.support.push(Arc::clone(nb));
                None
            }
        };
        inc.version += 1;
        inc.updated_at = now;
        tx.touch(a.id, a.key, inc.reports.len());
        let rooms = rooms_of(&net, &inc, |n| n == &**nb);
        if let Some(update) = &update {
            for room in &rooms {
                tx.decisions.push(Decision::UpdateAlert {
                    room: Arc::clone(room),
                    incident: a.id,
                    update: update.clone(),
                });
            }
        }
        // The home decides: its rooms and the coordination room are asked (or told
        // that a mark was taken back).
        let home = net
            .neighborhood(&inc.neighborhood)
            .map(|h| h.rooms.clone())
            .unwrap_or_default();
        drop(inc);
        for room in home.iter().chain(self.coordination_room.as_ref()) {
            tx.decisions.push(Decision::OriginAsked {
                room: Arc::clone(room),
                incident: a.id,
                from: Arc::clone(nb),
                action: a.action,
                by_moderator: a.by_moderator,
                reason: a.reason.clone(),
            });
        }
        if let Some(c) = a.command {
            tx.decisions.push(Decision::ActionHere {
                room: Arc::clone(a.room),
                in_reply_to: Arc::clone(c),
                incident: a.id,
                action: a.action,
                rooms: if update.is_some() { rooms.len() } else { 0 },
            });
        }
    }

    /// The home confirms an incident that other neighborhoods marked a false alarm or
    /// all clear for their rooms: every mark is taken back and those rooms are told it is
    /// confirmed. Returns how many alerts are updated (0: nothing was marked).
    pub(super) fn unmark_all(
        &mut self,
        tx: &mut Tx,
        key: usize,
        action: Action,
        now: DateTime<Utc>,
    ) -> usize {
        let net = Arc::clone(&self.net);
        let Some(mut inc) = self.incidents.at_mut(key) else {
            return 0;
        };
        if action != Action::Confirm || inc.marked_here.is_empty() {
            return 0;
        }
        let marked: Vec<Arc<str>> = inc.marked_here.drain(..).map(|m| m.neighborhood).collect();
        let rooms = rooms_of(&net, &inc, |n| marked.iter().any(|m| &**m == n));
        inc.version += 1;
        inc.updated_at = now;
        let id = inc.id;
        tx.touch(id, key, inc.reports.len());
        for room in &rooms {
            tx.decisions.push(Decision::UpdateAlert {
                room: Arc::clone(room),
                incident: id,
                update: UpdateKind::Status { reason: None },
            });
        }
        if let Some(coord) = &self.coordination_room {
            tx.decisions.push(Decision::Coordination {
                room: Arc::clone(coord),
                incident: id,
                kind: CoordinationKind::Status { reason: None },
                needed: net.settings(&inc.neighborhood).confirmations,
            });
        }
        rooms.len()
    }
}

/// The rooms `inc` was relayed to whose neighborhood `which` picks (by ID).
fn rooms_of(net: &Network, inc: &Incident, which: impl Fn(&str) -> bool) -> Vec<Arc<str>> {
    inc.relayed_to
        .iter()
        .filter(|r| net.neighborhood_of_room(r).is_some_and(|n| which(&n.id)))
        .cloned()
        .collect()
}
