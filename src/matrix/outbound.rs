//! Outbound: draining the durable outbox into the rooms.
//!
//! Owns: sending each queued effect with its transaction ID, oldest first per room;
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
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use matrix_sdk::{
    Client, RoomState,
    ruma::{OwnedRoomId, OwnedTransactionId},
};
use tokio::sync::Notify;
use tracing::{Instrument, debug, info, info_span, warn};

use super::ShellError;
use super::content::{ROOM_MESSAGE, is_alert, message_content};
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
    /// Retry later (rate limit, server error, network, not joined yet).
    Later(String),
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

/// Posts a notice to the network's coordination room, if it has one (best effort: the
/// reason is also logged).
/// Tells the coordination room that the alert of outbox entry `txn_id` did not reach
/// `room`, in the network's language. The transaction ID is derived from the entry's, so
/// a retry after a crash is the same message, not a second one.
async fn tell_undelivered(
    client: &Client,
    net: &Network,
    txn_id: &str,
    effect: &Effect,
    why: Undelivered<'_>,
) {
    let Some(coord) = net.coordination_room.as_deref() else {
        return;
    };
    let Some(c) = <OwnedRoomId>::try_from(coord)
        .ok()
        .and_then(|c| client.get_room(&c))
    else {
        return;
    };
    let incident = match effect {
        Effect::Relay { message, .. } => message.incident.as_ref().map(|t| t.id.to_string()),
        _ => None,
    }
    .unwrap_or_default();
    let message = undelivered_notice(net, Catalogs::builtin(), &incident, effect.room(), why);
    let notice = Effect::Notice {
        room: coord.to_owned(),
        message,
    };
    let Ok(content) = message_content(&notice, None) else {
        return;
    };
    let txn: OwnedTransactionId = format!("{txn_id}-undelivered").into();
    if let Err(e) = c
        .send_raw(ROOM_MESSAGE, content)
        .with_transaction_id(&txn)
        .await
    {
        warn!(error = %e, "could not tell the coordination room");
    }
}

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
    if room.state() != RoomState::Joined {
        return Ok(SendOutcome::Later("not joined yet".into()));
    }
    if is_alert(effect) && !net.allow_unencrypted {
        let encrypted = room
            .latest_encryption_state()
            .await
            .map(|s| s.is_encrypted())
            .unwrap_or(false);
        if !encrypted {
            warn!(room = %room_id, "refusing to post an alert into an unencrypted room");
            if matches!(effect, Effect::Relay { .. }) {
                tell_undelivered(client, net, txn_id, effect, Undelivered::Unencrypted).await;
            }
            store.outbox_sent(seq, None)?;
            return Ok(SendOutcome::Dropped);
        }
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
        Err(e) => Ok(SendOutcome::Later(e.to_string())),
    }
}

/// Fault injection for crash tests: with `NEIGHBORWATCH_FAULT=hold-outbox` the sender
/// sends nothing, so a test can kill the bot between a commit and its sends.
pub const FAULT_ENV: &str = "NEIGHBORWATCH_FAULT";

/// Sends in flight at the same time, over all rooms.
const MAX_AT_ONCE: usize = 32;
/// Sends in flight at the same time in one room. Synapse persists the events of a room
/// one batch at a time, so a room's messages sent one after another cost a whole
/// persistence round each (about 40 ms on a small machine): after downtime, hundreds of
/// acknowledgments in one room would take tens of seconds. A few at once share rounds.
const PER_ROOM: usize = 4;
/// First wait before a room that failed is tried again; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long everything but alerts waits after the last alert in flight was accepted.
const SETTLE: Duration = Duration::from_millis(150);
/// The longest everything but alerts waits for alerts in flight.
const HOLD_MAX: Duration = Duration::from_secs(2);

