//! The Matrix shell: connects the pure core to a homeserver.
//!
//! Owns: the session (log in once, restore ever after), invites, the sync loop and the
//! engine task; `inbound` turns events into [`IncomingMessage`]s, `outbound` drains the
//! durable outbox, `content` builds Matrix message content. Must not touch: decisions (the engine makes them) or wording
//! (`render`). Logs at info level never hold message bodies or user IDs.

pub mod content;
pub mod inbound;
pub mod outbound;

pub use outbound::FAULT_ENV;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use matrix_sdk::{
    Client, Room, RoomState, SqliteStoreConfig,
    authentication::matrix::MatrixSession,
    config::SyncSettings,
    encryption::{BackupDownloadStrategy, EncryptionSettings},
    ruma::{
        OwnedRoomId, RoomAliasId,
        events::{
            reaction::OriginalSyncReactionEvent,
            room::{
                encrypted::OriginalSyncRoomEncryptedEvent, member::StrippedRoomMemberEvent,
                message::OriginalSyncRoomMessageEvent, redaction::OriginalSyncRoomRedactionEvent,
            },
        },
        serde::Raw,
    },
};
use tokio::sync::{Notify, mpsc};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::Network;
use crate::incident::Engine;
use crate::metrics::Metrics;
use crate::model::ReporterKey;
use crate::render::Catalogs;
use crate::store::SledStore;
use inbound::{Inbound, Received, read_back_rooms};
use outbound::send_loop;

/// Why the bot could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The network file has no `[matrix]` or `[storage]` section.
    #[error("the network file needs a [{0}] section to run the bot")]
    MissingSection(&'static str),
    /// A secret's environment variable is not set.
    #[error("environment variable {0} is not set (it holds a secret named in the network file)")]
    MissingEnv(String),
    /// The reporter key is too short.
    #[error("{0} must hold at least 16 characters")]
    WeakKey(String),
    /// Files of the store could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The saved session is unreadable.
    #[error("{path}: saved session is unreadable: {reason}")]
    Session {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The homeserver refused or failed.
    #[error("matrix: {0}")]
    Matrix(Box<matrix_sdk::Error>),
    /// Building the client failed.
    #[error("matrix client: {0}")]
    Build(Box<matrix_sdk::ClientBuildError>),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::incident::EngineError),
}

impl From<matrix_sdk::Error> for ShellError {
    fn from(e: matrix_sdk::Error) -> Self {
        Self::Matrix(Box::new(e))
    }
}

impl From<matrix_sdk::ClientBuildError> for ShellError {
    fn from(e: matrix_sdk::ClientBuildError) -> Self {
        Self::Build(Box::new(e))
    }
}

