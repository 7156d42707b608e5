//! Decisions: what the engine decided, before any wording, and the [`Render`] contract
//! that words them. The engine is handed a renderer (the bot's is `render`'s
//! [`Catalogs`](crate::render::Catalogs)) and calls it once per committed input; it never
//! formats text itself.
//!
//! Owns: the decision vocabulary. Must not touch: wording, the engine's state, storage.

use std::sync::Arc;

use crate::config::{Network, Problem, RoomSetting};
use crate::effect::Effect;
use crate::links::{Link, LinkRefusal, LinkState};
use crate::model::{Action, Incident, IncidentId};
use crate::places::Place;
use crate::report::ReportError;
use crate::stats::Summary;

/// How a report changed its incident, for the reporter's acknowledgment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// It opened a new incident.
    New,
    /// It added a new independent reporter.
    Merged,
    /// Same reporter again: counted once.
    SameReporter,
    /// It confirmed the incident.
    Confirmed,
    /// It updated an already confirmed incident.
    Update,
}

/// Something the reporter should know about how their report counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckNote {
    /// They joined the room less than `hours` ago: recorded, not counted.
    NewMember {
        /// The neighborhood's `min_member_hours`.
        hours: u32,
    },
    /// More than `max` reports in 10 minutes: this one and the next are recorded, not
    /// counted (said once).
    RateLimited {
        /// The neighborhood's `max_reports_per_10min`.
        max: u32,
    },
}

/// What became of a setting change asked from a room.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingOutcome {
    /// Set, from `old` to `new` (effective values, as shown).
    Changed {
        /// The value before.
        old: String,
        /// The value now.
        new: String,
    },
    /// Back to the network file's value.
    Reset {
        /// The room-set value before.
        old: String,
        /// The file's value, now in force.
        new: String,
    },
    /// Nothing to change: it already has that value (or, for a reset, the file's).
    Unchanged {
        /// The value.
        value: String,
    },
    /// The value is not valid: the network file's rule, for the room to read.
    Bad(Problem),
    /// A list that has its own command (`verifiers`).
    OwnCommand,
    /// `!nw area` with something else than its forms.
    AreaUsage,
    /// Asked in the coordination room: the network's defaults are the file's.
    DefaultsInFile,
}

/// What became of a `!nw verifiers …` command.
#[derive(Clone, Debug, PartialEq)]
pub enum VerifiersOutcome {
    /// Added or removed (each user in one list).
    Changed {
        /// Now verifiers of the neighborhood.
        added: Vec<String>,
        /// No longer.
        removed: Vec<String>,
        /// Already so: nothing to do.
        unchanged: Vec<String>,
        /// Not user IDs.
        invalid: Vec<String>,
    },
    /// The neighborhood's verifiers, each with the room change that made it one (none:
    /// the network file).
    List(Vec<(String, Option<RoomSetting>)>),
    /// The command's valid forms.
    Usage,
    /// Asked in the coordination room: verifiers belong to a neighborhood.
    InCoordination,
}

/// What became of a `!nw places …` command.
#[derive(Clone, Debug, PartialEq)]
pub enum PlacesOutcome {
    /// Added (or, with `was`, moved or changed from what it was).
    Added {
        /// The place now.
        place: Place,
        /// What it was, when a room had added it before.
        was: Option<Place>,
    },
    /// Already so: nothing to do.
    Unchanged(Place),
    /// Removed.
    Removed(Place),
    /// No place of that name was added from a room (as typed); `in_file` when the network
    /// file has one (only the organizer changes those).
    NotAdded {
        /// The name as typed.
        name: String,
        /// The network file has a place of that name.
        in_file: bool,
    },
    /// The network file already has a place of that name.
    InFile(String),
    /// The name is empty or longer than the limit (as typed, cut).
    BadName(String),
    /// A kind a room cannot add (as typed).
    BadKind(String),
    /// The coordinates are out of range.
    BadPoint(Problem),
    /// The point is this far outside the neighborhood's area (metres).
    TooFar(f64),
    /// The neighborhood's rooms have added the most places there may be.
    TooMany(usize),
    /// The places added from rooms (each with who added it), and how many places and
    /// streets the network file gives.
    List {
        /// Added from rooms.
        added: Vec<(Place, RoomSetting)>,
        /// Places in the network file's gazetteers.
        in_file: usize,
        /// Streets in them.
        streets: usize,
    },
    /// The command's valid forms.
    Usage,
    /// Asked in the coordination room: places belong to a neighborhood.
    InCoordination,
}

