//! Rate-limit episodes of the bot's homeserver, for the coordination room's warning: the
//! server answering 429 starts an episode, told once; the episode ends when sends have
//! gone through for a while without a 429. Pure: time is an argument.
//!
//! Owns: when an episode starts and ends. Must not touch: sending, wording, Matrix.

use std::time::{Duration, Instant};

/// Sends must go through this long without a 429 for an episode to end (so a server
/// that lets one message through between refusals does not warn again and again).
pub(crate) const QUIET_FOR: Duration = Duration::from_secs(10 * 60);

/// The current rate-limit episode, if any.
#[derive(Debug, Default)]
pub(crate) struct Episodes {
    /// When the current episode's last 429 came, if one is under way.
    last_limited: Option<Instant>,
}

impl Episodes {
    /// The server answered 429 at `now`: true when this starts an episode (tell the
    /// coordination room once).
    pub(crate) fn limited(&mut self, now: Instant) -> bool {
        let starts = self
            .last_limited
            .is_none_or(|t| now.saturating_duration_since(t) >= QUIET_FOR);
        self.last_limited = Some(now);
        starts
    }

    /// A send went through at `now`: the episode ends once no 429 came for [`QUIET_FOR`].
    pub(crate) fn sent(&mut self, now: Instant) {
        if self
            .last_limited
            .is_some_and(|t| now.saturating_duration_since(t) >= QUIET_FOR)
        {
            self.last_limited = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_episode_not_per_retry() {
        let t0 = Instant::now();
        let mut e = Episodes::default();
        assert!(e.limited(t0), "the first 429 starts an episode");
        // Retries refused again, with sends going through in between: same episode.
        for s in 1..100 {
            let now = t0 + Duration::from_secs(s * 5);
            e.sent(now);
            assert!(!e.limited(now), "retry {s} is not a new episode");
        }
        // Quiet for the whole window, a send goes through: the episode is over, and the
        // next 429 is told again.
        let later = t0 + Duration::from_secs(99 * 5) + QUIET_FOR;
        e.sent(later);
        assert!(e.limited(later + Duration::from_secs(1)));
    }

    #[test]
    fn a_429_after_a_long_quiet_starts_a_new_episode_even_without_a_send() {
        let t0 = Instant::now();
        let mut e = Episodes::default();
        assert!(e.limited(t0));
        assert!(!e.limited(t0 + QUIET_FOR - Duration::from_secs(1)));
        assert!(e.limited(t0 + QUIET_FOR * 3));
    }
}
