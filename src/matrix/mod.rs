//! The Matrix shell: connects the pure core to a homeserver.
//!
//! Owns: the session (log in once, restore ever after), invites, the sync loop and the
//! engine task, and stopping them in order; `inbound` turns events into
//! `IncomingMessage`s, `outbound` drains the durable outbox, `content` builds Matrix
//! message content. Must not touch: decisions (the engine makes them) or wording
//! (`render`). Logs at info level never hold message bodies or user IDs.
//!
//! Layout: `session` (secrets, log in or restore, room aliases), `catch_up` (the
//! catch-up marker), `invites`, `sync` (the sync loop, event handlers, undecryptable
//! events), `engine_task`, `outbound` (the sender) with the pure `schedule`, `inbound`,
//! `content`; `reload` (the network file read again, and the network every task
//! reads now).

mod catch_up;
mod clock;
pub mod content;
mod engine_task;
pub mod inbound;
mod invites;
mod outbound;
mod ratelimit;
mod reload;
mod schedule;
mod sender;
mod session;
mod sync;
mod warnings;

pub use clock::{Clock, TEST_CLOCK_ENV};
pub use inbound::{incoming, member_of, reaction, redaction};
pub use sender::FAULT_ENV;
pub use session::{SESSION_FILE, Secrets, connect, read_session};
pub use warnings::coordination_seen_unencrypted;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Network;
use crate::incident::Engine;
use crate::metrics::Metrics;
use crate::render::Catalogs;
use crate::store::SledStore;
use inbound::{Inbound, Received};
use sender::send_loop;

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
    /// The pid file could not be written.
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
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

/// How long the stop may take in all (see [`stop_in_order`]): 10 s.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Tells a task to wind down: `None` while it runs, then the time by which it must be
/// done. A task whose stop is dropped stops at once.
pub(crate) type Stop = watch::Receiver<Option<Instant>>;

/// Resolves once `stop` is given, with the time by which to be done.
async fn stopped(stop: &mut Stop) -> Instant {
    match stop.wait_for(Option::is_some).await {
        Ok(by) => (*by).unwrap_or_else(Instant::now),
        Err(_) => Instant::now(),
    }
}

/// Runs the bot until `shutdown` resolves, then stops in order, within 10 s: it takes no
/// new input, handles and flushes the inputs in hand, lets the sends in flight finish and
/// sends what is queued. Whatever still runs after 10 s is cut off; nothing queued is
/// lost then either (the outbox is durable, and is sent at the next start).
pub async fn run(
    net: Network,
    secrets: Secrets,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ShellError> {
    run_with(net, secrets, RunOptions::default(), shutdown).await
}

/// How to run the bot, beyond the network file and the secrets.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The time the engine is given ([`Clock::real`] by default).
    pub clock: Clock,
}

