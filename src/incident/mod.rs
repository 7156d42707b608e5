//! Incidents: merging reports by place and time, counting distinct reporters,
//! confirmation, expiry and retention (PRODUCT.md §3).
//!
//! Owns: the [`Engine`] state machine, incident data, the in-memory incident table, the
//! spatial index and reporter hashing. Must not touch: clocks (time is an argument),
//! Matrix, files; storage only through the [`Store`](crate::store::Store) trait.

mod engine;
pub mod index;
mod table;

pub use engine::{
    Content, Engine, EngineError, IncomingMessage, LOCATION_ATTACH_MIN, LocatedReport, Member,
    Standing,
};
pub use index::{IncidentIndex, LinearIndex, SpatialIndex};
