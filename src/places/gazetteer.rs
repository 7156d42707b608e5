//! The gazetteer: named places, intersections and streets of a network, indexed for
//! matching free text and for "what is near this point" questions.
//!
//! Built from GeoJSON text (the config module reads the files); owns no I/O.

use std::collections::HashMap;

use rstar::{AABB, RTree, primitives::GeomWithData};
use serde::Deserialize;
use serde_json::Value;

use super::normalize::{name_key, street_keys};
use super::point::{LatLon, degree_box};

/// What a gazetteer point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaceKind {
    /// A school (sensitive).
    School,
    /// A church or other house of worship (sensitive).
    Church,
    /// A hospital or clinic (sensitive).
    Hospital,
    /// A shelter (sensitive).
    Shelter,
    /// Any other well-known place.
    Landmark,
    /// A street corner; has two street names.
    Intersection,
}

impl PlaceKind {
    /// Sightings near these places raise urgency (PRODUCT.md §3).
    pub fn is_sensitive(self) -> bool {
        matches!(
            self,
            Self::School | Self::Church | Self::Hospital | Self::Shelter
        )
    }

    /// The word for the kind in gazetteer files and commands (`school`).
    pub fn word(self) -> &'static str {
        match self {
            Self::School => "school",
            Self::Church => "church",
            Self::Hospital => "hospital",
            Self::Shelter => "shelter",
            Self::Landmark => "landmark",
            Self::Intersection => "intersection",
        }
    }

    /// The kind a word names (as [`PlaceKind::word`] gives it, any case).
    pub fn from_word(w: &str) -> Option<Self> {
        [
            Self::School,
            Self::Church,
            Self::Hospital,
            Self::Shelter,
            Self::Landmark,
            Self::Intersection,
        ]
        .into_iter()
        .find(|k| k.word().eq_ignore_ascii_case(w))
    }

    /// The catalog key of the kind's name.
    pub fn catalog_key(self) -> &'static str {
        match self {
            Self::School => "kind.school",
            Self::Church => "kind.church",
            Self::Hospital => "kind.hospital",
            Self::Shelter => "kind.shelter",
            Self::Landmark => "kind.landmark",
            Self::Intersection => "kind.intersection",
        }
    }
}

/// A named point.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    /// Display name.
    pub name: String,
    /// Other names people use.
    pub aliases: Vec<String>,
    /// What it is.
    pub kind: PlaceKind,
    /// Where it is.
    pub at: LatLon,
}

/// A street segment along which block addresses resolve.
#[derive(Clone, Debug, PartialEq)]
pub struct Street {
    /// Display name.
    pub name: String,
    /// The line, in order of increasing house numbers.
    pub line: Vec<LatLon>,
    /// House number at the first point.
    pub from_number: u32,
    /// House number at the last point.
    pub to_number: u32,
}

/// Why a gazetteer file was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GazetteerError {
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// The JSON is not a GeoJSON FeatureCollection.
    #[error("not a GeoJSON FeatureCollection")]
    NotCollection,
    /// One feature is malformed.
    #[error("feature {index}: {reason}")]
    Feature {
        /// 0-based index of the feature in the collection.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

type Key = String;

/// An indexed set of places and streets.
#[derive(Debug, Default)]
pub struct Gazetteer {
    places: Vec<Place>,
    /// The two street names of each place that is an intersection (kept so the
    /// gazetteer can be rebuilt with more places, see [`Gazetteer::with_places`]).
    corners: Vec<Option<[String; 2]>>,
    streets: Vec<Street>,
    /// Normalized name or alias → place index.
    names: HashMap<Key, usize>,
    max_name_words: usize,
    /// Normalized street name (and variants) → canonical street key.
    street_names: HashMap<Key, String>,
    max_street_words: usize,
    /// Canonical street key → indices into `streets`.
    street_lines: HashMap<String, Vec<usize>>,
    /// Canonical street display names, for suggestions.
    street_display: HashMap<String, String>,
    /// Sorted pair of canonical street keys → place index.
    intersections: HashMap<(String, String), usize>,
    tree: RTree<GeomWithData<[f64; 2], usize>>,
}

fn feature_err(index: usize, reason: impl Into<String>) -> GazetteerError {
    GazetteerError::Feature {
        index,
        reason: reason.into(),
    }
}

fn position(v: &Value, index: usize) -> Result<LatLon, GazetteerError> {
    let arr = v
        .as_array()
        .filter(|a| a.len() >= 2)
        .ok_or_else(|| feature_err(index, "a position must be [longitude, latitude]"))?;
    let lon = arr[0].as_f64();
    let lat = arr[1].as_f64();
    match (lat, lon) {
        (Some(lat), Some(lon)) => LatLon::new(lat, lon)
            .ok_or_else(|| feature_err(index, format!("position [{lon}, {lat}] is out of range"))),
        _ => Err(feature_err(index, "a position must hold two numbers")),
    }
}

fn string_list(v: Option<&Value>, index: usize, key: &str) -> Result<Vec<String>, GazetteerError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| feature_err(index, format!("`{key}` must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(feature_err(
            index,
            format!("`{key}` must be a list of strings"),
        )),
    }
}

