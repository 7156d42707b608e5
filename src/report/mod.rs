//! Reports: recognizing a report in a message and reading it (PRODUCT.md §2).
//!
//! Owns: the quick-report and SALUTE grammars, time reading, best-effort details, and
//! the rejection reasons. Uses `places` to resolve locations. Must not touch: incidents,
//! storage, Matrix, clocks (the message timestamp is passed in).

mod extract;
mod time;

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use regex::Regex;
use serde::{Deserialize, Serialize};

pub use extract::{Category, Details, extract};
pub use time::{FoundTime, find_time};

use crate::places::{Gazetteer, Resolved};

/// Longest message body read as a report, in characters.
pub const MAX_REPORT_CHARS: usize = 2000;

/// How far in the future a report time may lie (clock skew between phones).
pub const FUTURE_TOLERANCE_MIN: i64 = 5;

/// Which grammar a report used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportForm {
    /// `!report …`, `!r …`, `!aviso …`.
    Quick,
    /// A SALUTE block.
    Salute,
    /// An `m.location` share.
    LocationShare,
}

/// Where a report says the sighting is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LocationOutcome {
    /// Resolved to a point.
    Resolved(Resolved),
    /// Nothing resolved; the words that were tried and the closest gazetteer names.
    Unresolved {
        /// The words read as the location.
        query: String,
        /// Closest gazetteer names, best first.
        suggestions: Vec<String>,
    },
}

/// A report read from a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParsedReport {
    /// The grammar used.
    pub form: ReportForm,
    /// The report text without the command word.
    pub text: String,
    /// The location.
    pub location: LocationOutcome,
    /// When the sighting happened.
    pub observed_at: DateTime<Utc>,
    /// Counts, category, vehicles, plates.
    pub details: Details,
}

/// Why a message that looks like a report was refused. Each has its own reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// `!r` with nothing after it.
    #[error("the report is empty")]
    Empty,
    /// Longer than [`MAX_REPORT_CHARS`].
    #[error("the report is {chars} characters long; the limit is {max}")]
    TooLong {
        /// Length of the message.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The time is more than [`FUTURE_TOLERANCE_MIN`] minutes ahead of the message.
    #[error("the time is {minutes} minutes in the future")]
    FutureTime {
        /// How far ahead.
        minutes: i64,
    },
    /// A SALUTE block without a `Location:` line.
    #[error("the SALUTE block has no Location line")]
    SaluteNoLocation,
    /// A SALUTE block with fewer than three lines.
    #[error("the SALUTE block has {found} lines; at least 3 are needed")]
    SaluteTooShort {
        /// SALUTE lines found.
        found: usize,
    },
}

impl ReportError {
    /// The catalog key of the reply that explains this error.
    pub fn catalog_key(&self) -> &'static str {
        match self {
            Self::Empty => "error.empty",
            Self::TooLong { .. } => "error.too_long",
            Self::FutureTime { .. } => "error.future_time",
            Self::SaluteNoLocation => "error.salute_no_location",
            Self::SaluteTooShort { .. } => "error.salute_too_short",
        }
    }
}

/// What the parser needs to know besides the text.
#[derive(Clone, Copy, Debug)]
pub struct ParseContext<'a> {
    /// The neighborhood's places.
    pub gazetteer: &'a Gazetteer,
    /// The neighborhood's time zone.
    pub tz: Tz,
    /// The message's own timestamp.
    pub sent_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SaluteKey {
    Size,
    Activity,
    Location,
    Uniform,
    Time,
    Equipment,
}

fn salute_key(word: &str) -> Option<SaluteKey> {
    let w = crate::places::normalize::fold(word.trim());
    Some(match w.as_str() {
        "size" | "s" | "tamano" => SaluteKey::Size,
        "activity" | "a" | "actividad" => SaluteKey::Activity,
        "location" | "l" | "lugar" | "ubicacion" => SaluteKey::Location,
        "uniform" | "u" | "uniforme" => SaluteKey::Uniform,
        "time" | "t" | "hora" => SaluteKey::Time,
        "equipment" | "e" | "equipo" => SaluteKey::Equipment,
        _ => return None,
    })
}

static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*!(?:report|reporte|r|aviso)(?:\s+|$)").expect("static regex")
});
static LOCATION_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\bcorner of|\besquina(?: de)?|\bnear|\bcerca de|\bat|\ben|\bon|\bby|\bpor|@)\s+",
    )
    .expect("static regex")
});

