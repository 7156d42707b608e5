//! The network file as written: serde structs that mirror the TOML, with spans so that
//! validation errors can name the line. Nothing here is trusted; see `load`.

use serde::Deserialize;
use toml::Spanned;

/// A TOML number that may be written as an integer or a float.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a number (e.g. 250 or 2.5), without quotes"
)]
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
    pub key_backup: Option<bool>,
    pub recovery_key_file: Option<Spanned<String>>,
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

/// Declares the tables that take the tunables: `[defaults]` and every `[[neighborhood]]`.
/// The tunables' fields are listed once, in `tunables { .. }`, and written into both
/// structs; [`RawNeighborhood::tunables`] copies them out.
///
/// They are not `#[serde(flatten)]`ed into the neighborhood: serde does not support
/// `flatten` with `deny_unknown_fields` (denied on the outer struct, an unknown key is
/// reported at the table's header instead of its own line; on the flattened one, it is
/// not reported at all), and a `toml::Spanned` in a flattened struct does not deserialize
/// ("expected a spanned value").
macro_rules! tunable_tables {
    (
        $(#[$defaults_meta:meta])*
        pub struct $defaults:ident;

        $(#[$hood_meta:meta])*
        pub struct $hood:ident {
            $($(#[$own_meta:meta])* pub $own:ident: $own_ty:ty,)*
        }

        tunables {
            $($field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$defaults_meta])*
        pub struct $defaults {
            $(pub $field: $ty,)*
        }

        $(#[$hood_meta])*
        pub struct $hood {
            $($(#[$own_meta])* pub $own: $own_ty,)*
            $(pub $field: $ty,)*
        }

        impl $hood {
            /// The per-neighborhood overrides, as a `RawTunables`.
            pub fn tunables(&self) -> $defaults {
                $defaults {
                    $($field: self.$field.clone(),)*
                }
            }
        }
    };
}

tunable_tables! {
    /// The tunables, as found in `[defaults]`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawTunables;

    /// One `[[neighborhood]]`: its own keys, then the tunables it may override.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawNeighborhood {
        pub id: Spanned<String>,
        pub name: Spanned<String>,
        pub rooms: Spanned<Vec<Spanned<String>>>,
        pub area: Spanned<RawArea>,
        #[serde(default)]
        pub gazetteer: Vec<Spanned<String>>,
    }

    tunables {
        dedupe_radius_m: Option<Spanned<Num>>,
        dedupe_window_min: Option<Spanned<Num>>,
        confirmations: Option<Spanned<Num>>,
        alert_radius_m: Option<Spanned<Num>>,
        sensitive_radius_m: Option<Spanned<Num>>,
        expiry_hours: Option<Spanned<Num>>,
        retention_hours: Option<Spanned<Num>>,
        alert_retention_hours: Option<Spanned<Num>>,
        language: Option<Spanned<String>>,
        timezone: Option<Spanned<String>>,
        min_member_hours: Option<Spanned<Num>>,
        max_reports_per_10min: Option<Spanned<Num>>,
        reply_burst: Option<Spanned<Num>>,
        reply_refill_s: Option<Spanned<Num>>,
        verifiers: Option<Vec<Spanned<String>>>,
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
