//! Storage: the engine's durable state behind one trait, with an in-memory and a `sled`
//! implementation that pass the same contract tests.
//!
//! Owns: persistence of incidents, pending reports, handled event IDs, the ID counter,
//! the settings changed from rooms, the relay links, the refusal counts, the outbox and
//! the bot's sent messages per incident and room until redacted; every commit is atomic;
//! what is deleted is gone from the files too ([`shred`]); the files that hold secrets
//! are sealed under the store passphrase ([`vault`]). Must not touch:
//! decisions (the engine makes them), Matrix.

mod memory;
pub mod shred;
mod sled_store;
pub mod vault;
pub mod waiting;

pub use memory::MemoryStore;
pub use sled_store::SledStore;
pub use vault::Vault;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::config::RoomSetting;
use crate::effect::Effect;
use crate::links::Link;
use crate::model::{Incident, IncidentId, PendingReport};
use crate::stats::RefusalCount;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (the backend's own words; the trait names no backend's types).
    #[error("database error: {0}")]
    Db(String),
    /// A stored record could not be read back.
    #[error("corrupt record `{key}`: {reason}")]
    Corrupt {
        /// Its key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// The sealing keys' file could not be read or written.
    #[error("sealing keys: {0}")]
    Keys(String),
    /// A sealed file does not open with the store passphrase.
    #[error("{source_name} does not open {}: wrong passphrase?", file.display())]
    Passphrase {
        /// Where the passphrase came from (the environment variable's name).
        source_name: String,
        /// The sealed file.
        file: std::path::PathBuf,
    },
    /// No store passphrase was given.
    #[error(
        "environment variable {0} is not set (it holds the store passphrase that opens the data directory)"
    )]
    NoPassphrase(String),
}

/// Everything the engine needs to resume.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// All incidents, open and closed.
    pub incidents: Vec<Incident>,
    /// Reports waiting for a location.
    pub pending: Vec<PendingReport>,
    /// The next incident sequence number.
    pub next_seq: u64,
    /// Settings changed from rooms, by neighborhood then key.
    pub settings: Vec<RoomSetting>,
    /// Relay links, by ID.
    pub links: Vec<Link>,
    /// Refusals counted per neighborhood and hour (for `!nw stats`).
    pub refusals: Vec<RefusalCount>,
}

/// One atomic change: all of it is stored, or none of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Event IDs now handled (usually one: inline, no allocation).
    pub seen: SmallVec<[Arc<str>; 1]>,
    /// When (milliseconds since 1970): handled event IDs are kept for
    /// [`SEEN_KEEP_DAYS`] from then.
    pub at_ms: i64,
    /// Incidents to insert or update (usually one: inline, no allocation).
    pub incidents: SmallVec<[IncidentWrite; 1]>,
    /// Pending reports to insert or replace.
    pub pending_put: Vec<PendingReport>,
    /// Pending reports (by event ID) to delete.
    pub pending_delete: Vec<Arc<str>>,
    /// Incidents to delete, with all their reports and everything the store keeps
    /// about them: their alerts' event IDs, the event map's entries for the bot's
    /// messages about them, the outbox entries still queued about them (an unconfirmed
    /// incident whose every report was withdrawn; a closed incident past the statistics
    /// window). Two things stay until they are done: outbox entries that redact the
    /// bot's messages ([`Effect::Fade`]), queued before or in this batch, and the list
    /// of those messages in the rooms they redact ([`Store::sent_events`]).
    pub incidents_delete: Vec<IncidentId>,
    /// New value of the incident counter.
    pub next_seq: Option<u64>,
    /// Effects to send, queued in the same atomic write as the state they come from.
    pub outbox: Vec<OutboxEntry>,
    /// Settings set from a room (replacing the neighborhood's earlier value of the key).
    pub settings_put: Vec<RoomSetting>,
    /// Settings reset from a room, as (neighborhood, key): the file's value applies again.
    pub settings_delete: Vec<(String, String)>,
    /// Relay links to insert or replace (by ID; they are never deleted).
    pub links_put: Vec<Link>,
    /// Refusal counts to insert or replace (by neighborhood and hour).
    pub refusals_put: Vec<RefusalCount>,
    /// Refusal counts to delete, as (neighborhood, hour): too old for `!nw stats`.
    pub refusals_delete: Vec<(String, i64)>,
}

