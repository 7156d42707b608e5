//! Settings changed from a room (PRODUCT.md §5 `!nw settings KEY VALUE`): one table of the
//! settable keys with their ranges, shared with the network file's validation, so a
//! value a room admin types is checked exactly as the file's would be; and the overlay
//! of room-set values that, applied over the file, gives each neighborhood's effective
//! settings.
//!
//! Owns: the settable keys, their ranges and the problems a value can have, and how the
//! overlay combines with the file. Must not touch: storage (the engine stores the
//! overlay in its own atomic commits), permissions, wording beyond the file's English.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{Network, Tunables};
use crate::catalog::Catalogs;
use crate::links::Link;
use crate::places::{Place, PlaceKind};

/// What kind of value a setting takes, with its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A distance in metres, above 0 and at most [`MAX_DISTANCE_M`].
    Distance,
    /// A whole number from `min` to `max`.
    Whole {
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A message catalog language.
    Language,
    /// An IANA time zone.
    Timezone,
}

/// Longest distance setting, in metres.
pub const MAX_DISTANCE_M: f64 = 100_000.0;

/// The tunables a room admin may change, in the order `!nw settings` shows them, with the
/// ranges the network file accepts. (`verifiers` is a list, changed with its own
/// command.)
pub const SETTABLE: &[(&str, Kind)] = &[
    ("confirmations", Kind::Whole { min: 1, max: 100 }),
    ("alert_radius_m", Kind::Distance),
    ("dedupe_radius_m", Kind::Distance),
    (
        "dedupe_window_min",
        Kind::Whole {
            min: 1,
            max: 24 * 60,
        },
    ),
    ("sensitive_radius_m", Kind::Distance),
    (
        "expiry_hours",
        Kind::Whole {
            min: 1,
            max: 24 * 14,
        },
    ),
    (
        "retention_hours",
        Kind::Whole {
            min: 1,
            max: 24 * 90,
        },
    ),
    (
        "min_member_hours",
        Kind::Whole {
            min: 0,
            max: 24 * 90,
        },
    ),
    ("max_reports_per_10min", Kind::Whole { min: 1, max: 1000 }),
    ("language", Kind::Language),
    ("timezone", Kind::Timezone),
];

/// The kind of a settable key.
pub fn kind_of(key: &str) -> Option<Kind> {
    SETTABLE
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| *kind)
}

/// The range of a whole-number setting (for the network file's validation).
pub(super) fn whole_range(key: &str) -> (u32, u32) {
    match kind_of(key) {
        Some(Kind::Whole { min, max }) => (min, max),
        _ => (1, u32::MAX),
    }
}

/// What is wrong with a setting's value: the same problems, with the same words, for the
/// network file and for a room (where the catalogs word them in the room's language).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    /// Not a distance in range.
    #[error("must be a distance above 0 and at most 100000 metres, not {got}")]
    Distance {
        /// What was given.
        got: String,
    },
    /// Not a whole number in range.
    #[error("must be a whole number from {min} to {max}, not {got}")]
    Whole {
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
        /// What was given.
        got: String,
    },
    /// No catalog for that language.
    #[error("no message catalog for `{got}` (have: {have})")]
    Language {
        /// What was given.
        got: String,
        /// The languages there are, comma-separated.
        have: String,
    },
    /// Not a latitude and longitude in range.
    #[error("`{got}` is not a latitude, longitude in range (like 37.8240,-122.2760)")]
    Center {
        /// What was given.
        got: String,
    },
    /// Not a time zone.
    #[error("`{got}` is not an IANA time zone such as America/Chicago")]
    Timezone {
        /// What was given.
        got: String,
    },
}

/// Checks a distance.
pub(super) fn check_distance(x: f64) -> Result<f64, Problem> {
    if x.is_finite() && x > 0.0 && x <= MAX_DISTANCE_M {
        Ok(x)
    } else {
        Err(Problem::Distance { got: x.to_string() })
    }
}

/// Checks a whole number against the range of `key`.
pub(super) fn check_whole(key: &str, i: i64, shown: &str) -> Result<u32, Problem> {
    let (min, max) = whole_range(key);
    if i >= i64::from(min) && i <= i64::from(max) {
        u32::try_from(i).map_err(|_| Problem::Whole {
            min,
            max,
            got: shown.to_owned(),
        })
    } else {
        Err(Problem::Whole {
            min,
            max,
            got: shown.to_owned(),
        })
    }
}

