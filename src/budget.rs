//! Reply budgets: how many answers one member may draw from the bot in one room.
//!
//! A member who floods a room with junk, unknown commands or `!nw help` would otherwise
//! get an answer each, spending the bot's homeserver rate limit and delaying every alert
//! behind those answers. Each (room, sender) has a bucket of `burst` answers that refills
//! by one every `refill` (the generic cell rate algorithm: one instant per bucket, the
//! time at which it would be full again). When it runs dry the sender gets one "you are
//! sending too fast" answer, then silence until an answer has been regained.
//!
//! Buckets exist only while they are not full, so quiet members cost nothing; time is an
//! argument (nothing here reads a clock).
//!
//! Owns: the buckets and the verdict. Must not touch: which answers are budgeted (the
//! engine says), wording.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap;

/// How many answers a sender may draw, and how fast they come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetRule {
    /// Answers in a row before the bucket is dry (at least 1).
    pub burst: u32,
    /// One answer is regained every this long.
    pub refill: Duration,
}

impl Default for BudgetRule {
    /// Five answers in a row, one more every two minutes.
    fn default() -> Self {
        Self {
            burst: 5,
            refill: Duration::minutes(2),
        }
    }
}

/// What to do with one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answer.
    Answer,
    /// The bucket just ran dry: say once that the sender is going too fast.
    TooFast,
    /// Say nothing.
    Silent,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// When the bucket is full again (no bucket: full now).
    full_at: DateTime<Utc>,
    /// The "too fast" answer was given since the bucket last had room.
    warned: bool,
}

/// The buckets of every (room, sender) not full now.
#[derive(Clone, Debug, Default)]
pub struct Budgets {
    buckets: FxHashMap<(Arc<str>, Arc<str>), Bucket>,
}

impl Budgets {
    /// Draws one answer for `sender` in `room` at `now`.
    pub fn draw(
        &mut self,
        room: &str,
        sender: &str,
        now: DateTime<Utc>,
        rule: BudgetRule,
    ) -> Verdict {
        let burst = i32::try_from(rule.burst.max(1)).unwrap_or(i32::MAX);
        let refill = rule.refill.max(Duration::zero());
        let key = (Arc::from(room), Arc::from(sender));
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            full_at: now,
            warned: false,
        });
        let base = bucket.full_at.max(now);
        let after = base + refill;
        // The bucket holds `burst` answers: drawing one more than that is refused.
        if after - now > refill * burst {
            if bucket.warned {
                return Verdict::Silent;
            }
            bucket.warned = true;
            return Verdict::TooFast;
        }
        bucket.full_at = after;
        bucket.warned = false;
        Verdict::Answer
    }

    /// Forgets the buckets that are full again at `now` (their members are quiet).
    pub fn forget_full(&mut self, now: DateTime<Utc>) {
        self.buckets.retain(|_, b| b.full_at > now);
    }

    /// How many buckets are kept (members drawing answers lately).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when every member's bucket is full.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_flooder_gets_burst_answers_one_warning_then_silence_until_refilled() {
        let rule = BudgetRule {
            burst: 3,
            refill: Duration::seconds(60),
        };
        let mut b = Budgets::default();
        let got: Vec<Verdict> = (0..10).map(|_| b.draw("!r", "@f", at(0), rule)).collect();
        use Verdict::*;
        assert_eq!(
            got,
            [
                Answer, Answer, Answer, TooFast, Silent, Silent, Silent, Silent, Silent, Silent
            ]
        );
        // Others in the same room, and the flooder elsewhere, are untouched.
        assert_eq!(b.draw("!r", "@g", at(0), rule), Answer);
        assert_eq!(b.draw("!s", "@f", at(0), rule), Answer);
        // One answer comes back per refill, and the warning may be given again after it.
        assert_eq!(b.draw("!r", "@f", at(59), rule), Silent);
        assert_eq!(b.draw("!r", "@f", at(60), rule), Answer);
        assert_eq!(b.draw("!r", "@f", at(60), rule), TooFast);
        assert_eq!(b.draw("!r", "@f", at(61), rule), Silent);
    }

    #[test]
    fn quiet_members_cost_nothing() {
        let rule = BudgetRule::default();
        let mut b = Budgets::default();
        b.draw("!r", "@a", at(0), rule);
        b.draw("!r", "@b", at(0), rule);
        b.draw("!r", "@b", at(0), rule);
        assert_eq!(b.len(), 2);
        b.forget_full(at(120));
        assert_eq!(b.len(), 1, "@a refilled");
        b.forget_full(at(240));
        assert!(b.is_empty());
        // A forgotten bucket starts full again.
        let n = (0..rule.burst)
            .filter(|_| b.draw("!r", "@b", at(240), rule) == Verdict::Answer)
            .count();
        assert_eq!(n, rule.burst as usize);
    }
}
