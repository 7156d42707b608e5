//! The incident engine: a sans-IO state machine. Messages go in with the current time;
//! decisions come out as data, and [`Engine::render`] words them. It never sleeps, reads
//! a clock, or talks to the network; its state lives in memory and in a [`Store`] that it
//! commits to atomically once per input.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use smallvec::SmallVec;
use tracing::debug;

use rustc_hash::FxHashMap;

use super::decision::{
    AckKind, AckNote, AuditChange, CoordinationKind, Decision, LinkOutcome, PlacesOutcome,
    SettingOutcome, UpdateKind, VerifiersOutcome,
};
use super::index::{IncidentIndex, LinearIndex, SpatialIndex};
use super::lifecycle::{self, Action, Role, Transition};
use super::model::{
    ConfirmedBy, Incident, IncidentId, NearPlace, PendingReport, ReportRecord, ReporterHash,
    ReporterKey, Status,
};
use super::table::Incidents;
use crate::command::{
    AreaCommand, PlacesCommand, RelayCommand, RoomCommand, SettingChange, VerifierCommand,
    VerifiersCommand, parse_room_command, parse_verifier_command,
};
use crate::config::{
    AREA_KEY, MAX_PLACE_NAME_CHARS, MAX_PLACE_OUTSIDE_M, MAX_ROOM_PLACES, Neighborhood, Network,
    Overlay, PLACE_KEY, PLACE_KINDS, Problem, RoomSetting, SettingError, Tunables, VERIFIER_ADDED,
    VERIFIER_KEY, VERIFIER_REMOVED, area_text, is_user_id, kind_of, parse_area, parse_place,
    place_key, place_text,
};
use crate::effect::Effect;
use crate::links::{self, Link, LinkAction, LinkState};
use crate::places::{LatLon, Place, ResolveMethod, Resolved, parse_geo_uri};
use crate::render::{Catalogs, render_decisions};
use crate::report::{
    Details, LocationOutcome, ParseContext, ParsedReport, ReportForm, extract, is_report_command,
    parse_report,
};
use crate::routing::{Origin, plan_relays};
use crate::stats::{self, DEFAULT_STATS_HOURS, Ledger, MAX_STATS_HOURS, Tally};
use crate::store::{Batch, IncidentWrite, OutboxEntry, SEEN_KEEP_DAYS, Store, StoreError};

/// A location share attaches to the sender's newest unlocated report this recent.
pub const LOCATION_ATTACH_MIN: i64 = 10;
/// A drill gives the all clear this many minutes after it started.
pub const DRILL_MINUTES: i64 = 1;
/// Most incidents one `!nw incidents` reply lists (the rest are counted).
pub const MAX_LISTED: usize = 10;

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
    /// server checked who may).
    Redaction {
        /// The deleted event.
        redacts: String,
    },
}

/// How a report counts, decided from who sent it (see [`Engine::ingest`]).
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
            drill: false,
        }
    }
}

/// A false alarm, remembered so that a later report at the same place and time says so.
#[derive(Clone, Copy, Debug)]
struct FalseAlarmMark {
    id: IncidentId,
    at: LatLon,
    last_seen: DateTime<Utc>,
    marked_at: DateTime<Utc>,
}

/// Reports one reporter may send are counted over this window.
const RATE_WINDOW_MS: i64 = 10 * 60_000;

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

/// Why the engine could not handle an input. Its in-memory state is rolled back.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed; nothing of the input was applied.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Changes and decisions of one input, committed together.
#[derive(Default)]
struct Tx {
    batch: Batch,
    /// Incidents changed, each with its slot in memory and the index of its first
    /// changed report.
    touched: SmallVec<[(IncidentId, usize, usize); 2]>,
    decisions: Vec<Decision>,
    /// What caused the input (event ID, or the tick time), for transaction IDs.
    cause: Option<Arc<str>>,
}

/// The closest sensitive place within the neighborhood's sensitive radius.
fn near_of(nb: &Neighborhood, at: LatLon) -> Option<NearPlace> {
    nb.gazetteer
        .nearest_sensitive_within(at, nb.settings.sensitive_radius_m)
        .map(|(p, d)| NearPlace {
            name: p.name.as_str().into(),
            kind: p.kind,
            distance_m: d,
        })
}

/// Relays `inc` to every room in range not alerted yet; returns how many.
fn relay_to_new_rooms(net: &Network, inc: &mut Incident, decisions: &mut Vec<Decision>) -> usize {
    let id = inc.id;
    let before = inc.relayed_to.len();
    let origin = Origin {
        at: inc.location,
        neighborhood: &inc.neighborhood,
        hops: inc.hops,
    };
    for t in plan_relays(net, origin, &inc.relayed_to) {
        let room = Arc::clone(t.room);
        decisions.push(Decision::Relay {
            room: Arc::clone(&room),
            incident: id,
        });
        if t.via_link.is_some() {
            inc.linked_rooms.push(Arc::clone(&room));
        }
        inc.relayed_to.push(room);
    }
    inc.relayed_to.len() - before
}

/// Edits the alert of `inc` in every room it was relayed to.
fn update_alerts(inc: &Incident, update: &UpdateKind, decisions: &mut Vec<Decision>) {
    for room in &inc.relayed_to {
        decisions.push(Decision::UpdateAlert {
            room: room.clone(),
            incident: inc.id,
            update: update.clone(),
        });
    }
}

/// A transaction ID that is the same every time the same input produces its `i`-th effect.
fn txn_id(cause: &str, i: usize) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(cause.as_bytes());
    format!("nw{}.{i}", hex::encode(&h[..12]))
}

impl Tx {
    /// Notes that incident `id` changed, from its report `from` on.
    fn touch(&mut self, id: IncidentId, slot: usize, from: usize) {
        match self.touched.iter_mut().find(|(t, _, _)| *t == id) {
            Some((_, _, f)) => *f = (*f).min(from),
            None => self.touched.push((id, slot, from)),
        }
    }
}

/// A change of one value of a neighborhood asked from a room: where, by whom, which.
struct RoomChange<'a> {
    room: &'a Arc<str>,
    event_id: &'a Arc<str>,
    by: &'a str,
    neighborhood: String,
    key: String,
}

impl RoomChange<'_> {
    /// The answer to the command.
    fn answer(&self, tx: &mut Tx, outcome: SettingOutcome) {
        tx.decisions.push(Decision::Setting {
            room: Arc::clone(self.room),
            in_reply_to: Arc::clone(self.event_id),
            key: self.key.clone(),
            outcome,
        });
    }
}

/// The incident engine.
pub struct Engine<S: Store> {
    /// The effective network: the file's with the values set from rooms applied
    /// (everything the engine, routing and rendering read).
    net: Arc<Network>,
    /// The network as the file says.
    file_net: Arc<Network>,
    /// The values set from rooms (stored with the state, in the same commits).
    overlay: Overlay,
    store: S,
    key: ReporterKey,
    cat: &'static Catalogs,
    /// Incidents in memory; the open ones indexed by place.
    incidents: Incidents,
    pending: Vec<PendingReport>,
    next_seq: u64,
    /// Earliest time at which `tick` has something to do.
    next_due: Option<DateTime<Utc>>,
    /// When old handled event IDs were last forgotten.
    forgot_seen_at: Option<DateTime<Utc>>,
    /// Queue worded effects in the store's outbox, atomically with the state.
    outbox: bool,
    /// When the shell received the input being handled (see [`Engine::handle_received`]).
    received_ms: Option<i64>,
    /// The network's coordination room, shared by the decisions that name it.
    coordination_room: Option<Arc<str>>,
    /// This bot's origin and each neighborhood's id (in network order), shared by every
    /// incident that names them.
    origin: Arc<str>,
    hood_ids: Vec<Arc<str>>,
    /// False alarms of the last day, by place.
    false_alarms: Vec<FalseAlarmMark>,
    /// When each reporter's recent reports arrived (ms), for `max_reports_per_10min`.
    recent: FxHashMap<ReporterHash, SmallVec<[i64; 6]>>,
    /// When a rate-limited reporter was last told so (ms).
    limited_told: FxHashMap<ReporterHash, i64>,
    /// The numbers for `!nw stats`, kept after incidents leave memory.
    ledger: Ledger,
    /// What each committed input added to the numbers, for the shell's counters (kept
    /// only when asked for, see [`Engine::with_tallies`]).
    tallies: Option<Vec<Tally>>,
}

