//! Crypto-shredding for the sled store: what is deleted must also be gone from the files.
//!
//! sled is log-structured: a record replaced or removed (report text purged after
//! `retention_hours`, a pending report dropped, an outbox entry sent) stays readable in
//! old log segments until sled happens to reuse them. So every record the store encodes
//! is sealed (ChaCha20-Poly1305) under the current *epoch key*, and the keys live in a
//! small file of their own (`text-keys`, inside the database directory) that is rewritten
//! whole (write, fsync, rename) rather than appended to. Rotating the epoch re-seals every
//! live record under a new key and then drops the old key from the file: every dead copy
//! left in the log is then noise.
//!
//! Owns: the key file, sealing and opening records, rotation bookkeeping. Must not touch:
//! what the records mean (the store), when to rotate (the engine's hourly timer), the
//! sealed-file format and the passphrase (`vault`).
//!
//! The key file is itself sealed under the store passphrase ([`super::vault`]): a copy of
//! the disk without the passphrase opens no record, live or dead. With the passphrase,
//! the live records open (that is what the bot needs to run); what was deleted before the
//! last rotation opens with nothing. A key file an older release wrote in the clear is
//! sealed (replaced whole) the first time it is opened.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::vault::Vault;

/// First byte of a sealed record (never the first byte of JSON).
pub const SEALED: u8 = 0xA5;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// The name of the key file in the database directory.
pub const KEY_FILE: &str = "text-keys";

#[derive(Clone, Serialize, Deserialize)]
struct EpochKey {
    epoch: u32,
    key: String,
}

#[derive(Default, Serialize, Deserialize)]
struct KeyFile {
    /// Oldest first; the last one seals new records.
    keys: Vec<EpochKey>,
}

struct Keys {
    /// (epoch, cipher), oldest first; the last one is current.
    ciphers: Vec<(u32, ChaCha20Poly1305)>,
    file: KeyFile,
}

/// The epoch keys of one database, shared by every handle to it.
#[derive(Clone)]
pub struct Sealer {
    path: Arc<PathBuf>,
    vault: Vault,
    keys: Arc<RwLock<Keys>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("path", &self.path)
            .field("epochs", &self.epochs())
            .finish()
    }
}

fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Keys(format!("{}: {what}: {e}", path.display()))
}

fn random_key() -> Result<[u8; 32], StoreError> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| StoreError::Keys(format!("no randomness: {e}")))?;
    Ok(k)
}

impl Sealer {
    /// The keys of the database in `dir`, opened with `vault`; a first key is made (and
    /// written) when there is no key file yet. A key file in the clear (an older
    /// release) is sealed at once.
    pub fn open(dir: &Path, vault: &Vault) -> Result<Self, StoreError> {
        let path = dir.join(KEY_FILE);
        let (file, was_plain): (KeyFile, bool) = match vault.read(&path, KEY_FILE)? {
            Some(u) => (
                serde_json::from_slice(&u.bytes)
                    .map_err(|e| io_error(&path, "not a key file", e))?,
                u.was_plain,
            ),
            None => (KeyFile::default(), false),
        };
        if was_plain {
            write_key_file(&path, &file, vault)?;
            tracing::info!(file = %path.display(), "sealed a text-keys file an older release wrote in the clear");
        }
        let mut ciphers = Vec::with_capacity(file.keys.len());
        for k in &file.keys {
            let bytes = hex::decode(&k.key)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| io_error(&path, "a key is not 32 hex bytes", k.epoch))?;
            ciphers.push((k.epoch, ChaCha20Poly1305::new(Key::from_slice(&bytes))));
        }
        let sealer = Self {
            path: Arc::new(path),
            vault: vault.clone(),
            keys: Arc::new(RwLock::new(Keys { ciphers, file })),
        };
        if sealer.epochs().is_empty() {
            sealer.begin_epoch()?;
        }
        Ok(sealer)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The epochs whose keys are kept, oldest first.
    pub fn epochs(&self) -> Vec<u32> {
        self.read().ciphers.iter().map(|(e, _)| *e).collect()
    }

    /// The epoch that seals new records.
    pub fn current(&self) -> u32 {
        self.read().ciphers.last().map_or(0, |(e, _)| *e)
    }