/// What became of a `!nw relay …` command.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkOutcome {
    /// A request was made, or a link's state changed: the link as it now stands.
    Changed(Link),
    /// The links of the room's neighborhood that are in force or waiting for an answer.
    List(Vec<Link>),
    /// Refused; nothing changed.
    Refused(LinkRefusal),
    /// The room named is not a room of the network (as typed).
    UnknownRoom(String),
    /// No link has that ID (as typed).
    UnknownLink(String),
    /// The command's valid forms.
    Usage,
    /// Asked in the coordination room: links join neighborhoods, from their rooms.
    InCoordination,
}

/// A change made from a room, for the audit line.
#[derive(Clone, Debug, PartialEq)]
pub enum AuditChange {
    /// A setting of a neighborhood.
    Setting {
        /// The neighborhood's id.
        neighborhood: Arc<str>,
        /// The setting.
        key: String,
        /// Its value before.
        old: String,
        /// Its value now.
        new: String,
        /// A reset to the file's value.
        reset: bool,
    },
    /// A verifier added to or removed from a neighborhood.
    Verifier {
        /// The neighborhood's id.
        neighborhood: Arc<str>,
        /// The verifier's user ID.
        user: String,
        /// Added (or removed).
        added: bool,
    },
    /// A place added, moved or removed in a neighborhood: as it was and as it is (each
    /// as [`crate::config::place_text`] gives it).
    Place {
        /// The neighborhood's id.
        neighborhood: Arc<str>,
        /// Before (none: added).
        old: Option<String>,
        /// After (none: removed).
        new: Option<String>,
    },
    /// A drill started in a neighborhood.
    Drill {
        /// The neighborhood's id.
        neighborhood: Arc<str>,
    },
    /// A relay link requested, accepted, declined or removed: the link as it now stands,
    /// and its state before (none for a request).
    Link {
        /// The link now.
        link: Link,
        /// Its state before.
        old: Option<LinkState>,
    },
}

/// Why relayed alerts are being updated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// More reports (quiet).
    Reports,
    /// Expired without new reports (quiet).
    Expired,
    /// A verifier changed the status (confirmed, false alarm, all clear): the thread
    /// reply notifies, with the alert's mentions.
    Status {
        /// The reason given, for a false alarm.
        reason: Option<Arc<str>>,
    },
    /// A report was withdrawn by its sender (quiet).
    Retracted,
    /// This room's neighborhood, not the incident's home, marked it a false alarm or all
    /// clear for its own rooms (its mark is in the incident's state): the thread reply
    /// notifies.
    MarkedHere,
    /// This room's neighborhood took its own mark back (quiet).
    UnmarkedHere,
}

/// What the coordination room is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinationKind {
    /// An incident was opened, or confirmed by reports without alerting any room.
    Incident,
    /// The incident was relayed; `rooms` alerted so far.
    Relayed {
        /// Rooms alerted so far.
        rooms: usize,
    },
    /// The incident expired.
    Expired,
    /// A verifier changed its status (now the incident's status).
    Status {
        /// The reason given, for a false alarm.
        reason: Option<Arc<str>>,
    },
    /// A report was withdrawn.
    Retracted,
}

/// What came of reading the network file again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The file applies from the next input on.
    Applied(crate::config::NetworkChanges),
    /// The file is not valid (the message `neighborwatch check` gives); the bot goes on
    /// with the network it had.
    Refused(String),
}

