//! Shared helpers: the example network and fixed clocks.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, TimeZone, Utc};
use neighborwatch::config::Network;
use neighborwatch::incident::Engine;
use neighborwatch::model::ReporterKey;
use neighborwatch::render::Catalogs;
use neighborwatch::store::MemoryStore;

pub fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/example.toml")
}

pub static NETWORK: LazyLock<Arc<Network>> = LazyLock::new(|| {
    Arc::new(Network::load(&example_path()).expect("config/example.toml is valid"))
});

/// 2026-03-02 08:06 in Oakland (16:06 UTC, PST).
pub fn sent_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 16, 6, 0).unwrap()
}

/// An engine over the example network and a memory store, hashing reporters with `key`.
pub fn engine(key: &[u8]) -> Engine<MemoryStore> {
    Engine::open(
        NETWORK.clone(),
        MemoryStore::new(),
        ReporterKey::new(key),
        Catalogs::builtin(),
    )
    .expect("a memory store opens")
}

/// Opens the sled store at `path`, waiting for the lock: sled lets go of it from a
/// background thread a moment after the last handle is dropped (longer on a busy
/// machine), so a reopen right after a close may find it still held.
/// The store passphrase of the tests' sled stores, derived once for the whole run.
pub fn test_vault() -> &'static neighborwatch::store::Vault {
    static VAULT: std::sync::LazyLock<neighborwatch::store::Vault> =
        std::sync::LazyLock::new(|| {
            neighborwatch::store::Vault::new("test store passphrase", "NW_STORE_PASSPHRASE")
        });
    &VAULT
}

pub fn open_sled(path: &std::path::Path) -> neighborwatch::store::SledStore {
    for _ in 0..500 {
        match neighborwatch::store::SledStore::open(path, test_vault()) {
            Ok(s) => return s,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening the sled store: {e}"),
        }
    }
    panic!("the sled store stayed locked for 10 s after it was closed")
}
