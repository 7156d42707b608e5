//! The network file (PRODUCT.md §5): read once, validated into typed [`Network`]
//! settings. Every error names the file, the line and the key; nothing half-valid
//! leaves this module.
//!
//! Owns: TOML parsing, validation, reading the gazetteer and area files the network file
//! names (paths relative to it). Must not touch: Matrix, storage, environment variables
//! (the file names env vars; the binary reads them).

mod raw;
mod settings;

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use chrono_tz::Tz;
use geo::{Closest, ClosestPoint, Contains, MultiPolygon, Polygon};
use raw::{Num, RawArea, RawNetwork, RawTunables};
use regex::Regex;
use rustc_hash::FxHashMap;
use serde_json::Value;
use toml::Spanned;

use crate::catalog::Catalogs;
use crate::places::{Gazetteer, GazetteerBuilder, GazetteerError, LatLon};

pub use settings::{
    AREA_KEY, Kind, MAX_PLACE_NAME_CHARS, MAX_PLACE_OUTSIDE_M, MAX_ROOM_PLACES, Overlay, PLACE_KEY,
    PLACE_KINDS, Problem, RoomSetting, SETTABLE, SettingError, VERIFIER_ADDED, VERIFIER_KEY,
    VERIFIER_REMOVED, area_text, kind_of, parse_area, parse_place, place_key, place_text,
};

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

/// Tunables of a neighborhood (PRODUCT.md §5 `[defaults]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tunables {
    /// Reports this close to an incident may merge into it.
    pub dedupe_radius_m: f64,
    /// …when this close in time to its newest report.
    pub dedupe_window_min: u32,
    /// Distinct reporters needed to confirm.
    pub confirmations: u32,
    /// Rooms whose area is this close to a confirmed incident are alerted.
    pub alert_radius_m: f64,
    /// Sightings this close to a school, church, hospital or shelter are marked near it.
    pub sensitive_radius_m: f64,
    /// Incidents expire after this long without a new report.
    pub expiry_hours: u32,
    /// Report text is purged after this long.
    pub retention_hours: u32,
    /// Message catalog language (`en`, `es`).
    pub language: String,
    /// Zone in which clock times in reports are read.
    pub timezone: Tz,
    /// A reporter whose membership of the room is younger than this is acknowledged but
    /// does not count toward `confirmations` (0: everyone counts).
    pub min_member_hours: u32,
    /// Reports one reporter may send in 10 minutes that count; the rest are recorded, not
    /// counted.
    pub max_reports_per_10min: u32,
    /// Verifiers (user IDs): the network-wide ones of `[defaults]` plus the
    /// neighborhood's own.
    pub verifiers: Vec<String>,
}

impl Tunables {
    /// The settings as the network file names them, with their values (the verifiers
    /// counted, not named).
    pub fn shown(&self) -> Vec<(&'static str, String)> {
        vec![
            ("confirmations", self.confirmations.to_string()),
            ("alert_radius_m", self.alert_radius_m.to_string()),
            ("dedupe_radius_m", self.dedupe_radius_m.to_string()),
            ("dedupe_window_min", self.dedupe_window_min.to_string()),
            ("sensitive_radius_m", self.sensitive_radius_m.to_string()),
            ("expiry_hours", self.expiry_hours.to_string()),
            ("retention_hours", self.retention_hours.to_string()),
            ("min_member_hours", self.min_member_hours.to_string()),
            (
                "max_reports_per_10min",
                self.max_reports_per_10min.to_string(),
            ),
            ("language", self.language.clone()),
            ("timezone", self.timezone.name().to_owned()),
            ("verifiers", self.verifiers.len().to_string()),
        ]
    }

