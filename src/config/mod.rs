//! The network file (PRODUCT.md §5): read once, validated into typed [`Network`]
//! settings. Every error names the file, the line and the key; nothing half-valid
//! leaves this module.
//!
//! Owns: TOML parsing, validation, reading the gazetteer and area files the network file
//! names (paths relative to it). Must not touch: Matrix, storage, environment variables
//! (the file names env vars; the binary reads them).
//!
//! Layout:
//! - `network`: what a validated file holds ([`Network`], [`Neighborhood`], [`Area`],
//!   [`Tunables`], the account, storage and metrics settings) and the room index;
//! - `raw`: the file as written (serde structs with spans);
//! - `load`: reading the file and validating it section by section;
//! - `values`: single values (room and user IDs, env var names, numbers, the tunables);
//! - `area`: a neighborhood's area, a circle or GeoJSON polygons;
//! - `settable`: the settings a room may change, their ranges and problems;
//! - `settings`: the overlay of values set from rooms over the file;
//! - `reload`: the file read again while the bot runs, against the running network.

mod area;
mod load;
mod network;
mod raw;
mod reload;
mod settable;
mod settings;
mod values;

use std::path::PathBuf;

use crate::places::GazetteerError;

pub use network::{
    Area, MAX_ALERT_RETENTION_HOURS, MatrixSettings, MetricsSettings, Neighborhood, Network,
    StorageSettings, Tunables,
};
pub use reload::{NetworkChanges, RESTART_SECTIONS, changes};
pub use settable::{Kind, Problem, SETTABLE, SettingError, kind_of};
pub use settings::{
    AREA_KEY, MAX_PLACE_NAME_CHARS, MAX_PLACE_OUTSIDE_M, MAX_ROOM_PLACES, Overlay, PLACE_KEY,
    PLACE_KINDS, RoomSetting, VERIFIER_ADDED, VERIFIER_KEY, VERIFIER_REMOVED, area_text,
    parse_area, parse_place, place_key, place_text,
};
pub use values::is_user_id;

/// Why a network file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The network file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The offending key, when the parser named one.
        key: Option<String>,
        /// What the parser said.
        message: String,
    },
    /// A value is well-formed TOML but not acceptable.
    #[error("{file}:{line}: `{key}`: {reason}")]
    Invalid {
        /// The network file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A gazetteer or area file named by the network file is not usable.
    #[error("{file}:{line}: `{key}`: {path}: {source}")]
    Geo {
        /// The network file.
        file: PathBuf,
        /// 1-based line of the reference.
        line: usize,
        /// The key that names the file.
        key: String,
        /// The referenced file.
        path: PathBuf,
        /// What is wrong with it.
        source: GazetteerError,
    },
}

impl ConfigError {
    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Read { .. } => None,
            Self::Syntax { line, .. } | Self::Invalid { line, .. } | Self::Geo { line, .. } => {
                Some(*line)
            }
        }
    }

    /// The key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Read { .. } => None,
            Self::Syntax { key, .. } => key.as_deref(),
            Self::Invalid { key, .. } | Self::Geo { key, .. } => Some(key),
        }
    }
}
