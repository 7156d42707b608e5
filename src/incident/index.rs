//! Spatial index of open incidents (`rstar`), so matching a report costs O(log n).
//! [`LinearIndex`] is the naive scan it replaces, kept for the benchmark and as a test
//! oracle.

use rstar::{AABB, RStarInsertionStrategy, RTree, RTreeParams, primitives::GeomWithData};

use super::model::IncidentId;
use crate::places::{LatLon, LocalMetric, degree_box};

type Entry = GeomWithData<[f64; 2], IncidentId>;

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

fn key(p: LatLon) -> [f64; 2] {
    [p.lon, p.lat]
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
    pub fn from_entries(entries: impl IntoIterator<Item = (IncidentId, LatLon)>) -> Self {
        let entries = entries
            .into_iter()
            .map(|(id, at)| GeomWithData::new(key(at), id))
            .collect();
        Self {
            tree: RTree::bulk_load_with_params(entries),
        }
    }

    /// Calls `f` for every incident indexed within `radius_m` of `at`.
    pub fn for_each_near(&self, m: &LocalMetric, radius_m: f64, mut f: impl FnMut(&IncidentId)) {
        let at = m.origin();
        let (dlat, dlon) = degree_box(at, radius_m);
        let env = AABB::from_corners(
            [at.lon - dlon, at.lat - dlat],
            [at.lon + dlon, at.lat + dlat],
        );
        for e in self.tree.locate_in_envelope(&env) {
            // The box's corners are outside the circle: skip those without a lookup.
            let [lon, lat] = *e.geom();
            if m.within(LatLon { lat, lon }, radius_m) {
                f(&e.data);
            }
        }
    }

    /// Adds an incident at `at`.
    pub fn insert(&mut self, id: IncidentId, at: LatLon) {
        self.tree.insert(GeomWithData::new(key(at), id));
    }

    /// Removes an incident that was inserted at `at`.
    pub fn remove(&mut self, id: &IncidentId, at: LatLon) {
        self.tree.remove(&GeomWithData::new(key(at), *id));
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
    items: Vec<(IncidentId, LatLon)>,
    /// Measure with one [`LocalMetric`] for the whole scan (trigonometry hoisted out of
    /// the loop) instead of from scratch for each incident.
    hoisted: bool,
}

impl LinearIndex {
    /// Adds an incident.
    pub fn insert(&mut self, id: IncidentId, at: LatLon) {
        self.items.push((id, at));
    }

    /// Removes an incident.
    pub fn remove(&mut self, id: &IncidentId) {
        self.items.retain(|(i, _)| i != id);
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
    pub fn for_each_near(&self, m: &LocalMetric, radius_m: f64, mut f: impl FnMut(&IncidentId)) {
        let at = m.origin();
        if self.hoisted {
            for (id, p) in &self.items {
                if m.within(*p, radius_m) {
                    f(id);
                }
            }
        } else {
            for (id, p) in &self.items {
                if p.fast_distance_m(at) <= radius_m {
                    f(id);
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
    pub fn rebuilt(&self, entries: impl IntoIterator<Item = (IncidentId, LatLon)>) -> Self {
        match self {
            Self::RTree(_) => Self::RTree(IncidentIndex::from_entries(entries)),
            Self::Linear(l) => Self::Linear(LinearIndex {
                items: entries.into_iter().collect(),
                hoisted: l.hoisted,
            }),
        }
    }

    /// Adds an incident at `at`.
    pub fn insert(&mut self, id: IncidentId, at: LatLon) {
        match self {
            Self::RTree(t) => t.insert(id, at),
            Self::Linear(l) => l.insert(id, at),
        }
    }

    /// Removes an incident that was inserted at `at`.
    pub fn remove(&mut self, id: &IncidentId, at: LatLon) {
        match self {
            Self::RTree(t) => t.remove(id, at),
            Self::Linear(l) => l.remove(id),
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
    pub fn for_each_near(&self, m: &LocalMetric, radius_m: f64, f: impl FnMut(&IncidentId)) {
        match self {
            Self::RTree(t) => t.for_each_near(m, radius_m, f),
            Self::Linear(l) => l.for_each_near(m, radius_m, f),
        }
    }
}
