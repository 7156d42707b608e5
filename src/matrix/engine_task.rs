//! The engine task, the only owner of the engine: inputs in, outbox entries out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, info, info_span, warn};

use super::clock::Clock;
use super::inbound::Received;
use super::reload::Reload;
use super::{Stop, stopped};
use crate::config::Network;
use crate::incident::Engine;
use crate::metrics::Metrics;
use crate::store::SledStore;

/// Inputs handled before their commits are flushed together.
const MAX_GROUP: usize = 64;

/// The engine task's body. Event handlers keep senders of its channel alive as long as
/// the client, so it ends on its own signal (`stop`), given once nothing takes input any
/// more: the inputs already waiting in the channel are handled and flushed first. Inputs
/// that never reach it are not lost: they were never marked handled, and the next start
/// reads them back.
///
/// Inputs that are waiting together (a burst, or history read back after a restart) are
/// handled one by one, each in its own atomic commit, and flushed to disk with one write
/// for the group, before the sender is told: nothing is sent that is not on disk. A
/// crash before the flush loses those commits whole, inputs' "handled" marks included,
/// so they are handled again on the next start.
///
/// The engine is given the time of `clock`; the timers run every 30 s (every second on
/// a test's clock, which jumps).
///
/// A reload of the network file (`reloads`) is applied between two inputs, like one:
/// its notice is committed and flushed before the sender hears of it, and the new
/// network is published (`publish`) to the tasks that read it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn engine_task(
    engine: Engine<SledStore>,
    store: SledStore,
    mut rx: mpsc::UnboundedReceiver<Received>,
    mut reloads: mpsc::UnboundedReceiver<Reload>,
    publish: watch::Sender<Arc<Network>>,
    ready: Arc<Notify>,
    after_sync: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    clock: Clock,
    mut stop: Stop,
) {
    let every = if clock.is_test() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(30)
    };
    let mut task = EngineTask {
        engine,
        store,
        ready,
        after_sync,
        metrics,
        clock,
    };
    let mut tick = tokio::time::interval(every);
    loop {
        // Effects queued by each input handled (or timer run) in this group.
        let mut queued: Vec<usize> = Vec::new();
        tokio::select! {
            _ = stopped(&mut stop) => break,
            m = rx.recv() => match m {
                Some(first) => {
                    task.handle_group(first, &mut rx, &mut queued);
                }
                None => break,
            },
            _ = tick.tick() => match task.engine.tick(task.clock.now()) {
                Ok(e) => queued.push(e.len()),
                Err(e) => warn!(error = %e, "timers not run; they run again on the next tick"),
            },
            Some(r) = reloads.recv() => {
                queued.push(task.reload(r, &publish));
            }
        }
        task.commit(&queued);
    }
    // The stop: what is already waiting is handled, and on disk, before the task ends.
    let mut left = 0;
    while let Ok(first) = rx.try_recv() {
        let mut queued = Vec::new();
        left += task.handle_group(first, &mut rx, &mut queued);
        task.commit(&queued);
    }
    debug!(inputs = left, "engine stopped; waiting inputs handled");
}

/// What the engine task holds besides its channel.
struct EngineTask {
    engine: Engine<SledStore>,
    store: SledStore,
    ready: Arc<Notify>,
    after_sync: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    clock: Clock,
}

