//! Input: the sync loop, the event handlers that hand events to `inbound`, and the
//! retries of events that could not be decrypted yet. All of it stops at the stop.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use matrix_sdk::{
    Client, Room, RoomState,
    config::SyncSettings,
    ruma::{
        OwnedRoomId,
        api::client::sync::sync_events::v3::Filter,
        events::{
            reaction::OriginalSyncReactionEvent,
            room::{
                encrypted::OriginalSyncRoomEncryptedEvent, message::OriginalSyncRoomMessageEvent,
                redaction::OriginalSyncRoomRedactionEvent,
            },
        },
        serde::Raw,
    },
    sync::SyncResponse,
};
use tokio::task::JoinSet;
use tracing::{Instrument, debug_span, info, warn};

use super::catch_up::{last_synced, note_synced, read_back_from};
use super::inbound::{Inbound, read_back_rooms};
use super::reload::LiveNet;
use super::{Stop, stopped};
use crate::config::Network;
use crate::metrics::Metrics;
use crate::store::SledStore;

/// How often the time of the last completed sync is recorded.
const NOTE_SYNC_EVERY_MS: i64 = 5_000;

/// Messages queued beyond which the sync loop polls instead of long-polling (see
/// [`sync_loop`]): more than a fan-out to 50 rooms (an alert and a location each).
const BURST: i64 = 128;
/// How often the sync loop polls while a burst is going out.
const BURST_POLL: Duration = Duration::from_millis(250);

/// How the next sync asks, with `queued` messages in the outbox: the pause before it
/// (`None`: none), and how long the homeserver may hold it open for something new.
/// Nothing queued: a long poll of 10 s. Something queued: 1 s (the SDK sends the key
/// queries an encrypted send may wait for only between syncs). A burst (more than
/// [`BURST`]): no long poll, a poll every [`BURST_POLL`] (see [`sync_loop`]); never a
/// pause before the first sync.
fn polling(queued: i64, first: bool) -> (Option<Duration>, Duration) {
    if queued > BURST {
        ((!first).then_some(BURST_POLL), Duration::ZERO)
    } else if queued > 0 {
        (None, Duration::from_secs(1))
    } else {
        (None, Duration::from_secs(10))
    }
}

/// Rooms to read back: each with where to start (`None`: from its newest event).
type Gaps = Vec<(OwnedRoomId, Option<String>)>;

/// The bot's sync filter: its own timeline events, presence, typing notices and read
/// receipts left out (state, invites, account data, keys and to-device messages still
/// come). None of those is input, and each would end the long poll: a sync in
/// progress for a read receipt is one a new report waits behind.
fn own_messages_left_out(client: &Client) -> Filter {
    use matrix_sdk::ruma::api::client::filter::{
        Filter as EventFilter, FilterDefinition, RoomEventFilter, RoomFilter,
    };
    let mut timeline = RoomEventFilter::default();
    if let Some(me) = client.user_id() {
        timeline.not_senders = vec![me.to_owned()];
    }
    let mut room = RoomFilter::default();
    room.timeline = timeline;
    room.ephemeral = RoomEventFilter::ignore_all();
    let mut def = FilterDefinition::default();
    def.room = room;
    def.presence = EventFilter::ignore_all();
    Filter::FilterDefinition(def)
}

