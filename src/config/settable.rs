//! Settings changed from a room (PRODUCT.md §5 `!nw settings KEY VALUE`): one table of the
//! settable keys with their ranges, shared with the network file's validation, so a
//! value a room admin types is checked exactly as the file's would be.
//!
//! Owns: the settable keys, their ranges and the problems a value can have. Must not
//! touch: storage, permissions, wording beyond the file's English.

use chrono_tz::Tz;

use super::{MAX_ALERT_RETENTION_HOURS, Tunables};
use crate::catalog::Catalogs;

/// What kind of value a setting takes, with its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A distance in metres, above 0 and at most [`MAX_DISTANCE_M`].
    Distance,
    /// A whole number from `min` to `max`.
    Whole {
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A message catalog language.
    Language,
    /// An IANA time zone.
    Timezone,
}

/// Longest distance setting, in metres.
pub const MAX_DISTANCE_M: f64 = 100_000.0;

/// The tunables a room admin may change, in the order `!nw settings` shows them, with the
/// ranges the network file accepts. (`verifiers` is a list, changed with its own
/// command.)
pub const SETTABLE: &[(&str, Kind)] = &[
    ("confirmations", Kind::Whole { min: 1, max: 100 }),
    ("alert_radius_m", Kind::Distance),
    ("dedupe_radius_m", Kind::Distance),
    (
        "dedupe_window_min",
        Kind::Whole {
            min: 1,
            max: 24 * 60,
        },
    ),
    ("sensitive_radius_m", Kind::Distance),
    (
        "expiry_hours",
        Kind::Whole {
            min: 1,
            max: 24 * 14,
        },
    ),
    (
        "retention_hours",
        Kind::Whole {
            min: 1,
            max: 24 * 90,
        },
    ),
    (
        "alert_retention_hours",
        Kind::Whole {
            min: 1,
            max: MAX_ALERT_RETENTION_HOURS,
        },
    ),
    (
        "min_member_hours",
        Kind::Whole {
            min: 0,
            max: 24 * 90,
        },
    ),
    ("max_reports_per_10min", Kind::Whole { min: 1, max: 1000 }),
    ("reply_burst", Kind::Whole { min: 1, max: 50 }),
    ("reply_refill_s", Kind::Whole { min: 10, max: 3600 }),
    ("language", Kind::Language),
    ("timezone", Kind::Timezone),
];

/// The kind of a settable key.
pub fn kind_of(key: &str) -> Option<Kind> {
    SETTABLE
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| *kind)
}

/// The range of a whole-number setting (for the network file's validation).
pub(super) fn whole_range(key: &str) -> (u32, u32) {
    match kind_of(key) {
        Some(Kind::Whole { min, max }) => (min, max),
        _ => (1, u32::MAX),
    }
}

/// What is wrong with a setting's value: the same problems, with the same words, for the
/// network file and for a room (where the catalogs word them in the room's language).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    /// Not a distance in range.
    #[error("must be a distance above 0 and at most 100000 metres, not {got}")]
    Distance {
        /// What was given.
        got: String,
    },
    /// Not a whole number in range.
    #[error("must be a whole number from {min} to {max}, not {got}")]
    Whole {
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
        /// What was given.
        got: String,
    },
    /// No catalog for that language.
    #[error("no message catalog for `{got}` (have: {have})")]
    Language {
        /// What was given.
        got: String,
        /// The languages there are, comma-separated.
        have: String,
    },
    /// Not a latitude and longitude in range.
    #[error("`{got}` is not a latitude, longitude in range (like 37.8240,-122.2760)")]
    Center {
        /// What was given.
        got: String,
    },
    /// Not a time zone.
    #[error("`{got}` is not an IANA time zone such as America/Chicago")]
    Timezone {
        /// What was given.
        got: String,
    },
    /// `alert_retention_hours` out of its range: at least the neighborhood's
    /// `retention_hours` (alerts never fade before the report text is purged), at most
    /// [`MAX_ALERT_RETENTION_HOURS`].
    #[error(
        "must be at least retention_hours ({min}) and at most {max} hours (28 days), not {got}"
    )]
    AlertRetention {
        /// Smallest allowed: the neighborhood's `retention_hours`.
        min: u32,
        /// Largest allowed.
        max: u32,
        /// What was given.
        got: String,
    },
}

/// Checks `alert_retention_hours` (already a whole number in its fixed range) against
/// the neighborhood's `retention_hours`.
pub(super) fn check_alert_retention(n: u32, retention_hours: u32) -> Result<u32, Problem> {
    if n >= retention_hours && n <= MAX_ALERT_RETENTION_HOURS {
        Ok(n)
    } else {
        Err(Problem::AlertRetention {
            min: retention_hours,
            max: MAX_ALERT_RETENTION_HOURS,
            got: n.to_string(),
        })
    }
}

/// Checks a distance.
pub(super) fn check_distance(x: f64) -> Result<f64, Problem> {
    if x.is_finite() && x > 0.0 && x <= MAX_DISTANCE_M {
        Ok(x)
    } else {
        Err(Problem::Distance { got: x.to_string() })
    }
}

