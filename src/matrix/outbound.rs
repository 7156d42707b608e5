//! Outbound: sending one outbox entry.
//!
//! Owns: sending a queued effect with its transaction ID (a fade: redacting, one by
//! one, the bot's messages the store lists for it); telling apart what must be tried
//! again (rate limits, server errors, lost connections, rooms not joined yet) from
//! what the server refused for good, which is dropped and said in the coordination
//! room; refusing alerts for unencrypted rooms; recording in the store what became of
//! the entry. An entry leaves the outbox only once the server accepted it (or refused
//! it for good).
//! Must not touch: when entries go, or how many at once (the sender task, `sender`),
//! decisions or wording (the outbox holds worded effects).

use matrix_sdk::{
    Client, RoomState,
    ruma::{OwnedEventId, OwnedRoomId, OwnedTransactionId},
};
use tracing::{debug, warn};

use super::ShellError;
use super::content::{ROOM_MESSAGE, is_alert, message_content};
use crate::config::Network;
use crate::effect::Effect;
use crate::model::IncidentId;
use crate::render::{Catalogs, Undelivered, undelivered_notice};
use crate::store::{Sent, SledStore, Store};

/// What became of one outbox entry.
#[derive(Debug)]
pub(super) enum SendOutcome {
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
pub(super) async fn send_one(
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