/// The sync loop.
///
/// Nothing is skipped: after the first sync, each room of the network and the
/// coordination room are read back since the last sync before the stop (see
/// [`read_back_from`]: reports, verifier actions, reactions, redactions and commands
/// from while the bot was down, and any that were received but not yet committed when
/// it stopped); after that, whenever a sync leaves a gap in a room's timeline, the gap
/// is read back. The engine drops events it has already handled, so each takes effect
/// exactly once, in server order.
///
/// At the stop, the sync in flight is dropped and the read-backs in progress end (what
/// they had not handed over yet, like the events of a sync cut short, is read back at the
/// next start); the loop returns once they have.
pub(super) async fn sync_loop(
    client: Client,
    live: LiveNet,
    store: SledStore,
    inbound: Arc<Inbound>,
    metrics: Arc<Metrics>,
    beat: tokio::sync::watch::Sender<u64>,
    mut stop: Stop,
) {
    // How far back to read at start: from the network at start.
    let net = live.get();
    let read_back_ms = dedupe_window_ms(&net);
    let limit_ms = net
        .neighborhoods()
        .iter()
        .map(|n| n.settings.expiry_hours)
        .fold(net.defaults.expiry_hours, u32::max);
    // Never further back than the handled event IDs are remembered (less a day), so
    // nothing read back is handled twice.
    let limit_ms =
        (i64::from(limit_ms) * 3_600_000).min((crate::store::SEEN_KEEP_DAYS - 1) * 86_400_000);
    let last_sync = last_synced(&store);
    let mut noted_at = 0i64;
    // Driven by hand with `sync_once`: the SDK's own loop (`sync`,
    // `sync_with_result_callback`) sleeps up to a second whenever the previous sync
    // returned in less than one, and the bot's own sends wake its sync, so every new
    // report would wait for that sleep. Here the next request leaves at once; only
    // errors back off (0.5 s doubling to 5 s, so a restarted homeserver costs a few
    // seconds at most).
    //
    // The long poll is short (1 s) while messages wait to be sent: the SDK sends the
    // key queries that an encrypted send may wait for (up to 5 s) only between
    // syncs, so a send must never wait for a long poll to end.
    //
    // The bot's own messages are left out of its sync: it has nothing to do with
    // them, and each one would otherwise end the long poll, one whole sync (request,
    // response, store writes) per message sent, on both sides.
    //
    // While a burst is going out (more than [`BURST`] messages queued: a catch-up after
    // downtime), the bot keeps no long poll open: the homeserver wakes it for each of
    // the bot's own messages and computes a whole sync that the filter then empties
    // (issue 25's catch-up: 11 of the bot's syncs cost hs1 as much database time as
    // a neighbor's 122). It asks every [`BURST_POLL`] instead, without waiting.
    let mut settings = SyncSettings::default().filter(own_messages_left_out(&client));
    let mut first = true;
    let mut backoff = Duration::from_millis(500);
    // Read-backs in progress (off the sync loop: reading back must not delay new events).
    let mut reads = JoinSet::new();
    loop {
        while reads.try_join_next().is_some() {}
        let (pause, poll) = polling(metrics.outbox_len(), first);
        if let Some(pause) = pause {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped(&mut stop) => break,
            }
        }
        settings = settings.timeout(poll);
        let synced = tokio::select! {
            r = client.sync_once(settings.clone()).instrument(debug_span!("sync")) => r,
            _ = stopped(&mut stop) => break,
        };
        let resp = match synced {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "sync failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut stop) => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        metrics.synced();
        beat.send_modify(|n| *n += 1);
        settings = settings.token(resp.next_batch.clone());
        let now = Utc::now().timestamp_millis();
        let since = if first {
            read_back_from(now, last_sync, read_back_ms, limit_ms)
        } else {
            // After a gap: over the dedupe window of the network as it is now.
            now - dedupe_window_ms(&live.get())
        };
        if now - noted_at >= NOTE_SYNC_EVERY_MS {
            note_synced(&store, now);
            noted_at = now;
        }
        let gaps = gaps(&client, &live.get(), &resp, first);
        if first {
            // Logged in and synced: ready, for systemd (`Type=notify`).
            crate::service::notify(crate::service::Readiness::Ready);
            let (client, net, store) = (client.clone(), Arc::clone(&net), store.clone());
            reads.spawn(async move {
                super::warnings::check_coordination_at_start(&client, &net, &store).await;
            });
        }
        if first || !gaps.is_empty() {
            let (client, h, mut stop) = (client.clone(), Arc::clone(&inbound), stop.clone());
            reads.spawn(async move {
                tokio::select! {
                    () = read_back(&h, &client, &gaps, since, first) => {}
                    _ = stopped(&mut stop) => {}
                }
            });
        }
        first = false;
    }
    while reads.join_next().await.is_some() {}
}

/// The rooms of the network (the coordination room included) to read back after a
/// sync: all of them after the first, then those whose timeline the sync left a gap in.
fn gaps(client: &Client, net: &Network, resp: &SyncResponse, first: bool) -> Gaps {
    let ours = |id: &str| {
        net.neighborhood_of_room(id).is_some() || net.coordination_room.as_deref() == Some(id)
    };
    if first {
        client
            .joined_rooms()
            .into_iter()
            .filter(|r| ours(r.room_id().as_str()))
            .map(|r| (r.room_id().to_owned(), None))
            .collect()
    } else {
        resp.rooms
            .joined
            .iter()
            .filter(|(_, u)| u.timeline.limited)
            .filter(|(id, _)| ours(id.as_str()))
            .map(|(id, u)| (id.clone(), u.timeline.prev_batch.clone()))
            .collect()
    }
}

/// Reads `gaps` back to `since` (ms); after the `first` sync, also tries every event
/// kept undecryptable, and says how the catch-up went.
async fn read_back(h: &Inbound, client: &Client, gaps: &Gaps, since: i64, first: bool) {
    let started = std::time::Instant::now();
    let events = read_back_rooms(h, client, gaps, since).await;
    if first {
        h.retry_undecrypted(client, None).await;
        info!(
            rooms = gaps.len(),
            events,
            ms = started.elapsed().as_millis() as u64,
            "caught up: {events} event(s) read back from {} room(s)",
            gaps.len()
        );
    }
}

