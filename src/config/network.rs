//! What a validated network file holds: the [`Network`], its [`Neighborhood`]s with their
//! [`Area`]s and [`Tunables`], the bot's account, storage and metrics settings, and the
//! index that finds a room's neighborhood.
//!
//! Owns: the typed settings and their lookups. Must not touch: the TOML (see `load`),
//! files, Matrix, storage.

use std::path::PathBuf;
use std::sync::Arc;

use chrono_tz::Tz;
use geo::{Closest, ClosestPoint, Contains, MultiPolygon};
use rustc_hash::FxHashMap;

use super::RoomSetting;
use crate::places::{Gazetteer, LatLon};

/// The longest `alert_retention_hours` (28 days): closed incidents, and the list of
/// the bot's messages about them, leave the store after 30.
pub const MAX_ALERT_RETENTION_HOURS: u32 = 24 * 28;

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
    /// The bot's messages about an incident are redacted this long after it closes
    /// (`None`: `retention_hours`); see [`Tunables::alert_retention`].
    pub alert_retention_hours: Option<u32>,
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
    /// Answers (to junk, unknown commands, help) one member may draw in a row in a room
    /// before the bot says once that they go too fast and then stays silent.
    pub reply_burst: u32,
    /// Seconds in which one of those answers is regained.
    pub reply_refill_s: u32,
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
            ("alert_retention_hours", self.alert_retention().to_string()),
            ("min_member_hours", self.min_member_hours.to_string()),
            (
                "max_reports_per_10min",
                self.max_reports_per_10min.to_string(),
            ),
            ("reply_burst", self.reply_burst.to_string()),
            ("reply_refill_s", self.reply_refill_s.to_string()),
            ("language", self.language.clone()),
            ("timezone", self.timezone.name().to_owned()),
            ("verifiers", self.verifiers.len().to_string()),
        ]
    }

    /// Hours after an incident closes at which the bot's messages about it are redacted
    /// in this neighborhood's rooms: `alert_retention_hours`, never less than
    /// `retention_hours` (which may have been raised since) and never more than
    /// [`MAX_ALERT_RETENTION_HOURS`] (closed incidents leave the store later).
    pub fn alert_retention(&self) -> u32 {
        self.alert_retention_hours
            .unwrap_or(self.retention_hours)
            .max(self.retention_hours)
            .min(MAX_ALERT_RETENTION_HOURS)
    }

    /// The reply budget of a member in one of this neighborhood's rooms.
    pub fn budget_rule(&self) -> crate::budget::BudgetRule {
        crate::budget::BudgetRule {
            burst: self.reply_burst,
            refill: chrono::Duration::seconds(i64::from(self.reply_refill_s)),
        }
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
            alert_retention_hours: None,
            language: "en".into(),
            timezone: chrono_tz::America::Los_Angeles,
            min_member_hours: 0,
            max_reports_per_10min: 5,
            reply_burst: 5,
            reply_refill_s: 120,
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
    pub(super) room_set: Vec<RoomSetting>,
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
    /// Server-side key backup (`key_backup`, off by default): with it, whoever holds the
    /// recovery key and the bot's password can read every room key from the homeserver.
    pub key_backup: bool,
    /// Where the recovery key is written when key backup is turned on (absolute; never
    /// inside the store): without it, the key is only printed, once.
    pub recovery_key_file: Option<PathBuf>,
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
    pub(super) neighborhoods: Vec<Neighborhood>,
    /// Neighborhood index by room and by id (every report looks these up).
    pub(super) by_room: FxHashMap<String, usize>,
    pub(super) by_id: FxHashMap<String, usize>,
    /// Relay links requested from rooms (none in the file's network).
    pub(super) links: Vec<crate::links::Link>,
}

impl Network {
    /// A network with its room and id lookups built.
    pub(super) fn new(mut net: Network) -> Self {
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
}
