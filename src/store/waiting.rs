//! Events waiting for their keys: messages the bot could not decrypt yet, kept (as the
//! encrypted event the server sent) until their keys arrive or `retention_hours` pass.
//!
//! Each is sealed like every other record ([`super::shred`]) and filed under a digest of
//! its room and event ID, so the files name neither the room nor the event (nor, inside
//! the event, its sender) to whoever copies them. The store's hourly key rotation
//! re-seals them with everything else.
//!
//! Owns: the `utd` tree. Must not touch: decrypting or handling the events (the Matrix
//! shell does), deciding when one is too old (the caller says).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StoreError;
use super::shred::Sealer;

/// The tree's name (kept from the releases that stored events in the clear).
pub(super) const TREE: &str = "utd";

/// An event waiting for its key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// Its room.
    pub room: String,
    /// The encrypted event's JSON, as the server sent it.
    pub json: String,
}

/// A handle on the waiting events (cheap to clone; shares the store's keys).
#[derive(Clone, Debug)]
pub struct WaitingEvents {
    tree: sled::Tree,
    sealer: Sealer,
}

/// Where an event is filed: a digest of its room and event ID.
fn slot(room: &str, event_id: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(room.as_bytes());
    h.update([0]);
    h.update(event_id.as_bytes());
    h.finalize().to_vec()
}

/// A key as older releases wrote it: `<room id> <event id>`, the value in the clear.
fn legacy(key: &[u8]) -> Option<(&str, &str)> {
    std::str::from_utf8(key).ok()?.split_once(' ')
}

impl WaitingEvents {
    /// The waiting events of `db`; those stored in the clear by older releases are
    /// sealed and re-filed now.
    pub(super) fn open(db: &sled::Db, sealer: Sealer) -> Result<Self, StoreError> {
        let w = Self {
            tree: db.open_tree(TREE)?,
            sealer,
        };
        let mut migrated = 0usize;
        for entry in w.tree.iter() {
            let (k, v) = entry?;
            let Some((room, event_id)) = legacy(&k) else {
                continue;
            };
            let json = String::from_utf8_lossy(&v).into_owned();
            let value = w.seal(&Waiting {
                room: room.to_owned(),
                json,
            })?;
            let mut b = sled::Batch::default();
            b.insert(slot(room, event_id), value);
            b.remove(k);
            w.tree.apply_batch(b)?;
            migrated += 1;
        }
        if migrated > 0 {
            w.tree.flush()?;
            tracing::info!(migrated, "waiting undecryptable events sealed");
        }
        Ok(w)
    }

    fn seal(&self, w: &Waiting) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(w).map_err(|e| StoreError::Encode(e.to_string()))?;
        self.sealer.seal(&plain)
    }

    /// Keeps an event until it decrypts (or is dropped); durably.
    pub fn keep(&self, room: &str, event_id: &str, json: &str) -> Result<(), StoreError> {
        let value = self.seal(&Waiting {
            room: room.to_owned(),
            json: json.to_owned(),
        })?;
        self.tree.insert(slot(room, event_id), value)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Every waiting event, with the slot to [`WaitingEvents::remove`] it by. One that
    /// no longer opens (damaged, or sealed under a key that is gone) is removed now.
    pub fn all(&self) -> Result<Vec<(Vec<u8>, Waiting)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.iter() {
            let (k, v) = entry?;
            let opened = self
                .sealer
                .open_value(&k, &v)
                .ok()
                .and_then(|plain| serde_json::from_slice::<Waiting>(&plain).ok());
            match opened {
                Some(w) => out.push((k.to_vec(), w)),
                None => {
                    tracing::warn!("a waiting event does not open; dropped");
                    self.tree.remove(&k)?;
                }
            }
        }
        Ok(out)
    }

    /// Forgets every waiting event sent (by the server's clock, `origin_server_ts`)
    /// longer ago than its room's `keep_ms(room)` at `now_ms`, or with no time at all;
    /// returns how many.
    pub fn forget_expired(
        &self,
        now_ms: i64,
        keep_ms: impl Fn(&str) -> i64,
    ) -> Result<usize, StoreError> {
        #[derive(Deserialize)]
        struct Sent {
            origin_server_ts: Option<i64>,
        }
        let mut forgotten = 0;
        for (slot, w) in self.all()? {
            let sent = serde_json::from_str::<Sent>(&w.json)
                .ok()
                .and_then(|s| s.origin_server_ts);
            if sent.is_none_or(|ts| now_ms - ts > keep_ms(&w.room)) {
                self.remove(&slot)?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    /// Forgets a waiting event (decrypted, or waited too long).
    pub fn remove(&self, slot: &[u8]) -> Result<(), StoreError> {
        self.tree.remove(slot)?;
        Ok(())
    }

    /// Writes what changed to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush_async().await?;
        Ok(())
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when none is waiting.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> crate::store::Vault {
        crate::store::Vault::new("test passphrase", "NW_TEST_PASS")
    }

    #[test]
    fn waiting_events_are_sealed_filed_by_digest_and_legacy_ones_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let sealer = Sealer::open(&dir.path().join("db"), &vault()).unwrap();
        let legacy_json = r#"{"event_id":"$old","sender":"@alice:hs"}"#;
        db.open_tree(TREE)
            .unwrap()
            .insert(b"!room:hs $old", legacy_json.as_bytes())
            .unwrap();
        let w = WaitingEvents::open(&db, sealer.clone()).unwrap();
        w.keep(
            "!room:hs",
            "$new",
            r#"{"event_id":"$new","sender":"@bob:hs"}"#,
        )
        .unwrap();
        let tree = db.open_tree(TREE).unwrap();
        for entry in tree.iter() {
            let (k, v) = entry.unwrap();
            for needle in [&b"!room"[..], b"alice", b"bob", b"$old", b"$new"] {
                assert!(
                    !k.windows(needle.len()).any(|x| x == needle),
                    "key names it"
                );
                assert!(
                    !v.windows(needle.len()).any(|x| x == needle),
                    "value names it"
                );
            }
        }
        let mut all = w.all().unwrap();
        all.sort_by(|a, b| a.1.json.cmp(&b.1.json));
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1.room, "!room:hs");
        assert!(all[0].1.json.contains("$new"));
        assert_eq!(all[1].1.json, legacy_json);
        w.remove(&all[0].0).unwrap();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_waiting_event_is_forgotten_once_its_rooms_retention_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let w = WaitingEvents::open(&db, Sealer::open(&dir.path().join("db"), &vault()).unwrap())
            .unwrap();
        let hour = 3_600_000;
        let sent = |ts: i64| format!(r#"{{"origin_server_ts":{ts}}}"#);
        w.keep("!short:hs", "$a", &sent(0)).unwrap();
        w.keep("!long:hs", "$b", &sent(0)).unwrap();
        w.keep("!long:hs", "$c", "{}").unwrap();
        let keep = |room: &str| if room == "!short:hs" { hour } else { 48 * hour };
        assert_eq!(
            w.forget_expired(hour, keep).unwrap(),
            1,
            "only the timeless one"
        );
        assert_eq!(
            w.forget_expired(hour + 1, keep).unwrap(),
            1,
            "the short room's"
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w.forget_expired(48 * hour, keep).unwrap(), 0);
        assert_eq!(w.forget_expired(48 * hour + 1, keep).unwrap(), 1);
        assert!(w.is_empty());
    }
}
