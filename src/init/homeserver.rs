//! What `neighborwatch init` does on the homeserver: checks it answers, logs in as the
//! bot, creates (or adopts) the coordination room and the first neighborhood's room,
//! makes the organizer an admin of the rooms it creates, and logs out again, leaving no
//! device behind (`neighborwatch run` makes the bot's one device).

use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::{OwnedUserId, RoomOrAliasId, UserId};
use matrix_sdk::{Client, Room, config::SyncSettings};

use super::InitError;

/// A logged-in session of the bot, for the set-up only.
pub(super) struct Setup {
    client: Client,
    organizer: OwnedUserId,
}

impl Setup {
    /// Checks that `homeserver` is a Matrix homeserver and logs in as `user`.
    pub(super) async fn login(
        homeserver: &str,
        user: &str,
        password: &str,
        organizer: &str,
    ) -> Result<Self, InitError> {
        let organizer = UserId::parse(organizer)
            .map_err(|e| InitError::Input(format!("organizer {organizer:?}: {e}")))?;
        let bot =
            UserId::parse(user).map_err(|e| InitError::Input(format!("bot user {user:?}: {e}")))?;
        let client = Client::builder()
            .homeserver_url(homeserver)
            .respect_login_well_known(false)
            .build()
            .await
            .map_err(|e| InitError::Homeserver(format!("{homeserver}: {e}")))?;
        client.server_versions().await.map_err(|e| {
            InitError::Homeserver(format!(
                "{homeserver} does not answer as a Matrix homeserver ({e}); check the URL (the client-server API, e.g. https://matrix.example.org)"
            ))
        })?;
        client
            .matrix_auth()
            .login_username(&bot, password)
            .initial_device_display_name("neighborwatch init")
            .await
            .map_err(|e| {
                InitError::Login(format!(
                    "{bot} could not log in on {homeserver} ({e}); check the user ID and the password"
                ))
            })?;
        Ok(Self { client, organizer })
    }

    /// The room to use as `what`: `existing` joined (an ID or alias the bot is invited
    /// to, or may join), or a new encrypted room named `name` with the organizer invited
    /// and made an admin. Its ID.
    pub(super) async fn room(
        &self,
        existing: Option<&str>,
        name: &str,
        what: &str,
    ) -> Result<String, InitError> {
        let room = match existing {
            Some(r) => self.adopt(r, what).await?,
            None => self.create(name, what).await?,
        };
        Ok(room.room_id().to_string())
    }

    async fn adopt(&self, room: &str, what: &str) -> Result<Room, InitError> {
        let id = RoomOrAliasId::parse(room)
            .map_err(|e| InitError::Input(format!("{what} {room:?}: {e}")))?;
        let joined = self
            .client
            .join_room_by_id_or_alias(&id, &[])
            .await
            .map_err(|e| {
                InitError::Homeserver(format!(
                    "the bot cannot join the {what} {room} ({e}): invite it there first"
                ))
            })?;
        let encrypted = joined
            .latest_encryption_state()
            .await
            .is_ok_and(|s| s.is_encrypted());
        if !encrypted {
            return Err(InitError::Input(format!(
                "the {what} {room} is not end-to-end encrypted: turn encryption on in its settings, or let init create one"
            )));
        }
        Ok(joined)
    }

    async fn create(&self, name: &str, what: &str) -> Result<Room, InitError> {
        let fail = |e: &dyn std::fmt::Display| {
            InitError::Homeserver(format!("cannot create the {what}: {e}"))
        };
        let mut req = CreateRoomRequest::new();
        req.name = Some(name.to_owned());
        let room = self.client.create_room(req).await.map_err(|e| fail(&e))?;
        room.enable_encryption().await.map_err(|e| fail(&e))?;
        // The power levels are read from the room's state: synced first.
        self.client
            .sync_once(SyncSettings::default().timeout(std::time::Duration::ZERO))
            .await
            .map_err(|e| fail(&e))?;
        room.update_power_levels(vec![(&self.organizer, 100.into())])
            .await
            .map_err(|e| fail(&e))?;
        // Invited last: the bot's sync leaves its own events out, so a state event it
        // sent after the organizer joined would never reach its state store; before
        // the join, it is part of the state the join is seen with.
        room.invite_user_by_id(&self.organizer)
            .await
            .map_err(|e| fail(&e))?;
        Ok(room)
    }

    /// Logs out: the set-up's device is deleted.
    pub(super) async fn logout(self) {
        if let Err(e) = self.client.logout().await {
            eprintln!(
                "note: could not log the set-up session out ({e}); remove the device \"neighborwatch init\" in a client"
            );
        }
    }
}
