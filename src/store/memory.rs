//! In-memory store: for tests, benchmarks and replays without `--store`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;
use rustc_hash::{FxBuildHasher, FxHashMap};
use smallvec::SmallVec;

use super::{
    Batch, OutboxEntry, Queued, Sent, Snapshot, Store, StoreError, dropped_with, fades, gap,
};
use crate::config::RoomSetting;
use crate::links::Link;
use crate::model::{Incident, IncidentId, PendingReport, ReportRecord};
use crate::stats::RefusalCount;

/// State kept in memory only.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    seen: SeenSet,
    incidents: FxHashMap<IncidentId, Stored>,
    pending: BTreeMap<Arc<str>, PendingReport>,
    next_seq: u64,
    outbox: BTreeMap<u64, OutboxEntry>,
    outbox_next: u64,
    alerts: BTreeMap<(IncidentId, String), String>,
    events: FxHashMap<String, IncidentId>,
    /// The bot's messages not redacted yet: (incident, room, event ID).
    sent: BTreeSet<(IncidentId, String, String)>,
    settings: BTreeMap<(String, String), RoomSetting>,
    links: BTreeMap<String, Link>,
    refusals: BTreeMap<(String, i64), RefusalCount>,
}

/// An incident as stored: its fields, and its reports in the runs they were written in,
/// so that appending reports moves them in without copying or growing what is there.
#[derive(Debug, Clone)]
struct Stored {
    /// The incident, without its reports.
    head: Incident,
    runs: SmallVec<[Vec<ReportRecord>; 4]>,
    len: usize,
}

impl Stored {
    fn new(mut head: Incident) -> Self {
        let reports = std::mem::take(&mut head.reports);
        let mut s = Self {
            head,
            runs: SmallVec::new(),
            len: 0,
        };
        s.write(0, reports);
        s
    }

    /// Keeps the first `from` reports (at most as many as are stored) and appends
    /// `reports`.
    fn write(&mut self, from: usize, reports: Vec<ReportRecord>) {
        if from < self.len {
            let mut kept: Vec<ReportRecord> = self.runs.drain(..).flatten().take(from).collect();
            kept.extend(reports);
            self.len = kept.len();
            self.runs.push(kept);
        } else if !reports.is_empty() {
            self.len += reports.len();
            self.runs.push(reports);
        }
    }

    fn incident(&self) -> Incident {
        let mut inc = self.head.clone();
        inc.reports = self.runs.iter().flatten().cloned().collect();
        inc
    }
}

/// Handled event IDs, each kept with its hash (growing the set rehashes from the stored
/// hashes instead of reading every ID again) and when it was handled.
#[derive(Debug, Default, Clone)]
struct SeenSet(HashTable<(u64, Arc<str>, i64)>);

impl SeenSet {
    fn hash(id: &str) -> u64 {
        FxBuildHasher.hash_one(id)
    }

    fn contains(&self, id: &str) -> bool {
        let h = Self::hash(id);
        self.0.find(h, |(k, s, _)| *k == h && **s == *id).is_some()
    }

    fn insert(&mut self, id: Arc<str>, at_ms: i64) {
        let h = Self::hash(&id);
        if let TableEntry::Vacant(v) =
            self.0
                .entry(h, |(k, s, _)| *k == h && *s == id, |(k, _, _)| *k)
        {
            v.insert((h, id, at_ms));
        }
    }

    fn forget_before(&mut self, before_ms: i64) -> usize {
        let n = self.0.len();
        self.0.retain(|(_, _, at)| *at >= before_ms);
        n - self.0.len()
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
        let mut incidents: Vec<Incident> = self.incidents.values().map(Stored::incident).collect();
        incidents.sort_by_key(|a| a.id);
        Ok(Snapshot {
            incidents,
            pending: self.pending.values().cloned().collect(),
            next_seq: self.next_seq,
            settings: self.settings.values().cloned().collect(),
            links: self.links.values().cloned().collect(),
            refusals: self.refusals.values().cloned().collect(),
        })
    }

