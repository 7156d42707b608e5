//! The shell's only words of its own: the coordination room's notice that an alert did
//! not reach a room, or that the homeserver is rate-limiting the bot.

use crate::config::Network;
use crate::effect::OutgoingMessage;

use super::{Catalogs, coordination_renderer};

/// Why the shell could not deliver an alert, for the coordination room.
#[derive(Clone, Copy, Debug)]
pub enum Undelivered<'a> {
    /// The room is not end-to-end encrypted: alerts are not posted there.
    Unencrypted,
    /// The homeserver refused the alert for good, saying `reason`.
    Refused {
        /// What the server said.
        reason: &'a str,
    },
    /// Not about one alert: the homeserver is rate-limiting the bot (HTTP 429), so
    /// alerts and updates are delayed.
    RateLimited,
    /// Not about one alert: the coordination room is not end-to-end encrypted, so no
    /// incident details are posted there.
    CoordinationUnencrypted,
}

/// The coordination room's notice that the alert for `incident` did not reach `room`, in
/// the network's language (the shell's only words of its own).
pub fn undelivered_notice(
    net: &Network,
    cat: &Catalogs,
    incident: &str,
    room: &str,
    why: Undelivered<'_>,
) -> OutgoingMessage {
    let r = coordination_renderer(net, cat);
    match why {
        Undelivered::Unencrypted => r.notice("coord.unencrypted_room", &[("room", room)], None),
        Undelivered::Refused { reason } => r.notice(
            "coord.refused_room",
            &[("id", incident), ("room", room), ("reason", reason)],
            None,
        ),
        Undelivered::RateLimited => r.notice("coord.rate_limited", &[], None),
        Undelivered::CoordinationUnencrypted => {
            r.notice("coord.coordination_unencrypted", &[], None)
        }
    }
}
