//! A neighbor for demos and tests: a real `matrix-sdk` client that logs in, joins rooms
//! it is invited to, and records every decrypted message it receives.
//!
//! The `try_` methods return [`DevnetError`]s that say what failed; the demo uses only
//! those. The others panic with that message: in a test a panic is the failure report.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk::{
    Client, Room, RoomMemberships,
    config::SyncSettings,
    event_handler::RawEvent,
    ruma::{
        OwnedEventId, OwnedRoomId, OwnedUserId,
        api::client::room::create_room::v3::Request as CreateRoomRequest,
        events::room::{
            encrypted::OriginalSyncRoomEncryptedEvent,
            member::StrippedRoomMemberEvent,
            message::{
                LocationMessageEventContent, MessageType, OriginalSyncRoomMessageEvent,
                ReplacementMetadata, RoomMessageEventContent,
            },
        },
        events::{reaction::ReactionEventContent, relation::Annotation},
        serde::Raw,
    },
};
use matrix_sdk_crypto::CollectStrategy;
use serde_json::Value;

use super::synapse::{DevnetError, Synapse};

/// Messages a neighbor could not decrypt yet, with their rooms.
type Waiting = Arc<Mutex<Vec<(OwnedRoomId, Raw<OriginalSyncRoomEncryptedEvent>)>>>;

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds; panics
/// (a failed test) on time out. See [`try_wait_for`] for an error instead.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    try_wait_for(what, secs, f)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `f` every 100 ms until it returns `Some`; an error naming `what` after `secs`
/// seconds.
pub async fn try_wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> Result<T, DevnetError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(DevnetError(format!(
                "timed out after {secs} s waiting for {what}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A neighbor: a real client that records every decrypted message it receives.
pub struct Neighbor {
    /// The client.
    pub client: Client,
    /// Full user ID.
    pub user: String,
    /// Every decrypted message received: (room, raw event JSON, when it arrived).
    pub received: Arc<Mutex<Vec<(OwnedRoomId, Value, Instant)>>>,
    _dir: tempfile::TempDir,
}

impl Neighbor {
    /// Registers `name` on `hs` and logs in, syncing in the background.
    pub async fn new(hs: &Synapse, name: &str, password: &str) -> Result<Neighbor, DevnetError> {
        Self::with_strategy(hs, name, password, CollectStrategy::AllDevices).await
    }

    /// Like [`Neighbor::new`], for a neighbor whose app sends room keys only to verified
    /// sessions (Element's "never send encrypted messages to unverified sessions"): the
    /// bot, unverified, can never read what they write.
    pub async fn new_verified_only(
        hs: &Synapse,
        name: &str,
        password: &str,
    ) -> Result<Neighbor, DevnetError> {
        Self::with_strategy(hs, name, password, CollectStrategy::OnlyTrustedDevices).await
    }

    async fn with_strategy(
        hs: &Synapse,
        name: &str,
        password: &str,
        strategy: CollectStrategy,
    ) -> Result<Neighbor, DevnetError> {
        let user = hs.register(name, password)?;
        let e = |x: &dyn std::fmt::Display| DevnetError(x.to_string());
        let dir = tempfile::tempdir().map_err(|x| e(&x))?;
        let client = Client::builder()
            .homeserver_url(&hs.url)
            .sqlite_store(dir.path(), None)
            .with_room_key_recipient_strategy(strategy)
            .build()
            .await
            .map_err(|x| e(&x))?;
        client
            .matrix_auth()
            .login_username(&user, password)
            .await
            .map_err(|x| e(&x))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&received);
        client.add_event_handler(
            move |_ev: OriginalSyncRoomMessageEvent, room: Room, raw: RawEvent| {
                let rec = Arc::clone(&rec);
                async move {
                    if let Ok(v) = serde_json::from_str::<Value>(raw.0.get()) {
                        let at = Instant::now();
                        rec.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((room.room_id().to_owned(), v, at));
                    }
                }
            },
        );
        // A message whose room key has not arrived yet (to-device messages and room
        // events travel apart, over federation too) is decrypted again whenever keys
        // arrive, as Element does, and then received.
        let waiting: Waiting = Arc::default();
        let w = Arc::clone(&waiting);
        client.add_event_handler(
            move |_ev: OriginalSyncRoomEncryptedEvent, room: Room, raw: RawEvent| {
                let w = Arc::clone(&w);
                async move {
                    w.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((room.room_id().to_owned(), Raw::from_json(raw.0.clone())));
                }
            },
        );
        if let Some(mut keys) = client.encryption().room_keys_received_stream().await {
            let (c, w, rec) = (client.clone(), Arc::clone(&waiting), Arc::clone(&received));
            tokio::spawn(async move {
                use futures_util::StreamExt;
                while keys.next().await.is_some() {
                    let pending = std::mem::take(
                        &mut *w.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
                    );
                    let mut still = Vec::new();
                    for (room_id, raw) in pending {
                        let Some(room) = c.get_room(&room_id) else {
                            continue;
                        };
                        match room.decrypt_event(&raw, None).await {
                            Ok(te) if !te.kind.is_utd() => {
                                if let Ok(v) = serde_json::from_str::<Value>(te.raw().json().get())
                                    && v["type"] == "m.room.message"
                                {
                                    rec.lock()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                                        .push((room_id, v, Instant::now()));
                                }
                            }
                            _ => still.push((room_id, raw)),
                        }
                    }
                    w.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .extend(still);
                }
            });
        }
        client.add_event_handler(
            |ev: StrippedRoomMemberEvent, client: Client, room: Room| async move {
                if client.user_id() == Some(&*ev.state_key) {
                    tokio::spawn(async move {
                        for _ in 0..20 {
                            if room.join().await.is_ok() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    });
                }
            },
        );
        let c = client.clone();
        tokio::spawn(async move {
            // A sync loop without the SDK's one-second pause after quick syncs, so that
            // what a neighbor sees, and when, is the homeserver's doing. Up to 1000
            // events a room per sync (Synapse's default is 10): a client that reads a
            // room's history sees every message, and this one has no backfill, so a
            // burst of more than 10 between two syncs (a bot answering hundreds of
            // queued reports, 16 at once) would otherwise leave a gap in what it saw.
            let mut settings = SyncSettings::default()
                .timeout(Duration::from_secs(5))
                .filter(every_event_filter());
            loop {
                match c.sync_once(settings.clone()).await {
                    Ok(r) => settings = settings.token(r.next_batch),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Ok(Neighbor {
            client,
            user,
            received,
            _dir: dir,
        })
    }

    /// Creates a room (encrypted or not), inviting `invite`; panics on failure (tests).
    pub async fn create_room(&self, invite: &[&str], encrypted: bool) -> OwnedRoomId {
        self.try_create_room(invite, encrypted)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates a room (encrypted or not), inviting `invite`.
    pub async fn try_create_room(
        &self,
        invite: &[&str],
        encrypted: bool,
    ) -> Result<OwnedRoomId, DevnetError> {
        let mut req = CreateRoomRequest::new();
        req.invite = invite
            .iter()
            .map(|u| {
                OwnedUserId::try_from(*u).map_err(|e| DevnetError(format!("user ID {u}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let room = self.client.create_room(req).await.map_err(|e| {
            DevnetError(format!(
                "{} could not create a room on the homeserver: {e}",
                self.user
            ))
        })?;
        if encrypted {
            room.enable_encryption().await.map_err(|e| {
                DevnetError(format!("could not turn on encryption in a new room: {e}"))
            })?;
        }
        Ok(room.room_id().to_owned())
    }

    /// The room, once this client has synced it.
    pub async fn room(&self, id: &OwnedRoomId) -> Room {
        self.try_room(id).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The room, once this client has synced it (an error after 30 s).
    pub async fn try_room(&self, id: &OwnedRoomId) -> Result<Room, DevnetError> {
        try_wait_for(&format!("room {id} to sync"), 30, || async {
            self.client.get_room(id)
        })
        .await
    }

    /// Sends a text message once every member in `members` is seen as joined (a sender
    /// only shares room keys with members its client knows about).
    pub async fn say(&self, room: &OwnedRoomId, members: &[&str], body: &str) -> OwnedEventId {
        self.try_say(room, members, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Neighbor::say`], with an error instead of a panic.
    pub async fn try_say(
        &self,
        room: &OwnedRoomId,
        members: &[&str],
        body: &str,
    ) -> Result<OwnedEventId, DevnetError> {
        self.try_ready_for(room, members).await?;
        self.try_send_now(room, body).await
    }

    /// Waits until every member in `members` is seen as joined in `room` and this
    /// client knows a device of each of them (a room key is only shared with devices the
    /// sender knows at the time it sends), without sending anything.
    pub async fn ready_for(&self, room: &OwnedRoomId, members: &[&str]) {
        self.try_ready_for(room, members)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Neighbor::ready_for`], with an error instead of a panic.
    pub async fn try_ready_for(
        &self,
        room: &OwnedRoomId,
        members: &[&str],
    ) -> Result<(), DevnetError> {
        let r = self.try_room(room).await?;
        try_wait_for("members to join", 60, || async {
            let joined = r.members(RoomMemberships::JOIN).await.ok()?;
            members
                .iter()
                .all(|m| joined.iter().any(|j| j.user_id().as_str() == *m))
                .then_some(())
        })
        .await?;
        let enc = self.client.encryption();
        for m in members {
            let Ok(uid) = OwnedUserId::try_from(*m) else {
                continue;
            };
            try_wait_for("the members' devices to be known", 60, || async {
                if enc
                    .get_user_devices(&uid)
                    .await
                    .ok()?
                    .devices()
                    .next()
                    .is_some()
                {
                    return Some(());
                }
                // Asks the homeserver again (a /keys/query).
                let _ = enc.request_user_identity(&uid).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                None
            })
            .await?;
        }
        Ok(())
    }

    /// Sends a text message at once, without waiting for members (for measurements,
    /// once [`Neighbor::say`] has been used in the room).
    pub async fn send_now(&self, room: &OwnedRoomId, body: &str) -> OwnedEventId {
        self.try_send_now(room, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Neighbor::send_now`], with an error instead of a panic.
    pub async fn try_send_now(
        &self,
        room: &OwnedRoomId,
        body: &str,
    ) -> Result<OwnedEventId, DevnetError> {
        let r = self.try_room(room).await?;
        Ok(r.send(RoomMessageEventContent::text_plain(body))
            .await
            .map_err(|e| DevnetError(format!("{} could not send into {room}: {e}", self.user)))?
            .response
            .event_id)
    }

    /// Edits (`m.replace`) one of this neighbor's messages.
    pub async fn edit(
        &self,
        room: &OwnedRoomId,
        original: &OwnedEventId,
        body: &str,
    ) -> OwnedEventId {
        let r = self.room(room).await;
        let content = RoomMessageEventContent::text_plain(body)
            .make_replacement(ReplacementMetadata::new(original.clone(), None));
        r.send(content).await.unwrap().response.event_id
    }

    /// Shares a location (`m.location`), as a phone's "share location" does.
    pub async fn share_location(
        &self,
        room: &OwnedRoomId,
        geo_uri: &str,
        body: &str,
    ) -> OwnedEventId {
        let r = self.room(room).await;
        let content = RoomMessageEventContent::new(MessageType::Location(
            LocationMessageEventContent::new(body.to_owned(), geo_uri.to_owned()),
        ));
        r.send(content).await.unwrap().response.event_id
    }

    /// Reacts to an event with `key` (an emoji), as a client's reaction picker does.
    pub async fn react(&self, room: &OwnedRoomId, event: &OwnedEventId, key: &str) -> OwnedEventId {
        let r = self.room(room).await;
        let content = ReactionEventContent::new(Annotation::new(event.clone(), key.to_owned()));
        r.send(content).await.unwrap().response.event_id
    }

    /// Deletes (redacts) one of this neighbor's messages.
    pub async fn redact(&self, room: &OwnedRoomId, event: &OwnedEventId) {
        let r = self.room(room).await;
        r.redact(event, None, None).await.unwrap();
    }

    /// Publishes the alias `#local:server` for `room` (on this neighbor's homeserver, whose
    /// name is `server`); returns it.
    pub async fn add_alias(
        &self,
        room: &OwnedRoomId,
        local: &str,
        server: &str,
    ) -> Result<String, DevnetError> {
        let alias = format!("#{local}:{server}");
        let parsed = matrix_sdk::ruma::RoomAliasId::parse(&alias)
            .map_err(|e| DevnetError(format!("alias {alias}: {e}")))?;
        self.client
            .create_room_alias(&parsed, room)
            .await
            .map_err(|e| DevnetError(format!("cannot publish alias {alias}: {e}")))?;
        Ok(alias)
    }

    /// Invites `user` to `room`.
    pub async fn invite(&self, room: &OwnedRoomId, user: &str) {
        let r = self.room(room).await;
        r.invite_user_by_id(&OwnedUserId::try_from(user).unwrap())
            .await
            .unwrap();
    }

    /// Sets `user`'s power level in `room` (below 0: they may not post). This neighbor
    /// must be allowed to change power levels there (a room's creator is).
    pub async fn set_power_level(&self, room: &OwnedRoomId, user: &str, level: i32) {
        let r = self.room(room).await;
        let uid = OwnedUserId::try_from(user).unwrap();
        r.update_power_levels(vec![(&uid, level.into())])
            .await
            .unwrap();
    }

    /// Messages received in `room` from `sender` that reply to the event `to`.
    pub fn replies(&self, room: &OwnedRoomId, sender: &str, to: &str) -> Vec<Value> {
        self.from(room, sender)
            .into_iter()
            .filter(|v| v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == to)
            .collect()
    }

    /// Messages received in `room` from `sender`.
    pub fn from(&self, room: &OwnedRoomId, sender: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(r, v, _)| r == room && v["sender"] == sender)
            .map(|(_, v, _)| v.clone())
            .collect()
    }

    /// When the first message in `room` matching `f` arrived, if one has.
    pub fn arrived(&self, room: &OwnedRoomId, f: impl Fn(&Value) -> bool) -> Option<Instant> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(r, v, _)| r == room && f(v))
            .map(|(_, _, at)| *at)
    }
}

/// The neighbors' sync filter: everything, with up to 1000 timeline events a room.
fn every_event_filter() -> matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter {
    use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomEventFilter, RoomFilter};
    let mut timeline = RoomEventFilter::default();
    timeline.limit = Some(matrix_sdk::ruma::UInt::from(1000u32));
    let mut room = RoomFilter::default();
    room.timeline = timeline;
    let mut def = FilterDefinition::default();
    def.room = room;
    matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter::FilterDefinition(def)
}