/// Every event kind the core reads goes to `inbound`; events that cannot be decrypted
/// yet are kept (and tried again by [`watch_undecrypted`]).
pub(super) fn route_events(client: &Client, inbound: &Arc<Inbound>) {
    let h = Arc::clone(inbound);
    client.add_event_handler(
        move |ev: OriginalSyncRoomMessageEvent,
              room: Room,
              raw: matrix_sdk::event_handler::RawEvent| {
            let h = Arc::clone(&h);
            async move {
                if room.state() == RoomState::Joined {
                    h.message(&ev, raw.0.get(), &room).await;
                }
            }
        },
    );
    let h = Arc::clone(inbound);
    client.add_event_handler(move |ev: OriginalSyncReactionEvent, room: Room| {
        let h = Arc::clone(&h);
        async move { h.reaction(&ev, &room).await }
    });
    let h = Arc::clone(inbound);
    client.add_event_handler(move |ev: OriginalSyncRoomRedactionEvent, room: Room| {
        let h = Arc::clone(&h);
        async move { h.redaction(&ev, &room).await }
    });
    // Events that could not be decrypted yet: kept in sled, and handled when their keys
    // arrive (the SDK re-decrypts for its timeline, but never calls event handlers again).
    let h = Arc::clone(inbound);
    client.add_event_handler(
        move |_ev: OriginalSyncRoomEncryptedEvent,
              room: Room,
              raw: matrix_sdk::event_handler::RawEvent| {
            let h = Arc::clone(&h);
            async move {
                let raw: Raw<OriginalSyncRoomEncryptedEvent> = Raw::from_json(raw.0.clone());
                h.keep_undecrypted(room.room_id(), &raw);
            }
        },
    );
}

/// The longest dedupe window of `net`, in ms: how far back a gap is read.
fn dedupe_window_ms(net: &Network) -> i64 {
    let min = net
        .neighborhoods()
        .iter()
        .map(|n| n.settings.dedupe_window_min)
        .fold(net.defaults.dedupe_window_min, u32::max);
    i64::from(min) * 60_000
}

/// Events kept undecryptable are tried again, in `tasks`: those of a room whenever its
/// keys arrive, and all of them every few seconds, so their senders are asked to send
/// them again in time. Both end at the stop (a retry cut short leaves its events kept).
pub(super) async fn watch_undecrypted(
    tasks: &mut JoinSet<()>,
    client: &Client,
    inbound: &Arc<Inbound>,
    net: &Network,
    stop: &Stop,
) {
    if let Some(mut keys) = client.encryption().room_keys_received_stream().await {
        let (client, h, mut stop) = (client.clone(), Arc::clone(inbound), stop.clone());
        tasks.spawn(async move {
            use futures_util::StreamExt;
            loop {
                let infos = tokio::select! {
                    k = keys.next() => match k {
                        Some(Ok(infos)) => infos,
                        _ => break,
                    },
                    _ = stopped(&mut stop) => break,
                };
                if h.undecrypted() == 0 {
                    continue;
                }
                let rooms: Vec<OwnedRoomId> = infos.iter().map(|i| i.room_id.clone()).collect();
                tokio::select! {
                    () = h.retry_undecrypted(&client, Some(&rooms)) => {}
                    _ = stopped(&mut stop) => break,
                }
            }
        });
    }
    let (client, h, mut stop) = (client.clone(), Arc::clone(inbound), stop.clone());
    let every = Duration::from_secs(net.matrix.as_ref().map_or(5, |m| {
        u64::from(m.ask_resend_after_s).div_ceil(2).clamp(1, 5)
    }));
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped(&mut stop) => break,
            }
            if h.undecrypted() > 0 {
                tokio::select! {
                    () = h.retry_undecrypted(&client, None) => {}
                    _ = stopped(&mut stop) => break,
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_polled_and_anything_less_long_polled() {
        // Idle: a long poll of 10 s; messages waiting: 1 s.
        assert_eq!(polling(0, false), (None, Duration::from_secs(10)));
        assert_eq!(polling(1, false), (None, Duration::from_secs(1)));
        // A fan-out to 50 rooms (an alert and a location each) is no burst.
        assert_eq!(polling(100, false), (None, Duration::from_secs(1)));
        assert_eq!(polling(BURST, false), (None, Duration::from_secs(1)));
        // A catch-up's hundreds: a poll every BURST_POLL, nothing held open.
        assert_eq!(
            polling(BURST + 1, false),
            (Some(BURST_POLL), Duration::ZERO)
        );
        assert_eq!(polling(874, false), (Some(BURST_POLL), Duration::ZERO));
        // The first sync at start never waits.
        assert_eq!(polling(874, true), (None, Duration::ZERO));
    }
}