impl<S: Store> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("incidents", &self.incidents.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<S: Store> Engine<S> {
    /// Loads state from `store`.
    pub fn open(net: Arc<Network>, store: S, key: ReporterKey) -> Result<Self, EngineError> {
        Self::open_with(net, store, key, SpatialIndex::RTree(IncidentIndex::new()))
    }

    /// Like [`Engine::open`], but matching reports by scanning every open incident: the
    /// naive baseline for benchmarks, and an oracle in tests.
    pub fn open_naive(net: Arc<Network>, store: S, key: ReporterKey) -> Result<Self, EngineError> {
        Self::open_with(
            net,
            store,
            key,
            SpatialIndex::Linear(LinearIndex::default()),
        )
    }

    /// Like [`Engine::open`], with a chosen index (for benchmarks comparing them).
    pub fn open_with(
        net: Arc<Network>,
        store: S,
        key: ReporterKey,
        index: SpatialIndex,
    ) -> Result<Self, EngineError> {
        let max_dedupe_radius_m = net
            .neighborhoods()
            .iter()
            .map(|n| n.settings.dedupe_radius_m)
            .fold(net.defaults.dedupe_radius_m, f64::max);
        let mut e = Self {
            file_net: Arc::clone(&net),
            overlay: Overlay::default(),
            net,
            store,
            key,
            cat: Catalogs::builtin(),
            // Centroids may drift half a merge radius before they are re-indexed.
            incidents: Incidents::new(index, max_dedupe_radius_m / 2.0),
            pending: Vec::new(),
            next_seq: 0,
            next_due: None,
            forgot_seen_at: None,
            outbox: false,
            received_ms: None,
            coordination_room: None,
            origin: Arc::from(""),
            hood_ids: Vec::new(),
            false_alarms: Vec::new(),
            recent: FxHashMap::default(),
            limited_told: FxHashMap::default(),
            ledger: Ledger::default(),
            tallies: None,
        };
        e.coordination_room = e.net.coordination_room.as_deref().map(Arc::from);
        e.origin = Arc::from(e.net.origin());
        e.hood_ids = e
            .net
            .neighborhoods()
            .iter()
            .map(|n| Arc::from(n.id.as_str()))
            .collect();
        e.reload()?;
        Ok(e)
    }

    fn reload(&mut self) -> Result<(), EngineError> {
        let snap = self.store.load()?;
        let mut incidents = snap.incidents;
        for inc in &mut incidents {
            self.intern(inc);
        }
        self.false_alarms = incidents
            .iter()
            .filter(|i| i.status == Status::FalseAlarm)
            .filter_map(|i| {
                Some(FalseAlarmMark {
                    id: i.id,
                    at: i.location,
                    last_seen: i.last_seen,
                    marked_at: i.closed_at?,
                })
            })
            .collect();
        self.recent.clear();
        for r in incidents.iter().flat_map(|i| &i.reports) {
            self.recent
                .entry(r.reporter)
                .or_default()
                .push(r.received_at.timestamp_millis());
        }
        self.ledger = Ledger::new(&incidents, snap.refusals);
        self.incidents.reset(incidents);
        self.pending = snap.pending;
        self.next_seq = snap.next_seq;
        self.overlay = Overlay::new(snap.settings);
        for link in snap.links {
            self.overlay.put_link(link);
        }
        self.apply_overlay();
        self.recompute_due();
        Ok(())
    }

    /// Recomputes the effective network from the file's and the overlay. The engine owns
    /// it alone: the next input reads the new values, with no lock for anyone to wait on.
    fn apply_overlay(&mut self) {
        self.net = if self.overlay.is_empty() {
            Arc::clone(&self.file_net)
        } else {
            Arc::new(self.file_net.with_overlay(&self.overlay))
        };
    }

    /// From now on, what each committed input adds to the statistics is kept for
    /// [`Engine::take_tallies`] (the Matrix shell's Prometheus counters). Off by default.
    pub fn with_tallies(mut self) -> Self {
        self.tallies = Some(Vec::new());
        self
    }

    /// What the inputs committed since the last call added to the statistics (empty
    /// unless [`Engine::with_tallies`]).
    pub fn take_tallies(&mut self) -> Vec<Tally> {
        self.tallies
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The numbers `!nw stats` shows for a neighborhood (`None`: the network) over the
    /// last `hours` before `now`.
    pub fn stats(
        &self,
        neighborhood: Option<&str>,
        hours: u32,
        now: DateTime<Utc>,
    ) -> stats::Summary {
        self.ledger
            .summary(neighborhood, hours, now.timestamp_millis())
    }

    /// Shares the engine's copies of an incident's origin and neighborhood strings.
    fn intern(&self, inc: &mut Incident) {
        if *inc.origin == *self.origin {
            inc.origin = Arc::clone(&self.origin);
        }
        if let Some(h) = self.hood_ids.iter().find(|h| ***h == *inc.neighborhood) {
            inc.neighborhood = Arc::clone(h);
        }
    }

    /// From now on, every worded effect is also queued in the store's outbox in the same
    /// atomic write as the state change it comes from (for the Matrix shell, which sends
    /// from the outbox). Off by default (offline replay).
    pub fn with_outbox(mut self) -> Self {
        self.outbox = true;
        self
    }

    /// The effective network: the file's, with the values set from rooms.
    pub fn network(&self) -> &Arc<Network> {
        &self.net
    }

    /// The values set from rooms.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// An incident by ID.
    pub fn incident(&self, id: &IncidentId) -> Option<&Incident> {
        self.incidents.get(id)
    }

    /// All incidents in memory.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    /// Reports waiting for a location.
    pub fn pending(&self) -> &[PendingReport] {
        &self.pending
    }

    /// Number of open incidents.
    pub fn open_count(&self) -> usize {
        self.incidents.open_count()
    }

    fn commit(&mut self, mut tx: Tx, now: DateTime<Utc>) -> Result<Vec<Decision>, EngineError> {
        tx.batch.at_ms = now.timestamp_millis();
        for (id, slot, from) in &tx.touched {
            if let Some(i) = self.incidents.in_slot(*slot).filter(|i| i.id == *id) {
                tx.batch.incidents.push(IncidentWrite {
                    reports_from: *from,
                    incident: i.clone_reports_from(*from),
                });
            }
        }
        if self.outbox && !tx.decisions.is_empty() {
            let cause = tx.cause.clone().unwrap_or_default();
            tx.batch.outbox = self
                .render(&tx.decisions)
                .into_iter()
                .enumerate()
                .map(|(i, effect)| OutboxEntry {
                    txn_id: txn_id(&cause, i),
                    at_ms: self.received_ms.unwrap_or(tx.batch.at_ms),
                    effect,
                })
                .collect();
        }
        // Refusals count in the statistics (stored in the same commit).
        let mut tallies = Vec::new();
        for room in tx.decisions.iter().filter_map(Decision::refused_in) {
            let nb = match self.net.neighborhood_of_room(room) {
                Some(n) => n.id.as_str(),
                None if self.coordination_room.as_deref() == Some(&**room) => stats::COORDINATION,
                None => continue,
            };
            let (count, tally) = self.ledger.refused(nb, tx.batch.at_ms);
            tx.batch.refusals_put.push(count);
            tallies.push(tally);
        }
        if tx.batch.is_empty() {
            return Ok(tx.decisions);
        }
        let deleted = tx.batch.incidents_delete.clone();
        if let Err(e) = self.store.commit(tx.batch) {
            // Roll memory back to what is stored: no half-applied input.
            self.reload()?;
            return Err(e.into());
        }
        for (id, _, _) in &tx.touched {
            tallies.extend(self.ledger.record(*id, self.incidents.get(id)));
        }
        for id in deleted {
            self.ledger.record(id, None);
        }
        if let Some(t) = &mut self.tallies {
            t.extend(tallies);
        }
        Ok(tx.decisions)
    }

    /// Words decisions, in each receiving room's language, from the current state.
    pub fn render(&self, decisions: &[Decision]) -> Vec<Effect> {
        render_decisions(&self.net, self.cat, |id| self.incidents.get(id), decisions)
    }

    /// Handles one message at time `now` and words the outcome. Handling the same event
    /// ID twice does nothing.
    pub fn handle(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        let d = self.decide(msg, now)?;
        Ok(self.render(&d))
    }

    /// Like [`Engine::handle`], for an event the shell received at `received`: the
    /// outbox entries it queues carry that time (for the alert-delay metric).
    pub fn handle_received(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
        received: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        self.received_ms = Some(received.timestamp_millis());
        let out = self.handle(msg, now);
        self.received_ms = None;
        out
    }

    /// Like [`Engine::handle`], returning the decisions without wording them.
    pub fn decide(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> Result<Vec<Decision>, EngineError> {
        if self
            .net
            .matrix
            .as_ref()
            .is_some_and(|m| m.user == msg.sender)
        {
            return Ok(Vec::new());
        }
        match &msg.content {
            Content::Text { notice: true, .. } => return Ok(Vec::new()),
            // Reactions are not conversation: only the three action keys mean anything.
            Content::Reaction { key, .. } if Action::of_reaction(key).is_none() => {
                return Ok(Vec::new());
            }
            _ => {}
        }
        if self.store.is_seen(&msg.event_id)? {
            debug!("event already handled");
            return Ok(Vec::new());
        }
        let net = Arc::clone(&self.net);
        let nb = net.neighborhood_of_room(&msg.room);
        let in_coordination = self.coordination_room.as_deref() == Some(msg.room.as_str());
        if nb.is_none() && !in_coordination {
            return self.outside_network(msg, now);
        }
        let event_id: Arc<str> = Arc::from(msg.event_id.as_str());
        let room: Arc<str> = Arc::from(msg.room.as_str());
        let mut tx = Tx {
            cause: Some(Arc::clone(&event_id)),
            ..Tx::default()
        };
        // Verifier actions and retractions: in any room of the network, and in the
        // coordination room.
        let handled = match &msg.content {
            Content::Reaction { key, relates_to } => {
                if let Some(action) = Action::of_reaction(key)
                    && let Some(id) = self.store.event_incident(relates_to)?
                {
                    self.act(&mut tx, &room, None, msg, id, action, None, now);
                }
                true
            }
            Content::Text {
                body,
                replaces: None,
                ..
            } => {
                if let Some(cmd) = parse_room_command(body) {
                    self.room_command(&mut tx, &room, &event_id, msg, cmd, now);
                    true
                } else if let Some(cmd) = parse_verifier_command(body) {
                    self.command(&mut tx, &room, &event_id, msg, cmd, now);
                    true
                } else {
                    false
                }
            }
            Content::Redaction { redacts } => {
                self.retract(&mut tx, redacts, now);
                true
            }
            _ => false,
        };
        if handled {
            tx.batch.seen.push(event_id);
            return self.commit(tx, now);
        }
        // The coordination room's other messages are not reports.
        let Some(nb) = nb else {
            return Ok(Vec::new());
        };
        if let Content::Undecryptable { event_id: original } = &msg.content {
            tx.decisions.push(Decision::Undecryptable {
                room: Arc::clone(&room),
                in_reply_to: Arc::from(original.as_str()),
            });
            tx.batch.seen.push(event_id);
            return self.commit(tx, now);
        }
        let reporter = self.key.hash(&msg.sender);
        match &msg.content {
            Content::Text { body, replaces, .. } => {
                let ctx = ParseContext {
                    gazetteer: &nb.gazetteer,
                    tz: nb.settings.timezone,
                    sent_at: msg.ts,
                };
                // An edit of a report that is waiting for its location: read it again.
                let edited = replaces.as_ref().and_then(|orig| {
                    self.pending
                        .iter()
                        .position(|p| *p.event_id == **orig && p.reporter == reporter)
                });
                if replaces.is_some() && edited.is_none() {
                    return Ok(Vec::new());
                }
                let reply_to = match edited {
                    Some(i) => self.pending[i].event_id.clone(),
                    None => Arc::clone(&event_id),
                };
                match parse_report(body, &ctx) {
                    Ok(None) => return Ok(Vec::new()),
                    Err(error) => tx.decisions.push(Decision::Rejected {
                        room: Arc::clone(&room),
                        in_reply_to: reply_to,
                        error,
                    }),
                    Ok(Some(parsed)) => {
                        if let Some(i) = edited {
                            let p = self.pending.remove(i);
                            tx.batch.pending_delete.push(p.event_id);
                        }
                        self.take_report(&mut tx, nb, reply_to, &room, msg, reporter, parsed, now);
                    }
                }
            }
            Content::Location { geo_uri, body } => {
                let Some((at, u)) = parse_geo_uri(geo_uri) else {
                    return Ok(Vec::new());
                };
                let label = nb
                    .gazetteer
                    .nearest_place(at)
                    .filter(|(_, d)| *d <= 150.0)
                    .map_or_else(
                        || format!("{:.5}, {:.5}", at.lat, at.lon),
                        |(p, _)| p.name.clone(),
                    );
                let place = Resolved {
                    at,
                    label,
                    method: ResolveMethod::GeoUri,
                    uncertainty_m: u.unwrap_or(25.0),
                };
                let waiting = self
                    .pending
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        p.reporter == reporter
                            && p.room == room
                            && (msg.ts - p.received_at).num_minutes().abs() <= LOCATION_ATTACH_MIN
                    })
                    .max_by_key(|(_, p)| p.received_at)
                    .map(|(i, _)| i);
                let (event_id, report) = match waiting {
                    Some(i) => {
                        let mut p = self.pending.remove(i);
                        tx.batch.pending_delete.push(p.event_id.clone());
                        p.report.location = LocationOutcome::Resolved(place);
                        (p.event_id, p.report)
                    }
                    None => (
                        Arc::clone(&event_id),
                        ParsedReport {
                            form: ReportForm::LocationShare,
                            text: body.clone(),
                            location: LocationOutcome::Resolved(place),
                            observed_at: msg.ts,
                            details: extract(body),
                        },
                    ),
                };
                self.take_report(&mut tx, nb, event_id, &room, msg, reporter, report, now);
            }
            Content::Reaction { .. }
            | Content::Undecryptable { .. }
            | Content::Redaction { .. } => {}
        }
        tx.batch.seen.push(event_id);
        self.commit(tx, now)
    }

    fn outside_network(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> Result<Vec<Decision>, EngineError> {
        let is_coordination = self.net.coordination_room.as_deref() == Some(msg.room.as_str());
        let Content::Text { body, .. } = &msg.content else {
            return Ok(Vec::new());
        };
        if is_coordination
            || !(is_report_command(body)
                || parse_verifier_command(body).is_some()
                || parse_room_command(body).is_some())
        {
            return Ok(Vec::new());
        }
        let event_id: Arc<str> = Arc::from(msg.event_id.as_str());
        let mut tx = Tx {
            cause: Some(Arc::clone(&event_id)),
            ..Tx::default()
        };
        tx.decisions.push(Decision::NotInNetwork {
            room: msg.room.as_str().into(),
            in_reply_to: Arc::clone(&event_id),
        });
        tx.batch.seen.push(event_id);
        self.commit(tx, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn take_report(
        &mut self,
        tx: &mut Tx,
        nb: &Neighborhood,
        event_id: Arc<str>,
        room: &Arc<str>,
        msg: &IncomingMessage,
        reporter: ReporterHash,
        report: ParsedReport,
        now: DateTime<Utc>,
    ) {
        match report.location {
            LocationOutcome::Resolved(place) => {
                let standing = self.standing(nb, msg, reporter, now);
                let r = LocatedReport {
                    standing,
                    event_id,
                    room: Arc::clone(room),
                    reporter,
                    place,
                    observed_at: report.observed_at,
                    text: report.text.into(),
                    details: report.details,
                    form: report.form,
                };
                self.ingest_in(tx, nb, r, now);
            }
            LocationOutcome::Unresolved {
                ref query,
                ref suggestions,
            } => {
                tx.decisions.push(Decision::Unresolved {
                    room: Arc::clone(room),
                    in_reply_to: Arc::clone(&event_id),
                    query: query.clone(),
                    suggestions: suggestions.clone(),
                });
                let p = PendingReport {
                    event_id: Arc::clone(&event_id),
                    room: Arc::clone(room),
                    reporter,
                    received_at: now,
                    report,
                };
                self.pending.retain(|q| q.event_id != event_id);
                self.pending.push(p.clone());
                tx.batch.pending_put.push(p);
                self.note_due(now + Duration::minutes(i64::from(nb.settings.dedupe_window_min)));
            }
        }
    }

    /// Merges a located report into an incident and returns the decisions (unworded).
    /// For callers that parse elsewhere and for the benchmark; [`Engine::handle`] is the
    /// usual way in.
    pub fn ingest(
        &mut self,
        report: LocatedReport,
        now: DateTime<Utc>,
    ) -> Result<Vec<Decision>, EngineError> {
        let net = Arc::clone(&self.net);
        let Some(nb) = net.neighborhood_of_room(&report.room) else {
            return Ok(Vec::new());
        };
        let mut tx = Tx {
            cause: Some(report.event_id.clone()),
            ..Tx::default()
        };
        tx.batch.seen.push(report.event_id.clone());
        self.ingest_in(&mut tx, nb, report, now);
        self.commit(tx, now)
    }

    /// The open incident a report at `at`, seen at `observed_at`, belongs to, if any:
    /// the one with the nearest centroid within the radius, whose newest report is within
    /// the window, and none of whose reports is farther than twice the radius.
    fn find_incident(&self, s: &Tunables, at: LatLon, observed_at: DateTime<Utc>) -> Option<usize> {
        let window_ms = i64::from(s.dedupe_window_min) * 60_000;
        let observed_ms = observed_at.timestamp_millis();
        let r = s.dedupe_radius_m;
        let (r2, merge2) = (r * r, 4.0 * r * r);
        let m = at.metric();
        let mut best: Option<(f64, usize, IncidentId)> = None;
        self.incidents.for_each_candidate(&m, r, |key, hot, i| {
            // Squared distances throughout: same order, no square roots. The summary
            // rules most candidates out before the incident itself is read.
            let d = m.distance2_m2(hot.at);
            let fits = d <= r2
                && hot.open
                && hot.last_seen_ms.abs_diff(observed_ms) <= window_ms.unsigned_abs()
                && !i.drill
                && i.reports.iter().all(|x| m.distance2_m2(x.at) <= merge2);
            if fits && best.is_none_or(|(bd, _, bid)| d < bd || (d == bd && i.id < bid)) {
                best = Some((d, key, i.id));
            }
        });
        best.map(|(_, key, _)| key)
    }

    fn ingest_in(&mut self, tx: &mut Tx, nb: &Neighborhood, r: LocatedReport, now: DateTime<Utc>) {
        let s = &nb.settings;
        if now - r.observed_at > Duration::minutes(i64::from(s.dedupe_window_min)) {
            tx.decisions.push(Decision::TooOld {
                room: r.room,
                in_reply_to: r.event_id,
                place: r.place.label,
                window_min: s.dedupe_window_min,
            });
            return;
        }
        let found = if r.standing.drill {
            None
        } else {
            self.find_incident(s, r.place.at, r.observed_at)
        };
        let created = found.is_none();
        let key = match found {
            Some(key) => key,
            None => {
                let after_false_alarm = self.false_alarm_near(s, r.place.at, r.observed_at, now);
                let id = IncidentId::from_seq(self.next_seq);
                self.next_seq += 1;
                tx.batch.next_seq = Some(self.next_seq);
                let inc = Incident {
                    id,
                    status: Status::Unverified,
                    version: 0,
                    origin: Arc::clone(&self.origin),
                    hops: 0,
                    neighborhood: self
                        .hood_ids
                        .iter()
                        .find(|h| ***h == *nb.id)
                        .map_or_else(|| Arc::from(nb.id.as_str()), Arc::clone),
                    location: r.place.at,
                    label: r.place.label.as_str().into(),
                    first_seen: r.observed_at,
                    last_seen: r.observed_at,
                    confirmed_at: None,
                    confirmed_by: None,
                    closed_at: None,
                    after_false_alarm,
                    updated_at: now,
                    reports: Vec::new(),
                    reporters: Vec::new(),
                    details: Details::default(),
                    near: None,
                    relayed_to: Vec::new(),
                    linked_rooms: Vec::new(),
                    drill: r.standing.drill,
                };
                self.incidents.insert(inc)
            }
        };
        let net = Arc::clone(&self.net);
        let Some(mut inc) = self.incidents.at_mut(key) else {
            return;
        };
        let id = inc.id;
        tx.touch(id, key, inc.reports.len());
        // Interned: a pointer comparison finds the incident's neighborhood.
        let needed = match self
            .hood_ids
            .iter()
            .position(|h| Arc::ptr_eq(h, &inc.neighborhood))
        {
            Some(i) => net.neighborhoods()[i].settings.confirmations,
            None => net.settings(&inc.neighborhood).confirmations,
        };
        let was_confirmed = inc.status == Status::Confirmed;
        let standing = r.standing;
        let new_reporter = standing.counts && !inc.reporters.contains(&r.reporter);
        if new_reporter {
            inc.reporters.push(r.reporter);
        }
        inc.first_seen = inc.first_seen.min(r.observed_at);
        inc.last_seen = inc.last_seen.max(r.observed_at);
        inc.merge_details(&r.details);
        inc.reports.push(ReportRecord {
            event_id: r.event_id.clone(),
            room: r.room.clone(),
            reporter: r.reporter,
            at: r.place.at,
            observed_at: r.observed_at,
            received_at: now,
            text: Some(r.text),
            form: r.form,
            counts: standing.counts,
        });
        inc.location = LatLon::centroid(inc.reports.iter().map(|x| x.at)).unwrap_or(inc.location);
        inc.near = near_of(nb, inc.location);
        inc.version += 1;
        inc.updated_at = now;
        if inc.status == Status::Unverified {
            let by_reporters = inc.reporters.len() >= needed as usize;
            if by_reporters || standing.by_verifier {
                inc.status = Status::Confirmed;
                inc.confirmed_at = Some(now);
                inc.confirmed_by = Some(if by_reporters {
                    ConfirmedBy::Reporters
                } else {
                    ConfirmedBy::Verifier
                });
            }
        }
        let newly_confirmed = !was_confirmed && inc.status == Status::Confirmed;
        // Rooms already alerted: edit + one thread reply each. New rooms in range: alert.
        if was_confirmed {
            update_alerts(&inc, &UpdateKind::Reports, &mut tx.decisions);
        }
        let relayed = if inc.status == Status::Confirmed {
            relay_to_new_rooms(&net, &mut inc, &mut tx.decisions)
        } else {
            0
        };
        let kind = if newly_confirmed {
            AckKind::Confirmed
        } else if was_confirmed {
            AckKind::Update
        } else if created {
            AckKind::New
        } else if new_reporter {
            AckKind::Merged
        } else {
            AckKind::SameReporter
        };
        if !standing.quiet {
            tx.decisions.push(Decision::Ack {
                room: r.room,
                in_reply_to: r.event_id,
                incident: id,
                kind,
                rooms: inc.relayed_to.len(),
                needed,
                note: standing.note,
            });
        }
        if let Some(coord) = &self.coordination_room {
            tx.decisions.push(Decision::Coordination {
                room: Arc::clone(coord),
                incident: id,
                kind: CoordinationKind::Incident,
                needed,
            });
            if relayed > 0 {
                tx.decisions.push(Decision::Coordination {
                    room: Arc::clone(coord),
                    incident: id,
                    kind: CoordinationKind::Relayed {
                        rooms: inc.relayed_to.len(),
                    },
                    needed,
                });
            }
        }
        let due = (inc.last_seen + Duration::hours(i64::from(s.expiry_hours)))
            .min(now + Duration::hours(i64::from(s.retention_hours)));
        drop(inc);
        self.note_due(due);
    }

    /// How a located report from `msg`'s sender counts (PRODUCT.md §3, fake reports):
    /// verifiers' and moderators' reports confirm at once; a reporter over
    /// `max_reports_per_10min` or younger in the room than `min_member_hours` is
    /// recorded but not counted.
    fn standing(
        &mut self,
        nb: &Neighborhood,
        msg: &IncomingMessage,
        reporter: ReporterHash,
        now: DateTime<Utc>,
    ) -> Standing {
        let s = &nb.settings;
        let now_ms = now.timestamp_millis();
        let by_verifier =
            lifecycle::role(&msg.sender, msg.member.power, [s.verifiers.as_slice()]).may_act();
        let recent = self.recent.entry(reporter).or_default();
        recent.retain(|t| now_ms - *t < RATE_WINDOW_MS);
        let over = recent.len() >= s.max_reports_per_10min as usize;
        recent.push(now_ms);
        if by_verifier {
            return Standing {
                by_verifier,
                ..Standing::default()
            };
        }
        if over {
            let told = self
                .limited_told
                .get(&reporter)
                .is_some_and(|t| now_ms - t < RATE_WINDOW_MS);
            if !told {
                self.limited_told.insert(reporter, now_ms);
            }
            return Standing {
                counts: false,
                by_verifier: false,
                note: (!told).then_some(AckNote::RateLimited {
                    max: s.max_reports_per_10min,
                }),
                quiet: told,
                drill: false,
            };
        }
        let young = s.min_member_hours > 0
            && msg
                .member
                .since
                .is_some_and(|t| now - t < Duration::hours(i64::from(s.min_member_hours)));
        Standing {
            counts: !young,
            note: young.then_some(AckNote::NewMember {
                hours: s.min_member_hours,
            }),
            ..Standing::default()
        }
    }

    /// When a false alarm was marked at about this place and time, if one was.
    fn false_alarm_near(
        &mut self,
        s: &Tunables,
        at: LatLon,
        observed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.false_alarms
            .retain(|m| now - m.marked_at < Duration::hours(24));
        let window = Duration::minutes(i64::from(s.dedupe_window_min));
        self.false_alarms
            .iter()
            .filter(|m| {
                m.at.distance_m(at) <= s.dedupe_radius_m
                    && observed_at >= m.last_seen - window
                    && observed_at <= m.marked_at + window
            })
            .map(|m| m.marked_at)
            .max()
    }

    /// The role of `msg`'s sender for `inc`: a verifier of its neighborhood or of any
    /// neighborhood whose room received its alert, or a moderator of the room they act
    /// in.
    fn role_for(&self, inc: &Incident, msg: &IncomingMessage) -> Role {
        let net = &self.net;
        let lists = std::iter::once(net.settings(&inc.neighborhood).verifiers.as_slice()).chain(
            inc.relayed_to
                .iter()
                .filter_map(|r| net.neighborhood_of_room(r))
                .map(|n| n.settings.verifiers.as_slice()),
        );
        lifecycle::role(&msg.sender, msg.member.power, lists)
    }

    /// A verifier command typed in `room`.
    /// `!nw …`: answered to anyone, about the room's incidents (the network's, in the
    /// coordination room). Changes nothing.
    fn room_command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        msg: &IncomingMessage,
        cmd: RoomCommand,
        now: DateTime<Utc>,
    ) {
        let power = msg.member.power;
        let in_reply_to = Arc::clone(event_id);
        let decision = match cmd {
            RoomCommand::Help => Decision::Help {
                room: Arc::clone(room),
                in_reply_to,
            },
            RoomCommand::Status => {
                let open = self.open_in(room);
                Decision::Status {
                    room: Arc::clone(room),
                    in_reply_to,
                    open: open.len(),
                    confirmed: open
                        .iter()
                        .filter(|i| i.status == Status::Confirmed)
                        .count(),
                }
            }
            RoomCommand::Incidents => {
                let mut open = self.open_in(room);
                open.sort_by_key(|i| (i.first_seen, i.id));
                Decision::Incidents {
                    room: Arc::clone(room),
                    in_reply_to,
                    more: open.len().saturating_sub(MAX_LISTED),
                    open: open
                        .iter()
                        .take(MAX_LISTED)
                        .map(|i| (i.id, (now - i.first_seen).num_minutes().max(0)))
                        .collect(),
                }
            }
            // Room admins only: the same power rule as a moderator's verifier actions.
            RoomCommand::Settings {
                key: Some(key),
                change: Some(change),
            } if lifecycle::is_room_admin(power) => {
                self.change_setting(tx, room, event_id, &msg.sender, key, change, now);
                return;
            }
            RoomCommand::Settings { key, .. } if lifecycle::is_room_admin(power) => {
                Decision::Settings {
                    room: Arc::clone(room),
                    in_reply_to,
                    key,
                }
            }
            RoomCommand::Relay(cmd) if lifecycle::is_room_admin(power) => {
                self.relay_command(tx, room, event_id, &msg.sender, cmd, now);
                return;
            }
            RoomCommand::Verifiers(cmd) if lifecycle::is_room_admin(power) => {
                self.verifiers_command(tx, room, event_id, &msg.sender, cmd, now);
                return;
            }
            RoomCommand::Area(cmd) if lifecycle::is_room_admin(power) => {
                self.area_command(tx, room, event_id, &msg.sender, cmd, now);
                return;
            }
            RoomCommand::Drill if lifecycle::is_room_admin(power) => {
                self.drill(tx, room, event_id, msg, now);
                return;
            }
            RoomCommand::Places(cmd) if lifecycle::is_room_admin(power) => {
                self.places_command(tx, room, event_id, &msg.sender, cmd, now);
                return;
            }
            RoomCommand::Stats(hours) if lifecycle::is_room_admin(power) => {
                self.stats_command(room, event_id, hours, now)
            }
            RoomCommand::Settings { .. }
            | RoomCommand::Relay(_)
            | RoomCommand::Verifiers(_)
            | RoomCommand::Area(_)
            | RoomCommand::Places(_)
            | RoomCommand::Stats(_)
            | RoomCommand::Drill => Decision::AdminOnly {
                room: Arc::clone(room),
                in_reply_to,
            },
            RoomCommand::Unknown(given) => Decision::UnknownCommand {
                room: Arc::clone(room),
                in_reply_to,
                given,
            },
        };
        tx.decisions.push(decision);
    }

    /// `!nw settings KEY VALUE | reset` by an admin of `room`: validated like the network
    /// file, stored in this input's commit, applied to the neighborhood at once, audited.
    #[allow(clippy::too_many_arguments)]
    fn change_setting(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        by: &str,
        key: String,
        change: SettingChange,
        now: DateTime<Utc>,
    ) {
        let outcome = |tx: &mut Tx, key: String, outcome: SettingOutcome| {
            tx.decisions.push(Decision::Setting {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
                key,
                outcome,
            });
        };
        let unknown = |tx: &mut Tx, key: String| {
            tx.decisions.push(Decision::Settings {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
                key: Some(key),
            });
        };
        let Some(nb) = self.net.neighborhood_of_room(room) else {
            return outcome(tx, key, SettingOutcome::DefaultsInFile);
        };
        let nb_id = nb.id.clone();
        let old = nb.settings.value_of(&key).unwrap_or_default();
        let new = match change {
            SettingChange::Set(value) => match nb.settings.with_setting(&key, &value) {
                Err(SettingError::Unknown(_)) => return unknown(tx, key),
                Err(SettingError::OwnCommand(_)) => {
                    return outcome(tx, key, SettingOutcome::OwnCommand);
                }
                Err(SettingError::Bad(p)) => return outcome(tx, key, SettingOutcome::Bad(p)),
                Ok(t) => t.value_of(&key).unwrap_or_default(),
            },
            SettingChange::Reset => {
                if kind_of(&key).is_none() {
                    return if key == "verifiers" {
                        outcome(tx, key, SettingOutcome::OwnCommand)
                    } else {
                        unknown(tx, key)
                    };
                }
                let c = RoomChange {
                    room,
                    event_id,
                    by,
                    neighborhood: nb_id,
                    key,
                };
                return self.reset_in_room(tx, c, old, |n, c| {
                    n.settings(&c.neighborhood)
                        .value_of(&c.key)
                        .unwrap_or_default()
                });
            }
        };
        let c = RoomChange {
            room,
            event_id,
            by,
            neighborhood: nb_id,
            key,
        };
        self.set_in_room(tx, c, old, new, now);
    }

    /// Sets `c.key` of a neighborhood to `new` (shown as such) from a room: stored in this
    /// input's commit, applied at once, answered (old → new) and audited. The same value
    /// again changes nothing.
    fn set_in_room(
        &mut self,
        tx: &mut Tx,
        c: RoomChange<'_>,
        old: String,
        new: String,
        now: DateTime<Utc>,
    ) {
        if new == old {
            return c.answer(tx, SettingOutcome::Unchanged { value: new });
        }
        let set = RoomSetting {
            neighborhood: c.neighborhood.clone(),
            key: c.key.clone(),
            value: new.clone(),
            by: c.by.to_owned(),
            room: c.room.to_string(),
            at_ms: now.timestamp_millis(),
        };
        self.overlay.set(set.clone());
        tx.batch.settings_put.push(set);
        self.apply_overlay();
        c.answer(
            tx,
            SettingOutcome::Changed {
                old: old.clone(),
                new: new.clone(),
            },
        );
        self.audit(tx, c.by, c.room, &c.neighborhood, &c.key, &old, &new, false);
    }

    /// Takes a room-set value of a neighborhood away: the file's (`file_value` of the
    /// network after) applies again; answered and audited. Nothing set: nothing changes.
    fn reset_in_room(
        &mut self,
        tx: &mut Tx,
        c: RoomChange<'_>,
        old: String,
        file_value: impl Fn(&Network, &RoomChange<'_>) -> String,
    ) {
        if self.overlay.remove(&c.neighborhood, &c.key).is_none() {
            return c.answer(tx, SettingOutcome::Unchanged { value: old });
        }
        tx.batch
            .settings_delete
            .push((c.neighborhood.clone(), c.key.clone()));
        self.apply_overlay();
        let new = file_value(&self.net, &c);
        c.answer(
            tx,
            SettingOutcome::Reset {
                old: old.clone(),
                new: new.clone(),
            },
        );
        self.audit(tx, c.by, c.room, &c.neighborhood, &c.key, &old, &new, true);
    }

    /// `!nw relay …` by an admin of `room`: requests, answers and ends relay links, stored
    /// in this input's commit and in force for the next relay decision.
    fn relay_command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        by: &str,
        cmd: RelayCommand,
        now: DateTime<Utc>,
    ) {
        let reply = |tx: &mut Tx, outcome: LinkOutcome| {
            tx.decisions.push(Decision::LinkReply {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
                outcome,
            });
        };
        let Some(here) = self.net.neighborhood_of_room(room).map(|n| n.id.clone()) else {
            return reply(tx, LinkOutcome::InCoordination);
        };
        let (action, given) = match cmd {
            RelayCommand::Usage => return reply(tx, LinkOutcome::Usage),
            RelayCommand::List => {
                let live = self
                    .overlay
                    .links()
                    .filter(|l| l.state.is_live() && l.joins(&here))
                    .cloned()
                    .collect();
                return reply(tx, LinkOutcome::List(live));
            }
            RelayCommand::Request(target) => {
                let target = target.trim();
                let Some(to) = self.net.neighborhood_of_room(target) else {
                    return reply(tx, LinkOutcome::UnknownRoom(target.to_owned()));
                };
                let all: Vec<&Link> = self.overlay.links().collect();
                if let Err(r) = links::check_request(&all, &here, &to.id) {
                    return reply(tx, LinkOutcome::Refused(r));
                }
                let link = Link {
                    // Links are never deleted: their count never repeats, nor its code.
                    id: links::link_id(
                        IncidentId::from_seq(self.overlay.links().count() as u64).as_str(),
                    ),
                    from: here,
                    from_room: room.to_string(),
                    to: to.id.clone(),
                    to_room: target.to_owned(),
                    state: LinkState::Requested,
                    requested_by: by.to_owned(),
                    requested_at_ms: now.timestamp_millis(),
                    changed_by: None,
                    changed_at_ms: None,
                };
                let told = Arc::from(link.to_room.as_str());
                return self.put_link(tx, room, event_id, by, told, link, None);
            }
            RelayCommand::Accept(id) => (LinkAction::Accept, id),
            RelayCommand::Decline(id) => (LinkAction::Decline, id),
            RelayCommand::Remove(id) => (LinkAction::Remove, id),
        };
        let Some(link) = links::parse_link_id(&given).and_then(|id| self.overlay.link(&id)) else {
            return reply(tx, LinkOutcome::UnknownLink(given));
        };
        match links::transition(link, action, &here) {
            Err(r) => reply(tx, LinkOutcome::Refused(r)),
            Ok(state) => {
                let mut link = link.clone();
                let old = link.state;
                link.state = state;
                link.changed_by = Some(by.to_owned());
                link.changed_at_ms = Some(now.timestamp_millis());
                // The other side hears of it in the room the link was asked from or to.
                let told = if link.from == here {
                    &link.to_room
                } else {
                    &link.from_room
                };
                let told = Arc::from(told.as_str());
                self.put_link(tx, room, event_id, by, told, link, Some(old));
            }
        }
    }

    /// `!nw verifiers …` by an admin of `room`: the neighborhood's verifiers, changed in
    /// the overlay (a user the file lists and a room removed is one record, `removed`;
    /// one a room added is `added`; back to the file's list, no record).
    fn verifiers_command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        by: &str,
        cmd: VerifiersCommand,
        now: DateTime<Utc>,
    ) {
        let reply = |tx: &mut Tx, outcome: VerifiersOutcome| {
            tx.decisions.push(Decision::VerifiersReply {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
                outcome,
            });
        };
        let net = Arc::clone(&self.net);
        let Some(nb) = net.neighborhood_of_room(room) else {
            return reply(tx, VerifiersOutcome::InCoordination);
        };
        let (users, add) = match cmd {
            VerifiersCommand::Usage => return reply(tx, VerifiersOutcome::Usage),
            VerifiersCommand::List => {
                let list = nb
                    .settings
                    .verifiers
                    .iter()
                    .map(|u| {
                        (
                            u.clone(),
                            nb.set_in_room(&format!("{VERIFIER_KEY}{u}")).cloned(),
                        )
                    })
                    .collect();
                return reply(tx, VerifiersOutcome::List(list));
            }
            VerifiersCommand::Add(users) => (users, true),
            VerifiersCommand::Remove(users) => (users, false),
        };
        let in_file = self.file_net.settings(&nb.id).verifiers.clone();
        let (mut added, mut removed, mut unchanged, mut invalid) = (vec![], vec![], vec![], vec![]);
        let mut seen = Vec::new();
        for u in users {
            if seen.contains(&u) {
                continue;
            }
            seen.push(u.clone());
            if !is_user_id(&u) {
                invalid.push(u);
                continue;
            }
            if nb.settings.is_verifier(&u) == add {
                unchanged.push(u);
                continue;
            }
            let key = format!("{VERIFIER_KEY}{u}");
            // Back to what the file says: the record goes; otherwise one says the change.
            if in_file.contains(&u) == add {
                self.overlay.remove(&nb.id, &key);
                tx.batch.settings_delete.push((nb.id.clone(), key));
            } else {
                let set = RoomSetting {
                    neighborhood: nb.id.clone(),
                    key,
                    value: if add {
                        VERIFIER_ADDED
                    } else {
                        VERIFIER_REMOVED
                    }
                    .to_owned(),
                    by: by.to_owned(),
                    room: room.to_string(),
                    at_ms: now.timestamp_millis(),
                };
                self.overlay.set(set.clone());
                tx.batch.settings_put.push(set);
            }
            if let Some(coordination) = &self.coordination_room {
                tx.decisions.push(Decision::Audit {
                    room: Arc::clone(coordination),
                    by: Arc::from(by),
                    in_room: Arc::clone(room),
                    change: AuditChange::Verifier {
                        neighborhood: Arc::from(nb.id.as_str()),
                        user: u.clone(),
                        added: add,
                    },
                });
            }
            if add {
                added.push(u);
            } else {
                removed.push(u);
            }
        }
        if !(added.is_empty() && removed.is_empty()) {
            self.apply_overlay();
        }
        // The answer first, then the audit lines.
        let at = tx
            .decisions
            .iter()
            .position(|d| matches!(d, Decision::Audit { .. }))
            .unwrap_or(tx.decisions.len());
        tx.decisions.insert(
            at,
            Decision::VerifiersReply {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
                outcome: VerifiersOutcome::Changed {
                    added,
                    removed,
                    unchanged,
                    invalid,
                },
            },
        );
    }

    /// `!nw stats [hours]` by an admin of `room`: its neighborhood's numbers; in the
    /// coordination room, the network's and each active neighborhood's.
    fn stats_command(
        &self,
        room: &Arc<str>,
        event_id: &Arc<str>,
        hours: Option<String>,
        now: DateTime<Utc>,
    ) -> Decision {
        let hours = match hours {
            None => DEFAULT_STATS_HOURS,
            Some(given) => match given
                .trim_end_matches(['h', 'H'])
                .parse::<u32>()
                .ok()
                .filter(|h| (1..=MAX_STATS_HOURS).contains(h))
            {
                Some(h) => h,
                None => {
                    return Decision::StatsUsage {
                        room: Arc::clone(room),
                        in_reply_to: Arc::clone(event_id),
                        given,
                    };
                }
            },
        };
        let summaries = match self.net.neighborhood_of_room(room) {
            Some(n) => vec![(
                Some(Arc::from(n.id.as_str())),
                self.stats(Some(&n.id), hours, now),
            )],
            None => std::iter::once((None, self.stats(None, hours, now)))
                .chain(self.hood_ids.iter().filter_map(|id| {
                    let s = self.stats(Some(id), hours, now);
                    (s != stats::Summary::default()).then(|| (Some(Arc::clone(id)), s))
                }))
                .collect(),
        };
        Decision::Stats {
            room: Arc::clone(room),
            in_reply_to: Arc::clone(event_id),
            hours,
            summaries,
        }
    }

    /// `!nw places …` by an admin of `room`: places of the neighborhood added from its
    /// rooms (stored and audited like a setting, key `place:NAME`), which reports can name
    /// from the next one on.
    fn places_command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        by: &str,
        cmd: PlacesCommand,
        now: DateTime<Utc>,
    ) {
        let reply = |tx: &mut Tx, outcome: PlacesOutcome| {
            tx.decisions.push(Decision::PlacesReply {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
                outcome,
            });
        };
        let net = Arc::clone(&self.net);
        let Some(nb) = net.neighborhood_of_room(room) else {
            return reply(tx, PlacesOutcome::InCoordination);
        };
        let file = self.file_net.neighborhood(&nb.id);
        let in_file = |name: &str| file.is_some_and(|f| f.gazetteer.place_named(name).is_some());
        let added_here = |key: &str| {
            nb.set_in_room(key)
                .and_then(|s| parse_place(&s.value).map(|p| (p, s.clone())))
        };
        let coordination = self.coordination_room.clone();
        let audit = |tx: &mut Tx, old: Option<&Place>, new: Option<&Place>| {
            if let Some(coordination) = &coordination {
                tx.decisions.push(Decision::Audit {
                    room: Arc::clone(coordination),
                    by: Arc::from(by),
                    in_room: Arc::clone(room),
                    change: AuditChange::Place {
                        neighborhood: Arc::from(nb.id.as_str()),
                        old: old.map(place_text),
                        new: new.map(place_text),
                    },
                });
            }
        };
        match cmd {
            PlacesCommand::Usage => reply(tx, PlacesOutcome::Usage),
            PlacesCommand::List => {
                let added = nb
                    .room_set()
                    .iter()
                    .filter(|s| s.key.starts_with(PLACE_KEY))
                    .filter_map(|s| parse_place(&s.value).map(|p| (p, s.clone())))
                    .collect();
                let (in_file, streets) = file.map_or((0, 0), |f| {
                    (f.gazetteer.places().len(), f.gazetteer.streets().len())
                });
                reply(
                    tx,
                    PlacesOutcome::List {
                        added,
                        in_file,
                        streets,
                    },
                );
            }
            PlacesCommand::Remove(name) => {
                let Some((place, _)) = place_key(&name).and_then(|k| added_here(&k)) else {
                    let in_file = in_file(&name);
                    return reply(tx, PlacesOutcome::NotAdded { name, in_file });
                };
                if let Some(key) = place_key(&place.name) {
                    self.overlay.remove(&nb.id, &key);
                    tx.batch.settings_delete.push((nb.id.clone(), key));
                }
                self.apply_overlay();
                reply(tx, PlacesOutcome::Removed(place.clone()));
                audit(tx, Some(&place), None);
            }
            PlacesCommand::Add {
                name,
                lat,
                lon,
                kind,
            } => {
                let name = name.trim().to_owned();
                let key = match place_key(&name) {
                    Some(k) if name.chars().count() <= MAX_PLACE_NAME_CHARS => k,
                    _ => {
                        let shown = name.chars().take(MAX_PLACE_NAME_CHARS).collect();
                        return reply(tx, PlacesOutcome::BadName(shown));
                    }
                };
                let kind = match kind {
                    Ok(k) if PLACE_KINDS.contains(&k) => k,
                    Ok(k) => return reply(tx, PlacesOutcome::BadKind(k.word().to_owned())),
                    Err(word) => return reply(tx, PlacesOutcome::BadKind(word)),
                };
                let Some(at) = LatLon::new(lat, lon) else {
                    let got = format!("{lat},{lon}");
                    return reply(tx, PlacesOutcome::BadPoint(Problem::Center { got }));
                };
                let outside = nb.area.distance_m(at);
                if outside > MAX_PLACE_OUTSIDE_M {
                    return reply(tx, PlacesOutcome::TooFar(outside));
                }
                if in_file(&name) {
                    return reply(tx, PlacesOutcome::InFile(name));
                }
                let was = added_here(&key).map(|(p, _)| p);
                let count = nb
                    .room_set()
                    .iter()
                    .filter(|s| s.key.starts_with(PLACE_KEY))
                    .count();
                if was.is_none() && count >= MAX_ROOM_PLACES {
                    return reply(tx, PlacesOutcome::TooMany(MAX_ROOM_PLACES));
                }
                let place = Place {
                    name,
                    aliases: Vec::new(),
                    kind,
                    at,
                };
                let value = place_text(&place);
                // What is stored is what is shown: read back from the text.
                let place = parse_place(&value).unwrap_or(place);
                if was.as_ref().is_some_and(|w| place_text(w) == value) {
                    return reply(tx, PlacesOutcome::Unchanged(place));
                }
                let set = RoomSetting {
                    neighborhood: nb.id.clone(),
                    key,
                    value,
                    by: by.to_owned(),
                    room: room.to_string(),
                    at_ms: now.timestamp_millis(),
                };
                self.overlay.set(set.clone());
                tx.batch.settings_put.push(set);
                self.apply_overlay();
                reply(
                    tx,
                    PlacesOutcome::Added {
                        place: place.clone(),
                        was: was.clone(),
                    },
                );
                audit(tx, was.as_ref(), Some(&place));
            }
        }
    }

    /// `!nw area …` by an admin of `room`: the neighborhood's area, set from the room as a
    /// circle (stored and audited like a setting, key [`AREA_KEY`]).
    fn area_command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        by: &str,
        cmd: AreaCommand,
        now: DateTime<Utc>,
    ) {
        let outcome = |tx: &mut Tx, outcome: SettingOutcome| {
            tx.decisions.push(Decision::Setting {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
                key: AREA_KEY.to_owned(),
                outcome,
            });
        };
        let Some(nb) = self.net.neighborhood_of_room(room) else {
            return outcome(tx, SettingOutcome::DefaultsInFile);
        };
        let nb_id = nb.id.clone();
        let old = area_text(&nb.area);
        let value = match cmd {
            AreaCommand::Show => {
                tx.decisions.push(Decision::AreaShow {
                    room: Arc::clone(room),
                    in_reply_to: Arc::clone(event_id),
                });
                return;
            }
            AreaCommand::Usage => return outcome(tx, SettingOutcome::AreaUsage),
            AreaCommand::Reset => {
                let c = RoomChange {
                    room,
                    event_id,
                    by,
                    neighborhood: nb_id,
                    key: AREA_KEY.to_owned(),
                };
                return self.reset_in_room(tx, c, old, |n, c| {
                    n.neighborhood(&c.neighborhood)
                        .map(|n| area_text(&n.area))
                        .unwrap_or_default()
                });
            }
            AreaCommand::Circle { lat, lon, radius } => format!("{lat},{lon} {radius}"),
        };
        let area = match parse_area(&value) {
            Ok(a) => a,
            Err(p) => return outcome(tx, SettingOutcome::Bad(p)),
        };
        let c = RoomChange {
            room,
            event_id,
            by,
            neighborhood: nb_id,
            key: AREA_KEY.to_owned(),
        };
        self.set_in_room(tx, c, old, area_text(&area), now);
    }

    /// `!nw drill` by an admin of `room`: a synthetic report at the middle of the
    /// neighborhood's area, by the admin (so confirmed at once), opening an incident marked
    /// as a drill, relayed wherever a real one would be; all clear after [`DRILL_MINUTES`].
    fn drill(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) {
        let net = Arc::clone(&self.net);
        let Some(nb) = net.neighborhood_of_room(room) else {
            tx.decisions.push(Decision::DrillInCoordination {
                room: Arc::clone(room),
                in_reply_to: Arc::clone(event_id),
            });
            return;
        };
        let at = nb.area.center();
        let label = nb
            .gazetteer
            .nearest_place(at)
            .filter(|(_, d)| *d <= 300.0)
            .map_or_else(|| nb.name.clone(), |(p, _)| p.name.clone());
        let report = LocatedReport {
            event_id: Arc::clone(event_id),
            room: Arc::clone(room),
            reporter: self.key.hash(&msg.sender),
            place: Resolved {
                at,
                label,
                method: ResolveMethod::Coordinates,
                uncertainty_m: 50.0,
            },
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
        if let Some(coordination) = &self.coordination_room {
            tx.decisions.push(Decision::Audit {
                room: Arc::clone(coordination),
                by: Arc::from(msg.sender.as_str()),
                in_room: Arc::clone(room),
                change: AuditChange::Drill {
                    neighborhood: Arc::from(nb.id.as_str()),
                },
            });
        }
    }

    /// Stores a new or changed link in this input's commit, applies it, and words it: the
    /// answer in `room`, the news in `told` (the other side), the audit line.
    #[allow(clippy::too_many_arguments)]
    fn put_link(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        by: &str,
        told: Arc<str>,
        link: Link,
        old: Option<LinkState>,
    ) {
        self.overlay.put_link(link.clone());
        tx.batch.links_put.push(link.clone());
        self.apply_overlay();
        tx.decisions.push(Decision::LinkReply {
            room: Arc::clone(room),
            in_reply_to: Arc::clone(event_id),
            outcome: LinkOutcome::Changed(link.clone()),
        });
        tx.decisions.push(Decision::LinkNotice {
            room: told,
            link: link.clone(),
        });
        if let Some(coordination) = &self.coordination_room {
            tx.decisions.push(Decision::Audit {
                room: Arc::clone(coordination),
                by: Arc::from(by),
                in_room: Arc::clone(room),
                change: AuditChange::Link { link, old },
            });
        }
    }

    /// The coordination room's line about a change made from `room`.
    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        tx: &mut Tx,
        by: &str,
        room: &Arc<str>,
        neighborhood: &str,
        key: &str,
        old: &str,
        new: &str,
        reset: bool,
    ) {
        let Some(coordination) = &self.coordination_room else {
            return;
        };
        tx.decisions.push(Decision::Audit {
            room: Arc::clone(coordination),
            by: Arc::from(by),
            in_room: Arc::clone(room),
            change: AuditChange::Setting {
                neighborhood: Arc::from(neighborhood),
                key: key.to_owned(),
                old: old.to_owned(),
                new: new.to_owned(),
                reset,
            },
        });
    }

    /// The open incidents of `room` (of the whole network, in the coordination room).
    fn open_in(&self, room: &str) -> Vec<&Incident> {
        let everywhere = self.coordination_room.as_deref() == Some(room);
        self.incidents
            .values()
            .filter(|i| i.status.is_open() && (everywhere || i.lives_in(room)))
            .collect()
    }

    fn command(
        &mut self,
        tx: &mut Tx,
        room: &Arc<str>,
        event_id: &Arc<str>,
        msg: &IncomingMessage,
        cmd: VerifierCommand,
        now: DateTime<Utc>,
    ) {
        let everywhere = self.coordination_room.as_deref() == Some(&**room);
        let here = |i: &Incident| everywhere || i.lives_in(room);
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
    fn act(
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
        let role = self.role_for(inc, msg);
        match lifecycle::transition(inc.status, action, role) {
            Transition::Refused => {
                debug!(?action, "action refused: not a verifier or moderator");
                if let Some(c) = command {
                    tx.decisions.push(Decision::ActionRefused {
                        room: Arc::clone(room),
                        in_reply_to: Arc::clone(c),
                        action,
                    });
                }
            }
            Transition::Unchanged => {
                if let Some(c) = command {
                    tx.decisions.push(Decision::ActionUnchanged {
                        room: Arc::clone(room),
                        in_reply_to: Arc::clone(c),
                        incident: id,
                    });
                }
            }
            Transition::To(status) => {
                let rooms = self.apply_status(tx, key, status, reason, now);
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

    /// Applies a verifier's status change to the incident in slot `key`: every relayed
    /// alert is edited (and gets one notifying thread reply), a newly confirmed incident
    /// is relayed, the coordination room is told. Returns the rooms alerted.
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
        tx.touch(id, key, inc.reports.len());
        let old = inc.status;
        inc.status = status;
        inc.version += 1;
        inc.updated_at = now;
        match status {
            Status::Confirmed => {
                inc.confirmed_by = Some(ConfirmedBy::Verifier);
                inc.confirmed_at.get_or_insert(now);
                inc.closed_at = None;
            }
            Status::FalseAlarm | Status::Resolved => inc.closed_at = Some(now),
            Status::Unverified | Status::Expired => {}
        }
        update_alerts(
            &inc,
            &UpdateKind::Status {
                reason: reason.clone(),
            },
            &mut tx.decisions,
        );
        let relayed = if status == Status::Confirmed {
            relay_to_new_rooms(&net, &mut inc, &mut tx.decisions)
        } else {
            0
        };
        let rooms = inc.relayed_to.len();
        let s = net.settings(&inc.neighborhood);
        if let Some(coord) = &self.coordination_room {
            tx.decisions.push(Decision::Coordination {
                room: Arc::clone(coord),
                incident: id,
                kind: CoordinationKind::Status { reason },
                needed: s.confirmations,
            });
            if relayed > 0 {
                tx.decisions.push(Decision::Coordination {
                    room: Arc::clone(coord),
                    incident: id,
                    kind: CoordinationKind::Relayed { rooms },
                    needed: s.confirmations,
                });
            }
        }
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
        }
        rooms
    }

    /// A deleted message: if it was a report, it leaves its incident and its text is
    /// purged now. An unconfirmed incident left without reports is closed quietly (it is
    /// deleted); a confirmed one keeps its status (a verifier decides) and its alerts are
    /// updated.
    fn retract(&mut self, tx: &mut Tx, redacts: &str, now: DateTime<Utc>) {
        if let Some(i) = self.pending.iter().position(|p| &*p.event_id == redacts) {
            let p = self.pending.remove(i);
            tx.batch.pending_delete.push(p.event_id);
            return;
        }
        let found = self.incidents.ids().find_map(|(id, key)| {
            let inc = self.incidents.in_slot(key)?;
            let n = inc.reports.iter().position(|r| &*r.event_id == redacts)?;
            Some((id, key, n))
        });
        let Some((id, key, n)) = found else {
            return;
        };
        let net = Arc::clone(&self.net);
        let Some(mut inc) = self.incidents.at_mut(key) else {
            return;
        };
        inc.reports.remove(n);
        if inc.reports.is_empty() && inc.status == Status::Unverified {
            drop(inc);
            self.incidents.remove(&id);
            tx.batch.incidents_delete.push(id);
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

    /// Remembers that the bot's message `effect` was sent as `event_id`, so reactions to
    /// it act on its incident (the Matrix shell does this through the outbox; offline
    /// replay calls it for every effect).
    pub fn mark_sent(&mut self, effect: &Effect, event_id: &str) -> Result<(), EngineError> {
        if let Some(sent) = crate::store::Sent::of(effect, event_id) {
            self.store.note_sent(sent)?;
        }
        Ok(())
    }

    fn note_due(&mut self, t: DateTime<Utc>) {
        self.next_due = Some(self.next_due.map_or(t, |d| d.min(t)));
    }

    fn recompute_due(&mut self) {
        let mut due: Option<DateTime<Utc>> = None;
        let mut note = |t: DateTime<Utc>| due = Some(due.map_or(t, |d: DateTime<Utc>| d.min(t)));
        for inc in self.incidents.values() {
            let s = self.net.settings(&inc.neighborhood);
            if inc.status.is_open() {
                note(inc.last_seen + Duration::hours(i64::from(s.expiry_hours)));
                if inc.drill {
                    note(inc.first_seen + Duration::minutes(DRILL_MINUTES));
                }
            }
            if let Some(r) = inc.reports.iter().find(|r| r.text.is_some()) {
                note(r.received_at + Duration::hours(i64::from(s.retention_hours)));
            }
        }
        for p in &self.pending {
            let s = self.net.settings_of_room(&p.room);
            note(p.received_at + Duration::minutes(i64::from(s.dedupe_window_min)));
        }
        self.next_due = due;
    }

    /// Time-driven changes at `now`, worded: expiry, text retention, stale pending
    /// reports. Cheap when nothing is due.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<Vec<Effect>, EngineError> {
        let d = self.tick_decisions(now)?;
        Ok(self.render(&d))
    }

    /// Like [`Engine::tick`], returning the decisions without wording them.
    pub fn tick_decisions(&mut self, now: DateTime<Utc>) -> Result<Vec<Decision>, EngineError> {
        let hourly = self
            .forgot_seen_at
            .is_none_or(|t| now - t >= Duration::hours(1));
        let decisions = self.timers(now, hourly)?;
        if hourly {
            // Hourly, after this tick's purges: what was purged or deleted is made
            // unrecoverable from the store's files too. The decisions are committed
            // already; a failure here is retried next hour.
            if let Err(e) = self.store.shred() {
                tracing::warn!(error = %e, "cannot shred deleted records; trying again in an hour");
            }
        }
        Ok(decisions)
    }

    /// Expiry, retention, stale pending reports; with `hourly`, also the hourly
    /// bookkeeping (old event IDs, rate limits, old statistics).
    fn timers(&mut self, now: DateTime<Utc>, hourly: bool) -> Result<Vec<Decision>, EngineError> {
        // Handled event IDs are remembered for a week, not forever.
        if hourly {
            let before = now - Duration::days(SEEN_KEEP_DAYS);
            let n = self
                .store
                .forget_seen(before.timestamp_millis(), now.timestamp_millis())?;
            if n > 0 {
                debug!(forgotten = n, "old handled event IDs forgotten");
            }
            self.forgot_seen_at = Some(now);
            // Rate-limit bookkeeping of reporters quiet for 10 minutes.
            let now_ms = now.timestamp_millis();
            self.recent
                .retain(|_, v| v.last().is_some_and(|t| now_ms - *t < RATE_WINDOW_MS));
            self.limited_told
                .retain(|_, t| now_ms - *t < RATE_WINDOW_MS);
            // Statistics older than `!nw stats` can ask for are forgotten, and their
            // refusal counts leave the store.
            let old = self.ledger.forget_old(now_ms);
            if !old.is_empty() {
                let forgotten = old.len();
                self.store.commit(Batch {
                    at_ms: now_ms,
                    refusals_delete: old,
                    ..Batch::default()
                })?;
                debug!(forgotten, "old refusal counts forgotten");
            }
        }
        if self.next_due.is_none_or(|d| now < d) {
            return Ok(Vec::new());
        }
        let net = Arc::clone(&self.net);
        let mut tx = Tx {
            cause: Some(format!("tick/{}", now.timestamp_millis()).into()),
            ..Tx::default()
        };
        let mut ids: Vec<(IncidentId, usize)> = self.incidents.ids().collect();
        ids.sort_unstable();
        for (id, key) in ids {
            let Some(mut inc) = self.incidents.at_mut(key) else {
                continue;
            };
            let s = net.settings(&inc.neighborhood);
            let drill_over = inc.drill
                && inc.status.is_open()
                && now - inc.first_seen >= Duration::minutes(DRILL_MINUTES);
            let expire = !drill_over
                && inc.status.is_open()
                && now - inc.last_seen >= Duration::hours(i64::from(s.expiry_hours));
            let cutoff = now - Duration::hours(i64::from(s.retention_hours));
            let purge = inc
                .reports
                .iter()
                .any(|r| r.text.is_some() && r.received_at <= cutoff);
            if !expire && !purge && !drill_over {
                continue;
            }
            let mut from = inc.reports.len();
            for (n, r) in inc.reports.iter_mut().enumerate() {
                if r.text.is_some() && r.received_at <= cutoff {
                    r.text = None;
                    from = from.min(n);
                }
            }
            if drill_over {
                inc.status = Status::Resolved;
                inc.closed_at = Some(now);
                inc.version += 1;
                inc.updated_at = now;
                update_alerts(
                    &inc,
                    &UpdateKind::Status { reason: None },
                    &mut tx.decisions,
                );
                if let Some(coord) = &self.coordination_room {
                    tx.decisions.push(Decision::Coordination {
                        room: Arc::clone(coord),
                        incident: id,
                        kind: CoordinationKind::Status { reason: None },
                        needed: s.confirmations,
                    });
                }
            }
            if expire {
                inc.status = Status::Expired;
                inc.version += 1;
                inc.updated_at = now;
                update_alerts(&inc, &UpdateKind::Expired, &mut tx.decisions);
                if let Some(coord) = &self.coordination_room {
                    tx.decisions.push(Decision::Coordination {
                        room: Arc::clone(coord),
                        incident: id,
                        kind: CoordinationKind::Expired,
                        needed: s.confirmations,
                    });
                }
            }
            tx.touch(id, key, from);
        }
        let mut dropped = Vec::new();
        self.pending.retain(|p| {
            let w = net.settings_of_room(&p.room).dedupe_window_min;
            let keep = now - p.received_at < Duration::minutes(i64::from(w));
            if !keep {
                dropped.push(p.event_id.clone());
            }
            keep
        });
        tx.batch.pending_delete = dropped;
        let decisions = self.commit(tx, now)?;
        // Closed incidents whose text is gone stay in the store only (those purged by this
        // very tick too, now that their write is committed: no later timer may be due to
        // come back for them).
        let closed: Vec<IncidentId> = self
            .incidents
            .values()
            .filter(|i| !i.status.is_open() && i.reports.iter().all(|r| r.text.is_none()))
            .map(|i| i.id)
            .collect();
        for id in closed {
            self.incidents.remove(&id);
        }
        self.recompute_due();
        Ok(decisions)
    }
}
