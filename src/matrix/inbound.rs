//! Inbound: every way an event reaches the engine, and the guarantees around it.
//!
//! Owns: turning decrypted events into [`IncomingMessage`]s, reading room history back
//! (after a restart, and whenever a sync skipped events), and the events that cannot be
//! decrypted yet, which are kept in sled until their keys arrive, across restarts.
//! Must not touch: decisions; deduplication is the engine's (event IDs in sled), so
//! handing it the same event twice is always safe.

use chrono::{DateTime, TimeZone, Utc};
use matrix_sdk::{
    Client, Room,
    room::MessagesOptions,
    ruma::{
        OwnedRoomId, OwnedUserId, RoomId, UInt, UserId,
        events::{
            reaction::OriginalSyncReactionEvent,
            room::{
                encrypted::OriginalSyncRoomEncryptedEvent,
                message::{
                    MessageType, OriginalSyncRoomMessageEvent, Relation,
                    sanitize::remove_plain_reply_fallback,
                },
                power_levels::UserPowerLevel,
                redaction::OriginalSyncRoomRedactionEvent,
            },
        },
        serde::Raw,
    },
};
use serde_json::value::RawValue;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{Instrument, debug, info, warn};

use std::sync::Arc;

use super::content::INCIDENT_FIELD;
use super::reload::LiveNet;
use crate::incident::{Content, IncomingMessage, Member};
use crate::metrics::Metrics;
use crate::store::waiting::WaitingEvents;

/// An input for the engine, and when the bot received it.
#[derive(Debug)]
pub struct Received {
    /// The input.
    pub msg: IncomingMessage,
    /// When it was received (read from a sync, or from history).
    pub at: DateTime<Utc>,
    /// How many syncs must have completed before what it causes is sent (see
    /// `sender::SYNC_WAIT`).
    pub after_sync: u64,
}

/// Most history pages read back per room at once (of 100 events each).
const MAX_PAGES: usize = 20;

/// An event's server time, bounded by the local receive time: a message claiming to be
/// from the future (a remote server's clock, or a forged timestamp) counts as sent now.
fn to_utc(ts: matrix_sdk::ruma::MilliSecondsSinceUnixEpoch) -> DateTime<Utc> {
    let now = Utc::now();
    Utc.timestamp_millis_opt(i64::from(ts.get()))
        .single()
        .map_or(now, |t| t.min(now))
}

/// Whether an event's content (or, for an edit, its `m.new_content`) carries the incident
/// tag of a bot's message ([`INCIDENT_FIELD`]): a forwarded, copied or quoted alert is never
/// a sighting, nor a command, whoever sends it (PRODUCT.md §4).
pub fn carries_incident_tag(event_json: &str) -> bool {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Event {
        content: Option<Tagged>,
    }
    #[derive(serde::Deserialize)]
    struct Tagged {
        #[serde(rename = "org.neighborwatch.incident")]
        tag: Option<IgnoredAny>,
        #[serde(rename = "m.new_content")]
        new_content: Option<NewContent>,
    }
    #[derive(serde::Deserialize)]
    struct NewContent {
        #[serde(rename = "org.neighborwatch.incident")]
        tag: Option<IgnoredAny>,
    }
    debug_assert_eq!(INCIDENT_FIELD, "org.neighborwatch.incident");
    serde_json::from_str::<Event>(event_json)
        .ok()
        .and_then(|e| e.content)
        .is_some_and(|c| c.tag.is_some() || c.new_content.is_some_and(|n| n.tag.is_some()))
}

/// Turns a decrypted room message into the core's input; `None` for kinds it ignores.
/// A reply is read without the quote of the message it answers (the "reply fallback"
/// older clients put first), so a report sent as a reply is read as sent.
pub fn incoming(ev: &OriginalSyncRoomMessageEvent, room: &RoomId) -> Option<IncomingMessage> {
    let (msgtype, replaces) = match &ev.content.relates_to {
        Some(Relation::Replacement(r)) => (&r.new_content.msgtype, Some(r.event_id.to_string())),
        _ => (&ev.content.msgtype, None),
    };
    let body = |b: &str| match &ev.content.relates_to {
        Some(Relation::Reply { .. }) => remove_plain_reply_fallback(b).to_owned(),
        _ => b.to_owned(),
    };
    let content = match msgtype {
        MessageType::Text(t) => Content::Text {
            body: body(&t.body),
            notice: false,
            replaces,
        },
        MessageType::Notice(n) => Content::Text {
            body: body(&n.body),
            notice: true,
            replaces,
        },
        MessageType::Location(l) => Content::Location {
            geo_uri: l.geo_uri.clone(),
            body: l.body.clone(),
        },
        _ => return None,
    };
    Some(IncomingMessage {
        event_id: ev.event_id.to_string(),
        room: room.to_string(),
        sender: ev.sender.to_string(),
        ts: to_utc(ev.origin_server_ts),
        content,
        member: Member::default(),
    })
}

