//! The shell's clock: the time the engine is given (the pure core reads none). Real by
//! default; a test clock runs ahead of it by an offset that a test moves (read from a
//! file, so a test can move the clock of a bot running as another process), for
//! retention and expiry that take hours or days in life and seconds in a test.
//!
//! Owns: reading the time for the engine. Must not touch: decisions, storage.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// The environment variable naming a test clock's offset file (honored by
/// `neighborwatch run` only in builds with the `devnet` feature).
pub const TEST_CLOCK_ENV: &str = "NEIGHBORWATCH_TEST_CLOCK";

/// The time the engine sees.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds ahead of the real time.
    offset_ms: Arc<AtomicI64>,
    /// A file holding more milliseconds ahead (a test's, moved from another process).
    file: Option<PathBuf>,
}

impl Clock {
    /// The real time.
    pub fn real() -> Self {
        Self::default()
    }

    /// The real time plus the milliseconds written in `file` (none while it is absent
    /// or unreadable): a test moves the clock by writing the file.
    pub fn offset_file(file: PathBuf) -> Self {
        Self {
            offset_ms: Arc::default(),
            file: Some(file),
        }
    }

    /// Whether it is a test's clock (which may jump: its timers are looked at often).
    pub fn is_test(&self) -> bool {
        self.file.is_some() || self.offset_ms.load(Ordering::Relaxed) != 0
    }

    /// Moves the clock ahead by `by` (a test's).
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        let from_file = self
            .file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let ms = self
            .offset_ms
            .load(Ordering::Relaxed)
            .saturating_add(from_file);
        Utc::now() + Duration::milliseconds(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_runs_ahead_by_what_its_file_and_advance_say() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offset");
        let c = Clock::offset_file(file.clone());
        assert!(c.is_test());
        assert!(
            (c.now() - Utc::now()).num_seconds().abs() < 5,
            "no file: real time"
        );
        std::fs::write(&file, (Duration::hours(25).num_milliseconds()).to_string()).unwrap();
        let ahead = c.now() - Utc::now();
        assert!(ahead > Duration::hours(24) && ahead < Duration::hours(26));
        c.advance(Duration::hours(1));
        assert!(c.now() - Utc::now() > Duration::hours(25));
        assert!(!Clock::real().is_test());
    }
}
