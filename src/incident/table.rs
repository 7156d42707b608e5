//! The engine's incidents in memory: one slot each, found by ID or by place.
//!
//! Owns: where incidents live in memory (a [`Slab`]), the ID lookup, and the spatial
//! index of the open ones, kept consistent with every change. Each slot starts with a
//! small copy of what matching a report reads first (centroid, newest sighting, open or
//! not), so trying a candidate touches one cache line instead of the whole incident.
//! Must not touch: the merge policy (the engine decides what fits), storage, time.
//!
//! Every change to an incident goes through [`IncidentMut`], which refreshes that copy
//! and re-indexes the incident when it is dropped: the index cannot fall behind.

use std::ops::{Deref, DerefMut};

use rustc_hash::FxHashMap;
use slab::Slab;

use super::index::SpatialIndex;
use crate::model::{Incident, IncidentId};
use crate::places::{LatLon, LocalMetric};

/// What matching a report reads of a candidate before anything else.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    /// Centroid.
    pub at: LatLon,
    /// Newest sighting, in milliseconds since 1970 (cheaper to compare than a date; as
    /// precise as Matrix timestamps).
    pub last_seen_ms: i64,
    /// Still open (unverified or confirmed).
    pub open: bool,
}

impl Hot {
    fn of(inc: &Incident) -> Self {
        Self {
            at: inc.location,
            last_seen_ms: inc.last_seen.timestamp_millis(),
            open: inc.status.is_open(),
        }
    }
}

/// `hot` first, so it shares a cache line with the slot's start.
#[repr(C)]
#[derive(Debug)]
struct Slot {
    hot: Hot,
    /// Where the incident is indexed, while it is open (with the trigonometry for
    /// measuring how far its centroid drifts from there done once).
    indexed_at: Option<LocalMetric>,
    inc: Incident,
}

impl Slot {
    /// A slot for `inc`, to be indexed at its centroid when it is open.
    fn new(inc: Incident) -> Self {
        Self {
            hot: Hot::of(&inc),
            indexed_at: inc.status.is_open().then(|| inc.location.metric()),
            inc,
        }
    }
}

/// Incidents in memory.
#[derive(Debug)]
pub(crate) struct Incidents {
    slots: Slab<Slot>,
    by_id: FxHashMap<IncidentId, usize>,
    index: SpatialIndex,
    /// How far a centroid may drift from where it is indexed before it is re-indexed
    /// (so that most merges leave the index alone); lookups widen their radius by it.
    slack_m: f64,
}

impl Incidents {
    /// No incidents; `index` is the (empty) kind of index to keep.
    pub fn new(index: SpatialIndex, slack_m: f64) -> Self {
        Self {
            slots: Slab::new(),
            by_id: FxHashMap::default(),
            index,
            slack_m,
        }
    }

    /// Replaces everything with `incidents`, bulk-loading the index.
    pub fn reset(&mut self, incidents: impl IntoIterator<Item = Incident>) {
        self.slots.clear();
        self.by_id.clear();
        for inc in incidents {
            let id = inc.id;
            let key = self.slots.insert(Slot::new(inc));
            if let Some(old) = self.by_id.insert(id, key) {
                // A duplicate ID: the later record wins, as a map would have it.
                self.slots.remove(old);
            }
        }
        self.index = self.index.rebuilt(
            self.slots
                .iter()
                .filter_map(|(k, s)| s.indexed_at.map(|m| (k, m.origin()))),
        );
    }

    /// Adds a new incident (its ID must be new).
    pub fn insert(&mut self, inc: Incident) -> usize {
        let (id, at) = (inc.id, inc.location);
        let slot = Slot::new(inc);
        let open = slot.indexed_at.is_some();
        let key = self.slots.insert(slot);
        if open {
            self.index.insert(key, at);
        }
        if let Some(old) = self.by_id.insert(id, key) {
            self.drop_slot(old);
        }
        key
    }

    /// Forgets an incident.
    pub fn remove(&mut self, id: &IncidentId) {
        if let Some(key) = self.by_id.remove(id) {
            self.drop_slot(key);
        }
    }

    fn drop_slot(&mut self, key: usize) {
        if let Some(slot) = self.slots.try_remove(key)
            && let Some(m) = slot.indexed_at
        {
            self.index.remove(&key, m.origin());
        }
    }

    /// The slot of an incident.
    pub fn key_of(&self, id: &IncidentId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// An incident by ID.
    pub fn get(&self, id: &IncidentId) -> Option<&Incident> {
        self.by_id.get(id).map(|k| &self.slots[*k].inc)
    }

    /// The incident in slot `key`.
    pub fn in_slot(&self, key: usize) -> Option<&Incident> {
        self.slots.get(key).map(|s| &s.inc)
    }

    /// Every incident's ID and slot, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = (IncidentId, usize)> + '_ {
        self.slots.iter().map(|(k, s)| (s.inc.id, k))
    }

