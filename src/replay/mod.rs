//! Offline replay (PRODUCT.md §8): JSON-lines messages in, JSON-lines actions out, with
//! the whole core and no homeserver.
//!
//! Owns: the input line format and driving the engine in timestamp order. Must not
//! touch: Matrix. Reads and writes only the streams it is given.

use std::io::{BufRead, Write};

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::incident::{Content, Engine, EngineError, IncomingMessage, Member};
use crate::store::Store;

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputLine {
    /// Room ID.
    pub room: String,
    /// Sender user ID.
    pub sender: String,
    /// Unix milliseconds.
    pub ts: i64,
    /// Message body (or location description).
    #[serde(default)]
    pub body: String,
    /// `geo:` URI: this line is a location share.
    pub geo: Option<String>,
    /// Event ID; derived from the line's content when absent.
    pub event_id: Option<String>,
    /// Event replied to: accepted, so exported conversations replay, and ignored.
    #[serde(default, rename = "reply_to")]
    _reply_to: Option<serde::de::IgnoredAny>,
    /// This line edits (`m.replace`) that event.
    pub replaces: Option<String>,
    /// `m.text` (default) or `m.notice`.
    pub msgtype: Option<String>,
    /// Reaction key: this line is a reaction to `relates_to`.
    pub reaction: Option<String>,
    /// The event reacted to.
    pub relates_to: Option<String>,
    /// This line deletes (redacts) that event.
    pub redacts: Option<String>,
    /// The sender's power level in the room (default 0; 50 and up is a moderator).
    pub power: Option<i64>,
    /// When the sender joined the room (unix ms; default: long ago).
    pub member_since: Option<i64>,
}

/// Why a line or the replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A line is not a valid input object.
    #[error("line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Reading input or writing output failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The engine (its store) failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl InputLine {
    /// The message this line stands for.
    pub fn into_message(self, line: usize) -> Result<IncomingMessage, ReplayError> {
        let bad = |reason: String| ReplayError::BadLine { line, reason };
        let ts: DateTime<Utc> = Utc.timestamp_millis_opt(self.ts).single().ok_or_else(|| {
            bad(format!(
                "`ts` {} is not a unix time in milliseconds",
                self.ts
            ))
        })?;
        let event_id = self.event_id.clone().unwrap_or_else(|| {
            let mut h = Sha256::new();
            for part in [&self.room, &self.sender, &self.ts.to_string(), &self.body] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.update(self.geo.as_deref().unwrap_or_default());
            format!("$replay-{}", &hex::encode(h.finalize())[..20])
        });
        let since = match self.member_since {
            Some(ms) => Some(Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
                bad(format!(
                    "`member_since` {ms} is not a unix time in milliseconds"
                ))
            })?),
            None => None,
        };
        let member = Member {
            power: self.power.unwrap_or(0),
            since,
        };
        let content = if let Some(redacts) = self.redacts {
            // The default `redact` level: a moderator's.
            Content::Redaction {
                redacts,
                may_redact_others: member.power >= crate::lifecycle::MODERATOR_POWER,
            }
        } else if let Some(key) = self.reaction {
            let relates_to = self
                .relates_to
                .ok_or_else(|| bad("a `reaction` needs `relates_to`".into()))?;
            Content::Reaction { key, relates_to }
        } else if let Some(geo_uri) = self.geo {
            Content::Location {
                geo_uri,
                body: self.body,
            }
        } else {
            let notice = match self.msgtype.as_deref() {
                None | Some("m.text") => false,
                Some("m.notice") => true,
                Some(other) => {
                    return Err(bad(format!(
                        "`msgtype` must be m.text or m.notice, not `{other}`"
                    )));
                }
            };
            Content::Text {
                body: self.body,
                notice,
                replaces: self.replaces,
            }
        };
        Ok(IncomingMessage {
            event_id,
            room: self.room,
            sender: self.sender,
            ts,
            content,
            member,
        })
    }
}

/// Counts of a replay run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Lines handled.
    pub lines: usize,
    /// Actions written.
    pub actions: usize,
    /// Lines refused (reported to `errors`).
    pub bad_lines: usize,
}

/// Replays `input` through `engine`, writing one JSON action per line to `out` and one
/// line per refused input line to `errors`. Time is each line's `ts`.
///
/// Each action stands for a message the bot sends: it is given the event ID
/// `<input event ID>/<N>` (the N-th action, from 1, of that input line) and printed with
/// it as `"event_id"`, so a later input line can react to it (`"reaction": "❌",
/// "relates_to": "$r2/3"`). The IDs are the same however a replay is split.
pub fn run<S: Store>(
    engine: &mut Engine<S>,
    input: impl BufRead,
    mut out: impl Write,
    mut errors: impl Write,
) -> Result<Summary, ReplayError> {
    let mut summary = Summary::default();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let msg = serde_json::from_str::<InputLine>(&line)
            .map_err(|e| ReplayError::BadLine {
                line: n,
                reason: e.to_string(),
            })
            .and_then(|l| l.into_message(n));
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                writeln!(errors, "{e}")?;
                summary.bad_lines += 1;
                continue;
            }
        };
        summary.lines += 1;
        let mut effects = engine.tick(msg.ts)?;
        effects.extend(engine.handle(&msg, msg.ts)?);
        for (i, e) in effects.into_iter().enumerate() {
            summary.actions += 1;
            let event_id = format!("{}/{}", msg.event_id, i + 1);
            engine.mark_sent(&e, &event_id)?;
            let mut v = serde_json::to_value(&e).map_err(std::io::Error::other)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("event_id".into(), event_id.into());
            }
            serde_json::to_writer(&mut out, &v).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(summary)
}