/// Collects features from one or more GeoJSON files, then indexes them.
#[derive(Debug, Default)]
pub struct GazetteerBuilder {
    places: Vec<(Place, Option<[String; 2]>)>,
    streets: Vec<Street>,
}

impl GazetteerBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every feature of a GeoJSON FeatureCollection.
    pub fn add_geojson(&mut self, text: &str) -> Result<&mut Self, GazetteerError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| GazetteerError::Json(e.to_string()))?;
        if v.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
            return Err(GazetteerError::NotCollection);
        }
        let features = v
            .get("features")
            .and_then(Value::as_array)
            .ok_or(GazetteerError::NotCollection)?;
        for (index, f) in features.iter().enumerate() {
            self.add_feature(index, f)?;
        }
        Ok(self)
    }

    fn add_feature(&mut self, index: usize, f: &Value) -> Result<(), GazetteerError> {
        let props = f
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| feature_err(index, "missing `properties`"))?;
        let name = props
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| feature_err(index, "missing `name`"))?
            .to_owned();
        let kind = props
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| feature_err(index, format!("`{name}`: missing `kind`")))?;
        let geom = f
            .get("geometry")
            .ok_or_else(|| feature_err(index, format!("`{name}`: missing `geometry`")))?;
        let gtype = geom.get("type").and_then(Value::as_str).unwrap_or_default();
        let coords = geom
            .get("coordinates")
            .ok_or_else(|| feature_err(index, format!("`{name}`: missing `coordinates`")))?;
        if kind == "street" {
            if gtype != "LineString" {
                return Err(feature_err(
                    index,
                    format!("`{name}`: a street must be a LineString"),
                ));
            }
            let line = coords
                .as_array()
                .ok_or_else(|| feature_err(index, "LineString coordinates must be a list"))?
                .iter()
                .map(|p| position(p, index))
                .collect::<Result<Vec<_>, _>>()?;
            if line.len() < 2 {
                return Err(feature_err(
                    index,
                    format!("`{name}`: a street needs two points or more"),
                ));
            }
            let num = |k: &str| {
                props
                    .get(k)
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        feature_err(index, format!("`{name}`: `{k}` must be a whole number"))
                    })
            };
            let (from_number, to_number) = (num("from_number")?, num("to_number")?);
            if from_number == to_number {
                return Err(feature_err(
                    index,
                    format!("`{name}`: from_number equals to_number"),
                ));
            }
            self.streets.push(Street {
                name,
                line,
                from_number,
                to_number,
            });
            return Ok(());
        }
        let kind: PlaceKind = serde_json::from_value(Value::String(kind.to_owned())).map_err(|_| {
            feature_err(
                index,
                format!("`{name}`: unknown kind `{kind}` (school, church, hospital, shelter, landmark, intersection, street)"),
            )
        })?;
        if gtype != "Point" {
            return Err(feature_err(
                index,
                format!("`{name}`: a {kind:?} must be a Point").to_lowercase(),
            ));
        }
        let at = position(coords, index)?;
        let aliases = string_list(props.get("aliases"), index, "aliases")?;
        let streets = if kind == PlaceKind::Intersection {
            let s = string_list(props.get("streets"), index, "streets")?;
            match <[String; 2]>::try_from(s) {
                Ok(pair) => Some(pair),
                Err(_) => {
                    return Err(feature_err(
                        index,
                        format!("`{name}`: an intersection needs `streets` with two names"),
                    ));
                }
            }
        } else {
            None
        };
        self.places.push((
            Place {
                name,
                aliases,
                kind,
                at,
            },
            streets,
        ));
        Ok(())
    }

    /// Indexes everything added so far.
    pub fn build(self) -> Gazetteer {
        let mut g = Gazetteer::default();
        let register_street = |g: &mut Gazetteer, name: &str| -> Option<String> {
            let keys = street_keys(name);
            let canonical = keys.first()?.join(" ");
            for (i, k) in keys.iter().enumerate() {
                g.max_street_words = g.max_street_words.max(k.len());
                if i == 0 {
                    g.street_names.insert(k.join(" "), canonical.clone());
                } else {
                    g.street_names
                        .entry(k.join(" "))
                        .or_insert_with(|| canonical.clone());
                }
            }
            g.street_display
                .entry(canonical.clone())
                .or_insert_with(|| name.to_owned());
            Some(canonical)
        };
        for (place, streets) in self.places {
            let idx = g.places.len();
            if let Some([a, b]) = &streets
                && let (Some(ka), Some(kb)) =
                    (register_street(&mut g, a), register_street(&mut g, b))
            {
                let pair = if ka <= kb { (ka, kb) } else { (kb, ka) };
                g.intersections.insert(pair, idx);
            }
            for n in std::iter::once(&place.name).chain(place.aliases.iter()) {
                let k = name_key(n);
                if !k.is_empty() {
                    g.max_name_words = g.max_name_words.max(k.len());
                    g.names.entry(k.join(" ")).or_insert(idx);
                }
            }
            g.places.push(place);
            g.corners.push(streets);
        }
        // Full street keys win over direction-less variants registered earlier.
        for s in self.streets {
            let idx = g.streets.len();
            if let Some(canonical) = register_street(&mut g, &s.name) {
                g.street_lines.entry(canonical).or_default().push(idx);
            }
            g.streets.push(s);
        }
        g.tree = RTree::bulk_load(
            g.places
                .iter()
                .enumerate()
                .map(|(i, p)| GeomWithData::new([p.at.lon, p.at.lat], i))
                .collect(),
        );
        g
    }
}

