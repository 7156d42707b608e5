//! The sender task: keeps the durable outbox draining, several sends at once.
//!
//! Owns: reading the outbox when the engine announces new entries (once the sync that
//! brought their cause has completed), choosing what goes now ([`super::schedule`],
//! pure), how many sends each room has in flight, backing off a room that failed,
//! the bookkeeping of sends that ended (metrics, the one log line per relayed
//! incident), and draining what is queued at the stop.
//! Must not touch: how one entry is sent or what it says ([`super::outbound`] sends it
//! and records the outcome in the store), decisions or wording.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use matrix_sdk::Client;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::content::is_alert;
use super::outbound::{SendOutcome, send_one};
use super::reload::LiveNet;
use super::schedule::{answers_at, home_alerts_wait, priority, run_begins, schedule, updates_at};
use super::{ShellError, Stop, stopped};
use crate::config::Network;
use crate::effect::Effect;
use crate::metrics::Metrics;
use crate::model::IncidentId;
use crate::store::{Queued, SledStore, Store};

/// Fault injection for crash tests: with `NEIGHBORWATCH_FAULT=hold-outbox` the sender
/// sends nothing, so a test can kill the bot between a commit and its sends; with
/// `hold-outbox-after=N` it starts N sends and then holds the rest (a kill in the middle
/// of a catch-up).
pub const FAULT_ENV: &str = "NEIGHBORWATCH_FAULT";

/// Sends in flight at the same time, over all rooms.
const MAX_AT_ONCE: usize = 32;
/// Sends in flight at the same time in one room. Synapse persists the events of a room
/// one batch at a time, so a room's messages sent one after another cost a whole
/// persistence round each (about 40 ms on a small machine): after downtime, hundreds of
/// acknowledgments in one room would take tens of seconds. A few at once share rounds.
/// Not more in a room with members on other servers: Synapse creates up to five events
/// of a room at once, each on the same latest events, and the room's other servers must
/// then ask for the state at every fork. With 16 in flight (issue 25), of a catch-up's
/// 516 messages into a room on another server, that server had handled 125 five
/// minutes later.
const PER_ROOM: usize = 4;
/// Sends in flight at the same time in a room whose members are all on the bot's
/// homeserver: no other server follows its history, and Synapse persists larger
/// batches faster (issue 25's catch-up floor, a plain client, sends 16 at once too).
const PER_LOCAL_ROOM: usize = 16;
/// First wait before a room that failed is tried again; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The kind of message, for metrics.
fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::Relay { .. } => "alert",
        Effect::Edit { .. } | Effect::ThreadReply { .. } | Effect::Location { .. } => "update",
        Effect::Reply { .. } => "reply",
        Effect::Notice { .. } => "notice",
        Effect::Fade { .. } => "redaction",
    }
}

/// A room that failed: when it may be tried again, and the wait after the next failure.
struct Backoff {
    until: Instant,
    next: Duration,
}

/// Alerts of one incident being relayed: how many rooms have it, and when the bot
/// received the event that confirmed it.
struct Relaying {
    rooms: usize,
    since_ms: i64,
}

/// A send that ended: which entry, in which room, and what became of it.
struct Done {
    seq: u64,
    room: String,
    /// The room was sending one message at a time when this send started.
    alone: bool,
    outcome: Result<SendOutcome, ShellError>,
}

