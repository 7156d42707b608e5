//! Outbound: draining the durable outbox into the rooms.
//!
//! Owns: sending each queued effect with its transaction ID, oldest first per room
//! (a fade: redacting, one by one, the bot's messages the store lists for it);
//! retrying with backoff what failed for now (rate limits, server errors, lost
//! connections, rooms not joined yet); dropping what the server refused for good, and
//! saying so in the coordination room; refusing alerts for unencrypted rooms. An entry
//! leaves the outbox only once the server accepted it (or refused it for good).
//! Must not touch: decisions or wording (the outbox holds worded effects).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use matrix_sdk::{
    Client, RoomState,
    ruma::{OwnedEventId, OwnedRoomId, OwnedTransactionId},
};
use tokio::sync::Notify;
use tracing::{Instrument, debug, info, info_span, warn};

use super::content::{ROOM_MESSAGE, is_alert, message_content};
pub use super::schedule::{home_alerts_wait, schedule, updates_at};
use super::{ShellError, Stop, stopped};
use crate::config::Network;
use crate::effect::Effect;
use crate::metrics::Metrics;
use crate::model::IncidentId;
use crate::render::{Catalogs, Undelivered, undelivered_notice};
use crate::store::{Queued, Sent, SledStore, Store};

/// What became of one outbox entry.
#[derive(Debug)]
enum SendOutcome {
    /// The server accepted it.
    Sent,
    /// Left the outbox without being sent: refused for good, or nothing to send.
    Dropped,
    /// Retry later (server error, network, not joined yet).
    Later(String),
    /// The homeserver is rate-limiting the bot (429): retry later, and warn the
    /// coordination room once per episode.
    RateLimited(String),
    /// The send panicked inside the SDK: matrix-sdk 0.18 asserts, when it encrypts,
    /// that the room key has not expired, and a concurrent send to the same room can
    /// use up the key's last message between its check and the encryption. Retried at
    /// once, with the room sending one message at a time until its next success (so the
    /// next send rotates the key unraced).
    Raced,
}

/// Whether the server refused a send for good: a client error (the bot may not post
/// there, the room is gone, the event is too large) other than a rate limit. Sending
/// it again would fail the same way and hold up the room's queue.
fn refused_for_good(e: &matrix_sdk::Error) -> bool {
    e.as_client_api_error()
        .is_some_and(|api| api.status_code.is_client_error() && api.status_code.as_u16() != 429)
}

/// Whether the homeserver refused a send because the bot is sending too fast.
fn rate_limited(e: &matrix_sdk::Error) -> bool {
    e.as_client_api_error()
        .is_some_and(|api| api.status_code.as_u16() == 429)
}

/// The SDK's own retries of one send (it would otherwise retry a 429 for up to 15
/// minutes before the outbox hears of it); the outbox retries after them, with the
/// same transaction ID, and backs the room off.
fn send_config() -> matrix_sdk::config::RequestConfig {
    matrix_sdk::config::RequestConfig::default().retry_limit(3)
}

/// Tells the network's coordination room, if it has one, that the alert of outbox entry
/// `txn_id` did not reach its room, in the network's language (best effort: the reason
/// is also logged). The transaction ID is derived from the entry's, so a retry after a
/// crash is the same message, not a second one.
async fn tell_undelivered(
    client: &Client,
    net: &Network,
    txn_id: &str,
    effect: &Effect,
    why: Undelivered<'_>,
) {
    let Some(c) = super::warnings::coordination_room(client, net) else {
        return;
    };
    let incident = match effect {
        Effect::Relay { message, .. } => message.incident.as_ref().map(|t| t.id.to_string()),
        _ => None,
    }
    .unwrap_or_default();
    let message = undelivered_notice(net, Catalogs::builtin(), &incident, effect.room(), why);
    let txn: OwnedTransactionId = format!("{txn_id}-undelivered").into();
    if !super::warnings::send_notice(&c, message, txn, 1).await {
        warn!("could not tell the coordination room");
    }
}

