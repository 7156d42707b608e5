//! `sled` store: one tree, keys prefixed by record kind, every commit one atomic
//! `apply_batch`.

use std::path::Path;

use super::shred::Sealer;
use super::vault::Vault;
use super::waiting::{self, WaitingEvents};

use serde::{Serialize, de::DeserializeOwned};

use super::{Batch, OutboxEntry, Queued, Sent, Snapshot, Store, StoreError, dropped_with, fades};
use rustc_hash::FxHashMap as HashMap;

use crate::model::{Incident, IncidentId};

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

const SEEN: &str = "seen/";
const INCIDENT: &str = "incident/";
/// One record per report: `report/<incident>/<index, u32 big-endian>`.
const REPORT: &str = "report/";
const PENDING: &str = "pending/";
const NEXT_SEQ: &[u8] = b"meta/next_seq";
const OUTBOX: &str = "outbox/";
const ALERT: &str = "alert/";
/// `event/<event id>` → the incident one of the bot's messages is about.
const EVENT: &str = "event/";
/// `setting/<neighborhood>/<key>` → a value set from a room.
const SETTING: &str = "setting/";
/// `link/<id>` → a relay link.
const LINK: &str = "link/";
/// `refusal/<neighborhood>/<hour, ms since 1970>` → refusals counted in that hour.
const REFUSAL: &str = "refusal/";
/// `sent/<incident>/<room>\0<event id>` → nothing: a message of the bot about the
/// incident, not redacted yet.
const SENT: &str = "sent/";

/// The prefix of the `sent/` records of `incident` (in `room`, when given).
fn sent_prefix(incident: &IncidentId, room: Option<&str>) -> Vec<u8> {
    let mut k = key(SENT, incident.as_str());
    k.push(b'/');
    if let Some(room) = room {
        k.extend_from_slice(room.as_bytes());
        k.push(0);
    }
    k
}

fn sent_key(incident: &IncidentId, room: &str, event_id: &str) -> Vec<u8> {
    let mut k = sent_prefix(incident, Some(room));
    k.extend_from_slice(event_id.as_bytes());
    k
}

fn refusal_key(neighborhood: &str, hour_ms: i64) -> Vec<u8> {
    self::key(REFUSAL, &format!("{neighborhood}/{hour_ms}"))
}

fn setting_key(neighborhood: &str, key: &str) -> Vec<u8> {
    self::key(SETTING, &format!("{neighborhood}/{key}"))
}

