//! In-memory store: for tests, benchmarks and replays without `--store`.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::{Batch, OutboxEntry, Queued, Snapshot, Store, StoreError, gap};
use crate::incident::{Incident, IncidentId, PendingReport};

/// State kept in memory only.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    seen: SeenSet,
    incidents: FxHashMap<IncidentId, Incident>,
    pending: BTreeMap<Arc<str>, PendingReport>,
    next_seq: u64,
    outbox: BTreeMap<u64, OutboxEntry>,
    outbox_next: u64,
    alerts: BTreeMap<(IncidentId, String), String>,
}

/// Handled event IDs, each kept with its hash: growing the set rehashes from the stored
/// hashes instead of reading every ID again.
#[derive(Debug, Default, Clone)]
struct SeenSet(HashTable<(u64, Arc<str>)>);

impl SeenSet {
    fn hash(id: &str) -> u64 {
        FxBuildHasher.hash_one(id)
    }

    fn contains(&self, id: &str) -> bool {
        let h = Self::hash(id);
        self.0.find(h, |(k, s)| *k == h && **s == *id).is_some()
    }

    fn insert(&mut self, id: Arc<str>) {
        let h = Self::hash(&id);
        if let TableEntry::Vacant(v) = self.0.entry(h, |(k, s)| *k == h && *s == id, |(k, _)| *k) {
            v.insert((h, id));
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut incidents: Vec<Incident> = self.incidents.values().cloned().collect();
        incidents.sort_by_key(|a| a.id);
        Ok(Snapshot {
            incidents,
            pending: self.pending.values().cloned().collect(),
            next_seq: self.next_seq,
        })
    }

    fn is_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.seen.contains(event_id))
    }

    fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        // Check first, so that a refused batch changes nothing.
        for w in &batch.incidents {
            if w.reports_from > 0 {
                let stored = self
                    .incidents
                    .get(&w.incident.id)
                    .map_or(0, |i| i.reports.len());
                if w.reports_from > stored {
                    return Err(gap(w, stored));
                }
            }
        }
        for id in batch.seen {
            self.seen.insert(id);
        }
        for w in batch.incidents {
            let mut inc = w.incident;
            match self.incidents.entry(inc.id) {
                Entry::Occupied(mut o) => {
                    // Keep the stored reports before `reports_from`, in place.
                    let old = o.get_mut();
                    let mut reports = std::mem::take(&mut old.reports);
                    reports.truncate(w.reports_from);
                    reports.append(&mut inc.reports);
                    inc.reports = reports;
                    *old = inc;
                }
                Entry::Vacant(v) => {
                    v.insert(inc);
                }
            }
        }
        for p in batch.pending_put {
            self.pending.insert(p.event_id.clone(), p);
        }
        for id in batch.pending_delete {
            self.pending.remove(&id);
        }
        if let Some(n) = batch.next_seq {
            self.next_seq = n;
        }
        for e in batch.outbox {
            self.outbox.insert(self.outbox_next, e);
            self.outbox_next += 1;
        }
        Ok(())
    }

    fn outbox(&self) -> Result<Vec<Queued>, StoreError> {
        Ok(self
            .outbox
            .iter()
            .map(|(seq, entry)| Queued {
                seq: *seq,
                entry: entry.clone(),
            })
            .collect())
    }

    fn outbox_sent(
        &mut self,
        seq: u64,
        alert: Option<(&IncidentId, &str, &str)>,
    ) -> Result<(), StoreError> {
        self.outbox.remove(&seq);
        if let Some((incident, room, event)) = alert {
            self.alerts
                .insert((*incident, room.to_owned()), event.to_owned());
        }
        Ok(())
    }

    fn alert_event(&self, incident: &IncidentId, room: &str) -> Result<Option<String>, StoreError> {
        Ok(self.alerts.get(&(*incident, room.to_owned())).cloned())
    }
}
