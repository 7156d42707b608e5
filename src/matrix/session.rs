//! The session: secrets, logging in once (the session saved beside the crypto store,
//! sealed under the store passphrase) and restoring the same device ever after, the
//! SDK's stores (state and crypto in SQLite under the passphrase; event cache and media
//! in memory only), and the network's room aliases resolved to IDs.
//!
//! Must not touch: the SDK's event cache (never subscribed: decrypted events stay in
//! memory, `scripts/structure` checks that no code of `src/` reaches for it).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use matrix_sdk::{
    Client, ClientBuildError, SqliteCryptoStore, SqliteStateStore, SqliteStoreConfig,
    authentication::matrix::MatrixSession,
    config::StoreConfig,
    cross_process_lock::CrossProcessLockConfig,
    encryption::{BackupDownloadStrategy, EncryptionSettings},
    ruma::RoomAliasId,
};
use tracing::{info, warn};

use super::ShellError;
use crate::config::{MatrixSettings, Network};
use crate::model::ReporterKey;
use crate::store::Vault;
use crate::store::vault::DEFAULT_PASSPHRASE_ENV;

/// The saved session's file in the store directory (sealed, see [`crate::store::vault`];
/// the name is the one older releases wrote it in the clear under).
pub const SESSION_FILE: &str = "session.json";
const SESSION_LABEL: &str = "session";

/// The SDK's on-disk stores that older releases kept and this one keeps in memory: the
/// event cache (decrypted events) and the media store, with SQLite's side files.
const OLD_SDK_CACHES: &[&str] = &[
    "matrix-sdk-event-cache.sqlite3",
    "matrix-sdk-event-cache.sqlite3-wal",
    "matrix-sdk-event-cache.sqlite3-shm",
    "matrix-sdk-media.sqlite3",
    "matrix-sdk-media.sqlite3-wal",
    "matrix-sdk-media.sqlite3-shm",
];

/// The secrets the bot reads from the environment variables the network file names.
pub struct Secrets {
    password: String,
    store_passphrase: String,
    pub(super) vault: Vault,
    pub(super) reporter_key: ReporterKey,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(…)")
    }
}

impl Secrets {
    /// Secrets given directly (the demo makes its own).
    pub fn new(password: &str, store_passphrase: &str, reporter_key: &[u8]) -> Self {
        Self {
            password: password.to_owned(),
            store_passphrase: store_passphrase.to_owned(),
            vault: Vault::new(store_passphrase, DEFAULT_PASSPHRASE_ENV),
            reporter_key: ReporterKey::new(reporter_key),
        }
    }