fn outbox_key(seq: u64) -> Vec<u8> {
    let mut k = OUTBOX.as_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn report_key(incident: &IncidentId, index: usize) -> Result<Vec<u8>, StoreError> {
    let index = u32::try_from(index)
        .map_err(|_| StoreError::Encode(format!("incident {incident} has too many reports")))?;
    let mut k = key(REPORT, incident.as_str());
    k.push(b'/');
    k.extend_from_slice(&index.to_be_bytes());
    Ok(k)
}

fn reports_prefix(incident: &IncidentId) -> Vec<u8> {
    let mut prefix = key(REPORT, incident.as_str());
    prefix.push(b'/');
    prefix
}

fn alert_key(incident: &IncidentId, room: &str) -> Vec<u8> {
    key(ALERT, &format!("{incident}/{room}"))
}

/// sled's page cache. Its default (1 GiB) only fills as the database grows, but nothing
/// here needs more than the open incidents and the outbox, which fit in a few MiB; the
/// rest is read from disk (the OS caches it too).
pub const CACHE_BYTES: u64 = 16 << 20;

/// Seals every record of `tree` not sealed under `current` (and those in the clear for
/// which `clear_is_stale` holds) under it; returns how many. Each record is swapped only
/// if unchanged since it was read, so a record another handle removed meanwhile (an
/// outbox entry just sent) is never brought back.
fn reseal(
    tree: &sled::Tree,
    sealer: &Sealer,
    current: u32,
    clear_is_stale: impl Fn(&[u8]) -> bool,
) -> Result<usize, StoreError> {
    let mut resealed = 0usize;
    for entry in tree.iter() {
        let (k, v) = entry?;
        let stale = match Sealer::epoch_of(&v) {
            Some(e) => e != current,
            None => clear_is_stale(&k),
        };
        if !stale {
            continue;
        }
        let plain = sealer.open_value(&k, &v)?;
        let new = sealer.seal(&plain)?;
        // Lost to a concurrent change: that change wrote under the new key already.
        if tree.compare_and_swap(&k, Some(&v), Some(new))?.is_ok() {
            resealed += 1;
        }
    }
    Ok(resealed)
}

/// State in a sled database on disk.
#[derive(Debug, Clone)]
pub struct SledStore {
    tree: sled::Tree,
    db: sled::Db,
    flush_on_commit: bool,
    sealer: Sealer,
}

fn key(prefix: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + id.len());
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Records whose values the store encodes (sealed: see [`super::shred`]). The others
/// (`seen/`, `alert/`, `event/`) hold times and IDs, never what anyone wrote.
const SEALED_KINDS: &[&[u8]] = &[
    INCIDENT.as_bytes(),
    REPORT.as_bytes(),
    PENDING.as_bytes(),
    NEXT_SEQ,
    OUTBOX.as_bytes(),
    SETTING.as_bytes(),
    LINK.as_bytes(),
    REFUSAL.as_bytes(),
];

impl SledStore {
    /// Opens (or creates) the database at `path`, with a page cache of
    /// [`CACHE_BYTES`]; its text keys are sealed under `vault`'s passphrase.
    pub fn open(path: &Path, vault: &Vault) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let sealer = Sealer::open(path, vault)?;
        Self::from_db(db, sealer)
    }

    /// Uses the `engine` tree of an open database (shared with other parts of the bot),
    /// sealing with the keys of `sealer`.
    pub fn from_db(db: sled::Db, sealer: Sealer) -> Result<Self, StoreError> {
        let tree = db.open_tree("engine")?;
        Ok(Self {
            tree,
            db,
            flush_on_commit: true,
            sealer,
        })
    }

    /// The record keys' sealing (for tests and `check`).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The events waiting for their keys, sealed with this store's keys.
    pub fn waiting(&self) -> Result<WaitingEvents, StoreError> {
        WaitingEvents::open(&self.db, self.sealer.clone())
    }

    fn encode<T: Serialize>(&self, v: &T) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(v).map_err(|e| StoreError::Encode(e.to_string()))?;
        self.sealer.seal(&plain)
    }

    fn decode<T: DeserializeOwned>(&self, k: &[u8], v: &[u8]) -> Result<T, StoreError> {
        let plain = self.sealer.open_value(k, v)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
            key: String::from_utf8_lossy(k).into_owned(),
            reason: e.to_string(),
        })
    }

    /// Whether each commit waits until it is on disk (default: yes). Turn off only where
    /// losing the last half second of state on a crash is acceptable (offline replay).
    pub fn with_flush_on_commit(mut self, flush: bool) -> Self {
        self.flush_on_commit = flush;
        self
    }

    /// The database, for other components that keep their own trees in it.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Waits until everything committed is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush()?;
        Ok(())
    }

    fn stored_reports(&self, id: &IncidentId) -> usize {
        self.tree.scan_prefix(reports_prefix(id)).count()
    }

    /// Deletes, in `b`, every stored report of `id` from index `from` on.
    fn remove_reports_from(
        &self,
        b: &mut sled::Batch,
        id: &IncidentId,
        from: usize,
    ) -> Result<(), StoreError> {
        let start = report_key(id, from)?;
        let mut end = reports_prefix(id);
        end.push(0xff);
        for entry in self.tree.range(start..end) {
            b.remove(entry?.0);
        }
        Ok(())
    }

    /// Deletes, in `b`, the incidents `gone` with everything keyed by them: their
    /// reports, their alerts' event IDs (`alert/<incident>/…`), the `event/` entries
    /// naming them (found by reading the event map: it is not keyed by incident), and
    /// the outbox entries about them queued before (`adding` is this batch's). Their
    /// redactions stay, with the `sent/` records of the rooms they redact.
    fn remove_incidents(
        &self,
        b: &mut sled::Batch,
        gone: &[IncidentId],
        adding: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        if gone.is_empty() {
            return Ok(());
        }
        let queued = self.outbox()?;
        for q in &queued {
            if dropped_with(&q.entry.effect, gone) {
                b.remove(outbox_key(q.seq));
            }
        }
        let fading = fades(queued.iter().map(|q| &q.entry).chain(adding));
        for id in gone {
            self.remove_reports_from(b, id, 0)?;
            b.remove(key(INCIDENT, id.as_str()));
            for entry in self.tree.scan_prefix(alert_key(id, "")) {
                b.remove(entry?.0);
            }
            let kept: Vec<Vec<u8>> = fading
                .iter()
                .filter(|(i, _)| i == id)
                .map(|(_, room)| sent_prefix(id, Some(room)))
                .collect();
            for entry in self.tree.scan_prefix(sent_prefix(id, None)) {
                let k = entry?.0;
                if !kept.iter().any(|p| k.starts_with(p)) {
                    b.remove(k);
                }
            }
        }
        for entry in self.tree.scan_prefix(EVENT.as_bytes()) {
            let (k, v) = entry?;
            let about = std::str::from_utf8(&v).ok().and_then(IncidentId::parse);
            if about.is_some_and(|id| gone.contains(&id)) {
                b.remove(k);
            }
        }
        Ok(())
    }

    fn put_sent(&self, b: &mut sled::Batch, s: &Sent<'_>) {
        if s.alert {
            b.insert(alert_key(s.incident, s.room), s.event_id.as_bytes());
        }
        b.insert(key(EVENT, s.event_id), s.incident.as_str().as_bytes());
        b.insert(sent_key(s.incident, s.room, s.event_id), &[][..]);
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        self.tree
            .scan_prefix(prefix.as_bytes())
            .map(|r| {
                let (k, v) = r?;
                self.decode(&k, &v)
            })
            .collect()
    }
}