/// Sends outbox entry `seq` once, and records in the store what became of it (an entry
/// sent, or dropped for good, leaves the outbox).
async fn send_one(
    client: &Client,
    net: &Network,
    store: &mut SledStore,
    seq: u64,
    txn_id: &str,
    effect: &Effect,
) -> Result<SendOutcome, ShellError> {
    let Ok(room_id) = <OwnedRoomId>::try_from(effect.room()) else {
        warn!("outbox entry for an unparsable room ID dropped");
        store.outbox_sent(seq, None)?;
        return Ok(SendOutcome::Dropped);
    };
    let Some(room) = client.get_room(&room_id) else {
        return Ok(SendOutcome::Later("not in the room yet".into()));
    };
    if let Effect::Fade { incident, .. } = effect {
        if matches!(room.state(), RoomState::Left | RoomState::Banned) {
            // Out of the room for good: its messages there can no longer be redacted by
            // the bot, and waiting would keep the incident for ever.
            warn!(room = %room_id, "the bot left a room; its messages there stay unredacted");
            for event in store.sent_events(incident, room_id.as_str())? {
                store.redacted(incident, room_id.as_str(), &event)?;
            }
            store.outbox_sent(seq, None)?;
            return Ok(SendOutcome::Dropped);
        }
        if room.state() == RoomState::Joined {
            return fade(store, &room, seq, incident).await;
        }
    }
    if room.state() != RoomState::Joined {
        return Ok(SendOutcome::Later("not joined yet".into()));
    }
    if is_alert(effect) && !net.allow_unencrypted && !super::warnings::encrypted(&room).await {
        warn!(room = %room_id, "refusing to post an alert into an unencrypted room");
        if matches!(effect, Effect::Relay { .. }) {
            tell_undelivered(client, net, txn_id, effect, Undelivered::Unencrypted).await;
        }
        store.outbox_sent(seq, None)?;
        return Ok(SendOutcome::Dropped);
    }
    if super::warnings::refuse_in_unencrypted_coordination(net, &room, effect).await {
        debug!("incident details kept out of the unencrypted coordination room");
        store.outbox_sent(seq, None)?;
        return Ok(SendOutcome::Dropped);
    }
    let alert = match effect {
        Effect::Edit { message, .. } | Effect::ThreadReply { message, .. } => {
            match &message.incident {
                Some(tag) => store.alert_event(&tag.id, effect.room())?,
                None => None,
            }
        }
        _ => None,
    };
    let content = match message_content(effect, alert.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            // The alert was refused or never sent: there is nothing to update.
            debug!(error = %e, "update dropped");
            store.outbox_sent(seq, None)?;
            return Ok(SendOutcome::Dropped);
        }
    };
    let txn: OwnedTransactionId = txn_id.into();
    match room
        .send_raw(ROOM_MESSAGE, content)
        .with_transaction_id(&txn)
        .with_request_config(send_config())
        .await
    {
        Ok(resp) => {
            let event_id = resp.response.event_id.to_string();
            // Which incident the message is about (reactions to it act on it), and for an
            // alert its event ID in this room (edits and thread replies refer to it).
            store.outbox_sent(seq, Sent::of(effect, &event_id))?;
            Ok(SendOutcome::Sent)
        }
        Err(e) if refused_for_good(&e) => {
            // Drop it, so the room's later messages are not held up behind it, and say
            // so where people can fix it.
            warn!(room = %room_id, error = %e, "the server refused a message for good; dropped");
            if matches!(effect, Effect::Relay { .. }) {
                let reason = e.to_string();
                tell_undelivered(
                    client,
                    net,
                    txn_id,
                    effect,
                    Undelivered::Refused { reason: &reason },
                )
                .await;
            }
            store.outbox_sent(seq, None)?;
            Ok(SendOutcome::Dropped)
        }
        Err(e) if rate_limited(&e) => Ok(SendOutcome::RateLimited(e.to_string())),
        Err(e) => Ok(SendOutcome::Later(e.to_string())),
    }
}