/// Turns a redaction (a deleted message) into the core's input; `None` when it names no
/// event.
pub fn redaction(ev: &OriginalSyncRoomRedactionEvent, room: &RoomId) -> Option<IncomingMessage> {
    let redacts = ev.redacts.as_ref().or(ev.content.redacts.as_ref())?;
    Some(IncomingMessage {
        event_id: ev.event_id.to_string(),
        room: room.to_string(),
        sender: ev.sender.to_string(),
        ts: to_utc(ev.origin_server_ts),
        content: Content::Redaction {
            redacts: redacts.to_string(),
            // Read from the room's power levels when it is handed on (`send`).
            may_redact_others: false,
        },
        member: Member::default(),
    })
}

/// What `room` says of `user`: their power level (room creators of room version 12,
/// who outrank everyone, as `i64::MAX`; the SDK knows the rules) and when their
/// membership event was sent (a later profile change counts as joining then: the safe
/// side for `min_member_hours`).
pub async fn member_of(room: &Room, user: &UserId) -> Member {
    let power = match room.get_user_power_level(user).await {
        Ok(UserPowerLevel::Infinite) => i64::MAX,
        Ok(UserPowerLevel::Int(i)) => i.into(),
        Ok(_) => 0,
        Err(e) => {
            warn!(error = %e, "cannot read the room's power levels; treating the sender as a neighbor");
            0
        }
    };
    let since = match room.get_member(user).await {
        Ok(Some(m)) => m.event().origin_server_ts().map(to_utc),
        _ => None,
    };
    Member { power, since }
}

/// Whether `room`'s power levels let `user` redact other people's events (their level
/// reaches the room's `redact` level); no when they cannot be read.
async fn may_redact_others_in(room: &Room, user: &UserId) -> bool {
    match room.power_levels().await {
        Ok(levels) => levels.user_can_redact_event_of_other(user),
        Err(e) => {
            warn!(error = %e, "cannot read the room's power levels; a redaction withdraws only the sender's own report");
            false
        }
    }
}

/// A `!nw relay request #alias:server` names its room by alias; the core knows rooms by
/// ID, so the alias is resolved here (one request, for this rare command). When it
/// cannot be, the command goes on as typed and the engine answers that it knows no such
/// room.
async fn resolve_alias_in_command(room: &Room, m: &mut IncomingMessage) {
    let Content::Text { body, .. } = &mut m.content else {
        return;
    };
    let Some(alias) = crate::command::alias_in_relay_request(body) else {
        return;
    };
    let Ok(parsed) = matrix_sdk::ruma::RoomAliasId::parse(alias) else {
        return;
    };
    match room.client().resolve_room_alias(&parsed).await {
        Ok(resp) => *body = body.replacen(alias, resp.room_id.as_str(), 1),
        Err(e) => debug!(error = %e, "cannot resolve the room alias of a relay request"),
    }
}

/// Turns a reaction into the core's input.
pub fn reaction(ev: &OriginalSyncReactionEvent, room: &RoomId) -> IncomingMessage {
    IncomingMessage {
        event_id: ev.event_id.to_string(),
        room: room.to_string(),
        sender: ev.sender.to_string(),
        ts: to_utc(ev.origin_server_ts),
        content: Content::Reaction {
            key: ev.content.relates_to.key.clone(),
            relates_to: ev.content.relates_to.event_id.to_string(),
        },
        member: Member::default(),
    }
}

/// Where events go on their way to the engine.
#[derive(Clone)]
pub struct Inbound {
    tx: UnboundedSender<Received>,
    metrics: Arc<Metrics>,
    syncs: tokio::sync::watch::Receiver<u64>,
    me: Option<OwnedUserId>,
    /// Events from before the bot's state store existed are never handled.
    catch_up_from: i64,
    /// Undecryptable events, sealed in the store until their keys arrive.
    utd: WaitingEvents,
    /// For how long an undecryptable event waits: its room's `retention_hours`.
    net: LiveNet,
    /// After this long undecryptable, a message's sender is asked to send it again.
    ask_resend_after_ms: i64,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("catch_up_from", &self.catch_up_from)
            .finish_non_exhaustive()
    }
}

/// An encrypted event's server timestamp in milliseconds (0 when missing).
fn sent_at_ms(raw: &Raw<OriginalSyncRoomEncryptedEvent>) -> i64 {
    raw.get_field::<UInt>("origin_server_ts")
        .ok()
        .flatten()
        .map_or(0, i64::from)
}