    fn is_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.seen.contains(event_id))
    }

    fn forget_seen(&mut self, before_ms: i64, _now_ms: i64) -> Result<usize, StoreError> {
        Ok(self.seen.forget_before(before_ms))
    }

    fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        // Check first, so that a refused batch changes nothing.
        for w in &batch.incidents {
            if w.reports_from > 0 {
                let stored = self.incidents.get(&w.incident.id).map_or(0, |s| s.len);
                if w.reports_from > stored {
                    return Err(gap(w, stored));
                }
            }
        }
        for id in batch.seen {
            self.seen.insert(id, batch.at_ms);
        }
        for w in batch.incidents {
            let mut head = w.incident;
            match self.incidents.entry(head.id) {
                Entry::Occupied(mut o) => {
                    let s = o.get_mut();
                    let reports = std::mem::take(&mut head.reports);
                    s.write(w.reports_from, reports);
                    s.head = head;
                }
                Entry::Vacant(v) => {
                    v.insert(Stored::new(head));
                }
            }
        }
        if !batch.incidents_delete.is_empty() {
            let gone = &batch.incidents_delete;
            for id in gone {
                self.incidents.remove(id);
            }
            self.alerts.retain(|(id, _), _| !gone.contains(id));
            self.events.retain(|_, id| !gone.contains(id));
            let fading = fades(self.outbox.values().chain(&batch.outbox));
            self.sent.retain(|(id, room, _)| {
                !gone.contains(id) || fading.iter().any(|(i, r)| i == id && r == room)
            });
            self.outbox.retain(|_, e| !dropped_with(&e.effect, gone));
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
        for k in batch.settings_delete {
            self.settings.remove(&k);
        }
        for s in batch.settings_put {
            self.settings
                .insert((s.neighborhood.clone(), s.key.clone()), s);
        }
        for k in batch.refusals_delete {
            self.refusals.remove(&k);
        }
        for r in batch.refusals_put {
            self.refusals.insert((r.neighborhood.clone(), r.hour_ms), r);
        }
        for l in batch.links_put {
            self.links.insert(l.id.clone(), l);
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

    fn outbox_sent(&mut self, seq: u64, sent: Option<Sent<'_>>) -> Result<(), StoreError> {
        self.outbox.remove(&seq);
        match sent {
            Some(s) => self.note_sent(s),
            None => Ok(()),
        }
    }

    fn note_sent(&mut self, s: Sent<'_>) -> Result<(), StoreError> {
        if s.alert {
            self.alerts
                .insert((*s.incident, s.room.to_owned()), s.event_id.to_owned());
        }
        self.events.insert(s.event_id.to_owned(), *s.incident);
        self.sent
            .insert((*s.incident, s.room.to_owned(), s.event_id.to_owned()));
        Ok(())
    }

    fn sent_events(&self, incident: &IncidentId, room: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .sent
            .iter()
            .filter(|(i, r, _)| i == incident && r == room)
            .map(|(_, _, e)| e.clone())
            .collect())
    }

    fn sent_rooms(&self, incident: &IncidentId) -> Result<Vec<String>, StoreError> {
        let mut rooms: Vec<String> = self
            .sent
            .iter()
            .filter(|(i, _, _)| i == incident)
            .map(|(_, r, _)| r.clone())
            .collect();
        rooms.dedup();
        Ok(rooms)
    }

    fn redacted(
        &mut self,
        incident: &IncidentId,
        room: &str,
        event_id: &str,
    ) -> Result<(), StoreError> {
        self.sent
            .remove(&(*incident, room.to_owned(), event_id.to_owned()));
        Ok(())
    }

    fn event_incident(&self, event_id: &str) -> Result<Option<IncidentId>, StoreError> {
        Ok(self.events.get(event_id).copied())
    }

    fn alert_event(&self, incident: &IncidentId, room: &str) -> Result<Option<String>, StoreError> {
        Ok(self.alerts.get(&(*incident, room.to_owned())).cloned())
    }
}