/// Checks a language against the catalogs.
pub(super) fn check_language(cat: &Catalogs, l: &str) -> Result<String, Problem> {
    if cat.has(l) {
        Ok(l.to_owned())
    } else {
        Err(Problem::Language {
            got: l.to_owned(),
            have: cat.languages().join(", "),
        })
    }
}

/// Checks a time zone.
pub(super) fn check_timezone(t: &str) -> Result<Tz, Problem> {
    t.parse::<Tz>()
        .map_err(|_| Problem::Timezone { got: t.to_owned() })
}

/// Why a value typed in a room was not applied.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SettingError {
    /// No such setting.
    #[error("no setting `{0}`")]
    Unknown(String),
    /// A setting that is not changed with `!nw settings` (the verifier list).
    #[error("`{0}` is changed with its own command")]
    OwnCommand(String),
    /// A bad value.
    #[error(transparent)]
    Bad(#[from] Problem),
}

impl Tunables {
    /// These settings with `key` set to `value` as typed in a room, validated like the
    /// network file.
    pub fn with_setting(&self, key: &str, value: &str) -> Result<Tunables, SettingError> {
        let Some(kind) = kind_of(key) else {
            return Err(if key == "verifiers" {
                SettingError::OwnCommand(key.to_owned())
            } else {
                SettingError::Unknown(key.to_owned())
            });
        };
        let v = value.trim();
        let mut t = self.clone();
        match kind {
            Kind::Distance => {
                let x = v
                    .parse::<f64>()
                    .map_err(|_| Problem::Distance { got: v.to_owned() })?;
                let x = check_distance(x)?;
                match key {
                    "alert_radius_m" => t.alert_radius_m = x,
                    "dedupe_radius_m" => t.dedupe_radius_m = x,
                    _ => t.sensitive_radius_m = x,
                }
            }
            Kind::Whole { min, max } => {
                let i = v.parse::<i64>().map_err(|_| Problem::Whole {
                    min,
                    max,
                    got: v.to_owned(),
                })?;
                let n = check_whole(key, i, v)?;
                match key {
                    "confirmations" => t.confirmations = n,
                    "dedupe_window_min" => t.dedupe_window_min = n,
                    "expiry_hours" => t.expiry_hours = n,
                    "retention_hours" => t.retention_hours = n,
                    "min_member_hours" => t.min_member_hours = n,
                    _ => t.max_reports_per_10min = n,
                }
            }
            Kind::Language => t.language = check_language(Catalogs::builtin(), v)?,
            Kind::Timezone => t.timezone = check_timezone(v)?,
        }
        Ok(t)
    }

