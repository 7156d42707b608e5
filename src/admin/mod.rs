//! Room administration: every `!nw` subcommand as a pure function of the room's view of
//! the network, in Draupnir's command-table shape. Each family sits in its own file
//! (`settings`, `area`, `verifiers`, `places`, `relay`, `stats`, `drill`, `info`) and
//! maps an [`AdminCx`] and the parsed command to an [`Outcome`]: the changes to the
//! room-set overlay and the decisions to word.
//!
//! Owns: what each command means and who may run it ([`needs_admin`], checked once in
//! [`run`]). Must not touch: the engine, storage, wording, clocks (time is in the
//! context). The engine applies an [`Outcome`]'s changes to the overlay and commits them
//! with the input.

mod area;
mod drill;
mod info;
mod places;
mod relay;
mod settings;
mod stats;
mod verifiers;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::command::RoomCommand;
use crate::config::{Network, Overlay, RoomSetting};
use crate::decision::{AuditChange, Decision};
use crate::links::Link;
use crate::model::Incident;
use crate::places::Resolved;
use crate::stats::Ledger;

pub use info::MAX_LISTED;

/// What a command sees: the room's network, who typed it, where and when.
pub struct AdminCx<'a> {
    /// The effective network (the file's with the values set from rooms).
    pub net: &'a Network,
    /// The network as the file says (what a reset goes back to).
    pub file_net: &'a Network,
    /// The values set from rooms.
    pub overlay: &'a Overlay,
    /// The numbers of `!nw stats`.
    pub ledger: &'a Ledger,
    /// The network's coordination room, where audit lines go.
    pub coordination: Option<&'a Arc<str>>,
    /// The open incidents of the room (of the network, in the coordination room); read
    /// only by the commands that list or count them.
    pub open: &'a dyn Fn() -> Vec<&'a Incident>,
    /// The room the command was typed in.
    pub room: &'a Arc<str>,
    /// The command's event (answers reply to it).
    pub event_id: &'a Arc<str>,
    /// Who typed it (user ID; only audit lines name them).
    pub by: &'a str,
    /// Their power level in the room.
    pub power: i64,
    /// Now.
    pub now: DateTime<Utc>,
}

/// One change of the room-set state, applied by the engine in the input's commit.
#[derive(Clone, Debug, PartialEq)]
pub enum OverlayChange {
    /// A value set from a room (a setting, the area, a verifier, a place).
    Set(RoomSetting),
    /// A room-set value taken away (neighborhood, key): the file's applies again.
    Remove(String, String),
    /// A relay link requested or changed.
    Link(Link),
}

/// What a command does: overlay changes, then the decisions to word, in order.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Changes to the room-set state.
    pub changes: Vec<OverlayChange>,
    /// Decisions, in the order they are worded.
    pub decisions: Vec<Decision>,
    /// `!nw drill`: the place of the synthetic report the engine ingests before
    /// these decisions.
    pub drill: Option<Resolved>,
}

impl Outcome {
    fn say(d: Decision) -> Self {
        Self {
            decisions: vec![d],
            ..Self::default()
        }
    }
}

/// Whether a command is for room admins only (power level ≥ 50).
pub fn needs_admin(cmd: &RoomCommand) -> bool {
    match cmd {
        RoomCommand::Help | RoomCommand::Status | RoomCommand::Incidents => false,
        RoomCommand::Unknown(_) => false,
        RoomCommand::Settings { .. }
        | RoomCommand::Relay(_)
        | RoomCommand::Verifiers(_)
        | RoomCommand::Area(_)
        | RoomCommand::Places(_)
        | RoomCommand::Stats(_)
        | RoomCommand::Drill => true,
    }
}

/// Runs a `!nw` command typed in `cx.room`: refused once, here, for anyone below a room
/// admin when the command needs one; otherwise the command's own file decides.
pub fn run(cx: &AdminCx<'_>, cmd: RoomCommand) -> Outcome {
    if needs_admin(&cmd) && !crate::lifecycle::is_room_admin(cx.power) {
        return Outcome::say(Decision::AdminOnly {
            room: Arc::clone(cx.room),
            in_reply_to: Arc::clone(cx.event_id),
        });
    }
    match cmd {
        RoomCommand::Help => info::help(cx),
        RoomCommand::Status => info::status(cx),
        RoomCommand::Incidents => info::incidents(cx),
        RoomCommand::Unknown(given) => info::unknown(cx, given),
        RoomCommand::Settings { key, change } => settings::run(cx, key, change),
        RoomCommand::Relay(c) => relay::run(cx, c),
        RoomCommand::Verifiers(c) => verifiers::run(cx, c),
        RoomCommand::Area(c) => area::run(cx, c),
        RoomCommand::Places(c) => places::run(cx, c),
        RoomCommand::Stats(hours) => stats::run(cx, hours),
        RoomCommand::Drill => drill::run(cx),
    }
}

impl AdminCx<'_> {
    /// The coordination room's line about a change made from this room.
    fn audit(&self, change: AuditChange) -> Option<Decision> {
        Some(Decision::Audit {
            room: Arc::clone(self.coordination?),
            by: Arc::from(self.by),
            in_room: Arc::clone(self.room),
            change,
        })
    }

    /// A record of a value set from this room now.
    fn setting(&self, neighborhood: &str, key: String, value: String) -> RoomSetting {
        RoomSetting {
            neighborhood: neighborhood.to_owned(),
            key,
            value,
            by: self.by.to_owned(),
            room: self.room.to_string(),
            at_ms: self.now.timestamp_millis(),
        }
    }
}