/// The SALUTE lines of a body: (key, value) for each recognized `Key: value` line.
fn salute_lines(body: &str) -> Vec<(SaluteKey, &str)> {
    body.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            if k.trim().chars().count() > 12 {
                return None;
            }
            Some((salute_key(k)?, v.trim()))
        })
        .collect()
}

/// True when the body starts with a report command word.
pub fn is_report_command(body: &str) -> bool {
    PREFIX.is_match(body)
}

/// Reads a message body.
///
/// `Ok(None)`: not a report (ordinary chat, left alone). `Ok(Some(_))`: a report, with a
/// resolved or unresolved location. `Err(_)`: it looks like a report but cannot be used;
/// the sender gets the error's reply.
pub fn parse_report(
    body: &str,
    ctx: &ParseContext<'_>,
) -> Result<Option<ParsedReport>, ReportError> {
    let prefixed = PREFIX.find(body);
    let salute = salute_lines(body);
    let looks_salute = salute.len() >= 2;
    if prefixed.is_none() && !looks_salute {
        return Ok(None);
    }
    let chars = body.chars().count();
    if chars > MAX_REPORT_CHARS {
        return Err(ReportError::TooLong {
            chars,
            max: MAX_REPORT_CHARS,
        });
    }
    let text = match prefixed {
        Some(m) => body[m.end()..].trim(),
        None => body.trim(),
    };
    if text.is_empty() {
        return Err(ReportError::Empty);
    }
    if salute.len() >= 3 || (looks_salute && prefixed.is_none()) {
        return parse_salute(text, &salute, ctx).map(Some);
    }
    parse_quick(text, ctx).map(Some)
}

fn check_future(at: DateTime<Utc>, sent_at: DateTime<Utc>) -> Result<(), ReportError> {
    let ahead = at - sent_at;
    if ahead > Duration::minutes(FUTURE_TOLERANCE_MIN) {
        return Err(ReportError::FutureTime {
            minutes: ahead.num_minutes(),
        });
    }
    Ok(())
}

fn unresolved(query: &str, g: &Gazetteer) -> LocationOutcome {
    LocationOutcome::Unresolved {
        query: query.trim().chars().take(80).collect(),
        suggestions: g.suggest(query, 3),
    }
}

fn parse_quick(text: &str, ctx: &ParseContext<'_>) -> Result<ParsedReport, ReportError> {
    let time = find_time(text, ctx.sent_at, ctx.tz);
    let observed_at = time.as_ref().map_or(ctx.sent_at, |t| t.at);
    check_future(observed_at, ctx.sent_at)?;
    // Blank the time so `8:05` is never read as part of a place.
    let masked: std::borrow::Cow<'_, str> = match &time {
        Some(t) => {
            let mut s = text.to_owned();
            s.replace_range(t.span.clone(), &" ".repeat(t.span.len()));
            s.into()
        }
        None => text.into(),
    };
    let location = match ctx.gazetteer.resolve(&masked) {
        Some(r) => LocationOutcome::Resolved(r),
        None => {
            let query = LOCATION_WORDS
                .find_iter(&masked)
                .last()
                .map_or(&masked[..], |m| &masked[m.end()..]);
            unresolved(query, ctx.gazetteer)
        }
    };
    Ok(ParsedReport {
        form: ReportForm::Quick,
        text: text.to_owned(),
        location,
        observed_at,
        details: extract(text),
    })
}

fn parse_salute(
    text: &str,
    lines: &[(SaluteKey, &str)],
    ctx: &ParseContext<'_>,
) -> Result<ParsedReport, ReportError> {
    let value = |k: SaluteKey| lines.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let Some(place) = value(SaluteKey::Location) else {
        return Err(ReportError::SaluteNoLocation);
    };
    if lines.len() < 3 {
        return Err(ReportError::SaluteTooShort { found: lines.len() });
    }
    let observed_at = value(SaluteKey::Time)
        .and_then(|t| find_time(t, ctx.sent_at, ctx.tz))
        .map_or(ctx.sent_at, |t| t.at);
    check_future(observed_at, ctx.sent_at)?;
    let location = match ctx.gazetteer.resolve(place) {
        Some(r) => LocationOutcome::Resolved(r),
        None => unresolved(place, ctx.gazetteer),
    };
    Ok(ParsedReport {
        form: ReportForm::Salute,
        text: text.to_owned(),
        location,
        observed_at,
        details: extract(text),
    })
}