/// The sender task: keeps the outbox draining. Entries are sent concurrently (up to
/// [`MAX_AT_ONCE`]) as [`schedule`] allows; a room that fails backs off alone.
///
/// Records of accepted sends are not flushed to disk one by one (sled writes them out
/// within half a second, and on shutdown): an entry whose record is lost in a crash is
/// sent again with the same transaction ID, and the homeserver answers with the event it
/// already has. Nothing is sent twice, and nothing queued is lost (entries are queued by
/// the engine's flushed commits).
///
/// At the stop (given once the engine has finished, with the time by which to be done),
/// what is new in the outbox is read at once, without waiting for a sync, and everything
/// queued is sent; the sends in flight finish. A room backing off past that time is left
/// for the next start. The task returns once nothing is in flight and nothing more can
/// go in time.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_loop(
    client: Client,
    net: LiveNet,
    store: SledStore,
    ready: Arc<Notify>,
    metrics: Arc<Metrics>,
    mut synced: watch::Receiver<u64>,
    needs_sync: Arc<AtomicU64>,
    mut stop: Stop,
) {
    if std::env::var(FAULT_ENV).is_ok_and(|f| f == "hold-outbox") {
        warn!("fault injection: the outbox is held; nothing will be sent");
        stopped(&mut stop).await;
        return;
    }
    let hold_after = std::env::var(FAULT_ENV).ok().and_then(|f| {
        f.strip_prefix("hold-outbox-after=")
            .and_then(|n| n.parse::<usize>().ok())
    });
    let mut s = Sender::new(client, net, store, metrics);
    loop {
        // Entries announced by the engine are read once the sync that brought their
        // cause has completed, or the wait is up, or no sync will come any more.
        if let Some((needed, until)) = s.gate
            && (*synced.borrow() >= needed
                || Instant::now() >= until
                || synced.has_changed().is_err())
        {
            // A stage of the per-stage trace (ARCHITECTURE.md).
            debug!(
                synced = *synced.borrow() >= needed,
                "outbox gate open: the sync that brought the cause completed"
            );
            s.gate = None;
            s.fresh = true;
        }
        if s.fresh {
            if !s.read_outbox() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            s.learn_rooms().await;
        }
        let now = Instant::now();
        let (mut go, hold) = s.pick(now);
        let retry_at = s.rooms.values().map(|b| b.until).filter(|u| *u > now).min();
        if s.done_stopping(&go, hold, retry_at) {
            debug!(left = s.queue.len(), "sender stopped");
            return;
        }
        if let Some(k) = hold_after {
            let left = k.saturating_sub(s.started);
            if go.len() > left {
                go.truncate(left);
                if !s.held {
                    warn!("fault injection: the outbox is held after {k} sends");
                    s.held = true;
                }
            }
        }
        for seq in go {
            s.start(seq, now);
        }
        tokio::select! {
            Some(first) = s.sends.join_next() => {
                let mut next = Some(first);
                while let Some(joined) = next.take().or_else(|| s.sends.try_join_next()) {
                    // A send's task never panics (the send itself is caught), and is
                    // cancelled only with this one.
                    if let Ok(done) = joined {
                        s.finish(done);
                    }
                }
            }
            _ = ready.notified(), if s.deadline.is_none() => {
                // New entries wait for the sync in progress (see [`SYNC_WAIT`]); what is
                // already queued keeps going.
                let needed = needs_sync.load(Ordering::SeqCst);
                s.gate = Some((
                    s.gate.map_or(needed, |g| g.0.max(needed)),
                    s.gate.map_or(Instant::now() + SYNC_WAIT, |g| g.1),
                ));
            }
            at = stopped(&mut stop), if s.deadline.is_none() => s.stop_by(at),
            _ = synced.changed(), if s.gate.is_some() => {}
            _ = tokio::time::sleep_until(hold.unwrap_or(now)), if hold.is_some() => {}
            _ = tokio::time::sleep_until(s.gate.map_or(now, |g| g.1)), if s.gate.is_some() => {}
            _ = tokio::time::sleep_until(retry_at.unwrap_or(now + Duration::from_secs(5))) => {
                if retry_at.is_none() && s.busy.is_empty() {
                    (s.full, s.fresh) = (true, true);
                }
            }
        }
    }
}

/// The sender task's state.
struct Sender {
    client: Client,
    net: LiveNet,
    store: SledStore,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    /// The sends in flight, each in its own task.
    sends: JoinSet<Done>,
    /// The outbox as last read, by sequence number.
    queue: BTreeMap<u64, Queued>,
    /// Entries being sent.
    busy: HashSet<u64>,
    /// Rooms whose last send failed.
    rooms: HashMap<String, Backoff>,
    /// Rooms sending one message at a time after a send raced a key rotation.
    solo: HashSet<String>,
    relaying: HashMap<IncidentId, Relaying>,
    /// Alerts being sent, and when each started.
    alerts_out: HashMap<u64, Instant>,
    /// When the last alert was accepted.
    last_alert_done: Option<Instant>,
    /// When the run of alerts going out now began (see [`answers_at`]).
    alerts_began: Option<Instant>,
    /// Rooms whose members are all on the bot's homeserver (true) or not (false), as
    /// last looked up; forgotten whenever the whole outbox is read again.
    local: HashMap<String, bool>,
    /// The homeserver's rate-limit episodes (the coordination room is told of each once).
    limits: super::ratelimit::Episodes,
    /// Read the whole outbox (at start, and when idle); in between, only what is new.
    full: bool,
    /// Read the outbox before picking.
    fresh: bool,
    /// The newest entry read so far.
    last_seq: Option<u64>,
    /// Entries announced by the engine and not read yet: read once .0 syncs have
    /// completed (the one that brought their cause), or at .1. At start, the outbox
    /// waits for the first sync, which brings the device lists up to date.
    gate: Option<(u64, Instant)>,
    /// Stopping: the time by which to be done.
    deadline: Option<Instant>,
    /// Sends started (for fault injection: `hold-outbox-after=N`), and whether the
    /// outbox is held.
    started: usize,
    held: bool,
}

