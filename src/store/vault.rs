//! Sealed files: the few small files that hold secrets (the text keys, the Matrix
//! session with its access token) are sealed under a key derived from the store
//! passphrase, so a copy of the data directory without the passphrase reveals none of
//! them.
//!
//! A sealed file is, in order: the magic `NWSEALED`, a version byte (1), a 16-byte salt,
//! a 12-byte nonce, and the ChaCha20-Poly1305 ciphertext with its tag. The key is
//! Argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane) of the passphrase and the salt;
//! the header and the file's label (`text-keys`, `session`) are authenticated with it, so
//! one sealed file cannot be passed off as another. Writes replace the file whole
//! (temporary file, fsync, rename, directory fsync; mode 0600).
//!
//! Owns: the file format, deriving (once per salt, cached) and forgetting keys, reading
//! files an older release wrote in the clear. Must not touch: what the files mean (their
//! owners: `shred` for the text keys, the Matrix shell for the session), environment
//! variables (the caller gives the passphrase and says where it came from).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use super::StoreError;

/// The first bytes of every sealed file.
pub const MAGIC: &[u8; 8] = b"NWSEALED";
const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + 1 + SALT_LEN;
/// The environment variable that holds the store passphrase unless the network file
/// names another (`[matrix] store_passphrase_env`).
pub const DEFAULT_PASSPHRASE_ENV: &str = "NW_STORE_PASSPHRASE";

type Salt = [u8; SALT_LEN];

struct Inner {
    passphrase: Zeroizing<String>,
    /// Where the passphrase came from (an environment variable's name), for errors.
    source: String,
    /// Keys derived so far, by salt; the first one seals new files.
    keys: Mutex<Vec<(Salt, Zeroizing<[u8; 32]>)>>,
}

/// The store passphrase and the keys derived from it; cheap to clone.
#[derive(Clone)]
pub struct Vault(Arc<Inner>);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault(from {})", self.0.source)
    }
}

/// What [`Vault::read`] found in a file.
pub struct Unsealed {
    /// The contents, opened.
    pub bytes: Zeroizing<Vec<u8>>,
    /// The file was not sealed (an older release wrote it in the clear): its owner
    /// should write it again, sealed, at once.
    pub was_plain: bool,
}

fn file_error(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Keys(format!("{}: {what}: {e}", path.display()))
}

impl Vault {
    /// A vault of `passphrase`, which came from `source` (the name of the environment
    /// variable, said in errors). Nothing is derived until a file is read or written.
    pub fn new(passphrase: &str, source: &str) -> Self {
        Self(Arc::new(Inner {
            passphrase: Zeroizing::new(passphrase.to_owned()),
            source: source.to_owned(),
            keys: Mutex::new(Vec::new()),
        }))
    }