    /// Whether `user` is a listed verifier.
    pub fn is_verifier(&self, user: &str) -> bool {
        self.verifiers.iter().any(|v| v == user)
    }
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            dedupe_radius_m: 250.0,
            dedupe_window_min: 20,
            confirmations: 2,
            alert_radius_m: 1600.0,
            sensitive_radius_m: 300.0,
            expiry_hours: 4,
            retention_hours: 24,
            language: "en".into(),
            timezone: chrono_tz::America::Los_Angeles,
            min_member_hours: 0,
            max_reports_per_10min: 5,
            verifiers: Vec::new(),
        }
    }
}

/// A neighborhood's area.
#[derive(Clone, Debug, PartialEq)]
pub enum Area {
    /// A circle.
    Circle {
        /// Center.
        center: LatLon,
        /// Radius in metres.
        radius_m: f64,
    },
    /// Polygons from a GeoJSON file.
    Polygons(MultiPolygon<f64>),
}

impl Area {
    /// Its middle: a circle's center, the polygons' centroid (for a drill's synthetic
    /// report).
    pub fn center(&self) -> LatLon {
        match self {
            Self::Circle { center, .. } => *center,
            Self::Polygons(mp) => {
                use geo::Centroid;
                mp.centroid()
                    .map(LatLon::from_point)
                    .unwrap_or(LatLon { lat: 0.0, lon: 0.0 })
            }
        }
    }

    /// Distance in metres from `p` to the area (0 inside it).
    pub fn distance_m(&self, p: LatLon) -> f64 {
        match self {
            Self::Circle { center, radius_m } => (center.distance_m(p) - radius_m).max(0.0),
            Self::Polygons(mp) => {
                let pt = p.to_point();
                if mp.contains(&pt) {
                    return 0.0;
                }
                match mp.closest_point(&pt) {
                    Closest::Intersection(_) => 0.0,
                    Closest::SinglePoint(q) => p.distance_m(LatLon::from_point(q)),
                    Closest::Indeterminate => f64::INFINITY,
                }
            }
        }
    }
}

/// One neighborhood of the network.
#[derive(Clone, Debug)]
pub struct Neighborhood {
    /// Short stable identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Room IDs or aliases of its rooms (shared: every relayed alert names one).
    pub rooms: Vec<Arc<str>>,
    /// Its area.
    pub area: Area,
    /// Its places.
    pub gazetteer: Arc<Gazetteer>,
    /// Its effective tunables: `[defaults]`, its own table's overrides, then the values
    /// set from its rooms (see [`Network::with_overlay`]).
    pub settings: Tunables,
    /// The values of `settings` set from a room (empty in the file's network).
    room_set: Vec<RoomSetting>,
}

impl Neighborhood {
    /// Who set `key` from a room, and when; `None` when its value is the file's.
    pub fn set_in_room(&self, key: &str) -> Option<&RoomSetting> {
        self.room_set.iter().find(|s| s.key == key)
    }

    /// Every value set from its rooms (settings, and verifiers added or removed).
    pub fn room_set(&self) -> &[RoomSetting] {
        &self.room_set
    }
}

/// `[matrix]`: the bot's account. Secrets are named by env var, never stored here.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSettings {
    /// Homeserver URL.
    pub homeserver: String,
    /// The bot's user ID.
    pub user: String,
    /// Env var holding the password.
    pub password_env: String,
    /// Directory of the sqlite crypto store (absolute).
    pub store_path: PathBuf,
    /// Env var holding the store passphrase.
    pub store_passphrase_env: String,
    /// Device display name.
    pub device_name: String,
    /// How long a message may stay undecryptable before its sender is asked to send it
    /// again (its keys may still arrive later; it is then handled as usual).
    pub ask_resend_after_s: u32,
}

/// `[storage]`: the bot's state database.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageSettings {
    /// Path of the sled database (absolute).
    pub path: PathBuf,
    /// Env var holding the reporter-hash key.
    pub reporter_key_env: String,
}

/// `[metrics]`: the Prometheus and health listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Address to listen on (`127.0.0.1:9464`; a container listens on `0.0.0.0`).
    pub listen: std::net::SocketAddr,
}