impl Sender {
    fn new(client: Client, net: LiveNet, store: SledStore, metrics: Arc<Metrics>) -> Self {
        Self {
            client,
            net,
            store: store.with_flush_on_commit(false),
            metrics,
            permits: Arc::new(Semaphore::new(MAX_AT_ONCE)),
            sends: JoinSet::new(),
            queue: BTreeMap::new(),
            busy: HashSet::new(),
            rooms: HashMap::new(),
            solo: HashSet::new(),
            relaying: HashMap::new(),
            alerts_out: HashMap::new(),
            last_alert_done: None,
            alerts_began: None,
            local: HashMap::new(),
            limits: super::ratelimit::Episodes::default(),
            full: true,
            fresh: false,
            last_seq: None,
            gate: Some((1, Instant::now() + FIRST_SYNC_WAIT)),
            deadline: None,
            started: 0,
            held: false,
        }
    }

    /// Reads the outbox into the queue: all of it when `full`, otherwise what is newer
    /// than the last entry read. False when it cannot be read.
    fn read_outbox(&mut self) -> bool {
        let after = if self.full { None } else { self.last_seq };
        match self.store.outbox_after(after) {
            Ok(q) => {
                if self.full {
                    self.queue.clear();
                    self.local.clear();
                }
                self.last_seq = q.last().map(|q| q.seq).or(after);
                self.queue.extend(q.into_iter().map(|q| (q.seq, q)));
                publish_depths(&self.metrics, &self.queue, None);
                (self.full, self.fresh) = (false, false);
                true
            }
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                false
            }
        }
    }

    /// Looks up, for each room with more entries queued than [`PER_ROOM`] (the only
    /// rooms where the limit matters) that is not known yet, whether all its members
    /// are on the bot's homeserver (see [`PER_LOCAL_ROOM`]). A room the bot cannot look
    /// up counts as federated. An alert to a few rooms looks nothing up.
    async fn learn_rooms(&mut self) {
        let Some(me) = self.client.user_id().map(|u| u.server_name().to_owned()) else {
            return;
        };
        let new: Vec<String> = depths(&self.queue)
            .into_iter()
            .filter(|(r, n)| *n > PER_ROOM && !self.local.contains_key(*r))
            .map(|(r, _)| r.to_owned())
            .collect();
        for room in new {
            let members = match matrix_sdk::ruma::RoomId::parse(&room) {
                Ok(id) => match self.client.get_room(&id) {
                    Some(r) => r.joined_user_ids().await.ok(),
                    None => None,
                },
                Err(_) => None,
            };
            let local =
                members.is_some_and(|m| !m.is_empty() && m.iter().all(|u| u.server_name() == me));
            self.local.insert(room, local);
        }
    }

    /// What may be sent now, best first, and the next time something held back may go
    /// (see [`updates_at`] and [`answers_at`]).
    fn pick(&self, now: Instant) -> (Vec<u64>, Option<Instant>) {
        let oldest = self.alerts_out.values().min().copied();
        let updates = updates_at(oldest, self.last_alert_done).filter(|t| *t > now);
        let answers =
            answers_at(self.alerts_began, oldest, self.last_alert_done).filter(|t| *t > now);
        let mut go = schedule(self.queue.values(), &self.busy, |room| {
            if self.rooms.get(room).is_some_and(|b| b.until > now) {
                0
            } else if self.solo.contains(room) {
                1
            } else if self.local.get(room).copied().unwrap_or(false) {
                PER_LOCAL_ROOM
            } else {
                PER_ROOM
            }
        });
        home_alerts_wait(&mut go, &self.queue, &self.alerts_out, now);
        if updates.is_some() {
            go.retain(|seq| {
                self.queue
                    .get(seq)
                    .is_some_and(|q| match priority(&q.entry.effect) {
                        0 => true,
                        1 => false,
                        _ => answers.is_none(),
                    })
            });
        }
        (go, answers.or(updates))
    }

    /// Starts sending entry `seq`.
    fn start(&mut self, seq: u64, now: Instant) {
        let Some(q) = self.queue.get(&seq).cloned() else {
            return;
        };
        self.busy.insert(seq);
        self.started += 1;
        if new_alert(&q.entry.effect) {
            if run_begins(!self.alerts_out.is_empty(), self.last_alert_done, now) {
                self.alerts_began = Some(now);
            }
            self.alerts_out.insert(seq, now);
        }
        let alone = self.solo.contains(q.entry.effect.room());
        self.sends.spawn(send_task(
            self.client.clone(),
            self.net.get(),
            self.store.clone(),
            Arc::clone(&self.permits),
            q,
            alone,
        ));
    }

    /// Bookkeeping for a send that ended: an entry sent or dropped leaves the queue; a
    /// room that must try again backs off.
    fn finish(&mut self, done: Done) {
        self.busy.remove(&done.seq);
        if self.alerts_out.remove(&done.seq).is_some() && self.alerts_out.is_empty() {
            self.last_alert_done = Some(Instant::now());
        }
        let entry = match &done.outcome {
            Ok(SendOutcome::Sent | SendOutcome::Dropped) => self.queue.remove(&done.seq),
            _ => None,
        };
        match done.outcome {
            Ok(SendOutcome::Sent) => {
                self.limits.sent(Instant::now().into_std());
                self.rooms.remove(&done.room);
                self.solo.remove(&done.room);
                if let Some(q) = &entry {
                    sent(&self.metrics, &mut self.relaying, &self.queue, q);
                }
            }
            Ok(SendOutcome::Dropped) => {
                self.metrics.send_refused.inc();
                if let Some(id) = entry.as_ref().and_then(|q| q.entry.effect.incident()) {
                    settle(&mut self.relaying, &self.queue, id);
                }
            }
            Ok(SendOutcome::Raced) => {
                // One key rotation can make several sends in flight panic together: only
                // a send that panicked while its room was already sending alone is not
                // the race.
                self.solo.insert(done.room.clone());
                if done.alone {
                    warn!(room = %done.room, "a send panicked; the room's messages are retried with backoff");
                    failed(&mut self.rooms, &self.metrics, done.room.clone());
                } else {
                    debug!(room = %done.room, "a send raced a room-key rotation; retried");
                    self.metrics.send_retries.inc();
                }
            }
            Ok(SendOutcome::RateLimited(why)) => {
                if self.limits.limited(Instant::now().into_std()) {
                    warn!("the homeserver is rate-limiting the bot; telling the coordination room");
                    tokio::spawn(super::warnings::tell_rate_limited(
                        self.client.clone(),
                        self.net.get(),
                    ));
                }
                debug!(room = %done.room, reason = %why, "rate-limited; will retry");
                failed(&mut self.rooms, &self.metrics, done.room.clone());
            }
            Ok(SendOutcome::Later(why)) => {
                if self.rooms.contains_key(&done.room) {
                    debug!(room = %done.room, reason = %why, "will retry");
                } else {
                    warn!(room = %done.room, reason = %why, "a send failed; the room's messages are retried with backoff");
                }
                failed(&mut self.rooms, &self.metrics, done.room.clone());
            }
            Err(e) => {
                warn!(error = %e, "outbox bookkeeping failed; will retry");
                failed(&mut self.rooms, &self.metrics, done.room.clone());
            }
        }
        publish_depths(&self.metrics, &self.queue, Some(&done.room));
    }

    /// The stop, to be done by `deadline`: the engine has finished, so what it queued
    /// last is read at once, without waiting for a sync.
    fn stop_by(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        self.gate = None;
        self.fresh = true;
    }

    /// Stopping, and done: nothing in flight, and nothing queued that can go before the
    /// deadline (not now, not once alerts are out, not after a room's backoff).
    fn done_stopping(&self, go: &[u64], hold: Option<Instant>, retry_at: Option<Instant>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        self.busy.is_empty()
            && (self.queue.is_empty()
                || (go.is_empty() && hold.is_none() && retry_at.is_none_or(|t| t >= deadline)))
    }
}

