//! Outbound: draining the durable outbox into the rooms.
//!
//! Owns: sending each queued effect with its transaction ID, oldest first per room;
//! retrying with backoff what failed for now (rate limits, server errors, lost
//! connections, rooms not joined yet); dropping what the server refused for good, and
//! saying so in the coordination room; refusing alerts for unencrypted rooms. An entry
//! leaves the outbox only once the server accepted it (or refused it for good).
//! Must not touch: decisions or wording (the outbox holds worded effects).

use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::{
    Client, RoomState,
    ruma::{OwnedRoomId, OwnedTransactionId, TransactionId},
};
use tokio::sync::Notify;
use tracing::{Instrument, debug, info_span, warn};

use super::ShellError;
use super::content::{ROOM_MESSAGE, is_alert, message_content};
use crate::config::Network;
use crate::effect::Effect;
use crate::store::{Queued, Sent, SledStore, Store};
use futures_util::StreamExt;

/// Why one outbox entry was not sent this round.
enum SendOutcome {
    Sent,
    /// Retry later (rate limit, server error, network, not joined yet).
    Later(String),
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
async fn tell_coordination(client: &Client, net: &Network, body: String) {
    let Some(c) = net
        .coordination_room
        .as_deref()
        .and_then(|c| <OwnedRoomId>::try_from(c).ok())
        .and_then(|c| client.get_room(&c))
    else {
        return;
    };
    let content = serde_json::json!({"msgtype": "m.notice", "body": body, "m.mentions": {}});
    let txn = TransactionId::new();
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
        return Ok(SendOutcome::Sent);
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
                let body = format!(
                    "Refused to post an alert into {room_id}: the room is not end-to-end encrypted. Turn on encryption there, or set allow_unencrypted in the network file."
                );
                tell_coordination(client, net, body).await;
            }
            store.outbox_sent(seq, None)?;
            return Ok(SendOutcome::Sent);
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
            return Ok(SendOutcome::Sent);
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
            if let Effect::Relay { message, .. } = effect {
                let incident = message
                    .incident
                    .as_ref()
                    .map_or_else(String::new, |t| format!(" for incident {}", t.id));
                let body = format!(
                    "Could not post the alert{incident} into {room_id}: the server refused it ({e}). Check that the bot may post there (power levels), then ask a neighbor there to repeat the report if it still matters."
                );
                tell_coordination(client, net, body).await;
            }
            store.outbox_sent(seq, None)?;
            Ok(SendOutcome::Sent)
        }
        Err(e) => Ok(SendOutcome::Later(e.to_string())),
    }
}

/// Fault injection for crash tests: with `NEIGHBORWATCH_FAULT=hold-outbox` the sender
/// sends nothing, so a test can kill the bot between a commit and its sends.
pub const FAULT_ENV: &str = "NEIGHBORWATCH_FAULT";

/// Rooms sent to at the same time.
const MAX_ROOMS_AT_ONCE: usize = 16;

pub(crate) async fn send_loop(
    client: Client,
    net: Arc<Network>,
    store: SledStore,
    ready: Arc<Notify>,
) {
    if std::env::var(FAULT_ENV).is_ok_and(|f| f == "hold-outbox") {
        warn!("fault injection: the outbox is held; nothing will be sent");
        std::future::pending::<()>().await;
    }
    let mut backoff = Duration::from_millis(200);
    loop {
        let queued = match store.outbox() {
            Ok(q) => q,
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Rooms are sent to concurrently (a room that is slow or failing holds up only
        // itself); within a room, in queue order, stopping at the first entry that must
        // wait (nothing overtakes it: an edit or thread reply needs its alert first).
        // Rooms with an alert waiting go first.
        let mut rooms: Vec<(String, Vec<Queued>)> = Vec::new();
        for q in queued {
            let room = q.entry.effect.room();
            match rooms.iter_mut().find(|(r, _)| r == room) {
                Some((_, v)) => v.push(q),
                None => rooms.push((room.to_owned(), vec![q])),
            }
        }
        rooms.sort_by_key(|(_, v)| {
            !v.iter()
                .any(|q| matches!(q.entry.effect, Effect::Relay { .. }))
        });
        let failed = futures_util::stream::iter(rooms.into_iter().map(|(room, entries)| {
            let (client, net, mut store) = (client.clone(), Arc::clone(&net), store.clone());
            async move {
                for q in entries {
                    let span = info_span!("send", room = %room, seq = q.seq);
                    match send_one(
                        &client,
                        &net,
                        &mut store,
                        q.seq,
                        &q.entry.txn_id,
                        &q.entry.effect,
                    )
                    .instrument(span)
                    .await
                    {
                        Ok(SendOutcome::Sent) => {}
                        Ok(SendOutcome::Later(why)) => {
                            debug!(reason = %why, "will retry");
                            return false;
                        }
                        Err(e) => {
                            warn!(error = %e, "outbox bookkeeping failed");
                            return false;
                        }
                    }
                }
                true
            }
        }))
        .buffer_unordered(MAX_ROOMS_AT_ONCE)
        .collect::<Vec<bool>>()
        .await
        .contains(&false);
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = ready.notified() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        } else {
            backoff = Duration::from_millis(200);
            tokio::select! {
                _ = ready.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}
