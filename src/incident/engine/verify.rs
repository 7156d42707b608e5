//! Verifier actions (`!confirm`, `!false`, `!clear` and their reactions), how far each
//! reaches ([`crate::authority`]: everywhere from the incident's home, the network or
//! the coordination room; see `here` for the rest), and retractions (a deleted report
//! leaves its incident).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::debug;

use super::alerts::{Told, announce_status, near_of, update_alerts};
use super::here::Asked;
use super::reports::FalseAlarmMark;
use super::{Engine, IncomingMessage, Tx};
use crate::authority::{self, Reach, Seat};
use crate::command::VerifierCommand;
use crate::decision::{CoordinationKind, Decision, UpdateKind};
use crate::lifecycle::{self, Role, Transition};
use crate::model::{Action, ConfirmedBy, Incident, IncidentId, ReporterHash, Status};
use crate::store::Store;

impl<S: Store> Engine<S> {
    /// Who `msg`'s sender is for `inc`, acting in `room`, and from where (see
    /// [`authority::reach`]): in the coordination room, a moderator there or a verifier
    /// of the incident's neighborhood; anywhere, a network-wide verifier or a verifier of
    /// the incident's own neighborhood; otherwise a moderator or verifier of the
    /// neighborhood whose room they act in. A room of no neighborhood gives no standing.
    fn standing_for(&self, inc: &Incident, room: &str, msg: &IncomingMessage) -> (Role, Seat<'_>) {
        let net = &*self.net;
        let (user, power) = (msg.sender.as_str(), msg.member.power);
        let home = net.settings(&inc.neighborhood);
        let own = |lists: &[&[String]]| lifecycle::role(user, power, lists.iter().copied());
        if self.coordination_room.as_deref() == Some(room) {
            return (own(&[&home.verifiers]), Seat::Coordination);
        }
        if net.defaults.is_verifier(user) {
            return (own(&[&net.defaults.verifiers]), Seat::Network);
        }
        let Some(nb) = net.neighborhood_of_room(room) else {
            return (Role::Neighbor, Seat::Network);
        };
        if home.is_verifier(user) {
            // A verifier of the incident's home stands for it wherever they act.
            let seat = net
                .neighborhood(&inc.neighborhood)
                .map_or(Seat::Network, |h| Seat::Neighborhood(&h.id));
            return (own(&[&home.verifiers]), seat);
        }
        (own(&[&nb.settings.verifiers]), Seat::Neighborhood(&nb.id))
    }

    /// The open incidents of `room` (of the whole network, in the coordination room).
    pub(super) fn open_in(&self, room: &str) -> Vec<&Incident> {
        let everywhere = self.coordination_room.as_deref() == Some(room);
        self.incidents
            .values()
            .filter(|i| i.status.is_open() && (everywhere || i.lives_in(room)))
            .collect()
    }