/// The secrets the bot reads from the environment variables the network file names.
pub struct Secrets {
    password: String,
    store_passphrase: String,
    reporter_key: ReporterKey,
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
            reporter_key: ReporterKey::new(reporter_key),
        }
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
        Ok(Self {
            password: get(&m.password_env)?,
            store_passphrase: get(&m.store_passphrase_env)?,
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

/// Connections per sqlite store of the SDK (state, crypto, event cache, media). Its
/// default is four per CPU core, each with a 2 MB page cache; a bot that sends a few
/// messages at a time needs far fewer, with the SDK's low-memory page cache (500 kB).
const SQLITE_CONNECTIONS: usize = 4;

/// Logs in the first time (saving the session next to the crypto store) and restores
/// the same device on every later start. Never logs out.
pub async fn connect(net: &Network, secrets: &Secrets) -> Result<Client, ShellError> {
    let m = net
        .matrix
        .as_ref()
        .ok_or(ShellError::MissingSection("matrix"))?;
    std::fs::create_dir_all(&m.store_path).map_err(io(&m.store_path))?;
    let session_path = m.store_path.join("session.json");
    let crypto_path = m.store_path.join("sqlite");
    let build = || {
        Client::builder()
            .homeserver_url(&m.homeserver)
            // The configured URL is the one to use (in a compose network it is the
            // homeserver's internal address), not the public one the login response
            // may advertise.
            .respect_login_well_known(false)
            .sqlite_store_with_config_and_cache_path(
                SqliteStoreConfig::with_low_memory_config(&crypto_path)
                    .pool_max_size(SQLITE_CONNECTIONS)
                    .passphrase(Some(&secrets.store_passphrase)),
                None::<&Path>,
            )
            .with_encryption_settings(EncryptionSettings {
                auto_enable_cross_signing: true,
                auto_enable_backups: true,
                backup_download_strategy: BackupDownloadStrategy::AfterDecryptionFailure,
            })
            .build()
    };
    if session_path.exists() {
        let text = std::fs::read_to_string(&session_path).map_err(io(&session_path))?;
        let session: MatrixSession =
            serde_json::from_str(&text).map_err(|e| ShellError::Session {
                path: session_path.clone(),
                reason: e.to_string(),
            })?;
        let client = build().await?;
        client.restore_session(session).await?;
        info!("session restored");
        return Ok(client);
    }
    // First start: a fresh crypto store for a fresh device.
    let _ = std::fs::remove_dir_all(&crypto_path);
    let client = build().await?;
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
    let json = serde_json::to_string(&session).map_err(|e| ShellError::Session {
        path: session_path.clone(),
        reason: e.to_string(),
    })?;
    write_private(&session_path, &json)?;
    info!("logged in; session saved");
    client
        .encryption()
        .wait_for_e2ee_initialization_tasks()
        .await;
    match client.encryption().recovery().enable().await {
        Ok(key) => {
            let path = m.store_path.join("RECOVERY-KEY.txt");
            write_private(&path, &format!("{key}\n"))?;
            eprintln!(
                "\nneighborwatch: server-side key backup is on. Recovery key (shown once; also saved to {}):\n\n    {key}\n\nKeep it somewhere safe and delete that file: with it, a lost store can be recovered.\n",
                path.display()
            );
        }
        Err(e) => warn!(error = %e, "could not enable key backup and recovery"),
    }
    Ok(client)
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
async fn resolve_aliases(client: &Client, net: &Network) -> Network {
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
                    warn!(alias = r, error = %e, "cannot resolve room alias; its room is ignored until restart");
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

pub use inbound::{incoming, member_of, reaction, redaction};

const CATCH_UP_KEY: &[u8] = b"catch_up_from";

/// Runs the bot until `shutdown` resolves.
pub async fn run(
    net: Network,
    secrets: Secrets,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ShellError> {
    let storage = net
        .storage
        .clone()
        .ok_or(ShellError::MissingSection("storage"))?;
    let store = SledStore::open(&storage.path)?;
    let catch_up_from = catch_up_marker(&store, &storage.path)?;
    let client = connect(&net, &secrets).await?;
    let net = Arc::new(resolve_aliases(&client, &net).await);
    // The engine's commits are flushed to disk a group at a time, before the sender
    // hears of them (see `spawn_engine`).
    let engine = Engine::open(
        Arc::clone(&net),
        store.clone().with_flush_on_commit(false),
        secrets.reporter_key.clone(),
        Catalogs::builtin(),
    )?
    .with_outbox()
    .with_tallies();
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let outbox_ready = Arc::new(Notify::new());
    let metrics = Arc::new(Metrics::new());
    let metrics_task = match net.metrics.as_ref() {
        Some(m) => Some(
            crate::metrics::serve(m.listen, Arc::clone(&metrics))
                .await
                .map_err(|source| ShellError::Io {
                    path: net.path.clone(),
                    source,
                })?,
        ),
        None => None,
    };

    accept_invites(&client, &net);
    // How many syncs have completed: a send waits for the sync that brought its cause.
    let (beat, synced) = tokio::sync::watch::channel(0u64);
    let inbound = Arc::new(Inbound::new(
        tx.clone(),
        Arc::clone(&metrics),
        synced.clone(),
        client.user_id().map(ToOwned::to_owned),
        catch_up_from,
        store.db(),
        net.matrix.as_ref().map_or(60, |m| m.ask_resend_after_s),
    )?);
    route_events(&client, &inbound).await;
    let utd_task = watch_undecrypted(&client, &inbound, &net);
    let after_sync = Arc::new(AtomicU64::new(0));
    let (engine_task, stop) = spawn_engine(
        engine,
        store.clone(),
        rx,
        Arc::clone(&outbox_ready),
        Arc::clone(&after_sync),
        Arc::clone(&metrics),
    );
    // The sender task: drains the outbox, rooms side by side, each with its own backoff.
    let sender = tokio::spawn(send_loop(
        client.clone(),
        Arc::clone(&net),
        store.clone(),
        Arc::clone(&outbox_ready),
        Arc::clone(&metrics),
        synced,
        after_sync,
    ));
    outbox_ready.notify_one();
    let sync = spawn_sync(
        client.clone(),
        Arc::clone(&net),
        Arc::clone(&inbound),
        Arc::clone(&metrics),
        beat,
    );
    info!(
        rooms = net
            .neighborhoods()
            .iter()
            .map(|n| n.rooms.len())
            .sum::<usize>(),
        "neighborwatch running"
    );
    shutdown.await;
    info!("shutting down");
    sync.abort();
    utd_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    drop(tx);
    sender.abort();
    let _ = stop.send(());
    let _ = engine_task.await;
    store.flush()?;
    Ok(())
}

/// The catch-up marker: when this state store was created. Events from before it are
/// never handled, so a lost state store never replays old sightings. An unreadable marker
/// (at `path`, named in the warning) is replaced by now, never read as 0.
fn catch_up_marker(store: &SledStore, path: &std::path::Path) -> Result<i64, ShellError> {
    let shell = store
        .db()
        .open_tree("shell")
        .map_err(crate::store::StoreError::from)?;
    let stored = shell
        .get(CATCH_UP_KEY)
        .map_err(crate::store::StoreError::from)?;
    let now = Utc::now().timestamp_millis();
    let marker = read_catch_up_marker(stored.as_deref(), now);
    match marker {
        CatchUp::From(from) => return Ok(from),
        CatchUp::FirstStart => {}
        CatchUp::Unreadable => warn!(
            path = %path.display(),
            "the catch-up marker (tree `shell`, key `catch_up_from`) is unreadable; \
             catching up from now, as on a first start: reports sent while the bot was \
             down are not read back. Nothing else in the state database is affected."
        ),
    }
    shell
        .insert(CATCH_UP_KEY, &now.to_be_bytes())
        .map_err(crate::store::StoreError::from)?;
    shell.flush().map_err(crate::store::StoreError::from)?;
    Ok(now)
}

/// What the stored catch-up marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CatchUp {
    /// Events from this time on (ms since 1970) are read.
    From(i64),
    /// No marker: a first start; events from now on are read.
    FirstStart,
    /// The marker is not a time (damaged, or written by something else): never read as
    /// 0, which would replay the rooms' whole history.
    Unreadable,
}

/// Reads a stored marker: 8 big-endian bytes of a time after 2020 and no later than a
/// day past `now_ms` (a clock set back a little is no reason to refuse).
fn read_catch_up_marker(stored: Option<&[u8]>, now_ms: i64) -> CatchUp {
    const YEAR_2020_MS: i64 = 1_577_836_800_000;
    let Some(bytes) = stored else {
        return CatchUp::FirstStart;
    };
    match <[u8; 8]>::try_from(bytes).map(i64::from_be_bytes) {
        Ok(t) if (YEAR_2020_MS..=now_ms.saturating_add(86_400_000)).contains(&t) => {
            CatchUp::From(t)
        }
        _ => CatchUp::Unreadable,
    }
}

/// Invites: rooms of the network file, or from an organizer, are accepted; the rest
/// declined.
fn accept_invites(client: &Client, net: &Arc<Network>) {
    let invite_net = Arc::clone(net);
    client.add_event_handler(
        move |ev: StrippedRoomMemberEvent, client: Client, room: Room| {
            let net = Arc::clone(&invite_net);
            async move {
                if client.user_id() != Some(&*ev.state_key) {
                    return;
                }
                let rid = room.room_id().to_string();
                let known = net.neighborhood_of_room(&rid).is_some()
                    || net.coordination_room.as_deref() == Some(rid.as_str());
                let by_organizer = net
                    .organizers
                    .iter()
                    .any(|o| o.as_str() == ev.sender.as_str());
                tokio::spawn(
                    async move {
                        if known || by_organizer {
                            let mut delay = 1;
                            while let Err(e) = room.join().await {
                                if delay > 60 {
                                    warn!(error = %e, "giving up joining");
                                    return;
                                }
                                tokio::time::sleep(Duration::from_secs(delay)).await;
                                delay *= 2;
                            }
                            info!("joined");
                            // The member list now, while nothing waits for it: the
                            // first encrypted send into a room needs it, and would
                            // otherwise fetch it then, delaying the room's first alert.
                            if let Err(e) = room.sync_members().await {
                                debug!(error = %e, "could not read the member list yet");
                            }
                        } else {
                            info!("declining an invite to a room outside the network");
                            let _ = room.leave().await;
                        }
                    }
                    .instrument(info_span!("invite", room = %rid)),
                );
            }
        },
    );
}

/// Every event kind the core reads goes to `inbound`; events that cannot be decrypted
/// yet are kept, and tried again whenever room keys arrive.
async fn route_events(client: &Client, inbound: &Arc<Inbound>) {
    let h = Arc::clone(inbound);
    client.add_event_handler(move |ev: OriginalSyncRoomMessageEvent, room: Room| {
        let h = Arc::clone(&h);
        async move {
            if room.state() == RoomState::Joined {
                h.message(&ev, &room).await;
            }
        }
    });
    let h = Arc::clone(inbound);
    client.add_event_handler(move |ev: OriginalSyncReactionEvent, room: Room| {
        let h = Arc::clone(&h);
        async move { h.reaction(&ev, &room).await }
    });
    let h = Arc::clone(inbound);
    client.add_event_handler(move |ev: OriginalSyncRoomRedactionEvent, room: Room| {
        let h = Arc::clone(&h);
        async move { h.redaction(&ev, &room).await }
    });
    // Events that could not be decrypted yet: kept in sled, and handled when their keys
    // arrive (the SDK re-decrypts for its timeline, but never calls event handlers again).
    let h = Arc::clone(inbound);
    client.add_event_handler(
        move |_ev: OriginalSyncRoomEncryptedEvent,
              room: Room,
              raw: matrix_sdk::event_handler::RawEvent| {
            let h = Arc::clone(&h);
            async move {
                let raw: Raw<OriginalSyncRoomEncryptedEvent> = Raw::from_json(raw.0.clone());
                h.keep_undecrypted(room.room_id(), &raw);
            }
        },
    );
    if let Some(mut keys) = client.encryption().room_keys_received_stream().await {
        let (client, h) = (client.clone(), Arc::clone(inbound));
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(Ok(infos)) = keys.next().await {
                if h.undecrypted() == 0 {
                    continue;
                }
                let rooms: Vec<OwnedRoomId> = infos.iter().map(|i| i.room_id.clone()).collect();
                h.retry_undecrypted(&client, Some(&rooms)).await;
            }
        });
    }
}

/// Messages that stay undecryptable: looked at again every few seconds, so their
/// senders are asked to send them again in time (keys that do arrive are handled at
/// once, by [`route_events`]).
fn watch_undecrypted(
    client: &Client,
    inbound: &Arc<Inbound>,
    net: &Network,
) -> tokio::task::JoinHandle<()> {
    let (client, h) = (client.clone(), Arc::clone(inbound));
    let every = Duration::from_secs(net.matrix.as_ref().map_or(5, |m| {
        u64::from(m.ask_resend_after_s).div_ceil(2).clamp(1, 5)
    }));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if h.undecrypted() > 0 {
                h.retry_undecrypted(&client, None).await;
            }
        }
    })
}

