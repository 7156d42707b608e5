//! When the bot's messages about a closed incident fade: per room, the room's
//! `alert_retention_hours` after the incident closed (the incident's neighborhood's for
//! the coordination room and rooms of no neighborhood), once. The rooms are those where
//! the store still lists messages of the bot about it ([`Store::sent_rooms`]); the
//! incident records each room it was faded in, so a restart never fades it twice. The
//! redactions themselves are the shell's ([`crate::effect::Effect::Fade`]).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::debug;

use super::{Engine, EngineError, Tx};
use crate::decision::Decision;
use crate::effect::Effect;
use crate::model::{Incident, IncidentId};
use crate::store::Store;

impl<S: Store> Engine<S> {
    /// Hours after `inc` closed at which the bot's messages about it in `room` fade.
    fn fade_hours(&self, inc: &Incident, room: &str) -> u32 {
        self.net
            .neighborhood_of_room(room)
            .map_or_else(|| self.net.settings(&inc.neighborhood), |n| &n.settings)
            .alert_retention()
    }

    /// The soonest any room's messages fade after an incident closes.
    pub(super) fn soonest_fade(&self) -> Duration {
        let h = self
            .net
            .neighborhoods()
            .iter()
            .map(|n| n.settings.alert_retention())
            .fold(self.net.defaults.alert_retention(), u32::min);
        Duration::hours(i64::from(h))
    }

    /// The rooms where the bot's messages about `inc` are still to fade, with when each
    /// is due (none while it is open). A store that cannot be read gives none now (the
    /// next look tries again).
    pub(super) fn fades_ahead(&self, inc: &Incident) -> Vec<(Arc<str>, DateTime<Utc>)> {
        let Some(closed) = inc.closed() else {
            return Vec::new();
        };
        let rooms = match self.store.sent_rooms(&inc.id) {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "cannot read the rooms of an incident's messages");
                return Vec::new();
            }
        };
        rooms
            .into_iter()
            .filter(|r| !inc.faded.iter().any(|f| **f == **r))
            .map(|r| {
                let due = closed + Duration::hours(i64::from(self.fade_hours(inc, &r)));
                (Arc::from(r), due)
            })
            .collect()
    }

    /// The rooms of `inc` whose messages fade at `now`.
    pub(super) fn fades_due(&self, inc: &Incident, now: DateTime<Utc>) -> Vec<Arc<str>> {
        self.fades_ahead(inc)
            .into_iter()
            .filter(|(_, due)| *due <= now)
            .map(|(r, _)| r)
            .collect()
    }

    /// Whether the store still lists messages of the bot about `id` not redacted yet
    /// (an incident is not deleted before they are; an unreadable store counts as yes).
    pub(super) fn redactions_pending(&self, id: &IncidentId) -> bool {
        self.store.sent_rooms(id).map_or(true, |r| !r.is_empty())
    }

    /// The bot's messages about `id`, deleted now (an unconfirmed incident whose every
    /// report was withdrawn), fade at once in every room: the store keeps their list for
    /// the redactions queued with the deletion.
    pub(super) fn fade_now(&self, tx: &mut Tx, id: IncidentId) {
        match self.store.sent_rooms(&id) {
            Ok(rooms) => tx
                .decisions
                .extend(rooms.into_iter().map(|room| Decision::Fade {
                    room: Arc::from(room),
                    incident: id,
                })),
            Err(e) => debug!(error = %e, "cannot read the rooms of an incident's messages"),
        }
    }

    /// Fades for the bot's messages about `ids` (closed incidents past the statistics
    /// window, whose rooms all faded) that no queued fade will redact: messages sent
    /// after their room faded (an answer to a late command). Without them the incident
    /// would wait for ever.
    pub(super) fn late_fades(&self, ids: &[IncidentId]) -> Result<Vec<Decision>, EngineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let queued: Vec<(IncidentId, String)> = self
            .store
            .outbox()?
            .into_iter()
            .filter_map(|q| match q.entry.effect {
                Effect::Fade { room, incident } => Some((incident, room)),
                _ => None,
            })
            .collect();
        let mut late = Vec::new();
        for id in ids {
            // Rooms the timer has not faded yet are the timer's.
            let faded = |room: &str| {
                self.incidents
                    .get(id)
                    .is_none_or(|i| i.faded.iter().any(|f| **f == *room))
            };
            for room in self.store.sent_rooms(id)? {
                if faded(&room) && !queued.iter().any(|(i, r)| i == id && *r == room) {
                    late.push(Decision::Fade {
                        room: Arc::from(room),
                        incident: *id,
                    });
                }
            }
        }
        Ok(late)
    }
}
