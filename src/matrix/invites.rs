//! Invites: rooms of the network file, or from an organizer, are joined (with retries);
//! the rest declined.

use std::time::Duration;

use matrix_sdk::{Client, Room, ruma::events::room::member::StrippedRoomMemberEvent};
use tracing::{Instrument, debug, info, info_span, warn};

use super::reload::LiveNet;

/// Invites: rooms of the network file, or from an organizer, are accepted; the rest
/// declined.
pub(super) fn accept_invites(client: &Client, live: &LiveNet) {
    let invite_net = live.clone();
    client.add_event_handler(
        move |ev: StrippedRoomMemberEvent, client: Client, room: Room| {
            let net = invite_net.get();
            async move {
                if client.user_id() != Some(&*ev.state_key) {
                    return;
                }
                let rid = room.room_id().to_string();
                let known = net.neighborhood_of_room(&rid).is_some()
                    || net.coordination_room.as_deref() == Some(rid.as_str());
                let by_organizer = net
                    .organizers
                    .iter()
                    .any(|o| o.as_str() == ev.sender.as_str());
                tokio::spawn(
                    async move {
                        if known || by_organizer {
                            let mut delay = 1;
                            while let Err(e) = room.join().await {
                                if delay > 60 {
                                    warn!(error = %e, "giving up joining");
                                    return;
                                }
                                tokio::time::sleep(Duration::from_secs(delay)).await;
                                delay *= 2;
                            }
                            info!("joined");
                            // The member list now, while nothing waits for it: the
                            // first encrypted send into a room needs it, and would
                            // otherwise fetch it then, delaying the room's first alert.
                            if let Err(e) = room.sync_members().await {
                                debug!(error = %e, "could not read the member list yet");
                            }
                        } else {
                            info!("declining an invite to a room outside the network");
                            let _ = room.leave().await;
                        }
                    }
                    .instrument(info_span!("invite", room = %rid)),
                );
            }
        },
    );
}