/// An incident to write: all its fields, but only the reports that changed. Reports are
/// usually appended (or, for text retention, rewritten in place), so a report costs a
/// write of its own record, not of the whole incident. A write may also shrink the
/// reports (a withdrawn report): every stored report from `reports_from +
/// incident.reports.len()` on is deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentWrite {
    /// Index of the first report in `incident.reports`: the stored reports before it are
    /// kept as they are; those from it on are replaced by `incident.reports`.
    pub reports_from: usize,
    /// The incident, whose `reports` hold its reports from `reports_from` on.
    pub incident: Incident,
}

impl IncidentWrite {
    /// Writes a whole incident, reports included.
    pub fn whole(incident: Incident) -> Self {
        Self {
            reports_from: 0,
            incident,
        }
    }
}

/// An effect waiting to be sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Matrix transaction ID: derived from the effect's cause, so a retried send is
    /// recognised by the homeserver and never duplicated.
    pub txn_id: String,
    /// When the bot received the event it comes from (milliseconds since 1970; 0 when
    /// unknown, as in entries queued by older versions): the alert-delay metric.
    #[serde(default)]
    pub at_ms: i64,
    /// What to send.
    pub effect: Effect,
}

/// A message the server accepted, about an incident: the store remembers which incident
/// each of the bot's events is about (reactions to any of them act on it), for an
/// alert its event ID per room (edits and thread replies refer to it), and every such
/// event per incident and room until it is redacted ([`Store::sent_events`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent<'a> {
    /// The incident.
    pub incident: &'a IncidentId,
    /// The room.
    pub room: &'a str,
    /// The event ID the server gave it.
    pub event_id: &'a str,
    /// Whether it is the incident's alert in that room.
    pub alert: bool,
}

impl<'a> Sent<'a> {
    /// What to remember of `effect`, sent as `event_id`; `None` for a message about no
    /// incident.
    pub fn of(effect: &'a Effect, event_id: &'a str) -> Option<Self> {
        let (incident, alert) = match effect {
            Effect::Relay { message, .. } => (message.incident.as_ref()?, true),
            Effect::Location { incident, .. } => (incident, false),
            Effect::Reply { message, .. }
            | Effect::Notice { message, .. }
            | Effect::Edit { message, .. }
            | Effect::ThreadReply { message, .. } => (message.incident.as_ref()?, false),
            Effect::Fade { .. } => return None,
        };
        Some(Self {
            incident: &incident.id,
            room: effect.room(),
            event_id,
            alert,
        })
    }
}

/// An outbox entry with its place in the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    /// Position: entries are sent in increasing order (per room).
    pub seq: u64,
    /// The entry.
    pub entry: OutboxEntry,
}

impl Batch {
    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
            && self.incidents.is_empty()
            && self.pending_put.is_empty()
            && self.pending_delete.is_empty()
            && self.incidents_delete.is_empty()
            && self.next_seq.is_none()
            && self.outbox.is_empty()
            && self.settings_put.is_empty()
            && self.settings_delete.is_empty()
            && self.links_put.is_empty()
            && self.refusals_put.is_empty()
            && self.refusals_delete.is_empty()
    }
}

/// How long a handled event ID is remembered. Events are only ever handed to the engine
/// again within much less: the history read back after a restart spans the dedupe
/// window, an undecryptable event waits at most a day for its keys.
pub const SEEN_KEEP_DAYS: i64 = 7;

