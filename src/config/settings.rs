//! Values set from a room: the overlay of room-set settings, verifiers, areas, places and
//! relay links that, applied over the network file, gives each neighborhood's effective
//! settings; and the keys and text forms those values are stored and audited under. A
//! value is checked by the rules of `settable` before it gets here.
//!
//! Owns: how the overlay combines with the file. Must not touch: storage (the engine
//! stores the overlay in its own atomic commits), permissions, wording beyond the file's
//! English.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::settable::{Problem, check_distance};
use super::{Area, Network};
use crate::links::Link;
use crate::places::{LatLon, Place, PlaceKind};

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
pub fn area_text(a: &Area) -> String {
    match a {
        Area::Circle { center, radius_m } => {
            format!("{:.5},{:.5} {radius_m}", center.lat, center.lon)
        }
        Area::Polygons(_) => "GeoJSON".to_owned(),
    }
}

/// A circle from `LAT,LON RADIUS_M`, checked (the center in range, the radius a distance).
pub fn parse_area(value: &str) -> Result<Area, Problem> {
    let (center, radius) = value.trim().split_once(' ').unwrap_or((value, ""));
    let (lat, lon) = center.split_once(',').unwrap_or((center, ""));
    let center = match (lat.trim().parse::<f64>(), lon.trim().parse::<f64>()) {
        (Ok(lat), Ok(lon)) => LatLon::new(lat, lon),
        _ => None,
    }
    .ok_or_else(|| Problem::Center {
        got: center.to_owned(),
    })?;
    let radius = radius.trim();
    let radius_m = check_distance(radius.parse::<f64>().map_err(|_| Problem::Distance {
        got: radius.to_owned(),
    })?)?;
    Ok(Area::Circle { center, radius_m })
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
    let at = LatLon::new(lat.parse().ok()?, lon.parse().ok()?)?;
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