/// A validated network file.
#[derive(Clone, Debug)]
pub struct Network {
    /// The file it came from.
    pub path: PathBuf,
    /// Room that sees every incident and every admin change.
    pub coordination_room: Option<String>,
    /// Users whose invites the bot accepts besides the network's rooms.
    pub organizers: Vec<String>,
    /// Whether alerts may go to unencrypted rooms.
    pub allow_unencrypted: bool,
    /// The bot's account, if the file has one (replay does not need it).
    pub matrix: Option<MatrixSettings>,
    /// The state database, if the file has one.
    pub storage: Option<StorageSettings>,
    /// The metrics listener, if the file asks for one.
    pub metrics: Option<MetricsSettings>,
    /// `[defaults]`.
    pub defaults: Tunables,
    /// The neighborhoods: read with [`Network::neighborhoods`], changed only through
    /// [`Network::update_neighborhoods`], which keeps the lookups below in step.
    neighborhoods: Vec<Neighborhood>,
    /// Neighborhood index by room and by id (every report looks these up).
    by_room: FxHashMap<String, usize>,
    by_id: FxHashMap<String, usize>,
    /// Relay links requested from rooms (none in the file's network).
    links: Vec<crate::links::Link>,
}

impl Network {
    fn new(mut net: Network) -> Self {
        net.reindex();
        net
    }

    /// The neighborhoods, in file order.
    pub fn neighborhoods(&self) -> &[Neighborhood] {
        &self.neighborhoods
    }

    /// Changes the neighborhoods (the Matrix shell does, when it resolves room aliases to
    /// room IDs) and rebuilds the room and id lookups, so they never go stale.
    pub fn update_neighborhoods(&mut self, change: impl FnOnce(&mut [Neighborhood])) {
        change(&mut self.neighborhoods);
        self.reindex();
    }

    /// Rebuilds the room and id lookups.
    fn reindex(&mut self) {
        let net = self;
        net.by_id = net
            .neighborhoods
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        net.by_room.clear();
        for (i, n) in net.neighborhoods.iter().enumerate() {
            for r in &n.rooms {
                // A room named twice belongs to its first neighborhood.
                net.by_room.entry(r.to_string()).or_insert(i);
            }
        }
    }

    /// The neighborhood a room belongs to.
    pub fn neighborhood_of_room(&self, room: &str) -> Option<&Neighborhood> {
        self.by_room.get(room).map(|i| &self.neighborhoods[*i])
    }

    /// The tunables of a neighborhood, or the defaults for an unknown one.
    pub fn settings(&self, neighborhood: &str) -> &Tunables {
        self.neighborhood(neighborhood)
            .map_or(&self.defaults, |n| &n.settings)
    }

    /// The tunables of the neighborhood a room belongs to, or the defaults.
    pub fn settings_of_room(&self, room: &str) -> &Tunables {
        self.neighborhood_of_room(room)
            .map_or(&self.defaults, |n| &n.settings)
    }

    /// Every relay link requested from a room, live or ended, by ID.
    pub fn links(&self) -> &[crate::links::Link] {
        &self.links
    }

    /// A neighborhood by id.
    pub fn neighborhood(&self, id: &str) -> Option<&Neighborhood> {
        self.by_id.get(id).map(|i| &self.neighborhoods[*i])
    }

    /// An identifier of this network's bot, used as the `origin` of incidents.
    pub fn origin(&self) -> &str {
        self.matrix
            .as_ref()
            .map_or("neighborwatch", |m| m.user.as_str())
    }

    /// Reads and validates a network file and the files it names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Validates network-file text; `path` locates relative file references.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Validator {
            file: path.to_owned(),
            dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            text,
            catalogs: Catalogs::builtin(),
            files: HashMap::new(),
        }
        .run()
    }
}

/// Whether `s` looks like a Matrix user ID (`@name:server`), as the network file requires
/// of verifiers and organizers (and a room admin's `!nw verifiers add`).
pub fn is_user_id(s: &str) -> bool {
    s.starts_with('@') && s.len() > 3 && s[1..].contains(':') && !s.contains(char::is_whitespace)
}

