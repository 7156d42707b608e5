//! Time-driven changes: expiry, a drill's all clear, text retention, stale pending
//! reports, and the hourly bookkeeping (old event IDs, rate limits, old statistics,
//! closed incidents scrubbed and, past the statistics window, deleted; shredding). Time
//! is an argument; cheap when nothing is due.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::debug;

use super::alerts::{Told, announce_status};
use super::reports::RATE_WINDOW_MS;
use super::{Committed, DRILL_MINUTES, Engine, EngineError, Tx};
use crate::decision::{CoordinationKind, Decision, UpdateKind};
use crate::effect::Effect;
use crate::model::{Incident, IncidentId, Status};
use crate::stats::MAX_STATS_HOURS;
use crate::store::{Batch, IncidentWrite, SEEN_KEEP_DAYS, Store};

/// When an incident last changed: a closed one is deleted once this is older than the
/// statistics window (its first sighting, which the statistics go by, is older still).
fn last_change(inc: &Incident) -> DateTime<Utc> {
    inc.updated_at.max(inc.last_seen)
}

impl<S: Store> Engine<S> {
    pub(super) fn note_due(&mut self, t: DateTime<Utc>) {
        self.next_due = Some(self.next_due.map_or(t, |d| d.min(t)));
    }

    pub(super) fn recompute_due(&mut self) {
        let mut due: Option<DateTime<Utc>> = None;
        let mut note = |t: DateTime<Utc>| due = Some(due.map_or(t, |d: DateTime<Utc>| d.min(t)));
        for inc in self.incidents.values() {
            let s = self.net.settings(&inc.neighborhood);
            if inc.status.is_open() {
                note(inc.last_seen + Duration::hours(i64::from(s.expiry_hours)));
                if inc.drill {
                    note(inc.first_seen + Duration::minutes(DRILL_MINUTES));
                }
            }
            if let Some(r) = inc.reports.iter().find(|r| r.text.is_some()) {
                note(r.received_at + Duration::hours(i64::from(s.retention_hours)));
            }
            if !inc.status.is_open() {
                for (_, t) in self.fades_ahead(inc) {
                    note(t);
                }
            }
        }
        for p in &self.pending {
            let s = self.net.settings_of_room(&p.room);
            note(p.received_at + Duration::minutes(i64::from(s.dedupe_window_min)));
        }
        self.next_due = due;
    }