/// Inputs handled before their commits are flushed together.
const MAX_GROUP: usize = 64;

/// The engine task, the only owner of the engine: inputs in, outbox entries out. Event
/// handlers keep senders of its channel alive as long as the client, so it stops on its
/// own signal (the returned sender). Inputs still queued then are not lost: they were
/// never marked handled, and the next start reads them back.
///
/// Inputs that are waiting together (a burst, or history read back after a restart) are
/// handled one by one, each in its own atomic commit, and flushed to disk with one write
/// for the group, before the sender is told: nothing is sent that is not on disk. A
/// crash before the flush loses those commits whole, inputs' "handled" marks included,
/// so they are handled again on the next start.
fn spawn_engine(
    mut engine: Engine<SledStore>,
    store: SledStore,
    mut rx: mpsc::UnboundedReceiver<Received>,
    ready: Arc<Notify>,
    after_sync: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let engine_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            // Effects queued by each input handled (or timer run) in this group.
            let mut queued: Vec<usize> = Vec::new();
            tokio::select! {
                _ = &mut stopped => break,
                m = rx.recv() => match m {
                    Some(first) => {
                        if let Err(e) = engine.tick(Utc::now()) {
                            warn!(error = %e, "timers not run; they run again on the next input");
                        }
                        let (mut next, mut handled) = (Some(first), 0);
                        while let Some(r) = next.take() {
                            after_sync.fetch_max(r.after_sync, Ordering::SeqCst);
                            let span = info_span!("event", room = %r.msg.room);
                            let _g = span.enter();
                            match engine.handle_received(&r.msg, Utc::now(), r.at) {
                                Ok(e) => queued.push(e.len()),
                                Err(e) => warn!(
                                    error = %e,
                                    "input not handled; it will be handled again after a restart"
                                ),
                            }
                            handled += 1;
                            if handled < MAX_GROUP {
                                next = rx.try_recv().ok();
                            }
                        }
                        debug!(inputs = handled, "inputs handled together");
                    }
                    None => break,
                },
                _ = tick.tick() => match engine.tick(Utc::now()) {
                    Ok(e) => queued.push(e.len()),
                    Err(e) => warn!(error = %e, "timers not run; they run again on the next tick"),
                },
            }
            if let Err(e) = tokio::task::block_in_place(|| store.flush()) {
                warn!(error = %e, "cannot flush the state store; nothing more is sent until it can");
                continue;
            }
            // The statistics' counters move once what they count is on disk.
            for t in engine.take_tallies() {
                metrics.tally(&t);
            }
            // Said once on disk: what the log says was queued survives a crash.
            for n in queued.iter().filter(|n| **n > 0) {
                info!(effects = n, "input handled; effects queued");
            }
            if queued.iter().any(|n| *n > 0) {
                ready.notify_one();
            }
        }
    });

    (engine_task, stop)
}

