//! `!nw` commands in the engine: [`crate::admin`] decides; the engine applies the
//! outcome's overlay changes in the input's commit (effective network rebuilt at once),
//! ingests a drill's synthetic report, and passes the decisions on.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{DRILL_MINUTES, Engine, IncomingMessage, LocatedReport, Standing, Tx};
use crate::admin::{self, AdminCx, OverlayChange};
use crate::command::RoomCommand;
use crate::places::Resolved;
use crate::report::{Details, ReportForm};
use crate::store::Store;

impl<S: Store> Engine<S> {
    /// A `!nw` command typed in `room`.
    pub(super) fn room_command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        msg: &IncomingMessage,
        cmd: RoomCommand,
        now: DateTime<Utc>,
    ) {
        let open = || self.open_in(room);
        let cx = AdminCx {
            net: &self.net,
            file_net: &self.file_net,
            overlay: &self.overlay,
            ledger: &self.ledger,
            coordination: self.coordination_room.as_ref(),
            open: &open,
            room,
            event_id,
            by: &msg.sender,
            power: msg.member.power,
            now,
        };
        let outcome = admin::run(&cx, cmd);
        if !outcome.changes.is_empty() {
            for change in outcome.changes {
                self.apply_change(tx, change);
            }
            self.apply_overlay();
        }
        if let Some(place) = outcome.drill {
            self.drill(tx, room, event_id, msg, place, now);
        }
        tx.decisions.extend(outcome.decisions);
    }

    /// One change of the room-set state, in memory and in the input's commit.
    fn apply_change(&mut self, tx: &mut Tx, change: OverlayChange) {
        match change {
            OverlayChange::Set(set) => {
                self.overlay.set(set.clone());
                tx.batch.settings_put.push(set);
            }
            OverlayChange::Remove(neighborhood, key) => {
                self.overlay.remove(&neighborhood, &key);
                tx.batch.settings_delete.push((neighborhood, key));
            }
            OverlayChange::Link(link) => {
                self.overlay.put_link(link.clone());
                tx.batch.links_put.push(link);
            }
        }
    }

    /// `!nw drill`: a synthetic report at `place` by the admin (so confirmed at once),
    /// opening an incident marked as a drill, relayed wherever a real one would be; all
    /// clear after [`DRILL_MINUTES`].
    fn drill(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        msg: &IncomingMessage,
        place: Resolved,
        now: DateTime<Utc>,
    ) {
        let net = Arc::clone(&self.net);
        let Some(nb) = net.neighborhood_of_room(room) else {
            return;
        };
        let report = LocatedReport {
            event_id: Arc::clone(event_id),
            room: Arc::clone(room),
            reporter: self.key.hash(&msg.sender),
            place,
            observed_at: now,
            text: Arc::from("DRILL"),
            details: Details::default(),
            form: ReportForm::Quick,
            standing: Standing {
                by_verifier: true,
                drill: true,
                ..Standing::default()
            },
        };
        self.ingest_in(tx, nb, report, now);
        self.note_due(now + Duration::minutes(DRILL_MINUTES));
    }
}
