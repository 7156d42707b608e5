//! Effects: what the core asks the outside world to do, as plain data. The Matrix shell
//! performs them; `replay` prints them. Nothing here performs anything.

use serde::{Deserialize, Serialize};

use crate::model::{IncidentId, IncidentTag};

/// One action of the bot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Effect {
    /// A quiet reply to a message (acknowledgment, error, suggestions).
    Reply {
        /// Room.
        room: String,
        /// The event replied to.
        in_reply_to: String,
        /// What to say.
        #[serde(flatten)]
        message: OutgoingMessage,
    },
    /// A message not in reply to anything (coordination room).
    Notice {
        /// Room.
        room: String,
        /// What to say.
        #[serde(flatten)]
        message: OutgoingMessage,
    },
    /// A new alert in a room (`m.text`).
    Relay {
        /// Room.
        room: String,
        /// The alert.
        #[serde(flatten)]
        message: OutgoingMessage,
        /// The room is in the neighborhood the incident was reported in: its people saw
        /// the reports, so its alert goes once the other neighborhoods' are out.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        home: bool,
    },
    /// The `m.location` that follows an alert.
    Location {
        /// Room.
        room: String,
        /// The incident.
        incident: IncidentTag,
        /// `geo:` URI.
        geo_uri: String,
        /// Description.
        body: String,
    },
    /// Replace the alert of `message.incident` previously relayed to `room`.
    Edit {
        /// Room.
        room: String,
        /// New content.
        #[serde(flatten)]
        message: OutgoingMessage,
    },
    /// A reply in the thread of the alert of `message.incident` in `room`.
    ThreadReply {
        /// Room.
        room: String,
        /// What to say.
        #[serde(flatten)]
        message: OutgoingMessage,
    },
    /// Redact every message the bot sent about `incident` in `room` (the store keeps
    /// their event IDs): the incident closed, and the room's `alert_retention_hours`
    /// have passed.
    Fade {
        /// Room.
        room: String,
        /// The incident.
        incident: IncidentId,
    },
}

impl Effect {
    /// The room the effect happens in.
    pub fn room(&self) -> &str {
        match self {
            Self::Reply { room, .. }
            | Self::Notice { room, .. }
            | Self::Relay { room, .. }
            | Self::Location { room, .. }
            | Self::Edit { room, .. }
            | Self::ThreadReply { room, .. }
            | Self::Fade { room, .. } => room,
        }
    }

    /// The incident the effect is about, if any.
    pub fn incident(&self) -> Option<&IncidentId> {
        match self {
            Self::Location { incident, .. } => Some(&incident.id),
            Self::Fade { incident, .. } => Some(incident),
            Self::Reply { message, .. }
            | Self::Notice { message, .. }
            | Self::Relay { message, .. }
            | Self::Edit { message, .. }
            | Self::ThreadReply { message, .. } => message.incident.as_ref().map(|t| &t.id),
        }
    }
}

/// `m.text` notifies; `m.notice` is quiet (Matrix's default push rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsgType {
    /// Notifies members.
    #[serde(rename = "m.text")]
    Text,
    /// Quiet.
    #[serde(rename = "m.notice")]
    Notice,
}

/// A message ready to send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// `m.text` or `m.notice`.
    pub msgtype: MsgType,
    /// Plain-text body.
    pub body: String,
    /// HTML body (`org.matrix.custom.html`), user text escaped.
    pub html: String,
    /// Whether to mention the whole room (`m.mentions.room`).
    pub mentions_room: bool,
    /// The incident it is about.
    pub incident: Option<IncidentTag>,
}

/// The `m.location` that follows an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocationContent {
    /// `geo:` URI with uncertainty.
    pub geo_uri: String,
    /// Description (plain text).
    pub description: String,
}
