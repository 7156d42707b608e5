//! Times in report text: `8:05`, `8:05am`, `20:05`, `10 min ago`, `hace 10 min`, `now`,
//! read in the neighborhood's time zone relative to the message's own timestamp.

use std::ops::Range;
use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use regex::Regex;

static CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([01]?\d|2[0-3])(?::|h)([0-5]\d)\s*(a\.?\s?m\b\.?|p\.?\s?m\b\.?)?|\b(1[0-2]|0?[1-9])\s*(a\.?\s?m\b\.?|p\.?\s?m\b\.?)")
        .expect("static regex")
});
static AGO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d{1,3})\s*(min|mins|minutes?|minutos?|h|hrs?|hours?|horas?)\s+ago\b|\bhace\s+(\d{1,3})\s*(min|mins|minutos?|minutes?|h|hrs?|horas?|hours?)\b|\b(just now|right now|now|ahora mismo|ahorita|ahora)\b")
        .expect("static regex")
});

/// A time found in the text.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundTime {
    /// When the sighting happened.
    pub at: DateTime<Utc>,
    /// Where in the text the time was written (to blank it before place matching).
    pub span: Range<usize>,
}

/// Finds the first time in `text`. `sent_at` is the message timestamp; `tz` the
/// neighborhood's zone. A clock time more than 12 hours ahead means the previous day.
pub fn find_time(text: &str, sent_at: DateTime<Utc>, tz: Tz) -> Option<FoundTime> {
    let clock = CLOCK.captures(text).and_then(|c| {
        let whole = c.get(0)?;
        let (h, m, ampm) = match c.get(1) {
            Some(h) => (
                h.as_str().parse::<u32>().ok()?,
                c[2].parse::<u32>().ok()?,
                c.get(3),
            ),
            None => (c[4].parse::<u32>().ok()?, 0, c.get(5)),
        };
        let h = match ampm.map(|s| s.as_str().to_ascii_lowercase().starts_with('p')) {
            Some(true) if h < 12 => h + 12,
            Some(false) if h == 12 => 0,
            Some(_) if h > 12 => return None,
            _ => h,
        };
        let local_day = sent_at.with_timezone(&tz).date_naive();
        let t = NaiveTime::from_hms_opt(h, m, 0)?;
        let mut at = tz
            .from_local_datetime(&local_day.and_time(t))
            .earliest()?
            .with_timezone(&Utc);
        if at - sent_at > Duration::hours(12) {
            at -= Duration::days(1);
        } else if sent_at - at > Duration::hours(12) {
            at += Duration::days(1);
        }
        Some((
            whole.start(),
            FoundTime {
                at,
                span: whole.range(),
            },
        ))
    });
    let ago = AGO.captures(text).and_then(|c| {
        let whole = c.get(0)?;
        let at = if c.get(5).is_some() {
            sent_at
        } else {
            let n: i64 = c.get(1).or_else(|| c.get(3))?.as_str().parse().ok()?;
            let unit = c.get(2).or_else(|| c.get(4))?.as_str().to_ascii_lowercase();
            let d = if unit.starts_with('m') {
                Duration::minutes(n)
            } else {
                Duration::hours(n)
            };
            sent_at - d
        };
        Some((
            whole.start(),
            FoundTime {
                at,
                span: whole.range(),
            },
        ))
    });
    match (clock, ago) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a.1 } else { b.1 }),
        (a, b) => a.or(b).map(|x| x.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // 2026-03-02 is winter time: UTC-8 in Los Angeles.
        Utc.with_ymd_and_hms(2026, 3, 2, h + 8, m, 0).unwrap()
    }

    #[test]
    fn forms() {
        let tz: Tz = "America/Los_Angeles".parse().unwrap();
        let sent = at(8, 20);
        assert_eq!(find_time("at 8:05am", sent, tz).unwrap().at, at(8, 5));
        assert_eq!(find_time("a las 8:05", sent, tz).unwrap().at, at(8, 5));
        assert_eq!(find_time("10 min ago", sent, tz).unwrap().at, at(8, 10));
        assert_eq!(find_time("hace 15 minutos", sent, tz).unwrap().at, at(8, 5));
        assert_eq!(find_time("right now", sent, tz).unwrap().at, sent);
        assert_eq!(find_time("8am", sent, tz).unwrap().at, at(8, 0));
        assert!(find_time("31st & Market, 2 SUVs", sent, tz).is_none());
    }

    #[test]
    fn late_night_clock_means_yesterday() {
        let tz: Tz = "America/Los_Angeles".parse().unwrap();
        let sent = at(0, 5);
        let t = find_time("11:50pm", sent, tz).unwrap().at;
        assert_eq!(sent - t, Duration::minutes(15));
    }
}