/// When messages other than new alerts (locations, edits, acknowledgments, notices) may
/// be sent, or `None` for now: alerts go first at the homeserver too.
///
/// A homeserver persists new messages, federates them and answers syncs on the same
/// cores: a location sent while an alert is still being delivered delays that alert by
/// a whole send. So while alerts are being sent, and for [`SETTLE`] after the last one
/// was accepted, the rest waits; never longer than [`HOLD_MAX`] after the oldest alert
/// in flight started, so that a room whose sends hang holds nothing else up for long.
pub fn updates_at(
    oldest_alert_in_flight: Option<Instant>,
    last_alert_done: Option<Instant>,
) -> Option<Instant> {
    match oldest_alert_in_flight {
        Some(t) => Some(t + HOLD_MAX),
        None => last_alert_done.map(|t| t + SETTLE),
    }
}

/// The kind of message, for metrics.
fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::Relay { .. } => "alert",
        Effect::Edit { .. } | Effect::ThreadReply { .. } | Effect::Location { .. } => "update",
        Effect::Reply { .. } => "reply",
        Effect::Notice { .. } => "notice",
    }
}

/// One room's turn in [`schedule`]: the room, its entries in flight, and those that
/// may go now (seq, is an alert).
type RoomTurn<'a> = (&'a str, usize, Vec<(u64, bool)>);