/// The transaction ID of the redaction of the bot's message `event_id`: derived from the
/// event (which is redacted once), so a redaction sent again after a crash is
/// recognised by the homeserver.
fn redaction_txn(event_id: &str) -> OwnedTransactionId {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(event_id.as_bytes());
    format!("nwfade{}", hex::encode(&h[..12])).into()
}

/// Redacts the bot's messages about `incident` in `room`, one by one, each leaving the
/// store's list once the server accepted it (or refused it for good: the event is gone,
/// or not the bot's to redact); the entry leaves the outbox when the list is empty. A
/// failure keeps the rest for a retry: after a crash too, nothing is redacted twice.
async fn fade(
    store: &mut SledStore,
    room: &matrix_sdk::Room,
    seq: u64,
    incident: &IncidentId,
) -> Result<SendOutcome, ShellError> {
    let room_id = room.room_id().as_str().to_owned();
    for event in store.sent_events(incident, &room_id)? {
        let Ok(event_id) = OwnedEventId::try_from(event.as_str()) else {
            store.redacted(incident, &room_id, &event)?;
            continue;
        };
        match room
            .redact(&event_id, None, Some(redaction_txn(&event)))
            .await
        {
            Ok(_) => store.redacted(incident, &room_id, &event)?,
            Err(e)
                if e.as_client_api_error().is_some_and(|api| {
                    api.status_code.is_client_error() && api.status_code.as_u16() != 429
                }) =>
            {
                warn!(room = %room_id, error = %e, "the server refused a redaction for good; skipped");
                store.redacted(incident, &room_id, &event)?;
            }
            Err(e) => return Ok(SendOutcome::Later(e.to_string())),
        }
    }
    debug!(room = %room_id, "the bot's messages about an incident are redacted");
    store.outbox_sent(seq, None)?;
    Ok(SendOutcome::Sent)
}

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
/// Not more: Synapse creates up to five events of a room at once, each on the same
/// latest events, and a federated room's other servers must then ask for the state at
/// every fork. With 16 in flight (issue 25), of a catch-up's 516 messages into a room
/// on another server, that server had handled 125 five minutes later.
const PER_ROOM: usize = 4;
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
    net: Arc<Network>,
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
        if s.fresh && !s.read_outbox() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
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
    net: Arc<Network>,
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
    fn new(client: Client, net: Arc<Network>, store: SledStore, metrics: Arc<Metrics>) -> Self {
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

    /// What may be sent now, best first, and until when everything but new alerts
    /// waits (see [`updates_at`]).
    fn pick(&self, now: Instant) -> (Vec<u64>, Option<Instant>) {
        let hold = updates_at(
            self.alerts_out.values().min().copied(),
            self.last_alert_done,
        )
        .filter(|t| *t > now);
        let mut go = schedule(self.queue.values(), &self.busy, |room| {
            if self.rooms.get(room).is_some_and(|b| b.until > now) {
                0
            } else if self.solo.contains(room) {
                1
            } else {
                PER_ROOM
            }
        });
        home_alerts_wait(&mut go, &self.queue, &self.alerts_out, now);
        if hold.is_some() {
            go.retain(|seq| {
                self.queue
                    .get(seq)
                    .is_some_and(|q| new_alert(&q.entry.effect))
            });
        }
        (go, hold)
    }

    /// Starts sending entry `seq`.
    fn start(&mut self, seq: u64, now: Instant) {
        let Some(q) = self.queue.get(&seq).cloned() else {
            return;
        };
        self.busy.insert(seq);
        self.started += 1;
        if new_alert(&q.entry.effect) {
            self.alerts_out.insert(seq, now);
        }
        let alone = self.solo.contains(q.entry.effect.room());
        self.sends.spawn(send_task(
            self.client.clone(),
            Arc::clone(&self.net),
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
                        Arc::clone(&self.net),
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

/// Publishes the outbox depth of `room` (or of every room), and the total.
fn publish_depths(metrics: &Metrics, queue: &BTreeMap<u64, Queued>, room: Option<&str>) {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    for q in queue.values() {
        *depth.entry(q.entry.effect.room()).or_default() += 1;
    }
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
