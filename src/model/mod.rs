//! The shared vocabulary: incidents and their IDs, statuses, verifier actions, what
//! another neighborhood marked, the tag every bot message carries, hashed reporters and report records.
//!
//! Owns: these plain data types and their small invariants (ID encoding, status order,
//! hashing a reporter, the incident's derived counts). Must not touch: the engine's
//! rules, storage, wording, Matrix. Depends only on `places` and `report`; `command`,
//! `decision`, `stats`, `store`, `render`, `effect` and the engine depend on it.

mod action;
mod incident;
mod local;

pub use action::Action;
pub use incident::{
    ConfirmedBy, Incident, IncidentId, IncidentTag, NearPlace, PendingReport, ReportRecord,
    ReporterHash, ReporterKey, Status,
};
pub use local::LocalMark;