/// One decision of the engine. Every incident decision refers to the incident's state
/// after the input that produced it.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Acknowledge a report to its sender (quiet reply).
    Ack {
        /// Room of the report.
        room: Arc<str>,
        /// The report's event.
        in_reply_to: Arc<str>,
        /// The incident.
        incident: IncidentId,
        /// What happened.
        kind: AckKind,
        /// Rooms alerted so far.
        rooms: usize,
        /// Independent reports needed to confirm.
        needed: u32,
        /// How the report counted, when the reporter should know.
        note: Option<AckNote>,
    },
    /// A verifier action was applied: tell who asked (quiet reply).
    ActionDone {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// The incident (its new status is in its state).
        incident: IncidentId,
        /// Alerts being updated.
        rooms: usize,
    },
    /// A verifier action from another alerted neighborhood than the incident's home was
    /// applied there only (a false alarm or all clear in its rooms, a confirmation as
    /// support): tell who asked that the home decides for everyone (quiet reply).
    ActionHere {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// The incident.
        incident: IncidentId,
        /// What was done.
        action: Action,
        /// Alerts being updated (this neighborhood's).
        rooms: usize,
    },
    /// The incident's home is asked to decide what another alerted neighborhood said of
    /// it: a notice in each of the home's rooms and in the coordination room.
    OriginAsked {
        /// Where the notice goes.
        room: Arc<str>,
        /// The incident.
        incident: IncidentId,
        /// The neighborhood (ID) that said it.
        from: Arc<str>,
        /// What it said.
        action: Action,
        /// Said by a room moderator there (else by a listed verifier).
        by_moderator: bool,
        /// The reason given, for a false alarm.
        reason: Option<Arc<str>>,
    },
    /// Someone who may not act asked to (quiet reply; never for reactions).
    ActionRefused {
        /// Room.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// What was asked.
        action: Action,
    },
    /// The incident already is as asked, or closed for it.
    ActionUnchanged {
        /// Room.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// The incident.
        incident: IncidentId,
    },
    /// A command named an incident this room does not know: list the room's open ones.
    UnknownIncident {
        /// Room.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// What was typed.
        given: String,
        /// Open incidents of the room: ID and place.
        open: Vec<(IncidentId, Arc<str>)>,
    },
    /// `!nw help`: what the bot understands in this room (quiet reply).
    Help {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
    },
    /// `!nw status`: the neighborhood's (in the coordination room, the network's) open
    /// and confirmed incidents; the settings are read from the network when worded.
    Status {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// Open incidents (unverified or confirmed) of the room, or of the network.
        open: usize,
        /// …of which confirmed.
        confirmed: usize,
    },
    /// `!nw incidents`: the open incidents of the room (of the network, in the
    /// coordination room), oldest first, with their age in minutes.
    Incidents {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// Incident and minutes since its first report (at most 10 incidents).
        open: Vec<(IncidentId, i64)>,
        /// How many more are open beyond those listed.
        more: usize,
    },
    /// `!nw settings [KEY]` by a room admin: the effective settings of the room's
    /// neighborhood (of `[defaults]`, in the coordination room), or one of them, each
    /// with its source; worded from the (effective) network.
    Settings {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// The one setting asked about, if any (may be no setting: then the valid keys
        /// are shown).
        key: Option<String>,
    },
    /// `!nw settings KEY VALUE | reset` by a room admin: what became of the change.
    Setting {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// The setting.
        key: String,
        /// What happened.
        outcome: SettingOutcome,
    },
    /// `!nw relay …` by a room admin: the answer in the room.
    LinkReply {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// What happened.
        outcome: LinkOutcome,
    },
    /// `!nw verifiers …` by a room admin: the answer in the room.
    VerifiersReply {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// What happened.
        outcome: VerifiersOutcome,
    },
    /// `!nw places …` by a room admin: the answer in the room.
    PlacesReply {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// What happened.
        outcome: PlacesOutcome,
    },
    /// `!nw stats [hours]` by a room admin: the numbers of the room's neighborhood (of
    /// the network, and of each neighborhood, in the coordination room).
    Stats {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// The window, in hours.
        hours: u32,
        /// The numbers: one neighborhood's (its id), or the network's (`None`) first and
        /// then each neighborhood's.
        summaries: Vec<(Option<Arc<str>>, Summary)>,
    },
    /// `!nw stats WORD` where WORD is not a number of hours from 1 to the most.
    StatsUsage {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// What was typed.
        given: String,
    },
    /// `!nw area [show]` by a room admin: the neighborhood's area and its source.
    AreaShow {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
    },
    /// `!nw drill` in the coordination room: drills run in a neighborhood's room.
    DrillInCoordination {
        /// The coordination room.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
    },
    /// A link's news for a room of its other side: a request to answer, the answer, the
    /// end.
    LinkNotice {
        /// The room told.
        room: Arc<str>,
        /// The link, as it now stands.
        link: Link,
    },
    /// A change made by a room admin, announced in the coordination room (admins act in
    /// the open: the line names them).
    Audit {
        /// The coordination room.
        room: Arc<str>,
        /// The admin's user ID.
        by: Arc<str>,
        /// The room the change was made in.
        in_room: Arc<str>,
        /// What changed.
        change: AuditChange,
    },
    /// A command for room admins from someone below power level 50 (quiet reply).
    AdminOnly {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
    },
    /// `!nw WORD` with a word that is no command: show the valid ones.
    UnknownCommand {
        /// Room of the command.
        room: Arc<str>,
        /// The command's event.
        in_reply_to: Arc<str>,
        /// What was typed.
        given: String,
    },
    /// The report is older than the dedupe window: recorded, not alerted.
    TooOld {
        /// Room.
        room: Arc<str>,
        /// The report's event.
        in_reply_to: Arc<str>,
        /// Where it was.
        place: String,
        /// The window in minutes.
        window_min: u32,
    },
    /// The report was refused.
    Rejected {
        /// Room.
        room: Arc<str>,
        /// The report's event.
        in_reply_to: Arc<str>,
        /// Why.
        error: ReportError,
    },
    /// The location did not resolve; the report waits for an edit or a location share.
    Unresolved {
        /// Room.
        room: Arc<str>,
        /// The report's event.
        in_reply_to: Arc<str>,
        /// The words read as the location.
        query: String,
        /// Closest gazetteer names.
        suggestions: Vec<String>,
    },
    /// A message whose encryption keys never reached the bot: ask its sender to send it
    /// again.
    Undecryptable {
        /// Room.
        room: Arc<str>,
        /// The message.
        in_reply_to: Arc<str>,
    },
    /// A report in a room that is not part of the network.
    NotInNetwork {
        /// Room.
        room: Arc<str>,
        /// The report's event.
        in_reply_to: Arc<str>,
    },
    /// The sender has drawn every answer of their reply budget in this room: said once,
    /// then nothing until an answer is regained (see [`crate::budget`]).
    SlowDown {
        /// Room.
        room: Arc<str>,
        /// The message that ran the budget dry.
        in_reply_to: Arc<str>,
    },
    /// Send a new alert (and its `m.location`) to a room.
    Relay {
        /// Room.
        room: Arc<str>,
        /// The incident.
        incident: IncidentId,
    },
    /// Edit the alert already relayed to a room, and add one reply in its thread.
    UpdateAlert {
        /// Room.
        room: Arc<str>,
        /// The incident.
        incident: IncidentId,
        /// Why.
        update: UpdateKind,
    },
    /// Tell the coordination room.
    Coordination {
        /// The coordination room.
        room: Arc<str>,
        /// The incident.
        incident: IncidentId,
        /// What to say.
        kind: CoordinationKind,
        /// Independent reports needed to confirm.
        needed: u32,
    },
    /// The network file was read again (`neighborwatch reload`, SIGHUP): told in the
    /// coordination room, applied or refused.
    NetworkReload {
        /// The coordination room.
        room: Arc<str>,
        /// What came of it.
        outcome: ReloadOutcome,
    },
    /// Redact the bot's messages about a closed incident in a room: its alert retention
    /// there is over. Not worded.
    Fade {
        /// Room.
        room: Arc<str>,
        /// The incident.
        incident: IncidentId,
    },
}