/// A sync filter that leaves the bot's own timeline events out (state, invites, keys
/// and to-device messages still come).
fn own_messages_left_out(
    client: &Client,
) -> matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter {
    use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomEventFilter, RoomFilter};
    let mut timeline = RoomEventFilter::default();
    if let Some(me) = client.user_id() {
        timeline.not_senders = vec![me.to_owned()];
    }
    let mut room = RoomFilter::default();
    room.timeline = timeline;
    let mut def = FilterDefinition::default();
    def.room = room;
    matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter::FilterDefinition(def)
}

/// The sync loop.
///
/// Reports are never skipped: after the first sync, each room of the network is read
/// back over the dedupe window (reports from while the bot was down, and any that
/// were received but not yet committed when it stopped); after that, whenever a sync
/// leaves a gap in a room's timeline, the gap is read back. The engine drops events it
/// has already handled.
fn spawn_sync(
    client: Client,
    net: Arc<Network>,
    inbound: Arc<Inbound>,
    metrics: Arc<Metrics>,
    beat: tokio::sync::watch::Sender<u64>,
) -> tokio::task::JoinHandle<()> {
    let read_back_ms = net
        .neighborhoods()
        .iter()
        .map(|n| n.settings.dedupe_window_min)
        .fold(net.defaults.dedupe_window_min, u32::max);
    let read_back_ms = i64::from(read_back_ms) * 60_000;
    tokio::spawn(async move {
        // Driven by hand with `sync_once`: the SDK's own loop (`sync`,
        // `sync_with_result_callback`) sleeps up to a second whenever the previous sync
        // returned in less than one, and the bot's own sends wake its sync, so every new
        // report would wait for that sleep. Here the next request leaves at once; only
        // errors back off (0.5 s doubling to 5 s, so a restarted homeserver costs a few
        // seconds at most).
        //
        // The long poll is short (1 s) while messages wait to be sent: the SDK sends the
        // key queries that an encrypted send may wait for (up to 5 s) only between
        // syncs, so a send must never wait for a long poll to end.
        //
        // The bot's own messages are left out of its sync: it has nothing to do with
        // them, and each one would otherwise end the long poll, one whole sync (request,
        // response, store writes) per message sent, on both sides.
        let mut settings = SyncSettings::default().filter(own_messages_left_out(&client));
        let mut first = true;
        let mut backoff = Duration::from_millis(500);
        loop {
            let poll = if metrics.outbox_len() > 0 {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(10)
            };
            settings = settings.timeout(poll);
            let resp = match client.sync_once(settings.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "sync failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(500);
            metrics.synced();
            beat.send_modify(|n| *n += 1);
            settings = settings.token(resp.next_batch.clone());
            let since = Utc::now().timestamp_millis() - read_back_ms;
            let gaps: Vec<(OwnedRoomId, Option<String>)> = if first {
                client
                    .joined_rooms()
                    .into_iter()
                    .filter(|r| net.neighborhood_of_room(r.room_id().as_str()).is_some())
                    .map(|r| (r.room_id().to_owned(), None))
                    .collect()
            } else {
                resp.rooms
                    .joined
                    .iter()
                    .filter(|(_, u)| u.timeline.limited)
                    .filter(|(id, _)| net.neighborhood_of_room(id.as_str()).is_some())
                    .map(|(id, u)| (id.clone(), u.timeline.prev_batch.clone()))
                    .collect()
            };
            if first || !gaps.is_empty() {
                // Off the sync loop: reading back must not delay new events.
                let (client, h) = (client.clone(), Arc::clone(&inbound));
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let events = read_back_rooms(&h, &client, &gaps, since).await;
                    if first {
                        h.retry_undecrypted(&client, None).await;
                        info!(
                            rooms = gaps.len(),
                            events,
                            ms = started.elapsed().as_millis() as u64,
                            "caught up: {events} event(s) read back from {} room(s)",
                            gaps.len()
                        );
                    }
                });
            }
            first = false;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_772_467_500_000; // 2026-03-02

    #[test]
    fn a_catch_up_marker_that_is_not_a_time_never_reads_as_the_beginning_of_time() {
        let at = |t: i64| t.to_be_bytes().to_vec();
        assert_eq!(read_catch_up_marker(None, NOW), CatchUp::FirstStart);
        assert_eq!(
            read_catch_up_marker(Some(&at(NOW - 60_000)), NOW),
            CatchUp::From(NOW - 60_000)
        );
        for bad in [
            vec![],
            vec![1, 2, 3],
            at(0),
            at(-5),
            at(NOW + 2 * 86_400_000),
            b"not a time at all".to_vec(),
        ] {
            assert_eq!(
                read_catch_up_marker(Some(&bad), NOW),
                CatchUp::Unreadable,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_unreadable_marker_in_the_state_database_is_replaced_by_now() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sled");
        let store = SledStore::open(&path).unwrap();
        let shell = store.db().open_tree("shell").unwrap();
        shell.insert(CATCH_UP_KEY, &[0u8, 1, 2][..]).unwrap();
        let before = Utc::now().timestamp_millis();
        let from = catch_up_marker(&store, &path).unwrap();
        assert!(from >= before, "from now, not from {from}");
        // Written back readable: the next start reads the same time.
        assert_eq!(catch_up_marker(&store, &path).unwrap(), from);
    }
}