    /// Seals a record under the current key.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let keys = self.read();
        let (epoch, cipher) = keys
            .ciphers
            .last()
            .ok_or_else(|| StoreError::Keys("no key to seal with".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Keys(format!("no randomness: {e}")))?;
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| StoreError::Encode("sealing failed".into()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(SEALED);
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The epoch a stored value is sealed under (`None`: stored in the clear by an
    /// older version).
    pub fn epoch_of(value: &[u8]) -> Option<u32> {
        (value.len() >= HEADER_LEN && value[0] == SEALED)
            .then(|| u32::from_be_bytes([value[1], value[2], value[3], value[4]]))
    }

    /// Opens a stored value: sealed, or in the clear (older versions) as it is.
    pub fn open_value(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(epoch) = Self::epoch_of(value) else {
            return Ok(value.to_vec());
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        };
        let keys = self.read();
        let (_, cipher) = keys
            .ciphers
            .iter()
            .find(|(e, _)| *e == epoch)
            .ok_or_else(|| {
                corrupt(format!(
                    "sealed under key epoch {epoch}, which {} does not hold (was the key file replaced or lost?)",
                    self.path.display()
                ))
            })?;
        cipher
            .decrypt(
                Nonce::from_slice(&value[5..HEADER_LEN]),
                &value[HEADER_LEN..],
            )
            .map_err(|_| corrupt("sealed record does not open (damaged)".into()))
    }

    /// Starts a new epoch: a new key seals from now on; the old ones are kept (written to
    /// the key file before anything is sealed with the new one) until [`Sealer::retire`].
    pub fn begin_epoch(&self) -> Result<u32, StoreError> {
        let key = random_key()?;
        let mut keys = self.write();
        let epoch = keys.ciphers.last().map_or(1, |(e, _)| e.wrapping_add(1));
        keys.file.keys.push(EpochKey {
            epoch,
            key: hex::encode(key),
        });
        if let Err(e) = write_key_file(&self.path, &keys.file, &self.vault) {
            keys.file.keys.pop();
            return Err(e);
        }
        keys.ciphers
            .push((epoch, ChaCha20Poly1305::new(Key::from_slice(&key))));
        Ok(epoch)
    }

    /// The kept keys, hex, oldest first: for tests that look for them in files.
    #[doc(hidden)]
    pub fn epoch_keys_hex(&self) -> Vec<String> {
        self.read()
            .file
            .keys
            .iter()
            .map(|k| k.key.clone())
            .collect()
    }

    /// Forgets every key but the current one: what only they could open is gone.
    pub fn retire(&self) -> Result<(), StoreError> {
        let mut keys = self.write();
        let n = keys.ciphers.len();
        if n <= 1 {
            return Ok(());
        }
        let file = KeyFile {
            keys: keys.file.keys[n - 1..].to_vec(),
        };
        write_key_file(&self.path, &file, &self.vault)?;
        keys.file = file;
        keys.ciphers.drain(..n - 1);
        Ok(())
    }
}

/// Writes the key file whole and sealed (see [`Vault::write`]), so the old file's keys
/// are not left in it.
fn write_key_file(path: &Path, file: &KeyFile, vault: &Vault) -> Result<(), StoreError> {
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(file).map_err(|e| StoreError::Encode(e.to_string()))?,
    );
    vault.write(path, KEY_FILE, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_under_its_epoch_until_that_key_is_retired() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::new("test passphrase", "NW_TEST_PASS");
        let s = Sealer::open(dir.path(), &v).unwrap();
        let old = s.seal(b"{\"text\":\"agents at the corner\"}").unwrap();
        assert_eq!(Sealer::epoch_of(&old), Some(1));
        assert!(!old.windows(6).any(|w| w == b"agents"), "sealed");
        s.begin_epoch().unwrap();
        let new = s.seal(b"{}").unwrap();
        assert_eq!(Sealer::epoch_of(&new), Some(2));
        // Both open while both keys are kept, also from a fresh handle (the key file).
        let again = Sealer::open(dir.path(), &v).unwrap();
        assert_eq!(
            again.open_value(b"k", &old).unwrap(),
            b"{\"text\":\"agents at the corner\"}"
        );
        s.retire().unwrap();
        assert_eq!(s.epochs(), [2]);
        assert!(s.open_value(b"k", &old).is_err(), "its key is gone");
        assert!(
            Sealer::open(dir.path(), &v)
                .unwrap()
                .open_value(b"k", &old)
                .is_err()
        );
        assert_eq!(s.open_value(b"k", &new).unwrap(), b"{}");
        // A record from before sealing reads as it is.
        assert_eq!(s.open_value(b"k", b"{\"a\":1}").unwrap(), b"{\"a\":1}");
        let path = dir.path().join(KEY_FILE);
        let file = v.read(&path, KEY_FILE).unwrap().unwrap();
        let file = String::from_utf8_lossy(&file.bytes).into_owned();
        assert_eq!(file.matches("\"epoch\"").count(), 1, "{file}");
    }

    #[test]
    fn the_key_file_is_sealed_and_a_plain_one_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::new("test passphrase", "NW_TEST_PASS");
        let path = dir.path().join(KEY_FILE);
        // As an older release wrote it: the keys in the clear.
        let key = "11".repeat(32);
        std::fs::write(
            &path,
            format!("{{\"keys\":[{{\"epoch\":7,\"key\":\"{key}\"}}]}}"),
        )
        .unwrap();
        let old = ChaCha20Poly1305::new(Key::from_slice(&[0x11; 32]));
        let nonce = [3u8; NONCE_LEN];
        let mut record = vec![SEALED];
        record.extend_from_slice(&7u32.to_be_bytes());
        record.extend_from_slice(&nonce);
        record.extend(
            old.encrypt(Nonce::from_slice(&nonce), &b"agents"[..])
                .unwrap(),
        );

        let s = Sealer::open(dir.path(), &v).unwrap();
        assert_eq!(s.open_value(b"k", &record).unwrap(), b"agents");
        assert_eq!(s.epoch_keys_hex(), std::slice::from_ref(&key));
        let raw = std::fs::read(&path).unwrap();
        assert!(
            raw.starts_with(super::super::vault::MAGIC),
            "sealed in place"
        );
        assert!(
            !String::from_utf8_lossy(&raw).contains(&key[..16]),
            "no key in the clear"
        );
        assert!(!raw.windows(5).any(|w| w == b"epoch"));
        // Reopened (sealed now), the same record opens; a wrong passphrase is the clear error.
        let again = Sealer::open(dir.path(), &v).unwrap();
        assert_eq!(again.open_value(b"k", &record).unwrap(), b"agents");
        let wrong = Vault::new("not it", "NW_TEST_PASS");
        let e = Sealer::open(dir.path(), &wrong).unwrap_err();
        assert!(matches!(e, StoreError::Passphrase { .. }), "{e}");
        assert!(e.to_string().contains("text-keys"), "{e}");
        // A new key is sealed too.
        s.begin_epoch().unwrap();
        let fresh = s.epoch_keys_hex().pop().unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains(&fresh[..16]));
    }
}