    /// Time-driven changes at `now`, worded: expiry, text retention, stale pending
    /// reports. Cheap when nothing is due.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<Vec<Effect>, EngineError> {
        Ok(self.run_timers(now, true)?.effects)
    }

    /// Like [`Engine::tick`], returning the decisions without wording them.
    pub fn tick_decisions(&mut self, now: DateTime<Utc>) -> Result<Vec<Decision>, EngineError> {
        Ok(self.run_timers(now, false)?.decisions)
    }

    /// The timers at `now`, then (hourly) the store's shredding.
    fn run_timers(&mut self, now: DateTime<Utc>, word: bool) -> Result<Committed, EngineError> {
        let hourly = self
            .forgot_seen_at
            .is_none_or(|t| now - t >= Duration::hours(1));
        let committed = self.timers(now, hourly, word)?;
        if hourly {
            // Hourly, after this tick's purges: what was purged or deleted is made
            // unrecoverable from the store's files too. The decisions are committed
            // already; a failure here is retried next hour.
            if let Err(e) = self.store.shred() {
                tracing::warn!(error = %e, "cannot shred deleted records; trying again in an hour");
            }
        }
        Ok(committed)
    }

    /// Expiry, retention, stale pending reports; with `hourly`, also the hourly
    /// bookkeeping (old event IDs, rate limits, old statistics).
    fn timers(
        &mut self,
        now: DateTime<Utc>,
        hourly: bool,
        word: bool,
    ) -> Result<Committed, EngineError> {
        // Handled event IDs are remembered for a week, not forever.
        if hourly {
            let before = now - Duration::days(SEEN_KEEP_DAYS);
            let n = self
                .store
                .forget_seen(before.timestamp_millis(), now.timestamp_millis())?;
            if n > 0 {
                debug!(forgotten = n, "old handled event IDs forgotten");
            }
            self.forgot_seen_at = Some(now);
            // Rate-limit bookkeeping of reporters quiet for 10 minutes.
            let now_ms = now.timestamp_millis();
            self.recent
                .retain(|_, v| v.last().is_some_and(|t| now_ms - *t < RATE_WINDOW_MS));
            self.limited_told
                .retain(|_, t| now_ms - *t < RATE_WINDOW_MS);
            // Statistics older than `!nw stats` can ask for are forgotten, and their
            // refusal counts leave the store.
            let old = self.ledger.forget_old(now_ms);
            if !old.is_empty() {
                let forgotten = old.len();
                self.store.commit(Batch {
                    at_ms: now_ms,
                    refusals_delete: old,
                    ..Batch::default()
                })?;
                debug!(forgotten, "old refusal counts forgotten");
            }
            self.scrub_closed(now)?;
            let late = self.delete_closed(now)?;
            if !late.is_empty() {
                let mut tx = Tx::new(format!("late-fade/{}", now.timestamp_millis()).into());
                tx.decisions = late;
                let mut c = self.commit(tx, now, word)?;
                let rest = self.timers(now, false, word)?;
                c.decisions.extend(rest.decisions);
                c.effects.extend(rest.effects);
                return Ok(c);
            }
        }
        if self.next_due.is_none_or(|d| now < d) {
            return Ok(Committed {
                decisions: Vec::new(),
                effects: Vec::new(),
            });
        }
        let net = Arc::clone(&self.net);
        let mut tx = Tx::new(format!("tick/{}", now.timestamp_millis()).into());
        let mut ids: Vec<(IncidentId, usize)> = self.incidents.ids().collect();
        ids.sort_unstable();
        for (id, key) in ids {
            let fades = match self.incidents.in_slot(key) {
                Some(inc) if !inc.status.is_open() => self.fades_due(inc, now),
                _ => Vec::new(),
            };
            let Some(mut inc) = self.incidents.at_mut(key) else {
                continue;
            };
            if !fades.is_empty() {
                // Once per room: the incident records it, in this tick's commit.
                for room in fades {
                    inc.faded.push(Arc::clone(&room));
                    tx.decisions.push(Decision::Fade { room, incident: id });
                }
                tx.touch(id, key, inc.reports.len());
            }
            let s = net.settings(&inc.neighborhood);
            let drill_over = inc.drill
                && inc.status.is_open()
                && now - inc.first_seen >= Duration::minutes(DRILL_MINUTES);
            let expire = !drill_over
                && inc.status.is_open()
                && now - inc.last_seen >= Duration::hours(i64::from(s.expiry_hours));
            let cutoff = now - Duration::hours(i64::from(s.retention_hours));
            let purge = inc
                .reports
                .iter()
                .any(|r| r.text.is_some() && r.received_at <= cutoff);
            if !expire && !purge && !drill_over {
                continue;
            }
            let mut from = inc.reports.len();
            for (n, r) in inc.reports.iter_mut().enumerate() {
                if r.text.is_some() && r.received_at <= cutoff {
                    r.text = None;
                    from = from.min(n);
                }
            }
            let told = |kind| Told {
                coordination: self.coordination_room.as_ref(),
                kind,
                needed: s.confirmations,
            };
            if drill_over {
                inc.version += 1;
                if inc.set_status(Status::Resolved, now, None) {
                    from = 0;
                }
                let kind = CoordinationKind::Status { reason: None };
                let update = UpdateKind::Status { reason: None };
                announce_status(&mut inc, &update, told(kind), None, &mut tx.decisions);
            }
            if expire {
                inc.version += 1;
                if inc.set_status(Status::Expired, now, None) {
                    from = 0;
                }
                let (kind, update) = (CoordinationKind::Expired, UpdateKind::Expired);
                announce_status(&mut inc, &update, told(kind), None, &mut tx.decisions);
            }
            tx.touch(id, key, from);
        }
        let mut dropped = Vec::new();
        self.pending.retain(|p| {
            let w = net.settings_of_room(&p.room).dedupe_window_min;
            let keep = now - p.received_at < Duration::minutes(i64::from(w));
            if !keep {
                dropped.push(p.event_id.clone());
            }
            keep
        });
        tx.batch.pending_delete = dropped;
        let committed = self.commit(tx, now, word)?;
        // Closed incidents whose text is gone stay in the store only (those purged by this
        // very tick too, now that their write is committed: no later timer may be due to
        // come back for them).
        // Those whose messages are still to fade stay in memory until they have.
        let closed: Vec<IncidentId> = self
            .incidents
            .values()
            .filter(|i| !i.status.is_open() && i.reports.iter().all(|r| r.text.is_none()))
            .filter(|i| self.fades_ahead(i).is_empty())
            .map(|i| i.id)
            .collect();
        for id in closed {
            if let Some(inc) = self.incidents.get(&id) {
                self.resting.push((id, last_change(inc)));
            }
            self.incidents.remove(&id);
        }
        self.recompute_due();
        Ok(committed)
    }

    /// Closed incidents that still name their reporters (stored so by an older version;
    /// every close since scrubs at once) are scrubbed, in memory and in the store: all
    /// closed incidents are in memory after a start, until a tick lets them go.
    fn scrub_closed(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let mut batch = Batch {
            at_ms: now.timestamp_millis(),
            ..Batch::default()
        };
        let mut keys = Vec::new();
        for (id, key) in self.incidents.ids() {
            if let Some(inc) = self.incidents.in_slot(key)
                && !inc.status.is_open()
                && inc.names_reporters()
            {
                let mut scrubbed = inc.clone();
                let _ = scrubbed.forget_reporters();
                batch.incidents.push(IncidentWrite::whole(scrubbed));
                keys.push((id, key));
            }
        }
        if keys.is_empty() {
            return Ok(());
        }
        self.store.commit(batch)?;
        for (id, key) in &keys {
            if let Some(mut inc) = self.incidents.at_mut(*key)
                && inc.id == *id
            {
                let _ = inc.forget_reporters();
            }
        }
        debug!(
            scrubbed = keys.len(),
            "closed incidents of an older version scrubbed"
        );
        Ok(())
    }

    /// Closed incidents that last changed before the statistics window
    /// ([`MAX_STATS_HOURS`]) leave the store, with everything keyed by them (their
    /// reports, their alerts' event IDs, the event map's entries for the bot's messages
    /// about them). The numbers of `!nw stats` do not change: they go by the first
    /// sighting, older still, and were forgotten already.
    ///
    /// Returns the fades of messages the bot sent about such an incident after its rooms
    /// had faded (an answer to a late command), which keep it in the store until they
    /// are redacted too.
    fn delete_closed(&mut self, now: DateTime<Utc>) -> Result<Vec<Decision>, EngineError> {
        let before = now - Duration::hours(i64::from(MAX_STATS_HOURS));
        let mut gone: Vec<IncidentId> = self
            .resting
            .iter()
            .filter(|(_, t)| *t < before)
            .map(|(id, _)| *id)
            .collect();
        gone.extend(
            self.incidents
                .values()
                .filter(|i| !i.status.is_open() && last_change(i) < before)
                .map(|i| i.id),
        );
        // Never before the bot's messages about it are redacted: they are kept till then.
        gone.sort_unstable();
        gone.dedup();
        let (pending, gone): (Vec<IncidentId>, Vec<IncidentId>) =
            gone.into_iter().partition(|id| self.redactions_pending(id));
        let late = self.late_fades(&pending)?;
        if gone.is_empty() {
            return Ok(late);
        }
        self.store.commit(Batch {
            at_ms: now.timestamp_millis(),
            incidents_delete: gone.clone(),
            ..Batch::default()
        })?;
        let deleted = |id: &IncidentId| gone.binary_search(id).is_ok();
        self.resting.retain(|(id, _)| !deleted(id));
        self.false_alarms.retain(|m| !deleted(&m.id));
        for id in &gone {
            self.incidents.remove(id);
            self.ledger.record(*id, None);
        }
        debug!(
            deleted = gone.len(),
            "closed incidents past the statistics window deleted"
        );
        Ok(late)
    }
}