impl Inbound {
    /// Events go to `tx`; undecryptable ones wait in `utd` for as long as their room's
    /// `retention_hours` in `net`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        tx: UnboundedSender<Received>,
        metrics: Arc<Metrics>,
        syncs: tokio::sync::watch::Receiver<u64>,
        me: Option<OwnedUserId>,
        catch_up_from: i64,
        utd: WaitingEvents,
        net: LiveNet,
        ask_resend_after_s: u32,
    ) -> Self {
        Self {
            tx,
            metrics,
            syncs,
            me,
            catch_up_from,
            utd,
            net,
            ask_resend_after_ms: i64::from(ask_resend_after_s) * 1000,
        }
    }

    /// Asks the engine to answer a message that stayed undecryptable (it does so once:
    /// the request has an event ID of its own, so the message itself stays unhandled
    /// until its keys arrive).
    fn ask_resend(&self, room: &RoomId, raw: &Raw<OriginalSyncRoomEncryptedEvent>, ts: i64) {
        let (Ok(Some(event_id)), Ok(Some(sender))) = (
            raw.get_field::<String>("event_id"),
            raw.get_field::<OwnedUserId>("sender"),
        ) else {
            return;
        };
        if !self.wanted(&sender, ts) {
            return;
        }
        self.hand(
            IncomingMessage {
                event_id: format!("{event_id}#undecryptable"),
                room: room.to_string(),
                sender: sender.to_string(),
                ts: Utc
                    .timestamp_millis_opt(ts)
                    .single()
                    .unwrap_or_else(Utc::now),
                content: Content::Undecryptable { event_id },
                member: Member::default(),
            },
            false,
        );
    }

    fn wanted(&self, sender: &matrix_sdk::ruma::UserId, ts_ms: i64) -> bool {
        Some(sender) != self.me.as_deref() && ts_ms >= self.catch_up_from
    }

    /// Hands `m` to the engine, stamped with when it was received and (`from_sync`: it
    /// comes from the sync being processed) which sync must complete before what it
    /// causes is sent; true when it went.
    fn hand(&self, msg: IncomingMessage, from_sync: bool) -> bool {
        let at = Utc::now();
        self.metrics.events.inc();
        let lag_ms = (at - msg.ts).num_milliseconds().max(0);
        self.metrics.sync_lag.observe(lag_ms as f64 / 1000.0);
        let syncs = *self.syncs.borrow();
        let after_sync = if from_sync { syncs + 1 } else { syncs };
        self.tx
            .send(Received {
                msg,
                at,
                after_sync,
            })
            .is_ok()
    }

    /// Hands `m` to the engine with what `room` says of its sender; true when it went.
    async fn send(
        &self,
        room: &Room,
        mut m: IncomingMessage,
        sender: &UserId,
        from_sync: bool,
    ) -> bool {
        // A stage of the per-stage trace: what the room's state says of the sender.
        async {
            m.member = member_of(room, sender).await;
            if let Content::Redaction {
                may_redact_others, ..
            } = &mut m.content
            {
                *may_redact_others = may_redact_others_in(room, sender).await;
            }
            resolve_alias_in_command(room, &mut m).await;
            self.hand(m, from_sync)
        }
        .instrument(tracing::debug_span!("inbound"))
        .await
    }

    /// A decrypted room message from sync (`json`: the event as received).
    pub async fn message(&self, ev: &OriginalSyncRoomMessageEvent, json: &str, room: &Room) {
        if !self.wanted(&ev.sender, i64::from(ev.origin_server_ts.get())) {
            debug!("own event, or from before the store existed: skipped");
            return;
        }
        if carries_incident_tag(json) {
            debug!("a message carrying an incident tag: never a report; skipped");
            return;
        }
        if let Some(m) = incoming(ev, room.room_id()) {
            self.send(room, m, &ev.sender, true).await;
        }
    }

    /// A reaction from sync.
    pub async fn reaction(&self, ev: &OriginalSyncReactionEvent, room: &Room) {
        if self.wanted(&ev.sender, i64::from(ev.origin_server_ts.get())) {
            self.send(room, reaction(ev, room.room_id()), &ev.sender, true)
                .await;
        }
    }

    /// A redaction from sync, with what the room says of its sender (a moderator's
    /// withdraws someone else's report).
    pub async fn redaction(&self, ev: &OriginalSyncRoomRedactionEvent, room: &Room) {
        if self.wanted(&ev.sender, i64::from(ev.origin_server_ts.get()))
            && let Some(m) = redaction(ev, room.room_id())
        {
            self.send(room, m, &ev.sender, true).await;
        }
    }

    /// A decrypted (or plain) event as JSON, of any kind; true when it went to the engine.
    async fn json(&self, json: &str, room: &Room) -> bool {
        let room_id = room.room_id();
        #[derive(serde::Deserialize)]
        struct Kind<'a> {
            #[serde(rename = "type", borrow)]
            kind: &'a str,
        }
        match serde_json::from_str::<Kind<'_>>(json).map(|k| k.kind) {
            Ok("m.room.message") => {
                if let Ok(ev) = serde_json::from_str::<OriginalSyncRoomMessageEvent>(json)
                    && self.wanted(&ev.sender, i64::from(ev.origin_server_ts.get()))
                    && !carries_incident_tag(json)
                    && let Some(m) = incoming(&ev, room_id)
                {
                    return self.send(room, m, &ev.sender, false).await;
                }
            }
            Ok("m.reaction") => {
                if let Ok(ev) = serde_json::from_str::<OriginalSyncReactionEvent>(json)
                    && self.wanted(&ev.sender, i64::from(ev.origin_server_ts.get()))
                {
                    return self
                        .send(room, reaction(&ev, room_id), &ev.sender, false)
                        .await;
                }
            }
            Ok("m.room.redaction") => {
                if let Ok(ev) = serde_json::from_str::<OriginalSyncRoomRedactionEvent>(json)
                    && self.wanted(&ev.sender, i64::from(ev.origin_server_ts.get()))
                    && let Some(m) = redaction(&ev, room_id)
                {
                    return self.send(room, m, &ev.sender, false).await;
                }
            }
            _ => {}
        }
        false
    }

    /// Keeps an event that cannot be decrypted yet, until its key arrives (or its room's
    /// `retention_hours` pass).
    pub fn keep_undecrypted(&self, room: &RoomId, raw: &Raw<OriginalSyncRoomEncryptedEvent>) {
        let Ok(Some(event_id)) = raw.get_field::<String>("event_id") else {
            return;
        };
        if sent_at_ms(raw) < self.catch_up_from {
            return;
        }
        debug!("event not decryptable yet; kept until its key arrives");
        if let Err(e) = self.utd.keep(room.as_str(), &event_id, raw.json().get()) {
            warn!(error = %e, "cannot keep an undecryptable event");
        }
    }

    /// Number of events waiting for their keys.
    pub fn undecrypted(&self) -> usize {
        self.utd.len()
    }

    /// Tries again every kept event of `rooms` (all rooms when `None`): those that
    /// decrypt now go to the engine; for those still locked after
    /// `ask_resend_after_s`, the sender is asked to send the message again (once); those
    /// older than their room's `retention_hours` are dropped.
    pub async fn retry_undecrypted(&self, client: &Client, rooms: Option<&[OwnedRoomId]>) {
        let now = Utc::now().timestamp_millis();
        let net = self.net.get();
        let keep_ms =
            |room: &str| i64::from(net.settings_of_room(room).retention_hours) * 3_600_000;
        match self.utd.forget_expired(now, keep_ms) {
            Ok(0) => {}
            Ok(n) => warn!(
                dropped = n,
                "events stayed undecryptable for their room's retention time; dropped"
            ),
            Err(e) => warn!(error = %e, "cannot drop expired undecryptable events"),
        }
        let waiting = match self.utd.all() {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "cannot read the events waiting for their keys");
                return;
            }
        };
        for (slot, w) in waiting {
            let Ok(room_id) = RoomId::parse(&w.room) else {
                let _ = self.utd.remove(&slot);
                continue;
            };
            if rooms.is_some_and(|rs| !rs.contains(&room_id)) {
                continue;
            }
            let Ok(json) = RawValue::from_string(w.json) else {
                let _ = self.utd.remove(&slot);
                continue;
            };
            let raw: Raw<OriginalSyncRoomEncryptedEvent> = Raw::from_json(json);
            let ts = sent_at_ms(&raw);
            let Some(room) = client.get_room(&room_id) else {
                continue;
            };
            match room.decrypt_event(&raw, None).await {
                Ok(te) if !te.kind.is_utd() => {
                    info!("a late-decrypted event is handled");
                    self.json(te.raw().json().get(), &room).await;
                    let _ = self.utd.remove(&slot);
                }
                _ if now - ts >= self.ask_resend_after_ms => self.ask_resend(&room_id, &raw, ts),
                _ => {}
            }
        }
        let _ = self.utd.flush().await;
    }

    /// Reads `room`'s history back from `from` (the newest event when `None`) to
    /// `since_ms`, and hands every message to the engine, oldest first. Undecryptable
    /// events are kept. Returns how many events went to the engine.
    pub async fn read_back(
        &self,
        room: &Room,
        mut from: Option<String>,
        since_ms: i64,
    ) -> Result<usize, matrix_sdk::Error> {
        let since_ms = since_ms.max(self.catch_up_from);
        let mut found: Vec<matrix_sdk::deserialized_responses::TimelineEvent> = Vec::new();
        'pages: for _ in 0..MAX_PAGES {
            let mut opts = MessagesOptions::backward().from(from.as_deref());
            opts.limit = UInt::from(100u32);
            let page = room.messages(opts).await?;
            if page.chunk.is_empty() {
                break;
            }
            for te in page.chunk {
                let ts = te.timestamp_raw().map_or(0, |t| i64::from(t.get()));
                if ts < since_ms {
                    break 'pages;
                }
                found.push(te);
            }
            match page.end {
                Some(end) => from = Some(end),
                None => break,
            }
        }
        let mut handed = 0;
        for te in found.into_iter().rev() {
            if te.kind.is_utd() {
                let raw: Raw<OriginalSyncRoomEncryptedEvent> = te.raw().clone().cast_unchecked();
                self.keep_undecrypted(room.room_id(), &raw);
            } else if self.json(te.raw().json().get(), room).await {
                handed += 1;
            }
        }
        Ok(handed)
    }
}

