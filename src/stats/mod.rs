//! Numbers for organizers (PRODUCT.md §9, `!nw stats` and the Prometheus counters): what
//! each incident amounts to, kept small after the incident itself leaves memory; the
//! refusals counted per neighborhood and hour; a summary over a window; and the change
//! each committed input made to those numbers (for the counters).
//!
//! Owns: [`IncidentFacts`], [`Ledger`], [`Summary`], [`Tally`]. Must not touch: storage
//! (the engine stores refusal counts in its commits; incidents are stored anyway),
//! clocks (times are arguments), wording, Matrix.
//!
//! Drills never count: an incident marked as one has no facts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Incident, IncidentId, Status};

/// The window `!nw stats` uses when none is given, in hours.
pub const DEFAULT_STATS_HOURS: u32 = 24;
/// The longest window, in hours (30 days): older facts are forgotten.
pub const MAX_STATS_HOURS: u32 = 24 * 30;
/// The neighborhood refusals in the coordination room count under (no neighborhood id can
/// be this: ids are lowercase letters, digits, `-` and `_`).
pub const COORDINATION: &str = "(coordination)";

const HOUR_MS: i64 = 3_600_000;

/// What one real incident amounts to, for the numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentFacts {
    /// Its neighborhood's id.
    pub neighborhood: Arc<str>,
    /// When it was first seen (milliseconds since 1970).
    pub first_seen_ms: i64,
    /// How long from its first report to its confirmation (milliseconds), once confirmed.
    pub confirmed_after_ms: Option<i64>,
    /// Marked a false alarm.
    pub false_alarm: bool,
    /// When each of its reports was received (milliseconds since 1970).
    pub report_ms: Vec<i64>,
    /// Rooms its alert went to.
    pub rooms_alerted: u32,
}

impl IncidentFacts {
    /// The facts of an incident; `None` for a drill.
    pub fn of(inc: &Incident) -> Option<Self> {
        if inc.drill {
            return None;
        }
        let first = inc
            .reports
            .iter()
            .map(|r| r.received_at)
            .min()
            .unwrap_or(inc.first_seen);
        Some(Self {
            neighborhood: Arc::clone(&inc.neighborhood),
            first_seen_ms: inc.first_seen.timestamp_millis(),
            confirmed_after_ms: inc
                .confirmed_at
                .map(|c| (c - first).num_milliseconds().max(0)),
            false_alarm: inc.status == Status::FalseAlarm,
            report_ms: inc
                .reports
                .iter()
                .map(|r| r.received_at.timestamp_millis())
                .collect(),
            rooms_alerted: u32::try_from(inc.relayed_to.len()).unwrap_or(u32::MAX),
        })
    }
}

/// Refusals counted in one neighborhood in one hour (stored by the engine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalCount {
    /// The neighborhood's id ([`COORDINATION`] for the coordination room).
    pub neighborhood: String,
    /// The start of the hour (milliseconds since 1970).
    pub hour_ms: i64,
    /// How many.
    pub count: u32,
}

/// How one input changed the numbers of one neighborhood: what the counters add.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// The neighborhood's id.
    pub neighborhood: Arc<str>,
    /// Reports added.
    pub reports: u32,
    /// Incidents opened.
    pub incidents: u32,
    /// Incidents confirmed, each with its time from first report, in seconds.
    pub confirmed_after_s: Vec<f64>,
    /// Incidents marked false alarms.
    pub false_alarms: u32,
    /// Rooms alerted.
    pub rooms_alerted: u32,
    /// Refusals.
    pub refusals: u32,
}

impl Tally {
    /// Whether it adds nothing.
    pub fn is_empty(&self) -> bool {
        self.reports == 0
            && self.incidents == 0
            && self.confirmed_after_s.is_empty()
            && self.false_alarms == 0
            && self.rooms_alerted == 0
            && self.refusals == 0
    }
}

/// The numbers of a neighborhood or of the network over a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Reports received in the window.
    pub reports: usize,
    /// Incidents opened in the window.
    pub incidents: usize,
    /// Of those, confirmed.
    pub confirmed: usize,
    /// Of those, marked false alarms.
    pub false_alarms: usize,
    /// Median time from first report to confirmation, in seconds.
    pub median_s: Option<i64>,
    /// 90th percentile of that time, in seconds.
    pub p90_s: Option<i64>,
    /// Rooms alerted about those incidents.
    pub rooms_alerted: usize,
    /// Refusals in the window (whole hours).
    pub refusals: usize,
}

/// The facts of every real incident of the last [`MAX_STATS_HOURS`], and the refusals.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    facts: HashMap<IncidentId, IncidentFacts>,
    refusals: BTreeMap<(Arc<str>, i64), u32>,
    /// Incidents first seen before this are forgotten, and stay so when they change.
    horizon_ms: i64,
}

