//! What comes into the engine: a Matrix event reduced to plain data, what the room says
//! of its sender, and a report once located.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::decision::AckNote;
use crate::model::ReporterHash;
use crate::places::Resolved;
use crate::report::{Details, ReportForm};

/// A Matrix event, reduced to what the core needs.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingMessage {
    /// Event ID (idempotency key).
    pub event_id: String,
    /// Room ID (or alias, as named in the network file).
    pub room: String,
    /// Sender's user ID. Hashed on arrival; never stored or rendered.
    pub sender: String,
    /// The event's own timestamp.
    pub ts: DateTime<Utc>,
    /// What it says.
    pub content: Content,
    /// What the room says of the sender (power level, membership age), looked up by the
    /// shell; never stored.
    pub member: Member,
}

/// What a room says of a message's sender, as plain data for the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// Power level in the room (`m.room.power_levels`; room creators of room version 12
    /// count as the highest, `i64::MAX`).
    pub power: i64,
    /// When they joined the room, if known (unknown: old enough).
    pub since: Option<DateTime<Utc>>,
}

/// The content kinds the core understands.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// `m.text` (or `m.notice`, which is ignored).
    Text {
        /// Body.
        body: String,
        /// True for `m.notice`: never answered.
        notice: bool,
        /// For an edit (`m.replace`), the event it replaces.
        replaces: Option<String>,
    },
    /// `m.location`.
    Location {
        /// `geo:` URI.
        geo_uri: String,
        /// Description.
        body: String,
    },
    /// A message the bot could not decrypt for a while (its keys never arrived). Its
    /// [`IncomingMessage::event_id`] is a key of its own (the shell uses
    /// `<event id>#undecryptable`), so the message itself can still be handled if its
    /// keys arrive later.
    Undecryptable {
        /// The message's event.
        event_id: String,
    },
    /// `m.reaction`.
    Reaction {
        /// The emoji.
        key: String,
        /// The event reacted to.
        relates_to: String,
    },
    /// `m.room.redaction`: a message was deleted (by its sender or a moderator; the
    /// server checked who may, but passes on a redaction it will not apply).
    Redaction {
        /// The deleted event.
        redacts: String,
        /// The room's power levels let the sender redact others' events (their level
        /// reaches the room's `redact` level), as the shell read them.
        may_redact_others: bool,
    },
}

/// How a report counts, decided from who sent it (see [`Engine::ingest`](super::Engine::ingest)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// It counts toward `confirmations`.
    pub counts: bool,
    /// Sent by a verifier or moderator: it confirms the incident at once.
    pub by_verifier: bool,
    /// What the reporter should be told about how it counted.
    pub note: Option<AckNote>,
    /// No acknowledgment at all (a rate-limited reporter was already told).
    pub quiet: bool,
    /// Over `max_reports_per_10min`: recorded, but echoed nowhere (no alert update, no
    /// relay, no coordination notice); only the one rate-limit note to its sender.
    pub limited: bool,
    /// The synthetic report of a drill: it opens a drill incident of its own.
    pub drill: bool,
}

impl Default for Standing {
    fn default() -> Self {
        Self {
            counts: true,
            by_verifier: false,
            note: None,
            quiet: false,
            limited: false,
            drill: false,
        }
    }
}

/// A report with a resolved location, ready to merge.
#[derive(Clone, Debug, PartialEq)]
pub struct LocatedReport {
    /// The report's event (replies go to it).
    pub event_id: Arc<str>,
    /// Its room.
    pub room: Arc<str>,
    /// Who, hashed.
    pub reporter: ReporterHash,
    /// Where.
    pub place: Resolved,
    /// When seen.
    pub observed_at: DateTime<Utc>,
    /// Text without the command word.
    pub text: Arc<str>,
    /// Details.
    pub details: Details,
    /// Grammar used.
    pub form: ReportForm,
    /// How it counts.
    pub standing: Standing,
}
