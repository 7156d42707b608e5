//! The shell's own warnings to the coordination room, plain notices with no incident
//! detail: the homeserver rate-limits the bot; the coordination room is not encrypted.
//!
//! Owns: sending those notices (best effort, a few tries), and the record of the
//! coordination room found unencrypted (for `neighborwatch check --state`). Must not
//! touch: the outbox, wording (the catalogs'), incident details.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use matrix_sdk::ruma::{OwnedRoomId, OwnedTransactionId};
use matrix_sdk::{Client, Room, RoomState};
use tracing::{debug, warn};

use super::content::{ROOM_MESSAGE, message_content};
use crate::config::Network;
use crate::effect::Effect;
use crate::render::{Catalogs, Undelivered, undelivered_notice};
use crate::store::SledStore;

/// The coordination room was told (this run) that it must be encrypted.
static TOLD_UNENCRYPTED: AtomicBool = AtomicBool::new(false);

/// Whether `room` is end-to-end encrypted (unknown: not).
pub(crate) async fn encrypted(room: &Room) -> bool {
    room.latest_encryption_state()
        .await
        .map(|s| s.is_encrypted())
        .unwrap_or(false)
}

/// The network's coordination room, if it has one the client knows.
pub(crate) fn coordination_room(client: &Client, net: &Network) -> Option<Room> {
    net.coordination_room
        .as_deref()
        .and_then(|c| <OwnedRoomId>::try_from(c).ok())
        .and_then(|c| client.get_room(&c))
}

/// Where the shell records what it last found of the coordination room's encryption,
/// for `neighborwatch check --state` (the room ID, a space, and when, in ms).
const UNENCRYPTED_KEY: &[u8] = b"coordination_unencrypted";

/// The coordination room the bot last found unencrypted at a start, and when (ms since
/// 1970); `None` if it found it encrypted, or never looked.
pub fn coordination_seen_unencrypted(store: &SledStore) -> Option<(String, i64)> {
    let stored = store
        .db()
        .open_tree("shell")
        .ok()?
        .get(UNENCRYPTED_KEY)
        .ok()??;
    let text = std::str::from_utf8(&stored).ok()?;
    let (room, at) = text.split_once(' ')?;
    Some((room.to_owned(), at.parse().ok()?))
}

/// Records what the bot found of the coordination room's encryption at start.
fn note_coordination(store: &SledStore, room: &Room, unencrypted: bool) {
    let tree = store.db().open_tree("shell");
    let done = tree.and_then(|t| {
        if unencrypted {
            let v = format!("{} {}", room.room_id(), Utc::now().timestamp_millis());
            t.insert(UNENCRYPTED_KEY, v.as_bytes()).map(|_| ())
        } else {
            t.remove(UNENCRYPTED_KEY).map(|_| ())
        }
    });
    // Once per start: flushed now, so a bot stopped right after still has it on disk.
    if let Err(e) = done.and_then(|()| store.db().flush().map(|_| ())) {
        warn!(error = %e, "cannot record the coordination room's encryption");
    }
}

/// At start (after the first sync, when the room's state is known): an unencrypted
/// coordination room is said in the log, recorded for `neighborwatch check --state`,
/// and told once, in the room, that it must be encrypted; no incident details go there
/// until it is (see [`refuse_in_unencrypted_coordination`]).
pub(crate) async fn check_coordination_at_start(client: &Client, net: &Network, store: &SledStore) {
    if net.allow_unencrypted {
        return;
    }
    let Some(room) = coordination_room(client, net) else {
        return;
    };
    // Judged only in a joined room whose state is known: a room just joined, or only
    // invited to, says nothing yet (the refusal at the first detail still tells it).
    if room.state() != RoomState::Joined {
        return;
    }
    match room.latest_encryption_state().await {
        Ok(state) if !state.is_encrypted() => note_coordination(store, &room, true),
        Ok(_) => return note_coordination(store, &room, false),
        Err(_) => return,
    }
    warn!(
        "the coordination room is not encrypted: no incident details will be posted there until it is; turn on encryption in its settings"
    );
    tell_unencrypted(net, &room).await;
}

/// Tells the coordination room, once per run, that it must be encrypted (again at the
/// next refusal if the room could not be told yet: not joined, say).
async fn tell_unencrypted(net: &Network, room: &Room) {
    if TOLD_UNENCRYPTED.load(Ordering::Relaxed) || room.state() != RoomState::Joined {
        return;
    }
    let message = undelivered_notice(
        net,
        Catalogs::builtin(),
        "",
        "",
        Undelivered::CoordinationUnencrypted,
    );
    if send_notice(room, message, "nw-coordination-unencrypted".into(), 3).await {
        TOLD_UNENCRYPTED.store(true, Ordering::Relaxed);
    }
}

/// Whether `effect` would put incident details into the coordination room while it is
/// not encrypted and the network file does not allow that; the room is told once (per
/// run, and the transaction ID is fixed so the homeserver drops a repeat) that it must be
/// encrypted, in a message with no details.
pub(crate) async fn refuse_in_unencrypted_coordination(
    net: &Network,
    room: &Room,
    effect: &Effect,
) -> bool {
    if net.allow_unencrypted
        || net.coordination_room.as_deref() != Some(effect.room())
        || effect.incident().is_none()
        || encrypted(room).await
    {
        return false;
    }
    if !TOLD_UNENCRYPTED.load(Ordering::Relaxed) {
        warn!("the coordination room is not encrypted: no incident details are posted there");
    }
    tell_unencrypted(net, room).await;
    true
}

/// Sends a plain notice to `room`, trying `tries` times (waiting 2 s, 4 s, … between).
pub(crate) async fn send_notice(
    room: &Room,
    message: crate::effect::OutgoingMessage,
    txn: OwnedTransactionId,
    tries: u32,
) -> bool {
    let notice = Effect::Notice {
        room: room.room_id().to_string(),
        message,
    };
    let Ok(content) = message_content(&notice, None) else {
        return false;
    };
    let mut wait = Duration::from_secs(2);
    for n in 0..tries {
        match room
            .send_raw(ROOM_MESSAGE, content.clone())
            .with_transaction_id(&txn)
            .await
        {
            Ok(_) => return true,
            Err(e) => debug!(error = %e, "could not warn the coordination room yet"),
        }
        if n + 1 < tries {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    false
}

/// Tells the coordination room, once per episode (see [`super::ratelimit`]), that the
/// homeserver is rate-limiting the bot, trying a few times (it is rate-limited too).
pub(crate) async fn tell_rate_limited(client: Client, net: Arc<Network>) {
    let Some(c) = coordination_room(&client, &net) else {
        return;
    };
    let message = undelivered_notice(&net, Catalogs::builtin(), "", "", Undelivered::RateLimited);
    let txn = format!("nw-rate-limited-{}", Utc::now().timestamp()).into();
    if !send_notice(&c, message, txn, 6).await {
        warn!("could not tell the coordination room that the bot is rate-limited");
    }
}