/// One send, in its own task: waits for a permit, sends, and says what became of it. A
/// send that panics (inside the SDK) is tried again; it never leaves its entry stuck.
async fn send_task(
    client: Client,
    net: Arc<Network>,
    mut store: SledStore,
    permits: Arc<Semaphore>,
    q: Queued,
    alone: bool,
) -> Done {
    let room = q.entry.effect.room().to_owned();
    let span = info_span!("send", room = %room, seq = q.seq);
    let outcome = std::panic::AssertUnwindSafe(async {
        let _permit = permits.acquire_owned().await;
        send_one(
            &client,
            &net,
            &mut store,
            q.seq,
            &q.entry.txn_id,
            &q.entry.effect,
        )
        .await
    })
    .catch_unwind()
    .instrument(span)
    .await
    .unwrap_or(Ok(SendOutcome::Raced));
    Done {
        seq: q.seq,
        room,
        alone,
        outcome,
    }
}

/// The longest new entries wait for the sync that brought their cause.
///
/// New entries usually come from events of a sync that is still being processed; the
/// SDK sends the key queries that sync made necessary (a member's new device, a new
/// room shared) only once it completes. An encrypted send started before that waits for
/// those queries while holding the SDK's key-claim lock, which the sync needs to send
/// them: each such send stalls 5 s, one room after another (matrix-sdk 0.18). Waiting
/// for the sync to finish costs a few milliseconds.
const SYNC_WAIT: Duration = Duration::from_secs(1);
/// The longest the outbox waits for the first sync at start.
const FIRST_SYNC_WAIT: Duration = Duration::from_secs(10);

