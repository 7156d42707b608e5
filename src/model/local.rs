//! What another alerted neighborhood says of an incident it did not report (PRODUCT.md
//! §3, issue 24): a false alarm or all clear that holds in its own rooms only, and a
//! confirmation kept as support for the incident's home to see.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Status;

/// A false alarm or all clear from a moderator or verifier of a neighborhood that is
/// not the incident's home: that neighborhood's alerts show it ("marked false alarm here
/// by a moderator of …"), every other room keeps the incident's own status until its
/// home decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalMark {
    /// The neighborhood (ID) whose rooms it holds in.
    pub neighborhood: Arc<str>,
    /// What it is there: [`Status::FalseAlarm`] or [`Status::Resolved`].
    pub status: Status,
    /// By one of its room moderators (else by one of its listed verifiers).
    pub by_moderator: bool,
    /// The reason given, for a false alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Arc<str>>,
    /// When.
    pub at: DateTime<Utc>,
}