impl Decision {
    /// Whether this is an answer to whoever sent the input that a sender's reply budget
    /// pays for: help, refusals, errors, listings. Never an acknowledgment of a valid
    /// report, a verifier's answer, an alert, an update or a coordination notice.
    pub fn is_budgeted_answer(&self) -> bool {
        matches!(
            self,
            Self::ActionRefused { .. }
                | Self::UnknownIncident { .. }
                | Self::Help { .. }
                | Self::Status { .. }
                | Self::Incidents { .. }
                | Self::Settings { .. }
                | Self::StatsUsage { .. }
                | Self::AreaShow { .. }
                | Self::AdminOnly { .. }
                | Self::UnknownCommand { .. }
                | Self::TooOld { .. }
                | Self::Rejected { .. }
                | Self::Unresolved { .. }
                | Self::Undecryptable { .. }
                | Self::NotInNetwork { .. }
        )
    }

    /// The room of a refusal (someone asked for what they may not do: a command for room
    /// admins, a verifier action, a link change only the other side may make), counted in
    /// the statistics; `None` for any other decision.
    pub fn refused_in(&self) -> Option<&Arc<str>> {
        match self {
            Self::AdminOnly { room, .. } | Self::ActionRefused { room, .. } => Some(room),
            Self::LinkReply {
                room,
                outcome:
                    LinkOutcome::Refused(
                        LinkRefusal::OtherSide { .. }
                        | LinkRefusal::OtherRoom { .. }
                        | LinkRefusal::NotASide,
                    ),
                ..
            } => Some(room),
            _ => None,
        }
    }
}

/// Words decisions as messages, in each receiving room's language, reading each
/// incident's state after the input through `incident`.
pub trait Render: Send + Sync {
    /// The effects of `decisions`, in order.
    fn render<'i>(
        &self,
        net: &Network,
        incident: &dyn Fn(&IncidentId) -> Option<&'i Incident>,
        decisions: &[Decision],
    ) -> Vec<Effect>;
}