impl EngineTask {
    /// Runs the timers, then handles `first` and up to [`MAX_GROUP`] inputs in all that
    /// are waiting behind it, each in its own commit; pushes onto `queued` how many
    /// effects each queued. Returns how many inputs it handled.
    fn handle_group(
        &mut self,
        first: Received,
        rx: &mut mpsc::UnboundedReceiver<Received>,
        queued: &mut Vec<usize>,
    ) -> usize {
        if let Err(e) = self.engine.tick(self.clock.now()) {
            warn!(error = %e, "timers not run; they run again on the next input");
        }
        let (mut next, mut handled) = (Some(first), 0);
        while let Some(r) = next.take() {
            self.after_sync.fetch_max(r.after_sync, Ordering::SeqCst);
            let span = info_span!("event", room = %r.msg.room);
            let _g = span.enter();
            match self.engine.handle_received(&r.msg, self.clock.now(), r.at) {
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
        handled
    }

    /// Applies a reload (or its refusal) and publishes the network it leaves; returns how
    /// many effects it queued. Its sender is told once the commit is flushed (by the
    /// caller, right after), but a failed commit leaves the network applied in memory:
    /// the notice is lost, not the reload.
    fn reload(&mut self, r: Reload, publish: &watch::Sender<Arc<Network>>) -> usize {
        let now = self.clock.now();
        let (done, queued) = match r.network {
            Ok((net, changes)) => {
                let q = self.engine.reload_network(Arc::clone(&net), changes, now);
                publish.send_replace(net);
                (r.done, q)
            }
            Err(reason) => (r.done, self.engine.reload_refused(reason, now)),
        };
        let n = match queued {
            Ok(e) => e.len(),
            Err(e) => {
                warn!(error = %e, "the reload's notice was not queued");
                0
            }
        };
        let _ = done.send(());
        n
    }

    /// Flushes the group's commits to disk; once they are there, counts them and tells
    /// the sender.
    fn commit(&mut self, queued: &[usize]) {
        let flushed = {
            let _stage = tracing::debug_span!("flush", inputs = queued.len()).entered();
            tokio::task::block_in_place(|| self.store.flush())
        };
        if let Err(e) = flushed {
            warn!(error = %e, "cannot flush the state store; nothing more is sent until it can");
            return;
        }
        // The statistics' counters move once what they count is on disk.
        for t in self.engine.take_tallies() {
            self.metrics.tally(&t);
        }
        // Said once on disk: what the log says was queued survives a crash.
        for n in queued.iter().filter(|n| **n > 0) {
            info!(effects = n, "input handled; effects queued");
        }
        if queued.iter().any(|n| *n > 0) {
            self.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::time::Instant;

    use super::*;
    use crate::config::Network;
    use crate::incident::{Content, IncomingMessage};
    use crate::model::ReporterKey;
    use crate::render::Catalogs;
    use crate::store::Store;
    use chrono::Utc;

    fn report(n: usize) -> Received {
        let now = Utc::now();
        Received {
            msg: IncomingMessage {
                event_id: format!("$report{n}"),
                room: "!hooverfoster:oakland.example".into(),
                sender: format!("@neighbor{n}:oakland.example"),
                ts: now,
                content: Content::Text {
                    body: "!r agents at 31st & Market".into(),
                    notice: false,
                    replaces: None,
                },
                member: Default::default(),
            },
            at: now,
            after_sync: 0,
        }
    }

    // `block_in_place` (the flush) needs the multi-threaded runtime.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inputs_waiting_at_the_stop_are_handled_and_flushed_before_the_task_ends() {
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let net = Arc::new(Network::load(&example).unwrap());
        let vault = crate::store::Vault::new("test passphrase", "NW_TEST_PASS");
        let store = SledStore::open(&dir.path().join("state.sled"), &vault).unwrap();
        let engine = Engine::open(
            net,
            store.clone().with_flush_on_commit(false),
            ReporterKey::new(b"engine-task-test-key-0123456789"),
            Catalogs::builtin(),
        )
        .unwrap()
        .with_outbox()
        .with_tallies();
        let (tx, rx) = mpsc::unbounded_channel();
        for n in 0..3 {
            tx.send(report(n)).unwrap();
        }
        // The stop is given before the task even starts: what waits is handled anyway.
        let (_give, stop) = watch::channel(Some(Instant::now()));
        let ready = Arc::new(Notify::new());
        let metrics = Arc::new(Metrics::new());
        let (_reload, reloads) = mpsc::unbounded_channel();
        let (publish, _) = watch::channel(Arc::new(Network::load(&example).unwrap()));
        engine_task(
            engine,
            store.clone(),
            rx,
            reloads,
            publish,
            Arc::clone(&ready),
            Arc::new(AtomicU64::new(0)),
            metrics,
            Clock::real(),
            stop,
        )
        .await;
        assert!(
            !store.outbox().unwrap().is_empty(),
            "the waiting reports queued their effects"
        );
        // The sender was told (the permit `notify_one` left is taken at once).
        tokio::time::timeout(Duration::from_secs(1), ready.notified())
            .await
            .expect("the sender is told");
        // On disk: a store opened afresh on the same files sees the same outbox.
        let queued = store.outbox().unwrap().len();
        drop(store);
        let reopened = SledStore::open(&dir.path().join("state.sled"), &vault).unwrap();
        assert_eq!(reopened.outbox().unwrap().len(), queued);
    }
}
