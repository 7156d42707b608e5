//! The network file read again while the engine runs: the new file replaces the old
//! one under the values set from rooms, between two inputs, and the coordination room
//! is told what changed (or why the file was refused).
//!
//! Owns: swapping the engine's file network. Must not touch: reading or validating the
//! file (the shell does, with `config`), incidents, the outbox's queued entries.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, Tx};
use crate::config::{Network, NetworkChanges};
use crate::decision::{Decision, ReloadOutcome};
use crate::effect::Effect;
use crate::store::Store;

impl<S: Store> Engine<S> {
    /// Replaces the network file the engine runs on with `file` (read again and
    /// validated by the shell, its room aliases resolved, the sections that need a
    /// restart kept from the running one: [`Network::for_reload`]). From the next input
    /// on, its neighborhoods, areas, places and settings apply; the values set from
    /// rooms stay over them; incidents, pending reports and the outbox are untouched.
    /// The coordination room (the new file's) is told `changes`; the effects are
    /// returned and queued like any input's.
    pub fn reload_network(
        &mut self,
        file: Arc<Network>,
        changes: NetworkChanges,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        self.file_net = file;
        self.name_file_network();
        self.apply_overlay();
        // Expiry and retention may have changed: the next timer is computed again.
        self.recompute_due();
        self.tell_reload(ReloadOutcome::Applied(changes), now)
    }

    /// The network file could not be used (`reason`: what `neighborwatch check` says):
    /// nothing changes, and the coordination room is told.
    pub fn reload_refused(
        &mut self,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        self.tell_reload(ReloadOutcome::Refused(reason), now)
    }

    fn tell_reload(
        &mut self,
        outcome: ReloadOutcome,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        let Some(room) = self.coordination_room.clone() else {
            return Ok(Vec::new());
        };
        let mut tx = Tx::new(Arc::from(format!("reload/{}", now.timestamp_millis())));
        tx.decisions.push(Decision::NetworkReload { room, outcome });
        Ok(self.commit(tx, now, true)?.effects)
    }
}