/// Reads back every room of `rooms` to `since_ms`, logging (without room contents) what
/// it found; returns how many events it handed to the engine.
pub async fn read_back_rooms(
    inbound: &Inbound,
    client: &Client,
    rooms: &[(OwnedRoomId, Option<String>)],
    since_ms: i64,
) -> usize {
    let mut total = 0;
    for (id, from) in rooms {
        let Some(room) = client.get_room(id) else {
            continue;
        };
        match inbound.read_back(&room, from.clone(), since_ms).await {
            Ok(n) => {
                total += n;
                debug!(room = %id, events = n, "history read back");
            }
            Err(e) => warn!(room = %id, error = %e, "cannot read room history back"),
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(content: serde_json::Value) -> OriginalSyncRoomMessageEvent {
        serde_json::from_value(serde_json::json!({
            "type": "m.room.message",
            "event_id": "$reply",
            "sender": "@maria:oakland.example",
            "origin_server_ts": 1_772_467_200_000u64,
            "content": content,
        }))
        .expect("a valid event")
    }

    fn body(m: &IncomingMessage) -> &str {
        match &m.content {
            Content::Text { body, .. } => body,
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn a_message_carrying_an_incident_tag_in_its_content_or_its_edit_is_no_report() {
        let tag = serde_json::json!({"id": "C9TU", "status": "confirmed", "version": 2, "origin": "@nw:x"});
        let event = |content: serde_json::Value| {
            serde_json::json!({"type": "m.room.message", "event_id": "$e", "sender": "@a:x",
                "origin_server_ts": 1, "content": content})
            .to_string()
        };
        let forwarded = event(serde_json::json!({"msgtype": "m.text",
            "body": "!r agents at 31st & Market", "org.neighborwatch.incident": tag}));
        assert!(carries_incident_tag(&forwarded));
        let edited = event(
            serde_json::json!({"msgtype": "m.text", "body": "* !r agents",
            "m.new_content": {"msgtype": "m.text", "body": "!r agents", "org.neighborwatch.incident": tag},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}),
        );
        assert!(carries_incident_tag(&edited));
        let plain =
            event(serde_json::json!({"msgtype": "m.text", "body": "!r agents at 31st & Market"}));
        assert!(!carries_incident_tag(&plain));
        assert!(!carries_incident_tag("not json"));
    }

    #[test]
    fn a_report_sent_as_a_reply_is_read_without_the_quoted_message() {
        let room = RoomId::parse("!hooverfoster:oakland.example").expect("room id");
        let reply = event(serde_json::json!({
            "msgtype": "m.text",
            "body": "> <@bot:oakland.example> Report received: incident K7Q2\n> at 31st & Market\n\n!r two more agents at 31st & Market",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$ack"}},
        }));
        let m = incoming(&reply, &room).expect("text");
        assert_eq!(body(&m), "!r two more agents at 31st & Market");
        // Without a reply relation, a message that starts with a quote is left alone.
        let quote = event(serde_json::json!({
            "msgtype": "m.text",
            "body": "> <@bot:oakland.example> hi\n\n!r agents",
        }));
        let m = incoming(&quote, &room).expect("text");
        assert!(body(&m).starts_with("> <@bot"));
    }
}