/// The scheduler, pure: which queued entries may be sent now, best first.
///
/// Rooms do not wait for each other: each sends up to `room_limit(room)` entries at once
/// (0 while it waits out a backoff). Within a room, messages about the same incident go
/// in queue order (an edit, a location or a thread reply needs its alert first, and
/// edits must land in order); messages about different incidents, or about none, do not
/// wait for each other, and alerts go before the rest (they are what people wait for).
/// Across rooms, alerts come first. `queue` is in queue order; `busy` holds the entries
/// being sent now.
pub fn schedule<'a>(
    queue: impl IntoIterator<Item = &'a Queued>,
    busy: &HashSet<u64>,
    room_limit: impl Fn(&str) -> usize,
) -> Vec<u64> {
    // Chains already holding an earlier entry: (room, incident).
    let mut held: HashSet<(&str, &str)> = HashSet::new();
    // Per room, in order of first appearance: entries in flight, and those that may go
    // now (seq, is an alert).
    let mut rooms: Vec<RoomTurn> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for q in queue {
        let effect = &q.entry.effect;
        let room = effect.room();
        let i = *at.entry(room).or_insert_with(|| {
            rooms.push((room, 0, Vec::new()));
            rooms.len() - 1
        });
        let chain_free = effect
            .incident()
            .is_none_or(|id| held.insert((room, id.as_str())));
        if busy.contains(&q.seq) {
            rooms[i].1 += 1;
        } else if chain_free {
            rooms[i]
                .2
                .push((q.seq, matches!(effect, Effect::Relay { .. })));
        }
    }
    let (mut alerts, mut rest) = (Vec::new(), Vec::new());
    for (room, in_flight, ready) in rooms {
        let free = room_limit(room).saturating_sub(in_flight);
        let picked = ready
            .iter()
            .filter(|r| r.1)
            .chain(ready.iter().filter(|r| !r.1))
            .take(free);
        for (seq, alert) in picked {
            if *alert {
                alerts.push(*seq)
            } else {
                rest.push(*seq)
            }
        }
    }
    alerts.extend(rest);
    alerts
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
pub(crate) async fn send_loop(
    client: Client,
    net: Arc<Network>,
    store: SledStore,
    ready: Arc<Notify>,
    metrics: Arc<Metrics>,
    mut synced: watch::Receiver<u64>,
    needs_sync: Arc<AtomicU64>,
) {
    if std::env::var(FAULT_ENV).is_ok_and(|f| f == "hold-outbox") {
        warn!("fault injection: the outbox is held; nothing will be sent");
        std::future::pending::<()>().await;
    }
    let store = store.with_flush_on_commit(false);
    let permits = Arc::new(Semaphore::new(MAX_AT_ONCE));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut queue: BTreeMap<u64, Queued> = BTreeMap::new();
    let mut busy: HashSet<u64> = HashSet::new();
    let mut rooms: HashMap<String, Backoff> = HashMap::new();
    // Rooms sending one message at a time after a send raced a key rotation.
    let mut solo: HashSet<String> = HashSet::new();
    let mut relaying: HashMap<IncidentId, Relaying> = HashMap::new();
    // Alerts being sent, and when each started; when the last alert was accepted.
    let mut alerts_out: HashMap<u64, Instant> = HashMap::new();
    let mut last_alert_done: Option<Instant> = None;
    // Read the whole outbox (at start, and when idle); in between, only what is new.
    let (mut full, mut fresh) = (true, false);
    // The newest entry read so far.
    let mut last_seq: Option<u64> = None;
    // Entries announced by the engine and not read yet: read once .0 syncs have
    // completed (the one that brought their cause), or at .1. At start, the outbox
    // waits for the first sync, which brings the device lists up to date.
    let mut gate: Option<(u64, Instant)> = Some((1, Instant::now() + FIRST_SYNC_WAIT));
    loop {
        if let Some((needed, until)) = gate
            && (*synced.borrow() >= needed || Instant::now() >= until)
        {
            gate = None;
            fresh = true;
        }
        if fresh {
            let after = if full { None } else { last_seq };
            match store.outbox_after(after) {
                Ok(q) => {
                    if full {
                        queue.clear();
                    }
                    last_seq = q.last().map(|q| q.seq).or(after);
                    queue.extend(q.into_iter().map(|q| (q.seq, q)));
                    publish_depths(&metrics, &queue, None);
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the outbox");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            (full, fresh) = (false, false);
        }
        let now = Instant::now();
        let hold =
            updates_at(alerts_out.values().min().copied(), last_alert_done).filter(|t| *t > now);
        let mut go = schedule(queue.values(), &busy, |room| {
            if rooms.get(room).is_some_and(|b| b.until > now) {
                0
            } else if solo.contains(room) {
                1
            } else {
                PER_ROOM
            }
        });
        if hold.is_some() {
            go.retain(|seq| queue.get(seq).is_some_and(|q| new_alert(&q.entry.effect)));
        }
        for seq in go {
            let Some(q) = queue.get(&seq).cloned() else {
                continue;
            };
            busy.insert(seq);
            if new_alert(&q.entry.effect) {
                alerts_out.insert(seq, now);
            }
            let alone = solo.contains(q.entry.effect.room());
            let (client, net, mut store) = (client.clone(), Arc::clone(&net), store.clone());
            let (permits, done) = (Arc::clone(&permits), done_tx.clone());
            tokio::spawn(async move {
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
                // A send that panics (inside the SDK) is tried again; it never leaves
                // its entry stuck.
                .unwrap_or(Ok(SendOutcome::Raced));
                let _ = done.send(Done {
                    seq: q.seq,
                    room,
                    alone,
                    outcome,
                });
            });
        }
        let retry_at = rooms.values().map(|b| b.until).filter(|u| *u > now).min();
        tokio::select! {
            Some(d) = done_rx.recv() => {
                let mut d = Some(d);
                while let Some(done) = d.take().or_else(|| done_rx.try_recv().ok()) {
                    busy.remove(&done.seq);
                    if alerts_out.remove(&done.seq).is_some() && alerts_out.is_empty() {
                        last_alert_done = Some(Instant::now());
                    }
                    let entry = match &done.outcome {
                        Ok(SendOutcome::Sent | SendOutcome::Dropped) => queue.remove(&done.seq),
                        _ => None,
                    };
                    match done.outcome {
                        Ok(SendOutcome::Sent) => {
                            rooms.remove(&done.room);
                            solo.remove(&done.room);
                            if let Some(q) = &entry {
                                sent(&metrics, &mut relaying, &queue, q);
                            }
                        }
                        Ok(SendOutcome::Dropped) => {
                            metrics.send_refused.inc();
                            if let Some(id) = entry.as_ref().and_then(|q| q.entry.effect.incident()) {
                                settle(&mut relaying, &queue, id);
                            }
                        }
                        Ok(SendOutcome::Raced) => {
                            // One key rotation can make several sends in flight panic
                            // together: only a send that panicked while its room was
                            // already sending alone is not the race.
                            solo.insert(done.room.clone());
                            if done.alone {
                                warn!(room = %done.room, "a send panicked; the room's messages are retried with backoff");
                                failed(&mut rooms, &metrics, done.room.clone());
                            } else {
                                debug!(room = %done.room, "a send raced a room-key rotation; retried");
                                metrics.send_retries.inc();
                            }
                        }
                        Ok(SendOutcome::Later(why)) => {
                            if rooms.contains_key(&done.room) {
                                debug!(room = %done.room, reason = %why, "will retry");
                            } else {
                                warn!(room = %done.room, reason = %why, "a send failed; the room's messages are retried with backoff");
                            }
                            failed(&mut rooms, &metrics, done.room.clone());
                        }
                        Err(e) => {
                            warn!(error = %e, "outbox bookkeeping failed; will retry");
                            failed(&mut rooms, &metrics, done.room.clone());
                        }
                    }
                    publish_depths(&metrics, &queue, Some(&done.room));
                }
            }
            _ = ready.notified() => {
                // New entries wait for the sync in progress (see [`SYNC_WAIT`]); what is
                // already queued keeps going.
                let needed = needs_sync.load(Ordering::SeqCst);
                gate = Some((
                    gate.map_or(needed, |g| g.0.max(needed)),
                    gate.map_or(Instant::now() + SYNC_WAIT, |g| g.1),
                ));
            }
            _ = synced.changed(), if gate.is_some() => {}
            _ = tokio::time::sleep_until(hold.unwrap_or(now)), if hold.is_some() => {}
            _ = tokio::time::sleep_until(gate.map_or(now, |g| g.1)), if gate.is_some() => {}
            _ = tokio::time::sleep_until(retry_at.unwrap_or(now + Duration::from_secs(5))) => {
                if retry_at.is_none() && busy.is_empty() {
                    (full, fresh) = (true, true);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effect::{MsgType, OutgoingMessage};
    use crate::model::{IncidentTag, Status};
    use crate::store::OutboxEntry;

    fn msg(incident: Option<u64>) -> OutgoingMessage {
        OutgoingMessage {
            msgtype: MsgType::Text,
            body: "b".into(),
            html: "b".into(),
            mentions_room: false,
            incident: incident.map(|n| IncidentTag {
                id: IncidentId::from_seq(n),
                status: Status::Confirmed,
                version: 1,
                origin: Arc::from("o"),
                hops: 0,
            }),
        }
    }

    fn q(seq: u64, effect: Effect) -> Queued {
        Queued {
            seq,
            entry: OutboxEntry {
                txn_id: format!("t{seq}"),
                at_ms: 0,
                effect,
            },
        }
    }

    fn relay(seq: u64, room: &str, incident: u64) -> Queued {
        q(
            seq,
            Effect::Relay {
                room: room.into(),
                message: msg(Some(incident)),
            },
        )
    }

    fn edit(seq: u64, room: &str, incident: u64) -> Queued {
        q(
            seq,
            Effect::Edit {
                room: room.into(),
                message: msg(Some(incident)),
            },
        )
    }

    fn ack(seq: u64, room: &str, incident: Option<u64>) -> Queued {
        q(
            seq,
            Effect::Reply {
                room: room.into(),
                in_reply_to: format!("$r{seq}"),
                message: msg(incident),
            },
        )
    }

    #[test]
    fn alerts_go_first_and_an_update_waits_for_its_alert_in_that_room() {
        let queue = [
            ack(1, "!a", Some(7)),
            relay(2, "!a", 7),
            edit(3, "!a", 7),
            relay(4, "!b", 7),
            edit(5, "!b", 7),
            ack(6, "!a", None),
        ];
        let one = |_: &str| 1;
        let go = schedule(&queue, &HashSet::new(), one);
        // B's alert first; in A the acknowledgment came first in its chain, so A's alert
        // and both edits wait; one message per room.
        assert_eq!(go, vec![4, 1]);
        // While a room sends its one message, it sends nothing else.
        let busy = HashSet::from([1, 4]);
        assert_eq!(schedule(&queue, &busy, one), Vec::<u64>::new());
        // With the acknowledgment and B's alert sent, A's alert and B's edit go.
        let queue = [
            ack(6, "!a", None),
            relay(2, "!a", 7),
            edit(3, "!a", 7),
            edit(5, "!b", 7),
        ];
        assert_eq!(schedule(&queue, &HashSet::new(), one), vec![2, 5]);
    }

    #[test]
    fn everything_but_alerts_waits_while_alerts_go_out_and_briefly_after() {
        let t = Instant::now();
        // Nothing sent yet: nothing waits.
        assert_eq!(updates_at(None, None), None);
        // An alert in flight holds the rest, at most HOLD_MAX from its start.
        assert_eq!(updates_at(Some(t), None), Some(t + HOLD_MAX));
        let later = t + Duration::from_millis(500);
        assert_eq!(updates_at(Some(t), Some(later)), Some(t + HOLD_MAX));
        // The last alert accepted: the rest goes SETTLE later.
        assert_eq!(updates_at(None, Some(later)), Some(later + SETTLE));
        assert!(SETTLE < HOLD_MAX);
    }

    #[test]
    fn a_room_sends_several_independent_messages_at_once_but_never_two_of_one_chain() {
        let queue = [
            relay(1, "!a", 7),
            edit(2, "!a", 7),
            ack(3, "!a", Some(8)),
            ack(4, "!a", Some(9)),
            ack(5, "!a", None),
            ack(6, "!a", None),
            ack(7, "!a", None),
        ];
        let three = |_: &str| 3;
        // Alert first; its edit waits for it; then the oldest independent messages.
        assert_eq!(schedule(&queue, &HashSet::new(), three), vec![1, 3, 4]);
        // Two in flight: one more may go, and the alert's edit still waits.
        let busy = HashSet::from([1, 3]);
        assert_eq!(schedule(&queue, &busy, three), vec![4]);
        let busy = HashSet::from([1, 3, 4]);
        assert_eq!(schedule(&queue, &busy, three), Vec::<u64>::new());
        // The alert sent: its edit goes with the rest.
        assert_eq!(schedule(&queue[1..], &HashSet::new(), three), vec![2, 3, 4]);
        // No limit to speak of: everything but the edit goes.
        assert_eq!(
            schedule(&queue, &HashSet::new(), |_| 100),
            vec![1, 3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn a_room_in_backoff_holds_up_no_other_room_and_incidents_do_not_wait_for_each_other() {
        let queue = [
            relay(1, "!slow", 1),
            relay(2, "!slow", 2),
            ack(3, "!fast", Some(1)),
            edit(4, "!fast", 1),
            relay(5, "!fast", 2),
            ack(6, "!fast", Some(3)),
        ];
        let go = schedule(&queue, &HashSet::new(), |r| usize::from(r != "!slow"));
        // The failing room waits alone; in the other, incident 2's alert overtakes
        // incident 1's acknowledgment (different incidents).
        assert_eq!(go, vec![5], "the failing room waits alone");
        let go = schedule(&queue, &HashSet::new(), |_| 1);
        assert_eq!(go, vec![1, 5]);
        // Incident 2's alert sent: incident 1's acknowledgment goes before its edit.
        let queue = [
            ack(3, "!fast", Some(1)),
            edit(4, "!fast", 1),
            ack(6, "!fast", Some(3)),
        ];
        assert_eq!(schedule(&queue, &HashSet::new(), |_| 1), vec![3]);
        assert_eq!(schedule(&queue, &HashSet::new(), |_| 2), vec![3, 6]);
        let queue = [edit(4, "!fast", 1), ack(6, "!fast", Some(3))];
        assert_eq!(schedule(&queue, &HashSet::new(), |_| 1), vec![4]);
    }
}
