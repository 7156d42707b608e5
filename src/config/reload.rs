//! A network file read again while the bot runs (`neighborwatch reload`, SIGHUP): what
//! applies at once, what waits for a restart, and what changed, in words an organizer
//! checks.
//!
//! Owns: the comparison of two validated networks. Must not touch: reading files (that
//! is `load`), Matrix, or the engine's state (the engine swaps the network itself).

use super::network::Network;

/// The sections a running bot keeps until it restarts: its account and crypto store, its
/// state database and its listener are opened once, at start.
pub const RESTART_SECTIONS: [&str; 3] = ["[matrix]", "[storage]", "[metrics]"];

/// What a reload changes, for the log and the coordination room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkChanges {
    /// Neighborhoods (by name) the file adds.
    pub added: Vec<String>,
    /// Neighborhoods (by name) the file no longer has.
    pub removed: Vec<String>,
    /// Neighborhoods (by name) still there whose name, area, places, streets, rooms or
    /// settings changed.
    pub changed: Vec<String>,
    /// Network-wide keys the file changed (`coordination_room`, `organizers`,
    /// `allow_unencrypted`): they apply at once too.
    pub network: Vec<&'static str>,
    /// Sections the file changed that apply only at the next start
    /// ([`RESTART_SECTIONS`]); the running bot keeps its own.
    pub restart_needed: Vec<&'static str>,
}

impl NetworkChanges {
    /// Whether the reload changes nothing the bot uses now.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.network.is_empty()
    }
}

impl Network {
    /// `self`, the file read again, made ready to replace `running`: the sections a
    /// running bot cannot change are kept from `running` and named in the changes when
    /// the file changed them; everything else is the file's.
    pub fn for_reload(mut self, running: &Network) -> (Network, NetworkChanges) {
        let mut restart_needed = Vec::new();
        if self.matrix != running.matrix {
            restart_needed.push(RESTART_SECTIONS[0]);
        }
        if self.storage != running.storage {
            restart_needed.push(RESTART_SECTIONS[1]);
        }
        if self.metrics != running.metrics {
            restart_needed.push(RESTART_SECTIONS[2]);
        }
        self.matrix.clone_from(&running.matrix);
        self.storage.clone_from(&running.storage);
        self.metrics.clone_from(&running.metrics);
        let mut changes = changes(running, &self);
        changes.restart_needed = restart_needed;
        (self, changes)
    }
}

/// The neighborhoods `new` adds, drops and changes against `old`, by name, in file
/// order. Coordination room and defaults that change show as a change of every
/// neighborhood they reach.
pub fn changes(old: &Network, new: &Network) -> NetworkChanges {
    let mut out = NetworkChanges::default();
    for (key, same) in [
        (
            "coordination_room",
            old.coordination_room == new.coordination_room,
        ),
        ("organizers", old.organizers == new.organizers),
        (
            "allow_unencrypted",
            old.allow_unencrypted == new.allow_unencrypted,
        ),
    ] {
        if !same {
            out.network.push(key);
        }
    }
    for n in new.neighborhoods() {
        match old.neighborhood(&n.id) {
            None => out.added.push(n.name.clone()),
            Some(o) => {
                let same = o.name == n.name
                    && o.rooms == n.rooms
                    && o.area == n.area
                    && o.settings == n.settings
                    && o.gazetteer.places() == n.gazetteer.places()
                    && o.gazetteer.streets() == n.gazetteer.streets();
                if !same {
                    out.changed.push(n.name.clone());
                }
            }
        }
    }
    for o in old.neighborhoods() {
        if new.neighborhood(&o.id).is_none() {
            out.removed.push(o.name.clone());
        }
    }
    out
}