/// [`run`], with `options`.
pub async fn run_with(
    net: Network,
    secrets: Secrets,
    options: RunOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ShellError> {
    let storage = net
        .storage
        .clone()
        .ok_or(ShellError::MissingSection("storage"))?;
    let hangups = reload::hangups();
    let store = SledStore::open(&storage.path, secrets.vault())?;
    let catch_up_from = catch_up::catch_up_marker(&store, &storage.path)?;
    let client = connect(&net, &secrets).await?;
    let net = Arc::new(session::resolve_aliases(&client, &net).await);
    // The network every task reads: the engine task publishes each reload of the file.
    let (publish, live) = reload::LiveNet::new(Arc::clone(&net));
    let (reload_tx, reloads) = mpsc::unbounded_channel();
    let _pid = crate::service::write_pid(&storage.path, &net.path)?;
    // The engine's commits are flushed to disk a group at a time, before the sender
    // hears of them (see `engine_task`).
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
    let metrics_task = serve_metrics(&net, &metrics).await?;
    let (mut input, input_stop) = Stage::new("input");
    let (mut engine_stage, engine_stop) = Stage::new("engine");
    let (mut sender, sender_stop) = Stage::new("sender");

    invites::accept_invites(&client, &live);
    // How many syncs have completed: a send waits for the sync that brought its cause.
    let (beat, synced) = watch::channel(0u64);
    let inbound = Arc::new(Inbound::new(
        tx,
        Arc::clone(&metrics),
        synced.clone(),
        client.user_id().map(ToOwned::to_owned),
        catch_up_from,
        store.waiting()?,
        live.clone(),
        net.matrix.as_ref().map_or(60, |m| m.ask_resend_after_s),
    ));
    sync::route_events(&client, &inbound);
    sync::watch_undecrypted(&mut input.tasks, &client, &inbound, &net, &input_stop).await;
    let after_sync = Arc::new(AtomicU64::new(0));
    engine_stage.tasks.spawn(engine_task::engine_task(
        engine,
        store.clone(),
        rx,
        reloads,
        publish,
        Arc::clone(&outbox_ready),
        Arc::clone(&after_sync),
        Arc::clone(&metrics),
        options.clock,
        engine_stop,
    ));
    // The sender task: drains the outbox, rooms side by side, each with its own backoff.
    sender.tasks.spawn(send_loop(
        client.clone(),
        live.clone(),
        store.clone(),
        Arc::clone(&outbox_ready),
        Arc::clone(&metrics),
        synced,
        after_sync,
        sender_stop,
    ));
    outbox_ready.notify_one();
    input.tasks.spawn(reload::listen(
        client.clone(),
        live.clone(),
        storage.path.clone(),
        reload_tx,
        hangups,
        input_stop.clone(),
    ));
    input.tasks.spawn(sync::sync_loop(
        client.clone(),
        live,
        store.clone(),
        Arc::clone(&inbound),
        Arc::clone(&metrics),
        beat,
        input_stop,
    ));
    info!(
        rooms = net
            .neighborhoods()
            .iter()
            .map(|n| n.rooms.len())
            .sum::<usize>(),
        "neighborwatch running"
    );
    shutdown.await;
    stop_in_order([input, engine_stage, sender]).await;
    // The metrics listener has nothing to finish.
    if let Some(t) = metrics_task {
        t.abort();
    }
    store.flush()?;
    Ok(())
}

/// Serves the metrics on the listener the network file names, if any.
async fn serve_metrics(
    net: &Network,
    metrics: &Arc<Metrics>,
) -> Result<Option<tokio::task::JoinHandle<()>>, ShellError> {
    let Some(m) = net.metrics.as_ref() else {
        return Ok(None);
    };
    crate::metrics::serve(m.listen, Arc::clone(metrics))
        .await
        .map(Some)
        .map_err(|source| ShellError::Io {
            path: net.path.clone(),
            source,
        })
}

/// The orderly stop (on Ctrl-C or SIGTERM), within [`STOP_WITHIN`] (10 s) in all. Each
/// stage is told in turn, once the one before has finished:
///
/// 1. input: the sync loop drops the request in flight and the read-backs and retries of
///    undecryptable events end; nothing new reaches the engine (what they would have
///    brought is read back at the next start);
/// 2. the engine task handles the inputs already waiting, flushes its commits, and ends;
/// 3. the sender reads what the engine queued last, lets the sends in flight finish,
///    sends what is queued (a room backing off past the deadline is left), and ends.
///
/// A stage not done by the deadline is aborted, the only abort left. Nothing queued is
/// lost either way: the outbox is durable, and what was not sent is sent at the next
/// start with the same transaction ID. The stop is about not cutting a send or a flush
/// short, not about delivery.
async fn stop_in_order(stages: [Stage; 3]) {
    let started = Instant::now();
    let deadline = started + STOP_WITHIN;
    crate::service::notify(crate::service::Readiness::Stopping);
    info!(
        "stopping: taking no new input; finishing the inputs in hand and the queued sends (at most {} s)",
        STOP_WITHIN.as_secs()
    );
    for stage in stages {
        stage.finish(deadline).await;
    }
    info!(ms = started.elapsed().as_millis() as u64, "stopped");
}

/// One stage of the stop: its tasks, and the signal they heed.
struct Stage {
    name: &'static str,
    stop: watch::Sender<Option<Instant>>,
    tasks: JoinSet<()>,
}

impl Stage {
    fn new(name: &'static str) -> (Self, Stop) {
        let (stop, heed) = watch::channel(None);
        let tasks = JoinSet::new();
        (Self { name, stop, tasks }, heed)
    }

    /// Tells the stage's tasks to be done by `deadline` and waits for them; those still
    /// running at the deadline are aborted.
    async fn finish(mut self, deadline: Instant) {
        self.stop.send_replace(Some(deadline));
        let name = self.name;
        let all = async {
            while let Some(ended) = self.tasks.join_next().await {
                if ended.is_err_and(|e| e.is_panic()) {
                    warn!(stage = name, "a task had panicked");
                }
            }
        };
        if tokio::time::timeout_at(deadline, all).await.is_err() {
            warn!(
                stage = name,
                "not done in time; cut off (what it left undone is done at the next start)"
            );
            self.tasks.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stage_waits_for_tasks_that_heed_the_stop_and_cuts_off_the_rest_at_the_deadline() {
        let (mut stage, mut heed) = Stage::new("test");
        let (done_tx, mut done) = mpsc::unbounded_channel::<&str>();
        let tx = done_tx.clone();
        // Heeds the stop, and takes a moment to finish.
        stage.tasks.spawn(async move {
            stopped(&mut heed).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send("heeded");
        });
        // Never ends on its own.
        stage.tasks.spawn(async move {
            std::future::pending::<()>().await;
            let _ = done_tx.send("never");
        });
        let deadline = Instant::now() + Duration::from_millis(300);
        stage.finish(deadline).await;
        assert!(Instant::now() >= deadline, "waited until the deadline");
        assert_eq!(done.recv().await, Some("heeded"));
        assert_eq!(done.recv().await, None, "the other task was aborted");
    }

    #[tokio::test]
    async fn a_stage_whose_tasks_all_finish_ends_without_waiting_for_the_deadline() {
        let (mut stage, mut heed) = Stage::new("test");
        stage.tasks.spawn(async move {
            let by = stopped(&mut heed).await;
            assert!(by > Instant::now(), "the deadline comes with the stop");
        });
        let started = Instant::now();
        stage.finish(started + STOP_WITHIN).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