    pub(super) fn command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        msg: &IncomingMessage,
        cmd: VerifierCommand,
        now: DateTime<Utc>,
    ) {
        let everywhere = self.coordination_room.as_deref() == Some(&**room);
        // A closed incident no longer knows the rooms of its reports (PRODUCT.md §6): its
        // own neighborhood's rooms still find it (to undo a false alarm never relayed).
        let home = self.net.neighborhood_of_room(room).map(|n| n.id.as_str());
        let here = |i: &Incident| {
            everywhere
                || i.lives_in(room)
                || (!i.status.is_open() && home == Some(&*i.neighborhood))
        };
        let found = cmd
            .id
            .filter(|id| self.incidents.get(id).is_some_and(&here));
        if let Some(id) = found {
            let reason = cmd.reason.map(Arc::from);
            self.act(tx, room, Some(event_id), msg, id, cmd.action, reason, now);
            return;
        }
        let mut open: Vec<(IncidentId, Arc<str>)> = self
            .open_in(room)
            .into_iter()
            .map(|i| (i.id, Arc::clone(&i.label)))
            .collect();
        open.sort_by_key(|(id, _)| *id);
        open.truncate(10);
        tx.decisions.push(Decision::UnknownIncident {
            room: Arc::clone(room),
            in_reply_to: Arc::clone(event_id),
            given: cmd.id_text,
            open,
        });
    }

    /// A verifier action on incident `id`, by command (`command` is its event, for the
    /// reply) or by reaction (no reply: reactions are not conversation).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn act(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        command: Option<&Arc<str>>,
        msg: &IncomingMessage,
        id: IncidentId,
        action: Action,
        reason: Option<Arc<str>>,
        now: DateTime<Utc>,
    ) {
        let (Some(key), Some(inc)) = (self.incidents.key_of(&id), self.incidents.get(&id)) else {
            return;
        };
        let (role, seat) = self.standing_for(inc, room, msg);
        let reach = match authority::reach(role, seat, &inc.neighborhood, action) {
            Reach::None => None,
            Reach::Everywhere => Some(None),
            Reach::Here(nb) | Reach::Support(nb) => Some(Some(Arc::<str>::from(nb))),
        };
        let status = inc.status;
        let Some(reach) = reach else {
            debug!(?action, "action refused: not a verifier or moderator");
            if let Some(c) = command {
                tx.decisions.push(Decision::ActionRefused {
                    room: Arc::clone(room),
                    in_reply_to: Arc::clone(c),
                    action,
                });
            }
            return;
        };
        let asked = Asked {
            room,
            command,
            id,
            key,
            action,
            by_moderator: role == Role::Moderator,
            reason,
        };
        if let Some(nb) = reach {
            // Another alerted neighborhood: its own rooms only, or support.
            self.act_here(
                tx,
                asked,
                &nb,
                lifecycle::transition(status, action, role),
                now,
            );
            return;
        }
        match lifecycle::transition(status, action, role) {
            Transition::Refused => {}
            Transition::Unchanged => {
                // The home confirms what another neighborhood marked: its rooms again.
                let rooms = self.unmark_all(tx, key, action, now);
                if let Some(c) = command {
                    tx.decisions.push(if rooms > 0 {
                        Decision::ActionDone {
                            room: Arc::clone(room),
                            in_reply_to: Arc::clone(c),
                            incident: id,
                            rooms,
                        }
                    } else {
                        Decision::ActionUnchanged {
                            room: Arc::clone(room),
                            in_reply_to: Arc::clone(c),
                            incident: id,
                        }
                    });
                }
            }
            Transition::To(status) => {
                let rooms = self.apply_status(tx, key, status, asked.reason, now);
                if let Some(c) = command {
                    tx.decisions.push(Decision::ActionDone {
                        room: Arc::clone(room),
                        in_reply_to: Arc::clone(c),
                        incident: id,
                        rooms,
                    });
                }
            }
        }
    }

    /// Applies a verifier's status change to the incident in slot `key` and announces it
    /// (alerts edited with a thread reply, a newly confirmed incident relayed, the
    /// coordination room told). Returns the rooms alerted.
    fn apply_status(
        &mut self,
        tx: &mut Tx,
        key: usize,
        status: Status,
        reason: Option<Arc<str>>,
        now: DateTime<Utc>,
    ) -> usize {
        let net = Arc::clone(&self.net);
        let Some(mut inc) = self.incidents.at_mut(key) else {
            return 0;
        };
        let id = inc.id;
        let old = inc.status;
        inc.version += 1;
        // A close drops every report's event ID, room and reporter: all are rewritten.
        let scrubbed = inc.set_status(status, now, Some(ConfirmedBy::Verifier));
        tx.touch(id, key, if scrubbed { 0 } else { inc.reports.len() });
        let s = net.settings(&inc.neighborhood);
        let told = Told {
            coordination: self.coordination_room.as_ref(),
            kind: CoordinationKind::Status {
                reason: reason.clone(),
            },
            needed: s.confirmations,
        };
        let update = UpdateKind::Status { reason };
        announce_status(&mut inc, &update, told, Some(&net), &mut tx.decisions);
        let rooms = inc.relayed_to.len();
        let mark = FalseAlarmMark {
            id,
            at: inc.location,
            last_seen: inc.last_seen,
            marked_at: now,
        };
        let due = inc.last_seen + Duration::hours(i64::from(s.expiry_hours));
        drop(inc);
        if status == Status::FalseAlarm {
            self.false_alarms.push(mark);
        } else if old == Status::FalseAlarm {
            self.false_alarms.retain(|m| m.id != id);
        }
        if status.is_open() {
            self.note_due(due);
        } else {
            let fade = now + self.soonest_fade();
            self.note_due(fade);
        }
        rooms
    }

    /// A deleted message (`msg` is the redaction): if it was a report of the room the
    /// redaction was sent in, and the redaction comes from its reporter or from someone
    /// with redact power there (`may_redact_others`), the report leaves its incident and
    /// its text is purged now. An unconfirmed incident left without reports is closed
    /// quietly (it is deleted); a confirmed one keeps its status (a verifier decides) and
    /// its alerts are updated. Any other redaction does nothing: a homeserver passes on
    /// a redaction it will not apply, and one sent in another room names any event.
    pub(super) fn retract(
        &mut self,
        tx: &mut Tx,
        msg: &IncomingMessage,
        redacts: &str,
        may_redact_others: bool,
        now: DateTime<Utc>,
    ) {
        let by = self.key.hash(&msg.sender);
        let may = |room: &str, reporter: Option<&ReporterHash>| {
            room == msg.room && (reporter == Some(&by) || may_redact_others)
        };
        if let Some(i) = self.pending.iter().position(|p| &*p.event_id == redacts) {
            let p = &self.pending[i];
            if !may(&p.room, Some(&p.reporter)) {
                debug!("a redaction of a waiting report by someone else: ignored");
                return;
            }
            let p = self.pending.remove(i);
            tx.batch.pending_delete.push(p.event_id);
            return;
        }
        let found = self.incidents.ids().find_map(|(id, key)| {
            let inc = self.incidents.in_slot(key)?;
            // A closed incident's reports have no event ID: they stay.
            let n = inc
                .reports
                .iter()
                .position(|r| r.event_id.as_deref() == Some(redacts))?;
            let r = &inc.reports[n];
            Some((id, key, n, may(r.room.as_deref()?, r.reporter.as_ref())))
        });
        let Some((id, key, n, allowed)) = found else {
            return;
        };
        if !allowed {
            debug!("a redaction of a report by someone else, or from another room: ignored");
            return;
        }
        let net = Arc::clone(&self.net);
        let Some(mut inc) = self.incidents.at_mut(key) else {
            return;
        };
        inc.reports.remove(n);
        if inc.reports.is_empty() && inc.status == Status::Unverified {
            drop(inc);
            self.incidents.remove(&id);
            tx.batch.incidents_delete.push(id);
            self.fade_now(tx, id);
            debug!("an unconfirmed incident lost its only report; closed");
            return;
        }
        inc.recount();
        if let Some(nb) = net.neighborhood(&inc.neighborhood) {
            inc.near = near_of(nb, inc.location);
        }
        inc.version += 1;
        inc.updated_at = now;
        tx.touch(id, key, n);
        if inc.status == Status::Confirmed {
            update_alerts(&inc, &UpdateKind::Retracted, &mut tx.decisions);
        }
        if inc.status.is_open()
            && let Some(coord) = &self.coordination_room
        {
            tx.decisions.push(Decision::Coordination {
                room: Arc::clone(coord),
                incident: id,
                kind: CoordinationKind::Retracted,
                needed: net.settings(&inc.neighborhood).confirmations,
            });
        }
    }
}
