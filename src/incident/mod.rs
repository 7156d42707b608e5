//! Incidents: merging reports by place and time, counting distinct reporters,
//! confirmation, expiry and retention (PRODUCT.md §3).
//!
//! Owns: the [`Engine`] state machine (`engine/`), the in-memory incident table and the
//! spatial index. Must not touch: clocks (time is an argument), Matrix, files, wording
//! (a [`Render`](crate::decision::Render) is handed in); storage only through the
//! [`Store`](crate::store::Store) trait. The vocabulary it works on is [`crate::model`];
//! `!nw` commands are decided by [`crate::admin`].

mod engine;
pub mod index;
mod table;

pub use engine::{
    Content, Engine, EngineError, IncomingMessage, LOCATION_ATTACH_MIN, LocatedReport, Member,
    Standing,
};
pub use index::{IncidentIndex, LinearIndex, SpatialIndex};