    /// The value of one setting as `!nw settings` shows it.
    pub fn value_of(&self, key: &str) -> Option<String> {
        self.shown()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// The key of a verifier changed from a room: `verifier:@user:server`, whose value is
/// [`VERIFIER_ADDED`] or [`VERIFIER_REMOVED`] (one of the file's verifiers taken off for
/// this neighborhood).
pub const VERIFIER_KEY: &str = "verifier:";
/// See [`VERIFIER_KEY`].
pub const VERIFIER_ADDED: &str = "added";
/// See [`VERIFIER_KEY`].
pub const VERIFIER_REMOVED: &str = "removed";

/// The key of a neighborhood's area set from a room; its value is `LAT,LON RADIUS_M` (a
/// circle), as [`area_text`] shows it.
pub const AREA_KEY: &str = "area";

/// An area as `!nw area` and the audit line show it: `37.82400,-122.27600 600` for a
/// circle.
pub fn area_text(a: &super::Area) -> String {
    match a {
        super::Area::Circle { center, radius_m } => {
            format!("{:.5},{:.5} {radius_m}", center.lat, center.lon)
        }
        super::Area::Polygons(_) => "GeoJSON".to_owned(),
    }
}

/// A circle from `LAT,LON RADIUS_M`, checked (the center in range, the radius a distance).
pub fn parse_area(value: &str) -> Result<super::Area, Problem> {
    let (center, radius) = value.trim().split_once(' ').unwrap_or((value, ""));
    let (lat, lon) = center.split_once(',').unwrap_or((center, ""));
    let center = match (lat.trim().parse::<f64>(), lon.trim().parse::<f64>()) {
        (Ok(lat), Ok(lon)) => crate::places::LatLon::new(lat, lon),
        _ => None,
    }
    .ok_or_else(|| Problem::Center {
        got: center.to_owned(),
    })?;
    let radius = radius.trim();
    let radius_m = check_distance(radius.parse::<f64>().map_err(|_| Problem::Distance {
        got: radius.to_owned(),
    })?)?;
    Ok(super::Area::Circle { center, radius_m })
}

/// The key of a place added from a room (`!nw places add`): `place:` and the name as the
/// gazetteer matches it (lowercase words); its value is [`place_text`].
pub const PLACE_KEY: &str = "place:";

/// Longest name of a place added from a room (characters).
pub const MAX_PLACE_NAME_CHARS: usize = 80;

/// How far outside its neighborhood's area a place added from a room may be (metres):
/// reports name places near where people live, and a typo in a coordinate shows.
pub const MAX_PLACE_OUTSIDE_M: f64 = 2000.0;

/// Most places a neighborhood's rooms may add.
pub const MAX_ROOM_PLACES: usize = 500;

/// The kinds of place a room may add (an intersection needs its two streets: the file's).
pub const PLACE_KINDS: &[PlaceKind] = &[
    PlaceKind::Landmark,
    PlaceKind::School,
    PlaceKind::Church,
    PlaceKind::Hospital,
    PlaceKind::Shelter,
];

/// The key of a place named `name`, or `None` when the name has no words.
pub fn place_key(name: &str) -> Option<String> {
    let k = crate::places::normalize::name_key(name);
    (!k.is_empty()).then(|| format!("{PLACE_KEY}{}", k.join(" ")))
}

/// A place as stored and audited: `KIND LAT,LON NAME` (`school 37.82400,-122.27600
/// Hoover Elementary`).
pub fn place_text(p: &Place) -> String {
    format!(
        "{} {:.5},{:.5} {}",
        p.kind.word(),
        p.at.lat,
        p.at.lon,
        p.name
    )
}

/// A place from [`place_text`]; `None` when the text is not one.
pub fn parse_place(value: &str) -> Option<Place> {
    let mut parts = value.splitn(3, ' ');
    let kind = PlaceKind::from_word(parts.next()?)?;
    let (lat, lon) = parts.next()?.split_once(',')?;
    let at = crate::places::LatLon::new(lat.parse().ok()?, lon.parse().ok()?)?;
    let name = parts.next()?.trim();
    (!name.is_empty() && PLACE_KINDS.contains(&kind)).then(|| Place {
        name: name.to_owned(),
        aliases: Vec::new(),
        kind,
        at,
    })
}

/// A value set from a room: who set it, where and when (admins act in the open: the
/// audit line and `!nw settings` name them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSetting {
    /// The neighborhood it applies to.
    pub neighborhood: String,
    /// The setting.
    pub key: String,
    /// Its value, as `!nw settings` shows it (validated).
    pub value: String,
    /// The admin's user ID.
    pub by: String,
    /// The room it was typed in.
    pub room: String,
    /// When (milliseconds since 1970).
    pub at_ms: i64,
}

/// Everything changed from rooms: settings by neighborhood and key, and relay links by
/// ID.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    settings: BTreeMap<(String, String), RoomSetting>,
    links: BTreeMap<String, Link>,
}

impl Overlay {
    /// An overlay of these values (a later one for the same key wins).
    pub fn new(settings: impl IntoIterator<Item = RoomSetting>) -> Self {
        let mut o = Self::default();
        for s in settings {
            o.set(s);
        }
        o
    }

    /// Sets a value.
    pub fn set(&mut self, s: RoomSetting) {
        self.settings
            .insert((s.neighborhood.clone(), s.key.clone()), s);
    }

    /// Removes a value; returns it.
    pub fn remove(&mut self, neighborhood: &str, key: &str) -> Option<RoomSetting> {
        self.settings
            .remove(&(neighborhood.to_owned(), key.to_owned()))
    }

    /// A neighborhood's room-set value of `key`.
    pub fn get(&self, neighborhood: &str, key: &str) -> Option<&RoomSetting> {
        self.settings
            .get(&(neighborhood.to_owned(), key.to_owned()))
    }

    /// Every value, by neighborhood then key.
    pub fn iter(&self) -> impl Iterator<Item = &RoomSetting> {
        self.settings.values()
    }

    /// Whether nothing is set from a room.
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.links.is_empty()
    }

    /// Adds or replaces a link.
    pub fn put_link(&mut self, link: Link) {
        self.links.insert(link.id.clone(), link);
    }

    /// A link by ID.
    pub fn link(&self, id: &str) -> Option<&Link> {
        self.links.get(id)
    }

    /// Every link ever requested, by ID.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }
}