/// A new alert (not an edit, a location or a thread reply of one).
fn new_alert(effect: &Effect) -> bool {
    matches!(effect, Effect::Relay { .. })
}

/// A send to `room` must be tried again: the room backs off (alone).
fn failed(rooms: &mut HashMap<String, Backoff>, metrics: &Metrics, room: String) {
    metrics.send_retries.inc();
    let b = rooms.entry(room).or_insert(Backoff {
        until: Instant::now(),
        next: FIRST_BACKOFF,
    });
    b.until = Instant::now() + b.next;
    b.next = (b.next * 2).min(MAX_BACKOFF);
}

/// Bookkeeping for an accepted send: metrics, and once the last alert of an incident is
/// out, one line for the operator.
fn sent(
    metrics: &Metrics,
    relaying: &mut HashMap<IncidentId, Relaying>,
    queue: &BTreeMap<u64, Queued>,
    q: &Queued,
) {
    let effect = &q.entry.effect;
    metrics.sent(kind(effect));
    let now_ms = Utc::now().timestamp_millis();
    if q.entry.at_ms > 0 && is_alert(effect) {
        metrics
            .alert_delay
            .observe((now_ms - q.entry.at_ms).max(0) as f64 / 1000.0);
    }
    let (Effect::Relay { .. }, Some(id)) = (effect, effect.incident()) else {
        return;
    };
    let r = relaying.entry(*id).or_insert(Relaying {
        rooms: 0,
        since_ms: q.entry.at_ms,
    });
    r.rooms += 1;
    settle(relaying, queue, id);
}

/// Once no alert of incident `id` is left to send, says how far it went.
fn settle(
    relaying: &mut HashMap<IncidentId, Relaying>,
    queue: &BTreeMap<u64, Queued>,
    id: &IncidentId,
) {
    let more = queue.values().any(|o| {
        matches!(o.entry.effect, Effect::Relay { .. }) && o.entry.effect.incident() == Some(id)
    });
    let now_ms = Utc::now().timestamp_millis();
    if !more && let Some(r) = relaying.remove(id) {
        if r.since_ms > 0 {
            info!(
                incident = %id,
                rooms = r.rooms,
                ms = now_ms - r.since_ms,
                "relayed incident to {} room(s) in {} ms",
                r.rooms,
                now_ms - r.since_ms
            );
        } else {
            info!(incident = %id, rooms = r.rooms, "relayed incident to {} room(s)", r.rooms);
        }
    }
}

/// How many entries the queue holds for each room.
fn depths(queue: &BTreeMap<u64, Queued>) -> HashMap<&str, usize> {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    for q in queue.values() {
        *depth.entry(q.entry.effect.room()).or_default() += 1;
    }
    depth
}

/// Publishes the outbox depth of `room` (or of every room), and the total.
fn publish_depths(metrics: &Metrics, queue: &BTreeMap<u64, Queued>, room: Option<&str>) {
    let depth = depths(queue);
    match room {
        Some(r) => metrics.outbox(r, depth.get(r).copied().unwrap_or(0)),
        None => {
            metrics.outbox_depth.clear();
            for (r, n) in &depth {
                metrics.outbox(r, *n);
            }
        }
    }
    metrics.outbox_total(queue.len());
}