    /// The store passphrase's vault (sealed files of the store and the session).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Reads them. Never from the file itself.
    pub fn from_env(net: &Network) -> Result<Self, ShellError> {
        let m = net
            .matrix
            .as_ref()
            .ok_or(ShellError::MissingSection("matrix"))?;
        let s = net
            .storage
            .as_ref()
            .ok_or(ShellError::MissingSection("storage"))?;
        let get = |v: &str| std::env::var(v).map_err(|_| ShellError::MissingEnv(v.to_owned()));
        let key = get(&s.reporter_key_env)?;
        if key.len() < 16 {
            return Err(ShellError::WeakKey(s.reporter_key_env.clone()));
        }
        let store_passphrase = get(&m.store_passphrase_env)?;
        if store_passphrase.is_empty() {
            return Err(ShellError::MissingEnv(m.store_passphrase_env.clone()));
        }
        Ok(Self {
            password: get(&m.password_env)?,
            vault: Vault::new(&store_passphrase, &m.store_passphrase_env),
            store_passphrase,
            reporter_key: ReporterKey::new(key.as_bytes()),
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShellError + '_ {
    move |source| ShellError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Connections per sqlite store of the SDK (state, crypto). Its default is four per CPU
/// core, each with a 2 MB page cache; a bot that sends a few messages at a time needs
/// far fewer, with the SDK's low-memory page cache (500 kB).
const SQLITE_CONNECTIONS: usize = 4;

/// The client, with explicit stores: state and crypto in SQLite under the passphrase,
/// the event cache and the media store in memory only (`StoreConfig`'s defaults), so no
/// decrypted event is ever written to disk.
async fn build_client(
    m: &MatrixSettings,
    passphrase: &str,
    sqlite_dir: &Path,
) -> Result<Client, ShellError> {
    let config = SqliteStoreConfig::with_low_memory_config(sqlite_dir)
        .pool_max_size(SQLITE_CONNECTIONS)
        .passphrase(Some(passphrase));
    let state = SqliteStateStore::open_with_config(&config)
        .await
        .map_err(ClientBuildError::from)?;
    let crypto = SqliteCryptoStore::open_with_config(&config)
        .await
        .map_err(ClientBuildError::from)?;
    let stores = StoreConfig::new(CrossProcessLockConfig::multi_process("main"))
        .state_store(state)
        .crypto_store(crypto);
    Ok(Client::builder()
        .homeserver_url(&m.homeserver)
        // The configured URL is the one to use (in a compose network it is the
        // homeserver's internal address), not the public one the login response
        // may advertise.
        .respect_login_well_known(false)
        .store_config(stores)
        .with_encryption_settings(EncryptionSettings {
            auto_enable_cross_signing: true,
            auto_enable_backups: m.key_backup,
            backup_download_strategy: if m.key_backup {
                BackupDownloadStrategy::AfterDecryptionFailure
            } else {
                BackupDownloadStrategy::Manual
            },
        })
        // MSC4268: room history is not shared with whoever is invited later.
        .with_enable_share_history_on_invite(false)
        .build()
        .await?)
}

/// Deletes the event cache and media databases an older release kept in `sqlite_dir`
/// (decrypted events): this release keeps them in memory.
fn remove_old_sdk_caches(sqlite_dir: &Path) {
    for name in OLD_SDK_CACHES {
        let path = sqlite_dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => info!(
                file = %path.display(),
                "removed the SDK's on-disk event cache or media store of an older release (kept in memory now)"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(file = %path.display(), error = %e, "cannot remove an old SDK cache database")
            }
        }
    }
}

/// The session saved in `store_path`, opened with `vault`; `None` before the first
/// login. A session file in the clear (an older release) is sealed in place at once.
pub fn read_session(store_path: &Path, vault: &Vault) -> Result<Option<MatrixSession>, ShellError> {
    let path = store_path.join(SESSION_FILE);
    let Some(saved) = vault.read(&path, SESSION_LABEL)? else {
        return Ok(None);
    };
    let session: MatrixSession =
        serde_json::from_slice(&saved.bytes).map_err(|e| ShellError::Session {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    if saved.was_plain {
        vault.write(&path, SESSION_LABEL, &saved.bytes)?;
        info!(file = %path.display(), "sealed a session file an older release wrote in the clear");
    }
    Ok(Some(session))
}

/// Logs in the first time (saving the session, sealed, next to the crypto store) and
/// restores the same device on every later start. Never logs out.
pub async fn connect(net: &Network, secrets: &Secrets) -> Result<Client, ShellError> {
    let m = net
        .matrix
        .as_ref()
        .ok_or(ShellError::MissingSection("matrix"))?;
    std::fs::create_dir_all(&m.store_path).map_err(io(&m.store_path))?;
    let session_path = m.store_path.join(SESSION_FILE);
    let crypto_path = m.store_path.join("sqlite");
    warn_of_recovery_key_beside_store(&m.store_path);
    remove_old_sdk_caches(&crypto_path);
    if let Some(session) = read_session(&m.store_path, &secrets.vault)? {
        let client = build_client(m, &secrets.store_passphrase, &crypto_path).await?;
        client.restore_session(session).await?;
        info!("session restored");
        return Ok(client);
    }
    // First start: a fresh crypto store for a fresh device.
    let _ = std::fs::remove_dir_all(&crypto_path);
    let client = build_client(m, &secrets.store_passphrase, &crypto_path).await?;
    client
        .matrix_auth()
        .login_username(&m.user, &secrets.password)
        .initial_device_display_name(&m.device_name)
        .await?;
    let Some(session) = client.matrix_auth().session() else {
        return Err(ShellError::Session {
            path: session_path,
            reason: "the homeserver returned no session".into(),
        });
    };
    let json =
        zeroize::Zeroizing::new(
            serde_json::to_vec(&session).map_err(|e| ShellError::Session {
                path: session_path.clone(),
                reason: e.to_string(),
            })?,
        );
    secrets.vault.write(&session_path, SESSION_LABEL, &json)?;
    info!("logged in; session saved");
    client
        .encryption()
        .wait_for_e2ee_initialization_tasks()
        .await;
    if m.key_backup {
        enable_recovery(&client, m.recovery_key_file.as_deref()).await?;
    }
    Ok(client)
}

/// Server-side key backup with a recovery key (the organizer's choice, `key_backup`):
/// the key is printed once and written only where the organizer named
/// (`recovery_key_file`), never beside the store.
async fn enable_recovery(client: &Client, file: Option<&Path>) -> Result<(), ShellError> {
    match client.encryption().recovery().enable().await {
        Ok(key) => {
            let saved = match file {
                Some(path) => {
                    write_private(path, &format!("{key}\n"))?;
                    format!("; also saved to {}", path.display())
                }
                None => String::new(),
            };
            eprintln!(
                "\nneighborwatch: server-side key backup is on. Recovery key (shown once{saved}):\n\n    {key}\n\nKeep it somewhere safe, away from the bot's data: with it and the bot's password, every room key can be read from the homeserver.\n"
            );
        }
        Err(e) => warn!(error = %e, "could not enable key backup and recovery"),
    }
    Ok(())
}

/// Releases before this one wrote the recovery key beside the store: say so at every
/// start until the organizer moves it (it is theirs to keep; the bot does not delete it).
fn warn_of_recovery_key_beside_store(store_path: &Path) {
    let old = store_path.join("RECOVERY-KEY.txt");
    if old.exists() {
        warn!(
            file = %old.display(),
            "a recovery key is stored beside the bot's store: move it somewhere safe, away from the data directory, and delete this file"
        );
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), ShellError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))
}

/// Replaces room aliases in the network by room IDs, so events match by ID.
pub(super) async fn resolve_aliases(client: &Client, net: &Network) -> Network {
    let mut net = net.clone();
    let mut cache: HashMap<String, String> = HashMap::new();
    let mut resolve = async |r: &str| -> String {
        if !r.starts_with('#') {
            return r.to_owned();
        }
        if let Some(id) = cache.get(r) {
            return id.clone();
        }
        let id = match RoomAliasId::parse(r) {
            Ok(alias) => match client.resolve_room_alias(&alias).await {
                Ok(resp) => resp.room_id.to_string(),
                Err(e) => {
                    // The alias names the room, and the server's error may repeat it:
                    // both at debug only (PRODUCT.md §6, logs).
                    tracing::debug!(alias = r, error = %e, "alias not resolved");
                    warn!(
                        "cannot resolve a room alias of the network file; its room is ignored until restart (details at debug)"
                    );
                    r.to_owned()
                }
            },
            Err(_) => r.to_owned(),
        };
        cache.insert(r.to_owned(), id.clone());
        id
    };
    let mut resolved = Vec::new();
    for n in net.neighborhoods() {
        let mut ids: Vec<Arc<str>> = Vec::new();
        for r in &n.rooms {
            ids.push(Arc::from(resolve(r).await));
        }
        resolved.push(ids);
    }
    net.update_neighborhoods(|ns| {
        for (n, ids) in ns.iter_mut().zip(resolved) {
            n.rooms = ids;
        }
    });
    if let Some(c) = net.coordination_room.clone() {
        net.coordination_room = Some(resolve(&c).await);
    }
    net
}