impl Ledger {
    /// The ledger of these stored incidents and refusal counts.
    pub fn new<'a>(
        incidents: impl IntoIterator<Item = &'a Incident>,
        refusals: impl IntoIterator<Item = RefusalCount>,
    ) -> Self {
        let mut l = Self::default();
        for i in incidents {
            if let Some(f) = IncidentFacts::of(i) {
                l.facts.insert(i.id, f);
            }
        }
        for r in refusals {
            l.refusals
                .insert((Arc::from(r.neighborhood.as_str()), r.hour_ms), r.count);
        }
        l
    }

    /// Takes in an incident as it now stands (`None`: deleted); returns what that adds
    /// to the counters. Numbers that go down (a report withdrawn) add nothing: counters
    /// only count up.
    pub fn record(&mut self, id: IncidentId, now: Option<&Incident>) -> Option<Tally> {
        let new = now
            .and_then(IncidentFacts::of)
            .filter(|f| f.first_seen_ms >= self.horizon_ms);
        let old = match &new {
            Some(f) => self.facts.insert(id, f.clone()),
            None => self.facts.remove(&id),
        };
        let new = new?;
        let t = Tally {
            neighborhood: Arc::clone(&new.neighborhood),
            reports: u32::try_from(
                new.report_ms
                    .len()
                    .saturating_sub(old.as_ref().map_or(0, |o| o.report_ms.len())),
            )
            .unwrap_or(u32::MAX),
            incidents: u32::from(old.is_none()),
            confirmed_after_s: match (&old, new.confirmed_after_ms) {
                (
                    Some(IncidentFacts {
                        confirmed_after_ms: Some(_),
                        ..
                    }),
                    _,
                )
                | (_, None) => Vec::new(),
                (_, Some(ms)) => vec![ms as f64 / 1000.0],
            },
            false_alarms: u32::from(
                new.false_alarm && !old.as_ref().is_some_and(|o| o.false_alarm),
            ),
            rooms_alerted: new
                .rooms_alerted
                .saturating_sub(old.as_ref().map_or(0, |o| o.rooms_alerted)),
            refusals: 0,
        };
        (!t.is_empty()).then_some(t)
    }

    /// Counts a refusal in `neighborhood` at `at_ms`; returns the hour's new count (to
    /// store) and what it adds to the counters.
    pub fn refused(&mut self, neighborhood: &str, at_ms: i64) -> (RefusalCount, Tally) {
        let hour_ms = at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let nb: Arc<str> = Arc::from(neighborhood);
        let n = self.refusals.entry((Arc::clone(&nb), hour_ms)).or_insert(0);
        *n = n.saturating_add(1);
        (
            RefusalCount {
                neighborhood: neighborhood.to_owned(),
                hour_ms,
                count: *n,
            },
            Tally {
                neighborhood: nb,
                refusals: 1,
                ..Tally::default()
            },
        )
    }

    /// Forgets what is older than [`MAX_STATS_HOURS`] before `now_ms`: incidents first seen
    /// then (for good: a change to one later counts nothing), and refusal hours (returned,
    /// to delete from the store).
    pub fn forget_old(&mut self, now_ms: i64) -> Vec<(String, i64)> {
        let before = now_ms - i64::from(MAX_STATS_HOURS) * HOUR_MS;
        self.horizon_ms = self.horizon_ms.max(before);
        self.facts.retain(|_, f| f.first_seen_ms >= before);
        let old: Vec<(Arc<str>, i64)> = self
            .refusals
            .keys()
            .filter(|(_, h)| *h + HOUR_MS <= before)
            .cloned()
            .collect();
        old.into_iter()
            .map(|k| {
                self.refusals.remove(&k);
                (k.0.to_string(), k.1)
            })
            .collect()
    }

    /// The numbers of the last `hours` before `now_ms`, for one neighborhood or (`None`)
    /// the whole network.
    pub fn summary(&self, neighborhood: Option<&str>, hours: u32, now_ms: i64) -> Summary {
        let since = now_ms - i64::from(hours) * HOUR_MS;
        let mut s = Summary::default();
        let mut delays = Vec::new();
        for f in self
            .facts
            .values()
            .filter(|f| neighborhood.is_none_or(|n| *f.neighborhood == *n))
        {
            s.reports += f.report_ms.iter().filter(|t| **t > since).count();
            if f.first_seen_ms <= since {
                continue;
            }
            s.incidents += 1;
            if let Some(ms) = f.confirmed_after_ms {
                s.confirmed += 1;
                delays.push(ms);
            }
            s.false_alarms += usize::from(f.false_alarm);
            s.rooms_alerted += f.rooms_alerted as usize;
        }
        // Whole hours: the one `since` falls in counts.
        let from_hour = since.div_euclid(HOUR_MS) * HOUR_MS;
        s.refusals = self
            .refusals
            .iter()
            .filter(|((n, h), _)| *h >= from_hour && neighborhood.is_none_or(|x| **n == *x))
            .map(|(_, c)| *c as usize)
            .sum();
        delays.sort_unstable();
        s.median_s = percentile(&delays, 50).map(|ms| ms / 1000);
        s.p90_s = percentile(&delays, 90).map(|ms| ms / 1000);
        s
    }
}

/// The `p`th percentile of sorted values (nearest rank).
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&v, 50), Some(5));
    }

    #[test]
    fn refusals_count_by_hour_and_age_out() {
        let mut l = Ledger::default();
        let h = 1_000 * HOUR_MS;
        assert_eq!(l.refused("a", h + 5).0.count, 1);
        assert_eq!(l.refused("a", h + 10).0.count, 2);
        assert_eq!(l.refused("b", h + HOUR_MS).0.count, 1);
        assert_eq!(l.summary(Some("a"), 1, h + HOUR_MS + 1).refusals, 2);
        assert_eq!(l.summary(None, 1, h + HOUR_MS + 1).refusals, 3);
        assert_eq!(l.summary(None, 1, h + 3 * HOUR_MS).refusals, 0);
        let gone = l.forget_old(h + HOUR_MS + i64::from(MAX_STATS_HOURS) * HOUR_MS);
        assert_eq!(gone, vec![("a".to_owned(), h)]);
    }
}