/// Durable engine state.
pub trait Store {
    /// Everything stored.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Whether an event was already handled.
    fn is_seen(&self, event_id: &str) -> Result<bool, StoreError>;
    /// Forgets the event IDs handled before `before_ms` (milliseconds since 1970); returns
    /// how many. IDs stored without a time (by older versions) count as handled at
    /// `now_ms` (the store reads no clock).
    fn forget_seen(&mut self, before_ms: i64, now_ms: i64) -> Result<usize, StoreError>;
    /// Applies a batch atomically.
    fn commit(&mut self, batch: Batch) -> Result<(), StoreError>;
    /// Outbox entries not yet sent, oldest first.
    fn outbox(&self) -> Result<Vec<Queued>, StoreError>;
    /// Outbox entries not yet sent that were queued after entry `after` (all of them for
    /// `None`), oldest first.
    fn outbox_after(&self, after: Option<u64>) -> Result<Vec<Queued>, StoreError> {
        let mut q = self.outbox()?;
        q.retain(|q| after.is_none_or(|a| q.seq > a));
        Ok(q)
    }
    /// Marks an entry sent: removes it and remembers what [`Sent`] says. One atomic write.
    fn outbox_sent(&mut self, seq: u64, sent: Option<Sent<'_>>) -> Result<(), StoreError>;
    /// Remembers a message sent outside the outbox (offline replay).
    fn note_sent(&mut self, sent: Sent<'_>) -> Result<(), StoreError>;
    /// The event ID of the alert for `incident` relayed to `room`, once sent.
    fn alert_event(&self, incident: &IncidentId, room: &str) -> Result<Option<String>, StoreError>;
    /// The incident one of the bot's messages is about.
    fn event_incident(&self, event_id: &str) -> Result<Option<IncidentId>, StoreError>;
    /// The bot's messages about `incident` in `room` not redacted yet (event IDs, in no
    /// particular order).
    fn sent_events(&self, incident: &IncidentId, room: &str) -> Result<Vec<String>, StoreError>;
    /// Whether `event_id` is one of the bot's messages about `incident` sent to `room`
    /// (and not redacted yet): a reaction acts only on a message of its own room.
    /// The alert counts too when only its alert record is kept (sent by a version that
    /// did not list every message).
    fn is_sent_in(
        &self,
        incident: &IncidentId,
        room: &str,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .sent_events(incident, room)?
            .iter()
            .any(|e| e == event_id)
            || self.alert_event(incident, room)?.as_deref() == Some(event_id))
    }
    /// The rooms holding messages of the bot about `incident` not redacted yet.
    fn sent_rooms(&self, incident: &IncidentId) -> Result<Vec<String>, StoreError>;
    /// Notes that the bot's message `event_id` about `incident` in `room` is redacted:
    /// it leaves [`Store::sent_events`]. Flushed at once (a redaction is never sent
    /// twice, even after a crash).
    fn redacted(
        &mut self,
        incident: &IncidentId,
        room: &str,
        event_id: &str,
    ) -> Result<(), StoreError>;
    /// Makes what was deleted or replaced unrecoverable from the files too (the engine
    /// calls it hourly, after purging report text). Nothing to do for a store that keeps
    /// no old copies.
    fn shred(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Whether an outbox entry leaves with the deleted incidents `gone` (every entry about
/// one of them but its redactions).
fn dropped_with(effect: &Effect, gone: &[IncidentId]) -> bool {
    !matches!(effect, Effect::Fade { .. }) && effect.incident().is_some_and(|id| gone.contains(id))
}

/// The (incident, room) pairs of the redactions queued in `entries`.
fn fades<'a>(entries: impl IntoIterator<Item = &'a OutboxEntry>) -> Vec<(IncidentId, String)> {
    entries
        .into_iter()
        .filter_map(|e| match &e.effect {
            Effect::Fade { room, incident } => Some((*incident, room.clone())),
            _ => None,
        })
        .collect()
}

/// The error for a write that would leave a hole in an incident's reports.
fn gap(w: &IncidentWrite, stored: usize) -> StoreError {
    StoreError::Corrupt {
        key: format!("incident/{}", w.incident.id),
        reason: format!(
            "write starts at report {} but only {stored} are stored",
            w.reports_from
        ),
    }
}
