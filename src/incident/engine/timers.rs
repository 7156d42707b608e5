//! Time-driven changes: expiry, a drill's all clear, text retention, stale pending
//! reports, and the hourly bookkeeping (old event IDs, rate limits, old statistics,
//! shredding). Time is an argument; cheap when nothing is due.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::debug;

use super::alerts::{Told, announce_status};
use super::reports::RATE_WINDOW_MS;
use super::{Committed, DRILL_MINUTES, Engine, EngineError, Tx};
use crate::decision::{CoordinationKind, Decision, UpdateKind};
use crate::effect::Effect;
use crate::model::{IncidentId, Status};
use crate::store::{Batch, SEEN_KEEP_DAYS, Store};

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
            let Some(mut inc) = self.incidents.at_mut(key) else {
                continue;
            };
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
                inc.set_status(Status::Resolved, now, None);
                let kind = CoordinationKind::Status { reason: None };
                let update = UpdateKind::Status { reason: None };
                announce_status(&mut inc, &update, told(kind), None, &mut tx.decisions);
            }
            if expire {
                inc.version += 1;
                inc.set_status(Status::Expired, now, None);
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
        let closed: Vec<IncidentId> = self
            .incidents
            .values()
            .filter(|i| !i.status.is_open() && i.reports.iter().all(|r| r.text.is_none()))
            .map(|i| i.id)
            .collect();
        for id in closed {
            self.incidents.remove(&id);
        }
        self.recompute_due();
        Ok(committed)
    }
}
