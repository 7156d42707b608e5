//! The incident engine: a sans-IO state machine, as a façade over its parts. Messages
//! go in with the current time; decisions come out as data and are worded once, at
//! commit, by the renderer the engine was opened with. It never sleeps, reads a clock, or
//! talks to the network; its state lives in memory and in a [`Store`] that it commits to
//! atomically once per input.
//!
//! - `mod.rs`: the engine, opening and reloading, the commit, and [`Engine::decide`]:
//!   a guard and a dispatch;
//! - `input`: what comes in ([`IncomingMessage`], [`Content`], [`Member`]);
//! - `reports`: text and location reports, merging, confirmation;
//! - `verify`: verifier actions, reactions, retractions;
//! - `admin`: `!nw` commands, decided by [`crate::admin`] and applied here;
//! - `alerts`: relays, alert updates and the one status transition;
//! - `timers`: expiry, retention, stale pending reports, hourly bookkeeping;
//! - `fade`: when the bot's messages about a closed incident are redacted;
//! - `reload`: the network file read again while the engine runs.

mod admin;
mod alerts;
mod budget;
mod fade;
mod here;
mod input;
mod reload;
mod reports;
mod timers;
mod verify;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use tracing::debug;

use super::index::{IncidentIndex, LinearIndex, SpatialIndex};
use super::table::Incidents;
use crate::budget::Budgets;
use crate::command::{parse_room_command, parse_verifier_command};
use crate::config::{Network, Overlay};
use crate::decision::{Decision, Render};
use crate::effect::Effect;
use crate::model::{
    Action, Incident, IncidentId, PendingReport, ReporterHash, ReporterKey, Status,
};
use crate::report::is_report_command;
use crate::stats::{self, Ledger, Tally};
use crate::store::{Batch, IncidentWrite, OutboxEntry, Store, StoreError};

pub use input::{Content, IncomingMessage, LocatedReport, Member, Standing};
use reports::FalseAlarmMark;

/// A location share attaches to the sender's newest unlocated report this recent.
pub const LOCATION_ATTACH_MIN: i64 = 10;
/// A drill gives the all clear this many minutes after it started.
pub const DRILL_MINUTES: i64 = 1;

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

impl Tx {
    /// A transaction for the input `cause`.
    fn new(cause: Arc<str>) -> Self {
        Self {
            cause: Some(cause),
            ..Self::default()
        }
    }

    /// Notes that incident `id` changed, from its report `from` on.
    fn touch(&mut self, id: IncidentId, slot: usize, from: usize) {
        match self.touched.iter_mut().find(|(t, _, _)| *t == id) {
            Some((_, _, f)) => *f = (*f).min(from),
            None => self.touched.push((id, slot, from)),
        }
    }
}

/// A transaction ID that is the same every time the same input produces its `i`-th effect.
fn txn_id(cause: &str, i: usize) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(cause.as_bytes());
    format!("nw{}.{i}", hex::encode(&h[..12]))
}

/// What a committed input gave: its decisions, and their wording when it was asked for
/// (or queued in the outbox).
struct Committed {
    decisions: Vec<Decision>,
    effects: Vec<Effect>,
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
    /// Words decisions, once, at commit.
    render: &'static dyn Render,
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
    /// Closed incidents kept in the store only (they left memory once their text was
    /// purged), with when each last changed: deleted from the store once that is
    /// older than the statistics window (see `timers`).
    resting: Vec<(IncidentId, DateTime<Utc>)>,
    /// What each committed input added to the numbers, for the shell's counters (kept
    /// only when asked for, see [`Engine::with_tallies`]).
    tallies: Option<Vec<Tally>>,
    /// Each member's reply budget per room (only while not full).
    budgets: Budgets,
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
    pub fn open(
        net: Arc<Network>,
        store: S,
        key: ReporterKey,
        render: &'static dyn Render,
    ) -> Result<Self, EngineError> {
        Self::open_with(
            net,
            store,
            key,
            SpatialIndex::RTree(IncidentIndex::new()),
            render,
        )
    }

    /// Like [`Engine::open`], but matching reports by scanning every open incident: the
    /// naive baseline for benchmarks, and an oracle in tests.
    pub fn open_naive(
        net: Arc<Network>,
        store: S,
        key: ReporterKey,
        render: &'static dyn Render,
    ) -> Result<Self, EngineError> {
        let index = SpatialIndex::Linear(LinearIndex::default());
        Self::open_with(net, store, key, index, render)
    }