    /// The incident in slot `key`, to change; its index entry follows when the guard is
    /// dropped.
    pub fn at_mut(&mut self, key: usize) -> Option<IncidentMut<'_>> {
        Some(IncidentMut {
            slot: self.slots.get_mut(key)?,
            index: &mut self.index,
            slack_m: self.slack_m,
            key,
        })
    }

    /// All incidents, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &Incident> {
        self.slots.iter().map(|(_, s)| &s.inc)
    }

    /// Number of incidents in memory.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Number of open incidents (those indexed).
    pub fn open_count(&self) -> usize {
        self.index.len()
    }

    /// Calls `f` with every open incident whose centroid may lie within `radius_m` of
    /// `m`'s origin (and a few farther): its slot, its [`Hot`] summary, and a way to
    /// read the rest.
    pub fn for_each_candidate(
        &self,
        m: &LocalMetric,
        radius_m: f64,
        mut f: impl FnMut(usize, &Hot, &Incident),
    ) {
        self.index.for_each_near(m, radius_m + self.slack_m, |key| {
            if let Some(s) = self.slots.get(*key) {
                f(*key, &s.hot, &s.inc);
            }
        });
    }
}

/// A changing incident. Dropping it refreshes the slot's summary and index entry.
pub(crate) struct IncidentMut<'a> {
    slot: &'a mut Slot,
    index: &'a mut SpatialIndex,
    slack_m: f64,
    key: usize,
}

impl Deref for IncidentMut<'_> {
    type Target = Incident;
    fn deref(&self) -> &Incident {
        &self.slot.inc
    }
}

impl DerefMut for IncidentMut<'_> {
    fn deref_mut(&mut self) -> &mut Incident {
        &mut self.slot.inc
    }
}

impl Drop for IncidentMut<'_> {
    fn drop(&mut self) {
        let (slot, key) = (&mut *self.slot, self.key);
        slot.hot = Hot::of(&slot.inc);
        let want = slot.hot.open.then_some(slot.hot.at);
        match (slot.indexed_at, want) {
            (Some(old), Some(new)) if !old.within(new, self.slack_m) => {
                self.index.remove(&key, old.origin());
                self.index.insert(key, new);
                slot.indexed_at = Some(new.metric());
            }
            (Some(old), None) => {
                self.index.remove(&key, old.origin());
                slot.indexed_at = None;
            }
            (None, Some(new)) => {
                self.index.insert(key, new);
                slot.indexed_at = Some(new.metric());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::index::IncidentIndex;
    use crate::model::Status;
    use chrono::{DateTime, Utc};
    use std::sync::Arc;

    fn incident(seq: u64, at: LatLon) -> Incident {
        let t = DateTime::<Utc>::from_timestamp(1_772_467_200, 0).expect("valid");
        Incident {
            id: IncidentId::from_seq(seq),
            status: Status::Unverified,
            version: 1,
            origin: Arc::from("o"),
            hops: 0,
            neighborhood: Arc::from("n"),
            location: at,
            label: Arc::from("x"),
            first_seen: t,
            last_seen: t,
            confirmed_at: None,
            updated_at: t,
            reports: Vec::new(),
            reporters: Vec::new(),
            former_reporters: 0,
            details: Default::default(),
            near: None,
            relayed_to: Vec::new(),
            linked_rooms: Vec::new(),
            faded: Vec::new(),
            marked_here: Vec::new(),
            support: Vec::new(),
            drill: false,
            confirmed_by: None,
            closed_at: None,
            after_false_alarm: None,
        }
    }

    fn found(t: &Incidents, at: LatLon, r: f64) -> Vec<IncidentId> {
        let m = at.metric();
        let mut v = Vec::new();
        t.for_each_candidate(&m, r, |_, h, inc| {
            if m.within(h.at, r) {
                v.push(inc.id);
            }
        });
        v.sort();
        v
    }

    fn p(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).expect("valid")
    }

    #[test]
    fn moved_closed_and_removed_incidents_are_found_where_they_are() {
        let mut t = Incidents::new(SpatialIndex::RTree(IncidentIndex::new()), 50.0);
        let a = t.insert(incident(0, p(37.8, -122.27)));
        let b_id = IncidentId::from_seq(1);
        t.insert(incident(1, p(37.81, -122.27)));
        assert_eq!(t.open_count(), 2);
        // Move A 1.1 km north, far beyond the slack: found at its new place only.
        t.at_mut(a).expect("slot").location = p(37.81, -122.27);
        assert_eq!(found(&t, p(37.8, -122.27), 100.0), vec![]);
        assert_eq!(
            found(&t, p(37.81, -122.27), 100.0),
            vec![IncidentId::from_seq(0), b_id]
        );
        // A small move within the slack keeps the index entry, but the summary follows.
        t.at_mut(a).expect("slot").location = p(37.8102, -122.27);
        assert_eq!(
            found(&t, p(37.8102, -122.27), 5.0),
            vec![IncidentId::from_seq(0)]
        );
        // Closing leaves the index; removing forgets it.
        t.at_mut(a).expect("slot").status = Status::Expired;
        assert_eq!(t.open_count(), 1);
        assert_eq!(found(&t, p(37.81, -122.27), 100.0), vec![b_id]);
        t.remove(&b_id);
        assert_eq!(t.open_count(), 0);
        assert!(t.get(&b_id).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn reset_indexes_open_incidents_only() {
        let mut t = Incidents::new(SpatialIndex::RTree(IncidentIndex::new()), 50.0);
        let mut closed = incident(2, p(37.8, -122.27));
        closed.status = Status::Expired;
        t.reset([incident(0, p(37.8, -122.27)), closed]);
        assert_eq!((t.len(), t.open_count()), (2, 1));
        assert_eq!(
            found(&t, p(37.8, -122.27), 10.0),
            vec![IncidentId::from_seq(0)]
        );
    }
}
