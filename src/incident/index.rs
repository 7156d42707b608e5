//! Spatial index of open incidents (`rstar`), so matching a report costs O(log n).
//! Entries name incidents by their slot in the engine's table.
//! [`LinearIndex`] is the naive scan it replaces, kept for the benchmark and as a test
//! oracle.

use std::ops::ControlFlow;

use rstar::{AABB, RStarInsertionStrategy, RTree, RTreeParams, primitives::GeomWithData};

use crate::places::{LatLon, LocalMetric};

/// Incidents are named by their slot in the engine's table. Coordinates are kept as
/// `f32` (within half a metre), which makes the tree a third smaller and faster to walk;
/// lookups widen their radius by [`ROUNDING_M`], so rounding never hides an incident.
type Entry = GeomWithData<[f32; 2], usize>;

/// More than the largest rounding error of an `f32` coordinate, in metres.
const ROUNDING_M: f64 = 1.0;

/// R*-tree parameters: no forced reinsertion, which makes inserts (one per new incident)
/// several times cheaper at a small cost in query time.
#[derive(Debug)]
pub struct Params;

impl RTreeParams for Params {
    const MIN_SIZE: usize = 3;
    const MAX_SIZE: usize = 8;
    const REINSERTION_COUNT: usize = 0;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

fn key(p: LatLon) -> [f32; 2] {
    [p.lon as f32, p.lat as f32]
}

/// Open incidents by location.
#[derive(Debug)]
pub struct IncidentIndex {
    tree: RTree<Entry, Params>,
}

impl Default for IncidentIndex {
    fn default() -> Self {
        Self {
            tree: RTree::new_with_params(),
        }
    }
}

impl IncidentIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of many incidents at once (bulk loading packs the tree better than
    /// inserting one by one: queries after a restart are faster).
    pub fn from_entries(entries: impl IntoIterator<Item = (usize, LatLon)>) -> Self {
        let entries = entries
            .into_iter()
            .map(|(slot, at)| GeomWithData::new(key(at), slot))
            .collect();
        Self {
            tree: RTree::bulk_load_with_params(entries),
        }
    }

    /// Calls `f` for every incident indexed within `radius_m` of `m`'s origin (and some
    /// up to [`ROUNDING_M`] farther).
    pub fn for_each_near(&self, m: &LocalMetric, radius_m: f64, mut f: impl FnMut(&usize)) {
        let at = m.origin();
        let radius_m = radius_m + ROUNDING_M;
        let (dlat, dlon) = m.degree_box(radius_m);
        let env = AABB::from_corners(
            key(LatLon {
                lat: at.lat - dlat,
                lon: at.lon - dlon,
            }),
            key(LatLon {
                lat: at.lat + dlat,
                lon: at.lon + dlon,
            }),
        );
        // Internal iteration: no traversal stack to fill.
        let _ = self.tree.locate_in_envelope_int(&env, |e| {
            // The box's corners are outside the circle: skip those without a lookup.
            let [lon, lat] = *e.geom();
            let p = LatLon {
                lat: f64::from(lat),
                lon: f64::from(lon),
            };
            if m.within(p, radius_m) {
                f(&e.data);
            }
            ControlFlow::<()>::Continue(())
        });
    }

    /// Adds an incident at `at`.
    pub fn insert(&mut self, slot: usize, at: LatLon) {
        self.tree.insert(GeomWithData::new(key(at), slot));
    }

    /// Removes an incident that was inserted at `at`.
    pub fn remove(&mut self, slot: &usize, at: LatLon) {
        self.tree.remove(&GeomWithData::new(key(at), *slot));
    }

    /// Number of incidents indexed.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }
}

/// The naive alternative: every incident checked on every report.
#[derive(Debug, Default)]
pub struct LinearIndex {
    items: Vec<(usize, LatLon)>,
    /// Measure with one [`LocalMetric`] for the whole scan (trigonometry hoisted out of
    /// the loop) instead of from scratch for each incident.
    hoisted: bool,
}

impl LinearIndex {
    /// Adds an incident.
    pub fn insert(&mut self, slot: usize, at: LatLon) {
        self.items.push((slot, at));
    }

    /// Removes an incident.
    pub fn remove(&mut self, slot: &usize) {
        self.items.retain(|(i, _)| i != slot);
    }

    /// A scan that measures each distance with one hoisted [`LocalMetric`]: the fastest
    /// linear scan, for comparison.
    pub fn hoisted() -> Self {
        Self {
            items: Vec::new(),
            hoisted: true,
        }
    }

    /// Calls `f` for every incident within `radius_m` of `m`'s origin, measuring the
    /// distance to each one from scratch (as the engine did before it had an index), or
    /// with `m` when hoisted.
    pub fn for_each_near(&self, m: &LocalMetric, radius_m: f64, mut f: impl FnMut(&usize)) {
        let at = m.origin();
        if self.hoisted {
            for (slot, p) in &self.items {
                if m.within(*p, radius_m) {
                    f(slot);
                }
            }
        } else {
            for (slot, p) in &self.items {
                if p.fast_distance_m(at) <= radius_m {
                    f(slot);
                }
            }
        }
    }
}

/// The index an engine uses: the R-tree, or (for benchmarks and as a test oracle) the
/// naive linear scan.
#[derive(Debug)]
pub enum SpatialIndex {
    /// O(log n) per lookup.
    RTree(IncidentIndex),
    /// O(n) per lookup.
    Linear(LinearIndex),
}

impl SpatialIndex {
    /// An index of the same kind holding `entries`.
    pub fn rebuilt(&self, entries: impl IntoIterator<Item = (usize, LatLon)>) -> Self {
        match self {
            Self::RTree(_) => Self::RTree(IncidentIndex::from_entries(entries)),
            Self::Linear(l) => Self::Linear(LinearIndex {
                items: entries.into_iter().collect(),
                hoisted: l.hoisted,
            }),
        }
    }

    /// Adds an incident at `at`.
    pub fn insert(&mut self, slot: usize, at: LatLon) {
        match self {
            Self::RTree(t) => t.insert(slot, at),
            Self::Linear(l) => l.insert(slot, at),
        }
    }

    /// Removes an incident that was inserted at `at`.
    pub fn remove(&mut self, slot: &usize, at: LatLon) {
        match self {
            Self::RTree(t) => t.remove(slot, at),
            Self::Linear(l) => l.remove(slot),
        }
    }

    /// Number of incidents indexed.
    pub fn len(&self) -> usize {
        match self {
            Self::RTree(t) => t.len(),
            Self::Linear(l) => l.items.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for every incident indexed within `radius_m` of `m`'s origin.
    pub fn for_each_near(&self, m: &LocalMetric, radius_m: f64, f: impl FnMut(&usize)) {
        match self {
            Self::RTree(t) => t.for_each_near(m, radius_m, f),
            Self::Linear(l) => l.for_each_near(m, radius_m, f),
        }
    }
}