impl Gazetteer {
    /// Builds a gazetteer from one GeoJSON text.
    pub fn from_geojson(text: &str) -> Result<Self, GazetteerError> {
        let mut b = GazetteerBuilder::new();
        b.add_geojson(text)?;
        Ok(b.build())
    }

    /// The same places and streets with `extra` places added (room admins' `!nw places
    /// add`). A name already in use keeps meaning the place that had it first.
    pub fn with_places(&self, extra: impl IntoIterator<Item = Place>) -> Gazetteer {
        let mut b = GazetteerBuilder::new();
        b.places = self
            .places
            .iter()
            .cloned()
            .zip(self.corners.iter().cloned())
            .chain(extra.into_iter().map(|p| (p, None)))
            .collect();
        b.streets = self.streets.clone();
        b.build()
    }

    /// The place a name or alias means, as people type it.
    pub fn place_named(&self, name: &str) -> Option<&Place> {
        let k = name_key(name);
        self.names.get(&k.join(" ")).map(|&i| &self.places[i])
    }

    /// Every named point.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// Every street line.
    pub fn streets(&self) -> &[Street] {
        &self.streets
    }

    pub(crate) fn names(&self) -> (&HashMap<Key, usize>, usize) {
        (&self.names, self.max_name_words)
    }

    pub(crate) fn street_names(&self) -> (&HashMap<Key, String>, usize) {
        (&self.street_names, self.max_street_words)
    }

    pub(crate) fn intersection(&self, a: &str, b: &str) -> Option<&Place> {
        let pair = if a <= b {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        };
        self.intersections.get(&pair).map(|&i| &self.places[i])
    }

    pub(crate) fn place(&self, idx: usize) -> &Place {
        &self.places[idx]
    }

    pub(crate) fn street_lines(&self, key: &str) -> impl Iterator<Item = &Street> {
        self.street_lines
            .get(key)
            .into_iter()
            .flatten()
            .map(|&i| &self.streets[i])
    }

    pub(crate) fn street_display_names(&self) -> impl Iterator<Item = &str> {
        self.street_display.values().map(String::as_str)
    }

    /// The nearest gazetteer point of any kind, with its distance in metres.
    pub fn nearest_place(&self, at: LatLon) -> Option<(&Place, f64)> {
        self.tree
            .nearest_neighbor(&[at.lon, at.lat])
            .map(|g| &self.places[g.data])
            .map(|p| (p, p.at.distance_m(at)))
    }

    /// The nearest named place that is not a bare intersection, with its distance in metres.
    pub fn nearest_landmark(&self, at: LatLon) -> Option<(&Place, f64)> {
        self.tree
            .nearest_neighbor_iter(&[at.lon, at.lat])
            .map(|g| &self.places[g.data])
            .find(|p| p.kind != PlaceKind::Intersection)
            .map(|p| (p, p.at.distance_m(at)))
    }

    /// The closest sensitive place (school, church, hospital, shelter) within `radius_m`.
    pub fn nearest_sensitive_within(&self, at: LatLon, radius_m: f64) -> Option<(&Place, f64)> {
        // Runs on every report: no trigonometry when there is nothing to find.
        if self.tree.size() == 0 {
            return None;
        }
        let (dlat, dlon) = degree_box(at, radius_m);
        let env = AABB::from_corners(
            [at.lon - dlon, at.lat - dlat],
            [at.lon + dlon, at.lat + dlat],
        );
        self.tree
            .locate_in_envelope(&env)
            .map(|g| &self.places[g.data])
            .filter(|p| p.kind.is_sensitive())
            .map(|p| (p, p.at.distance_m(at)))
            .filter(|(_, d)| *d <= radius_m)
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}