    /// Like [`Engine::open`], with a chosen index (for benchmarks comparing them).
    pub fn open_with(
        net: Arc<Network>,
        store: S,
        key: ReporterKey,
        index: SpatialIndex,
        render: &'static dyn Render,
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
            render,
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
            resting: Vec::new(),
            tallies: None,
            budgets: Budgets::default(),
        };
        e.origin = Arc::from(e.net.origin());
        e.name_file_network();
        e.reload()?;
        Ok(e)
    }

    /// The names every decision shares, from the file network: the coordination room
    /// and each neighborhood's id.
    fn name_file_network(&mut self) {
        self.coordination_room = self.file_net.coordination_room.as_deref().map(Arc::from);
        self.hood_ids = self
            .file_net
            .neighborhoods()
            .iter()
            .map(|n| Arc::from(n.id.as_str()))
            .collect();
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
        // Only open incidents' reports still name their reporter (PRODUCT.md §6).
        for r in incidents.iter().flat_map(|i| &i.reports) {
            if let Some(h) = r.reporter {
                self.recent
                    .entry(h)
                    .or_default()
                    .push(r.received_at.timestamp_millis());
            }
        }
        self.ledger = Ledger::new(&incidents, snap.refusals);
        // Every stored incident is in memory again; the closed ones leave it (and are
        // noted here again) at the next tick.
        self.resting.clear();
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

    /// Commits `tx`: the touched incidents and the input's other changes in one atomic
    /// write, with the worded effects in the outbox when it is on. With `word`, the
    /// effects are also returned. Memory is rolled back to the store on failure.
    fn commit(
        &mut self,
        mut tx: Tx,
        now: DateTime<Utc>,
        word: bool,
    ) -> Result<Committed, EngineError> {
        tx.batch.at_ms = now.timestamp_millis();
        for (id, slot, from) in &tx.touched {
            if let Some(i) = self.incidents.in_slot(*slot).filter(|i| i.id == *id) {
                tx.batch.incidents.push(IncidentWrite {
                    reports_from: *from,
                    incident: i.clone_reports_from(*from),
                });
            }
        }
        // Worded once, from the state after the input: queued, returned, or both.
        let effects = if (self.outbox || word) && !tx.decisions.is_empty() {
            self.render(&tx.decisions)
        } else {
            Vec::new()
        };
        if self.outbox && !effects.is_empty() {
            let cause = tx.cause.clone().unwrap_or_default();
            let at_ms = self.received_ms.unwrap_or(tx.batch.at_ms);
            tx.batch.outbox = effects
                .iter()
                .enumerate()
                .map(|(i, effect)| OutboxEntry {
                    txn_id: txn_id(&cause, i),
                    at_ms,
                    effect: effect.clone(),
                })
                .collect();
        }
        let mut tallies = self.count_refusals(&mut tx);
        if tx.batch.is_empty() {
            return Ok(Committed {
                decisions: tx.decisions,
                effects,
            });
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
        Ok(Committed {
            decisions: tx.decisions,
            effects,
        })
    }

    /// Refusals count in the statistics, stored in the same commit.
    fn count_refusals(&mut self, tx: &mut Tx) -> Vec<Tally> {
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
        tallies
    }

    /// Words decisions, in each receiving room's language, from the current state, with
    /// the renderer the engine was opened with (the engine does so once per commit; this
    /// is for benchmarks and tools).
    pub fn render(&self, decisions: &[Decision]) -> Vec<Effect> {
        self.render
            .render(&self.net, &|id| self.incidents.get(id), decisions)
    }

    /// Handles one message at time `now` and words the outcome. Handling the same event
    /// ID twice does nothing.
    pub fn handle(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        Ok(self.input(msg, now, true)?.effects)
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

    /// Like [`Engine::handle`], returning the decisions (worded only into the outbox,
    /// when it is on).
    pub fn decide(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> Result<Vec<Decision>, EngineError> {
        Ok(self.input(msg, now, false)?.decisions)
    }

    /// Whether the engine ignores `msg` without looking further: the bot's own messages,
    /// notices, reactions that are no action.
    fn ignored(&self, msg: &IncomingMessage) -> bool {
        let own = self
            .net
            .matrix
            .as_ref()
            .is_some_and(|m| m.user == msg.sender);
        own || match &msg.content {
            Content::Text { notice: true, .. } => true,
            // Reactions are not conversation: only the three action keys mean anything.
            Content::Reaction { key, .. } => Action::of_reaction(key).is_none(),
            _ => false,
        }
    }

    /// One input: a guard (ignored, handled already, outside the network), then a
    /// dispatch by what it is, then one commit.
    fn input(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
        word: bool,
    ) -> Result<Committed, EngineError> {
        let nothing = || Committed {
            decisions: Vec::new(),
            effects: Vec::new(),
        };
        if self.ignored(msg) {
            return Ok(nothing());
        }
        if self.store.is_seen(&msg.event_id)? {
            debug!("event already handled");
            return Ok(nothing());
        }
        let net = Arc::clone(&self.net);
        let nb = net.neighborhood_of_room(&msg.room);
        let in_coordination = self.coordination_room.as_deref() == Some(msg.room.as_str());
        if nb.is_none() && !in_coordination {
            return self.outside_network(msg, now, word);
        }
        let event_id: Arc<str> = Arc::from(msg.event_id.as_str());
        let room: Arc<str> = Arc::from(msg.room.as_str());
        let mut tx = Tx::new(Arc::clone(&event_id));
        // Verifier actions, commands and retractions: in any room of the network, and in
        // the coordination room. The coordination room's other messages are not reports.
        let handled = match &msg.content {
            Content::Reaction { key, relates_to } => {
                // Only on a bot message of this very room, with the reactor's standing
                // here: a relation pointing at another room's message does nothing.
                if let Some(action) = Action::of_reaction(key)
                    && let Some(id) = self.store.event_incident(relates_to)?
                {
                    if self.store.is_sent_in(&id, &room, relates_to)? {
                        self.act(&mut tx, &room, None, msg, id, action, None, now);
                    } else {
                        debug!("a reaction to a bot message of another room: ignored");
                    }
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
            Content::Redaction {
                redacts,
                may_redact_others,
            } => {
                self.retract(&mut tx, msg, redacts, *may_redact_others, now);
                true
            }
            _ => false,
        };
        match nb {
            _ if handled => {}
            None => return Ok(nothing()),
            Some(nb) => {
                if !self.report(&mut tx, nb, &room, &event_id, msg, now) {
                    return Ok(nothing());
                }
            }
        }
        self.budget_answers(&mut tx, msg, now);
        tx.batch.seen.push(event_id);
        self.commit(tx, now, word)
    }

    /// A command or report in a room the network does not know: one answer saying so.
    fn outside_network(
        &mut self,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
        word: bool,
    ) -> Result<Committed, EngineError> {
        let is_coordination = self.net.coordination_room.as_deref() == Some(msg.room.as_str());
        let Content::Text { body, .. } = &msg.content else {
            return Ok(Committed {
                decisions: Vec::new(),
                effects: Vec::new(),
            });
        };
        if is_coordination
            || !(is_report_command(body)
                || parse_verifier_command(body).is_some()
                || parse_room_command(body).is_some())
        {
            return Ok(Committed {
                decisions: Vec::new(),
                effects: Vec::new(),
            });
        }
        let event_id: Arc<str> = Arc::from(msg.event_id.as_str());
        let mut tx = Tx::new(Arc::clone(&event_id));
        tx.decisions.push(Decision::NotInNetwork {
            room: msg.room.as_str().into(),
            in_reply_to: Arc::clone(&event_id),
        });
        self.budget_answers(&mut tx, msg, now);
        tx.batch.seen.push(event_id);
        self.commit(tx, now, word)
    }

    /// Remembers that the bot's message `effect` was sent as `event_id`, so reactions to
    /// it act on its incident (the Matrix shell does this through the outbox; offline
    /// replay calls it for every effect).
    ///
    /// A redaction ([`Effect::Fade`]) is taken as done: the bot's messages it redacts
    /// leave the store's list.
    pub fn mark_sent(&mut self, effect: &Effect, event_id: &str) -> Result<(), EngineError> {
        if let Effect::Fade { room, incident } = effect {
            for e in self.store.sent_events(incident, room)? {
                self.store.redacted(incident, room, &e)?;
            }
        } else if let Some(sent) = crate::store::Sent::of(effect, event_id) {
            self.store.note_sent(sent)?;
        }
        Ok(())
    }
}