static UNKNOWN_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:unknown field|missing field) `([^`]+)`").expect("static regex")
});
static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z_][A-Z0-9_]*$").expect("static regex"));
static NEIGHBORHOOD_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,62}$").expect("static regex"));

struct Validator<'a> {
    file: PathBuf,
    dir: PathBuf,
    text: &'a str,
    catalogs: &'static Catalogs,
    files: HashMap<PathBuf, String>,
}

impl Validator<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }

    fn invalid(&self, span: &Range<usize>, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line(span),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn read(&mut self, rel: &Spanned<String>, key: &str) -> Result<(PathBuf, String), ConfigError> {
        let path = self.dir.join(rel.get_ref());
        if let Some(t) = self.files.get(&path) {
            return Ok((path, t.clone()));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid(
                &rel.span(),
                key,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.files.insert(path.clone(), text.clone());
        Ok((path, text))
    }

    fn run(mut self) -> Result<Network, ConfigError> {
        let raw: RawNetwork = toml::from_str(self.text).map_err(|e| {
            let line = e.span().map_or(1, |s| self.line(&s));
            let message = e.message().to_owned();
            ConfigError::Syntax {
                file: self.file.clone(),
                line,
                key: UNKNOWN_FIELD.captures(&message).map(|c| c[1].to_owned()),
                message,
            }
        })?;
        let defaults = self.tunables(
            raw.defaults.as_ref().unwrap_or(&RawTunables::default()),
            &Tunables::default(),
            "defaults",
        )?;
        let matrix = raw.matrix.as_ref().map(|m| self.matrix(m)).transpose()?;
        let storage = match &raw.storage {
            Some(s) => {
                self.env_name(&s.reporter_key_env, "storage.reporter_key_env")?;
                Some(StorageSettings {
                    path: self.dir.join(s.path.get_ref()),
                    reporter_key_env: s.reporter_key_env.get_ref().clone(),
                })
            }
            None => None,
        };
        let metrics = match &raw.metrics {
            Some(m) => Some(MetricsSettings {
                listen: m.listen.get_ref().trim().parse().map_err(|_| {
                    self.invalid(
                        &m.listen.span(),
                        "metrics.listen",
                        format!(
                            "`{}` is not an address and port, like 127.0.0.1:9464",
                            m.listen.get_ref()
                        ),
                    )
                })?,
            }),
            None => None,
        };
        if let Some(r) = &raw.coordination_room {
            self.room(r, "coordination_room")?;
        }
        let organizers = raw.organizers.unwrap_or_default();
        for o in &organizers {
            self.user_id(o, "organizers")?;
        }
        if raw.neighborhoods.is_empty() {
            return Err(ConfigError::Invalid {
                file: self.file.clone(),
                line: 1,
                key: "neighborhood".into(),
                reason: "the network needs at least one [[neighborhood]]".into(),
            });
        }
        let mut seen_ids = HashSet::new();
        let mut seen_rooms: HashMap<String, String> = HashMap::new();
        let mut neighborhoods = Vec::new();
        for n in &raw.neighborhoods {
            let id = n.id.get_ref();
            if !NEIGHBORHOOD_ID.is_match(id) {
                return Err(self.invalid(
                    &n.id.span(),
                    "neighborhood.id",
                    "use lowercase letters, digits, `-` and `_`",
                ));
            }
            if !seen_ids.insert(id.clone()) {
                return Err(self.invalid(
                    &n.id.span(),
                    "neighborhood.id",
                    format!("`{id}` is used twice"),
                ));
            }
            if n.name.get_ref().trim().is_empty() {
                return Err(self.invalid(&n.name.span(), "neighborhood.name", "must not be empty"));
            }
            if n.rooms.get_ref().is_empty() {
                return Err(self.invalid(
                    &n.rooms.span(),
                    "neighborhood.rooms",
                    "list at least one room",
                ));
            }
            for r in n.rooms.get_ref() {
                self.room(r, "neighborhood.rooms")?;
                if let Some(other) = seen_rooms.insert(r.get_ref().clone(), id.clone()) {
                    return Err(self.invalid(
                        &r.span(),
                        "neighborhood.rooms",
                        format!("room is already in neighborhood `{other}`"),
                    ));
                }
            }
            let area = self.area(&n.area)?;
            let mut builder = GazetteerBuilder::new();
            for g in &n.gazetteer {
                let (path, text) = self.read(g, "neighborhood.gazetteer")?;
                builder
                    .add_geojson(&text)
                    .map_err(|source| ConfigError::Geo {
                        file: self.file.clone(),
                        line: self.line(&g.span()),
                        key: "neighborhood.gazetteer".into(),
                        path,
                        source,
                    })?;
            }
            let settings = self.tunables(&n.tunables(), &defaults, "neighborhood")?;
            neighborhoods.push(Neighborhood {
                id: id.clone(),
                name: n.name.get_ref().trim().to_owned(),
                rooms: n
                    .rooms
                    .get_ref()
                    .iter()
                    .map(|r| Arc::from(r.get_ref().as_str()))
                    .collect(),
                area,
                gazetteer: Arc::new(builder.build()),
                settings,
                room_set: Vec::new(),
            });
        }
        Ok(Network::new(Network {
            by_room: FxHashMap::default(),
            by_id: FxHashMap::default(),
            links: Vec::new(),
            path: self.file.clone(),
            coordination_room: raw.coordination_room.map(Spanned::into_inner),
            organizers: organizers.into_iter().map(Spanned::into_inner).collect(),
            allow_unencrypted: raw.allow_unencrypted.unwrap_or(false),
            matrix,
            storage,
            metrics,
            defaults,
            neighborhoods,
        }))
    }

    fn room(&self, r: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        let s = r.get_ref();
        let clean = !s.contains(char::is_whitespace);
        // Room IDs are `!opaque:server`, or just `!opaque` from room version 12 on.
        let id = s.starts_with('!') && s.len() > 2 && clean;
        let alias = s.starts_with('#') && s.len() > 3 && s[1..].contains(':') && clean;
        if id || alias {
            Ok(())
        } else {
            Err(self.invalid(
                &r.span(),
                key,
                format!("`{s}` is not a room ID (!id or !id:server) or alias (#name:server)"),
            ))
        }
    }

    fn user_id(&self, u: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        let s = u.get_ref();
        if is_user_id(s) {
            Ok(())
        } else {
            Err(self.invalid(
                &u.span(),
                key,
                format!("`{s}` is not a user ID (@name:server)"),
            ))
        }
    }

    fn env_name(&self, v: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        if ENV_NAME.is_match(v.get_ref()) {
            Ok(())
        } else {
            Err(self.invalid(
                &v.span(),
                key,
                "must be the NAME of an environment variable (A-Z, 0-9, _); secrets never go in this file",
            ))
        }
    }

    fn matrix(&self, m: &raw::RawMatrix) -> Result<MatrixSettings, ConfigError> {
        let hs = m.homeserver.get_ref();
        if !(hs.starts_with("https://") || hs.starts_with("http://")) {
            return Err(self.invalid(
                &m.homeserver.span(),
                "matrix.homeserver",
                "must start with https:// or http://",
            ));
        }
        self.user_id(&m.user, "matrix.user")?;
        self.env_name(&m.password_env, "matrix.password_env")?;
        self.env_name(&m.store_passphrase_env, "matrix.store_passphrase_env")?;
        Ok(MatrixSettings {
            homeserver: hs.clone(),
            user: m.user.get_ref().clone(),
            password_env: m.password_env.get_ref().clone(),
            store_path: self.dir.join(m.store_path.get_ref()),
            store_passphrase_env: m.store_passphrase_env.get_ref().clone(),
            device_name: m
                .device_name
                .clone()
                .unwrap_or_else(|| "neighborwatch".into()),
            ask_resend_after_s: self.whole(
                &m.ask_resend_after_s,
                "matrix.ask_resend_after_s",
                60,
                86_400,
            )?,
        })
    }

    fn positive(&self, v: &Option<Spanned<Num>>, key: &str, base: f64) -> Result<f64, ConfigError> {
        let Some(v) = v else { return Ok(base) };
        settings::check_distance(v.get_ref().as_f64())
            .map_err(|p| self.invalid(&v.span(), key, p.to_string()))
    }

    fn whole(
        &self,
        v: &Option<Spanned<Num>>,
        key: &str,
        base: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        self.whole_from(v, key, base, 1, max)
    }

    fn whole_from(
        &self,
        v: &Option<Spanned<Num>>,
        key: &str,
        base: u32,
        min: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        let Some(v) = v else { return Ok(base) };
        let problem = |got: String| settings::Problem::Whole { min, max, got };
        match *v.get_ref() {
            Num::Int(i) if i >= i64::from(min) && i <= i64::from(max) => {
                u32::try_from(i).map_err(|_| problem(i.to_string()))
            }
            other => Err(problem(other.as_f64().to_string())),
        }
        .map_err(|p| self.invalid(&v.span(), key, p.to_string()))
    }

    /// A tunable whole number, with the range every room's change is checked against
    /// too ([`settings::SETTABLE`]).
    fn tunable_whole(
        &self,
        v: &Option<Spanned<Num>>,
        table: &str,
        name: &str,
        base: u32,
    ) -> Result<u32, ConfigError> {
        let (min, max) = settings::whole_range(name);
        self.whole_from(v, &format!("{table}.{name}"), base, min, max)
    }

    fn tunables(
        &self,
        raw: &RawTunables,
        base: &Tunables,
        table: &str,
    ) -> Result<Tunables, ConfigError> {
        let k = |name: &str| format!("{table}.{name}");
        let language = match &raw.language {
            Some(l) => settings::check_language(self.catalogs, l.get_ref())
                .map_err(|p| self.invalid(&l.span(), &k("language"), p.to_string()))?,
            None => base.language.clone(),
        };
        let timezone = match &raw.timezone {
            Some(t) => settings::check_timezone(t.get_ref())
                .map_err(|p| self.invalid(&t.span(), &k("timezone"), p.to_string()))?,
            None => base.timezone,
        };
        Ok(Tunables {
            dedupe_radius_m: self.positive(
                &raw.dedupe_radius_m,
                &k("dedupe_radius_m"),
                base.dedupe_radius_m,
            )?,
            dedupe_window_min: self.tunable_whole(
                &raw.dedupe_window_min,
                table,
                "dedupe_window_min",
                base.dedupe_window_min,
            )?,
            confirmations: self.tunable_whole(
                &raw.confirmations,
                table,
                "confirmations",
                base.confirmations,
            )?,
            alert_radius_m: self.positive(
                &raw.alert_radius_m,
                &k("alert_radius_m"),
                base.alert_radius_m,
            )?,
            sensitive_radius_m: self.positive(
                &raw.sensitive_radius_m,
                &k("sensitive_radius_m"),
                base.sensitive_radius_m,
            )?,
            expiry_hours: self.tunable_whole(
                &raw.expiry_hours,
                table,
                "expiry_hours",
                base.expiry_hours,
            )?,
            retention_hours: self.tunable_whole(
                &raw.retention_hours,
                table,
                "retention_hours",
                base.retention_hours,
            )?,
            min_member_hours: self.tunable_whole(
                &raw.min_member_hours,
                table,
                "min_member_hours",
                base.min_member_hours,
            )?,
            max_reports_per_10min: self.tunable_whole(
                &raw.max_reports_per_10min,
                table,
                "max_reports_per_10min",
                base.max_reports_per_10min,
            )?,
            verifiers: {
                // The defaults' verifiers serve every neighborhood; a neighborhood adds its own.
                let mut v = base.verifiers.clone();
                for u in raw.verifiers.iter().flatten() {
                    self.user_id(u, &k("verifiers"))?;
                    if !v.contains(u.get_ref()) {
                        v.push(u.get_ref().clone());
                    }
                }
                v
            },
            language,
            timezone,
        })
    }

    fn area(&mut self, a: &Spanned<RawArea>) -> Result<Area, ConfigError> {
        let span = a.span();
        match a.get_ref() {
            RawArea::Circle(c) => {
                let [lat, lon] = c.center;
                let center = LatLon::new(lat, lon).ok_or_else(|| {
                    self.invalid(
                        &span,
                        "neighborhood.area.center",
                        format!("[{lat}, {lon}] is not [latitude, longitude] in range"),
                    )
                })?;
                let radius_m = c.radius_m.as_f64();
                if !(radius_m.is_finite() && radius_m > 0.0) {
                    return Err(self.invalid(
                        &span,
                        "neighborhood.area.radius_m",
                        format!("must be above 0, not {radius_m}"),
                    ));
                }
                Ok(Area::Circle { center, radius_m })
            }
            RawArea::GeoJson(g) => {
                let rel = Spanned::new(span.clone(), g.geojson.clone());
                let (path, text) = self.read(&rel, "neighborhood.area.geojson")?;
                let geo_err = |reason: String| ConfigError::Geo {
                    file: self.file.clone(),
                    line: self.line(&span),
                    key: "neighborhood.area.geojson".into(),
                    path: path.clone(),
                    source: GazetteerError::Feature { index: 0, reason },
                };
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| geo_err(format!("not valid JSON: {e}")))?;
                polygons(&v).map(Area::Polygons).map_err(geo_err)
            }
        }
    }
}

fn ring(v: &Value) -> Result<geo::LineString<f64>, String> {
    let pts = v.as_array().ok_or("a ring must be a list of positions")?;
    pts.iter()
        .map(|p| {
            let a = p
                .as_array()
                .filter(|a| a.len() >= 2)
                .ok_or("a position must be [longitude, latitude]")?;
            let (lon, lat) = (a[0].as_f64(), a[1].as_f64());
            lat.zip(lon)
                .and_then(|(lat, lon)| LatLon::new(lat, lon))
                .map(|p| geo::Coord { x: p.lon, y: p.lat })
                .ok_or_else(|| "position out of range".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(geo::LineString::new)
}

fn polygon(v: &Value) -> Result<Polygon<f64>, String> {
    let rings = v.as_array().ok_or("a polygon must be a list of rings")?;
    let mut it = rings.iter();
    let exterior = ring(it.next().ok_or("a polygon needs a ring")?)?;
    let interiors = it.map(ring).collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, interiors))
}

/// Polygons of a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection.
fn polygons(v: &Value) -> Result<MultiPolygon<f64>, String> {
    let t = v.get("type").and_then(Value::as_str).unwrap_or_default();
    let coords = || {
        v.get("coordinates")
            .ok_or_else(|| "missing `coordinates`".to_owned())
    };
    match t {
        "Polygon" => Ok(MultiPolygon::new(vec![polygon(coords()?)?])),
        "MultiPolygon" => coords()?
            .as_array()
            .ok_or("MultiPolygon coordinates must be a list")?
            .iter()
            .map(polygon)
            .collect::<Result<Vec<_>, _>>()
            .map(MultiPolygon::new),
        "Feature" => polygons(v.get("geometry").ok_or("missing `geometry`")?),
        "FeatureCollection" => {
            let mut all = Vec::new();
            for f in v
                .get("features")
                .and_then(Value::as_array)
                .ok_or("missing `features`")?
            {
                all.extend(polygons(f)?.0);
            }
            if all.is_empty() {
                return Err("no polygon in the collection".into());
            }
            Ok(MultiPolygon::new(all))
        }
        other => Err(format!(
            "expected a Polygon or MultiPolygon, found `{other}`"
        )),
    }
}
