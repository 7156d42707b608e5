//! The network file as written: serde structs that mirror the TOML, with spans so that
//! validation errors can name the line. Nothing here is trusted; see `validate`.

use serde::Deserialize;
use toml::Spanned;

/// A TOML number that may be written as an integer or a float.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub coordination_room: Option<Spanned<String>>,
    pub organizers: Option<Vec<Spanned<String>>>,
    pub allow_unencrypted: Option<bool>,
    pub matrix: Option<RawMatrix>,
    pub storage: Option<RawStorage>,
    pub metrics: Option<RawMetrics>,
    pub defaults: Option<RawTunables>,
    #[serde(default, rename = "neighborhood")]
    pub neighborhoods: Vec<RawNeighborhood>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatrix {
    pub homeserver: Spanned<String>,
    pub user: Spanned<String>,
    pub password_env: Spanned<String>,
    pub store_path: Spanned<String>,
    pub store_passphrase_env: Spanned<String>,
    pub device_name: Option<String>,
    pub ask_resend_after_s: Option<Spanned<Num>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub path: Spanned<String>,
    pub reporter_key_env: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Spanned<String>,
}

/// The tunables, as found in `[defaults]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTunables {
    pub dedupe_radius_m: Option<Spanned<Num>>,
    pub dedupe_window_min: Option<Spanned<Num>>,
    pub confirmations: Option<Spanned<Num>>,
    pub alert_radius_m: Option<Spanned<Num>>,
    pub sensitive_radius_m: Option<Spanned<Num>>,
    pub expiry_hours: Option<Spanned<Num>>,
    pub retention_hours: Option<Spanned<Num>>,
    pub language: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub min_member_hours: Option<Spanned<Num>>,
    pub max_reports_per_10min: Option<Spanned<Num>>,
    pub verifiers: Option<Vec<Spanned<String>>>,
}

/// One `[[neighborhood]]`. The tunables are repeated here because serde cannot combine
/// `flatten` with `deny_unknown_fields`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNeighborhood {
    pub id: Spanned<String>,
    pub name: Spanned<String>,
    pub rooms: Spanned<Vec<Spanned<String>>>,
    pub area: Spanned<RawArea>,
    #[serde(default)]
    pub gazetteer: Vec<Spanned<String>>,
    pub dedupe_radius_m: Option<Spanned<Num>>,
    pub dedupe_window_min: Option<Spanned<Num>>,
    pub confirmations: Option<Spanned<Num>>,
    pub alert_radius_m: Option<Spanned<Num>>,
    pub sensitive_radius_m: Option<Spanned<Num>>,
    pub expiry_hours: Option<Spanned<Num>>,
    pub retention_hours: Option<Spanned<Num>>,
    pub language: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub min_member_hours: Option<Spanned<Num>>,
    pub max_reports_per_10min: Option<Spanned<Num>>,
    pub verifiers: Option<Vec<Spanned<String>>>,
}

impl RawNeighborhood {
    /// The per-neighborhood overrides, as a `RawTunables`.
    pub fn tunables(&self) -> RawTunables {
        RawTunables {
            dedupe_radius_m: self.dedupe_radius_m.clone(),
            dedupe_window_min: self.dedupe_window_min.clone(),
            confirmations: self.confirmations.clone(),
            alert_radius_m: self.alert_radius_m.clone(),
            sensitive_radius_m: self.sensitive_radius_m.clone(),
            expiry_hours: self.expiry_hours.clone(),
            retention_hours: self.retention_hours.clone(),
            language: self.language.clone(),
            timezone: self.timezone.clone(),
            min_member_hours: self.min_member_hours.clone(),
            max_reports_per_10min: self.max_reports_per_10min.clone(),
            verifiers: self.verifiers.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawArea {
    Circle(RawCircle),
    GeoJson(RawGeoJsonArea),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircle {
    pub center: [f64; 2],
    pub radius_m: Num,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoJsonArea {
    pub geojson: String,
}