    /// Where the passphrase came from.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    fn cipher(&self, salt: &Salt) -> Result<ChaCha20Poly1305, StoreError> {
        let mut keys = self
            .0
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, k)) = keys.iter().find(|(s, _)| s == salt) {
            return Ok(ChaCha20Poly1305::new(Key::from_slice(&k[..])));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
            .hash_password_into(self.0.passphrase.as_bytes(), salt, &mut key[..])
            .map_err(|e| StoreError::Keys(format!("cannot derive a key: {e}")))?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
        keys.push((*salt, key));
        Ok(cipher)
    }

    /// The salt new files are sealed with: the first one derived (so rewriting a file
    /// costs no derivation), or a new one.
    fn sealing_salt(&self) -> Result<Salt, StoreError> {
        if let Some((s, _)) = self
            .0
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .first()
        {
            return Ok(*s);
        }
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| StoreError::Keys(format!("no randomness: {e}")))?;
        Ok(salt)
    }

    /// Seals `plain` as the contents of a file labelled `label`.
    pub fn seal(&self, label: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let salt = self.sealing_salt()?;
        let cipher = self.cipher(&salt)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Keys(format!("no randomness: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&salt);
        let aad = [&out[..], label.as_bytes()].concat();
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Encode("sealing failed".into()))?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens the contents of the file at `path` (for errors), labelled `label`: sealed,
    /// or (an older release) in the clear.
    pub fn open(&self, path: &Path, label: &str, bytes: &[u8]) -> Result<Unsealed, StoreError> {
        if !bytes.starts_with(MAGIC) {
            return Ok(Unsealed {
                bytes: Zeroizing::new(bytes.to_vec()),
                was_plain: true,
            });
        }
        if bytes.len() < HEADER_LEN + NONCE_LEN || bytes[MAGIC.len()] != VERSION {
            return Err(file_error(
                path,
                "not a sealed file this version can read",
                format!("version {}", bytes.get(MAGIC.len()).copied().unwrap_or(0)),
            ));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[MAGIC.len() + 1..HEADER_LEN]);
        let cipher = self.cipher(&salt)?;
        let aad = [&bytes[..HEADER_LEN], label.as_bytes()].concat();
        let nonce = &bytes[HEADER_LEN..HEADER_LEN + NONCE_LEN];
        let msg = &bytes[HEADER_LEN + NONCE_LEN..];
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg, aad: &aad })
            .map_err(|_| StoreError::Passphrase {
                source_name: self.0.source.clone(),
                file: path.to_owned(),
            })?;
        Ok(Unsealed {
            bytes: Zeroizing::new(plain),
            was_plain: false,
        })
    }

    /// Reads and opens the file at `path`; `None` when there is none.
    pub fn read(&self, path: &Path, label: &str) -> Result<Option<Unsealed>, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                self.open(path, label, &bytes).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_error(path, "cannot read", e)),
        }
    }

    /// Writes `plain`, sealed, as the whole file at `path` (readable by its owner only):
    /// to a temporary file beside it, synced, then renamed over the old one (and the
    /// directory synced), so nothing of the old contents is left in the file.
    pub fn write(&self, path: &Path, label: &str, plain: &[u8]) -> Result<(), StoreError> {
        let sealed = self.seal(label, plain)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        // tempfile creates its files with mode 0600.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| file_error(path, "cannot write next to", e))?;
        tmp.write_all(&sealed)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| file_error(path, "cannot write", e))?;
        tmp.persist(path)
            .map_err(|e| file_error(path, "cannot replace", e.error))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_file_opens_with_its_passphrase_and_label_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let v = Vault::new("correct horse", "NW_TEST_PASS");
        v.write(&path, "session", b"{\"access_token\":\"syt_abc123\"}")
            .unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(raw.starts_with(MAGIC));
        assert!(!raw.windows(6).any(|w| w == b"syt_ab"), "sealed");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
        // A fresh vault of the same passphrase (a restart) opens it.
        let again = Vault::new("correct horse", "NW_TEST_PASS");
        let got = again.read(&path, "session").unwrap().unwrap();
        assert_eq!(&got.bytes[..], b"{\"access_token\":\"syt_abc123\"}");
        assert!(!got.was_plain);
        // Another passphrase: the clear error, naming the variable and the file.
        let wrong = Vault::new("wrong horse", "NW_TEST_PASS");
        let e = wrong.read(&path, "session").err().unwrap();
        assert!(matches!(e, StoreError::Passphrase { .. }), "{e}");
        let said = e.to_string();
        assert!(said.contains("NW_TEST_PASS"), "{said}");
        assert!(said.contains(&path.display().to_string()), "{said}");
        assert!(said.contains("wrong passphrase"), "{said}");
        // Another label: not the file it claims to be.
        assert!(again.read(&path, "text-keys").is_err());
        // A file in the clear reads as it is, marked for migration.
        std::fs::write(&path, b"{\"plain\":true}").unwrap();
        let plain = again.read(&path, "session").unwrap().unwrap();
        assert!(plain.was_plain);
        assert_eq!(&plain.bytes[..], b"{\"plain\":true}");
        assert!(again.read(&dir.path().join("none"), "x").unwrap().is_none());
    }
}