impl Network {
    /// The effective network: each neighborhood's settings from the file with the values
    /// set from its rooms applied over them, and the relay links. Values and links of a
    /// neighborhood no longer in the file, and values no longer valid, are left out (the
    /// file's value applies).
    pub fn with_overlay(&self, overlay: &Overlay) -> Network {
        let mut net = self.clone();
        net.links = overlay
            .links()
            .filter(|l| net.neighborhood(&l.from).is_some() && net.neighborhood(&l.to).is_some())
            .cloned()
            .collect();
        net.update_neighborhoods(|ns| {
            for n in ns {
                n.room_set.clear();
                let mut places = Vec::new();
                for s in overlay.iter().filter(|s| s.neighborhood == n.id) {
                    if s.key.starts_with(PLACE_KEY) {
                        match parse_place(&s.value) {
                            Some(p) => {
                                places.push(p);
                                n.room_set.push(s.clone());
                            }
                            None => tracing::warn!(neighborhood = %n.id, "a place added from a room is not readable; left out"),
                        }
                        continue;
                    }
                    if s.key == AREA_KEY {
                        match parse_area(&s.value) {
                            Ok(a) => {
                                n.area = a;
                                n.room_set.push(s.clone());
                            }
                            Err(e) => tracing::warn!(neighborhood = %n.id, "a room's area is no longer valid ({e})"),
                        }
                        continue;
                    }
                    // A verifier added (or one of the file's removed) from a room.
                    if let Some(user) = s.key.strip_prefix(VERIFIER_KEY) {
                        let v = &mut n.settings.verifiers;
                        if s.value == VERIFIER_REMOVED {
                            v.retain(|x| x != user);
                        } else if !v.iter().any(|x| x == user) {
                            v.push(user.to_owned());
                        }
                        n.room_set.push(s.clone());
                        continue;
                    }
                    match n.settings.with_setting(&s.key, &s.value) {
                        Ok(t) => {
                            n.settings = t;
                            n.room_set.push(s.clone());
                        }
                        Err(e) => tracing::warn!(
                            neighborhood = %n.id,
                            key = %s.key,
                            "a value set from a room is no longer valid ({e}); the network file's applies"
                        ),
                    }
                }
                if !places.is_empty() {
                    n.gazetteer = std::sync::Arc::new(n.gazetteer.with_places(places));
                }
            }
        });
        net
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_value_is_checked_with_the_network_files_ranges_and_words() {
        let t = Tunables::default();
        let c = t.with_setting("alert_radius_m", " 5000 ").unwrap();
        assert_eq!(c.alert_radius_m, 5000.0);
        assert_eq!(c.value_of("alert_radius_m").as_deref(), Some("5000"));
        assert_eq!(
            t.with_setting("confirmations", "0")
                .unwrap_err()
                .to_string(),
            "must be a whole number from 1 to 100, not 0"
        );
        assert_eq!(
            t.with_setting("alert_radius_m", "5km")
                .unwrap_err()
                .to_string(),
            "must be a distance above 0 and at most 100000 metres, not 5km"
        );
        assert_eq!(
            t.with_setting("min_member_hours", "0")
                .unwrap()
                .min_member_hours,
            0
        );
        assert!(t.with_setting("timezone", "Mars/Olympus").is_err());
        assert_eq!(
            t.with_setting("timezone", "America/Chicago")
                .unwrap()
                .timezone,
            chrono_tz::America::Chicago
        );
        assert_eq!(t.with_setting("language", "es").unwrap().language, "es");
        assert!(matches!(
            t.with_setting("language", "xx"),
            Err(SettingError::Bad(Problem::Language { .. }))
        ));
        assert_eq!(
            t.with_setting("verifiers", "@a:b"),
            Err(SettingError::OwnCommand("verifiers".into()))
        );
        assert_eq!(
            t.with_setting("radius", "1"),
            Err(SettingError::Unknown("radius".into()))
        );
    }

    #[test]
    fn every_shown_setting_but_the_verifier_list_is_settable() {
        let shown: Vec<&str> = Tunables::default()
            .shown()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| *k != "verifiers")
            .collect();
        let settable: Vec<&str> = SETTABLE.iter().map(|(k, _)| *k).collect();
        assert_eq!(shown, settable);
    }
}