/// Checks a whole number against the range of `key`.
pub(super) fn check_whole(key: &str, i: i64, shown: &str) -> Result<u32, Problem> {
    let (min, max) = whole_range(key);
    if i >= i64::from(min) && i <= i64::from(max) {
        u32::try_from(i).map_err(|_| Problem::Whole {
            min,
            max,
            got: shown.to_owned(),
        })
    } else {
        Err(Problem::Whole {
            min,
            max,
            got: shown.to_owned(),
        })
    }
}

/// Checks a language against the catalogs.
pub(super) fn check_language(cat: &Catalogs, l: &str) -> Result<String, Problem> {
    if cat.has(l) {
        Ok(l.to_owned())
    } else {
        Err(Problem::Language {
            got: l.to_owned(),
            have: cat.languages().join(", "),
        })
    }
}

/// Checks a time zone.
pub(super) fn check_timezone(t: &str) -> Result<Tz, Problem> {
    t.parse::<Tz>()
        .map_err(|_| Problem::Timezone { got: t.to_owned() })
}

/// Why a value typed in a room was not applied.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SettingError {
    /// No such setting.
    #[error("no setting `{0}`")]
    Unknown(String),
    /// A setting that is not changed with `!nw settings` (the verifier list).
    #[error("`{0}` is changed with its own command")]
    OwnCommand(String),
    /// A bad value.
    #[error(transparent)]
    Bad(#[from] Problem),
}

impl Tunables {
    /// These settings with `key` set to `value` as typed in a room, validated like the
    /// network file.
    pub fn with_setting(&self, key: &str, value: &str) -> Result<Tunables, SettingError> {
        let Some(kind) = kind_of(key) else {
            return Err(if key == "verifiers" {
                SettingError::OwnCommand(key.to_owned())
            } else {
                SettingError::Unknown(key.to_owned())
            });
        };
        let v = value.trim();
        let mut t = self.clone();
        match kind {
            Kind::Distance => {
                let x = v
                    .parse::<f64>()
                    .map_err(|_| Problem::Distance { got: v.to_owned() })?;
                let x = check_distance(x)?;
                match key {
                    "alert_radius_m" => t.alert_radius_m = x,
                    "dedupe_radius_m" => t.dedupe_radius_m = x,
                    _ => t.sensitive_radius_m = x,
                }
            }
            Kind::Whole { min, max } => {
                if key == "alert_retention_hours" {
                    let n = v.parse::<u32>().map_err(|_| Problem::AlertRetention {
                        min: t.retention_hours,
                        max,
                        got: v.to_owned(),
                    })?;
                    t.alert_retention_hours = Some(check_alert_retention(n, t.retention_hours)?);
                    return Ok(t);
                }
                let i = v.parse::<i64>().map_err(|_| Problem::Whole {
                    min,
                    max,
                    got: v.to_owned(),
                })?;
                let n = check_whole(key, i, v)?;
                match key {
                    "confirmations" => t.confirmations = n,
                    "dedupe_window_min" => t.dedupe_window_min = n,
                    "expiry_hours" => t.expiry_hours = n,
                    "retention_hours" => t.retention_hours = n,
                    "min_member_hours" => t.min_member_hours = n,
                    "reply_burst" => t.reply_burst = n,
                    "reply_refill_s" => t.reply_refill_s = n,
                    _ => t.max_reports_per_10min = n,
                }
            }
            Kind::Language => t.language = check_language(Catalogs::builtin(), v)?,
            Kind::Timezone => t.timezone = check_timezone(v)?,
        }
        Ok(t)
    }

    /// The value of one setting as `!nw settings` shows it.
    pub fn value_of(&self, key: &str) -> Option<String> {
        self.shown()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_value_is_checked_with_the_network_files_ranges_and_words() {
        let t = Tunables::default();
        let c = t.with_setting("alert_radius_m", " 5000 ").unwrap();
        assert_eq!(c.alert_radius_m, 5000.0);
        assert_eq!(c.value_of("alert_radius_m").as_deref(), Some("5000"));
        assert_eq!(
            t.with_setting("confirmations", "0")
                .unwrap_err()
                .to_string(),
            "must be a whole number from 1 to 100, not 0"
        );
        assert_eq!(
            t.with_setting("alert_radius_m", "5km")
                .unwrap_err()
                .to_string(),
            "must be a distance above 0 and at most 100000 metres, not 5km"
        );
        assert_eq!(
            t.with_setting("min_member_hours", "0")
                .unwrap()
                .min_member_hours,
            0
        );
        assert!(t.with_setting("timezone", "Mars/Olympus").is_err());
        assert_eq!(
            t.with_setting("timezone", "America/Chicago")
                .unwrap()
                .timezone,
            chrono_tz::America::Chicago
        );
        assert_eq!(t.with_setting("language", "es").unwrap().language, "es");
        assert!(matches!(
            t.with_setting("language", "xx"),
            Err(SettingError::Bad(Problem::Language { .. }))
        ));
        assert_eq!(
            t.with_setting("verifiers", "@a:b"),
            Err(SettingError::OwnCommand("verifiers".into()))
        );
        assert_eq!(
            t.with_setting("radius", "1"),
            Err(SettingError::Unknown("radius".into()))
        );
    }

    #[test]
    fn every_shown_setting_but_the_verifier_list_is_settable() {
        let shown: Vec<&str> = Tunables::default()
            .shown()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| *k != "verifiers")
            .collect();
        let settable: Vec<&str> = SETTABLE.iter().map(|(k, _)| *k).collect();
        assert_eq!(shown, settable);
    }
}