impl Store for SledStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let next_seq = match self.tree.get(NEXT_SEQ)? {
            Some(v) => self.decode(NEXT_SEQ, &v)?,
            None => 0,
        };
        let mut incidents: Vec<Incident> = self.scan(INCIDENT)?;
        let at: HashMap<IncidentId, usize> = incidents
            .iter()
            .enumerate()
            .map(|(n, i)| (i.id, n))
            .collect();
        // Keys sort by incident, then index: each incident's reports come in order.
        for r in self.tree.scan_prefix(REPORT.as_bytes()) {
            let (k, v) = r?;
            let corrupt = |reason: &str| StoreError::Corrupt {
                key: String::from_utf8_lossy(&k).into_owned(),
                reason: reason.to_owned(),
            };
            let rest = &k[REPORT.len()..];
            let slash = rest
                .iter()
                .position(|b| *b == b'/')
                .ok_or_else(|| corrupt("report key has no index"))?;
            let id = std::str::from_utf8(&rest[..slash])
                .ok()
                .and_then(IncidentId::parse)
                .ok_or_else(|| corrupt("report key has no incident ID"))?;
            let n = *at
                .get(&id)
                .ok_or_else(|| corrupt("report of an unknown incident"))?;
            incidents[n].reports.push(self.decode(&k, &v)?);
        }
        Ok(Snapshot {
            incidents,
            pending: self.scan(PENDING)?,
            next_seq,
            settings: self.scan(SETTING)?,
            links: self.scan(LINK)?,
            refusals: self.scan(REFUSAL)?,
        })
    }

    fn is_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key(SEEN, event_id))?)
    }

    fn forget_seen(&mut self, before_ms: i64, now_ms: i64) -> Result<usize, StoreError> {
        let now = now_ms.to_be_bytes();
        let mut b = sled::Batch::default();
        let mut forgotten = 0;
        for entry in self.tree.scan_prefix(SEEN.as_bytes()) {
            let (k, v) = entry?;
            match <[u8; 8]>::try_from(&v[..]) {
                Ok(at) if i64::from_be_bytes(at) < before_ms => {
                    b.remove(k);
                    forgotten += 1;
                }
                Ok(_) => {}
                // Stored by an older version, without a time: handled "now".
                Err(_) => b.insert(k, &now[..]),
            }
        }
        self.tree.apply_batch(b)?;
        Ok(forgotten)
    }

    fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for id in &batch.seen {
            b.insert(key(SEEN, id), &batch.at_ms.to_be_bytes()[..]);
        }
        for w in &batch.incidents {
            if w.reports_from > 0
                && !self
                    .tree
                    .contains_key(report_key(&w.incident.id, w.reports_from - 1)?)?
            {
                return Err(super::gap(w, self.stored_reports(&w.incident.id)));
            }
        }
        for w in batch.incidents {
            let mut head = w.incident;
            let reports = std::mem::take(&mut head.reports);
            // A shrinking write (a withdrawn report) leaves no stale record behind.
            self.remove_reports_from(&mut b, &head.id, w.reports_from + reports.len())?;
            for (n, r) in reports.iter().enumerate() {
                b.insert(report_key(&head.id, w.reports_from + n)?, self.encode(r)?);
            }
            // The incident's own record holds everything but its reports.
            b.insert(key(INCIDENT, head.id.as_str()), self.encode(&head)?);
        }
        self.remove_incidents(&mut b, &batch.incidents_delete, &batch.outbox)?;
        for p in &batch.pending_put {
            b.insert(key(PENDING, &p.event_id), self.encode(p)?);
        }
        for id in &batch.pending_delete {
            b.remove(key(PENDING, id));
        }
        if let Some(n) = batch.next_seq {
            b.insert(NEXT_SEQ, self.encode(&n)?);
        }
        for (n, k) in &batch.settings_delete {
            b.remove(setting_key(n, k));
        }
        for s in &batch.settings_put {
            b.insert(setting_key(&s.neighborhood, &s.key), self.encode(s)?);
        }
        for l in &batch.links_put {
            b.insert(key(LINK, &l.id), self.encode(l)?);
        }
        for (n, h) in &batch.refusals_delete {
            b.remove(refusal_key(n, *h));
        }
        for r in &batch.refusals_put {
            b.insert(refusal_key(&r.neighborhood, r.hour_ms), self.encode(r)?);
        }
        for e in &batch.outbox {
            // generate_id is monotonic across restarts: the queue keeps its order.
            b.insert(outbox_key(self.db.generate_id()?), self.encode(e)?);
        }
        self.tree.apply_batch(b)?;
        if self.flush_on_commit {
            self.tree.flush()?;
        }
        Ok(())
    }

    fn outbox(&self) -> Result<Vec<Queued>, StoreError> {
        self.outbox_after(None)
    }

    fn outbox_after(&self, after: Option<u64>) -> Result<Vec<Queued>, StoreError> {
        let start = match after {
            Some(seq) => outbox_key(seq.saturating_add(1)),
            None => outbox_key(0),
        };
        let mut end = OUTBOX.as_bytes().to_vec();
        end.extend_from_slice(&[0xff; 9]);
        self.tree
            .range(start..end)
            .map(|r| {
                let (k, v) = r?;
                let seq_bytes: [u8; 8] =
                    k[OUTBOX.len()..]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            key: String::from_utf8_lossy(&k).into_owned(),
                            reason: "outbox key is not a sequence number".into(),
                        })?;
                Ok(Queued {
                    seq: u64::from_be_bytes(seq_bytes),
                    entry: self.decode(&k, &v)?,
                })
            })
            .collect()
    }

    fn outbox_sent(&mut self, seq: u64, sent: Option<Sent<'_>>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        b.remove(outbox_key(seq));
        if let Some(s) = &sent {
            self.put_sent(&mut b, s);
        }
        self.tree.apply_batch(b)?;
        if self.flush_on_commit {
            self.tree.flush()?;
        }
        Ok(())
    }

    fn note_sent(&mut self, s: Sent<'_>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        self.put_sent(&mut b, &s);
        self.tree.apply_batch(b)?;
        Ok(())
    }

    /// A new epoch key; every live sealed record (and any stored in the clear by an older
    /// version) is sealed again under it, then the old keys are dropped from the key file.
    fn shred(&mut self) -> Result<(), StoreError> {
        let current = self.sealer.begin_epoch()?;
        let mut resealed = reseal(&self.tree, &self.sealer, current, |k| {
            SEALED_KINDS.iter().any(|p| k.starts_with(p))
        })?;
        // Events waiting for their keys (those in the clear were sealed when opened).
        let waiting = self.db.open_tree(waiting::TREE)?;
        resealed += reseal(&waiting, &self.sealer, current, |_| false)?;
        self.tree.flush()?;
        waiting.flush()?;
        self.sealer.retire()?;
        tracing::debug!(
            resealed,
            epoch = current,
            "store records sealed under a new key"
        );
        Ok(())
    }

    fn event_incident(&self, event_id: &str) -> Result<Option<IncidentId>, StoreError> {
        let k = key(EVENT, event_id);
        match self.tree.get(&k)? {
            None => Ok(None),
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(IncidentId::parse)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: "not an incident ID".into(),
                }),
        }
    }

    fn sent_events(&self, incident: &IncidentId, room: &str) -> Result<Vec<String>, StoreError> {
        let prefix = sent_prefix(incident, Some(room));
        self.tree
            .scan_prefix(&prefix)
            .map(|r| Ok(String::from_utf8_lossy(&r?.0[prefix.len()..]).into_owned()))
            .collect()
    }

    fn is_sent_in(
        &self,
        incident: &IncidentId,
        room: &str,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        if self.tree.contains_key(sent_key(incident, room, event_id))? {
            return Ok(true);
        }
        let alert = self.tree.get(alert_key(incident, room))?;
        Ok(alert.is_some_and(|v| *v == *event_id.as_bytes()))
    }

    fn sent_rooms(&self, incident: &IncidentId) -> Result<Vec<String>, StoreError> {
        let prefix = sent_prefix(incident, None);
        let mut rooms: Vec<String> = Vec::new();
        for r in self.tree.scan_prefix(&prefix) {
            let k = r?.0;
            let rest = &k[prefix.len()..];
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let room = String::from_utf8_lossy(&rest[..end]);
            if rooms.last().is_none_or(|l| *l != room) {
                rooms.push(room.into_owned());
            }
        }
        Ok(rooms)
    }

    fn redacted(
        &mut self,
        incident: &IncidentId,
        room: &str,
        event_id: &str,
    ) -> Result<(), StoreError> {
        self.tree.remove(sent_key(incident, room, event_id))?;
        self.tree.flush()?;
        Ok(())
    }

    fn alert_event(&self, incident: &IncidentId, room: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree
            .get(alert_key(incident, room))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
