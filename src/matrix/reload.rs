//! Reading the network file again while the bot runs (`neighborwatch reload`, SIGHUP,
//! `systemctl reload`), and the running network every task reads.
//!
//! Owns: the signal, reading and validating the file again, resolving its aliases,
//! joining the rooms it adds; the outcome goes to the log and to the file
//! `neighborwatch reload` reads it from (`service`). The engine task applies a reload between two inputs (so no event
//! is lost or handled twice, and the outbox is untouched) and then publishes the new
//! network to the other tasks ([`LiveNet`]). Must not touch: the engine's state.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use matrix_sdk::Client;
use tokio::signal::unix::Signal;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use super::{Stop, stopped};
use crate::config::{Network, NetworkChanges};
use crate::service::{self, Readiness};

/// The network the bot runs on now: the file's (room aliases resolved), as the engine
/// last applied it. Cheap to clone; [`LiveNet::get`] is a snapshot.
#[derive(Clone, Debug)]
pub(crate) struct LiveNet(watch::Receiver<Arc<Network>>);

impl LiveNet {
    /// A live network starting at `net`, and the handle that publishes the next ones.
    pub(crate) fn new(net: Arc<Network>) -> (watch::Sender<Arc<Network>>, Self) {
        let (tx, rx) = watch::channel(net);
        (tx, Self(rx))
    }

    /// The network as it is now.
    pub(crate) fn get(&self) -> Arc<Network> {
        Arc::clone(&self.0.borrow())
    }
}

/// A reload for the engine task to apply, and where to say it is done.
#[derive(Debug)]
pub(crate) struct Reload {
    /// The file's network, ready to replace the running one, with what changes; or why
    /// the file was refused.
    pub(crate) network: Result<(Arc<Network>, NetworkChanges), String>,
    /// Told once the engine has applied it (or refused it) and its notice is queued.
    pub(crate) done: oneshot::Sender<()>,
}

/// Waits for SIGHUP and hands each reload to the engine task, one at a time, until the
/// stop. Each one's outcome goes to the log and to [`RESULT_FILE`].
pub(crate) async fn listen(
    client: Client,
    live: LiveNet,
    state_dir: PathBuf,
    to_engine: mpsc::UnboundedSender<Reload>,
    hup: Option<Signal>,
    mut stop: Stop,
) {
    let Some(mut hup) = hup else {
        return;
    };
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
            }
        }
        let began = Utc::now().timestamp_millis();
        service::notify(Readiness::Reloading);
        let once = reload_once(client.clone(), live.clone(), to_engine.clone())
            .instrument(info_span!("reload"));
        // A stop cuts a reload short (its file is read again at the next start).
        let outcome = tokio::select! {
            o = once => o,
            _ = stopped(&mut stop) => {
                service::write_result(&state_dir, began, &Err("the bot stopped during the reload".into()));
                return;
            }
        };
        service::write_result(&state_dir, began, &outcome);
        service::notify(Readiness::Ready);
    }
}

/// SIGHUP, listened for from the start of `run` (before the pid file names the bot), so
/// that a reload asked for early never meets the signal's default action, which ends
/// the process. `None` (and a warning) where it cannot be.
pub(crate) fn hangups() -> Option<Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP: reloads need a restart");
            None
        }
    }
}

/// One reload: read the file, hand it to the engine, wait until it is applied. The
/// outcome in one line.
async fn reload_once(
    client: Client,
    live: LiveNet,
    to_engine: mpsc::UnboundedSender<Reload>,
) -> Result<String, String> {
    let running = live.get();
    info!("reloading the network file");
    let network = match Network::load(&running.path) {
        Ok(file) => {
            let file = super::session::resolve_aliases(&client, &file).await;
            match unresolved_alias(&file) {
                // A room known by an alias that cannot be resolved now would leave the
                // network: the reload is refused instead.
                Some(alias) => Err(format!(
                    "the room alias {alias} could not be resolved now; nothing was changed (try again)"
                )),
                None => {
                    let (file, changes) = file.for_reload(&running);
                    Ok((Arc::new(file), changes))
                }
            }
        }
        Err(e) => Err(e.to_string()),
    };
    let line = match &network {
        Ok((net, changes)) => Ok(applied_line(net, changes)),
        Err(e) => Err(e.clone()),
    };
    let (done, applied) = oneshot::channel();
    if to_engine.send(Reload { network, done }).is_err() || applied.await.is_err() {
        return Err("the bot is stopping; the file was not reloaded".into());
    }
    let line = match line {
        Ok(mut l) => {
            let missing = join_new_rooms(client, live.get()).await;
            if missing > 0 {
                l.push_str(&format!(
                    "; the bot is not in {missing} of its rooms yet: invite it there"
                ));
            }
            Ok(l)
        }
        Err(e) => Err(e),
    };
    match &line {
        Ok(l) => info!(outcome = %l, "network file reloaded"),
        Err(e) => warn!(error = %e, "network file refused; going on with the network it had"),
    }
    line
}

/// A room of `net` still named by an alias (its resolution failed), if any.
fn unresolved_alias(net: &Network) -> Option<String> {
    net.neighborhoods()
        .iter()
        .flat_map(|n| n.rooms.iter().map(|r| r.to_string()))
        .chain(net.coordination_room.clone())
        .find(|r| r.starts_with('#'))
}

/// What an applied reload says, in one line for the log and `neighborwatch reload`.
fn applied_line(net: &Network, c: &NetworkChanges) -> String {
    let rooms: usize = net.neighborhoods().iter().map(|n| n.rooms.len()).sum();
    let mut line = format!("{} neighborhoods, {rooms} rooms", net.neighborhoods().len());
    for (what, list) in [
        ("added", &c.added),
        ("removed", &c.removed),
        ("changed", &c.changed),
    ] {
        if !list.is_empty() {
            line.push_str(&format!("; {what}: {}", list.join(", ")));
        }
    }
    if !c.network.is_empty() {
        line.push_str(&format!(
            "; network settings changed: {}",
            c.network.join(", ")
        ));
    }
    if c.is_empty() {
        line.push_str("; nothing the bot uses changed");
    }
    if !c.restart_needed.is_empty() {
        line.push_str(&format!(
            "; {} changed but apply only at the next start",
            c.restart_needed.join(", ")
        ));
    }
    line
}

/// Joins the network's rooms the bot is not in yet (a reload may add some; the invite to
/// one may have come before it was in the file, and been declined); returns how many it
/// still is not in (it needs an invite there).
async fn join_new_rooms(client: Client, net: Arc<Network>) -> usize {
    use matrix_sdk::RoomState;
    use matrix_sdk::ruma::RoomId;
    let rooms: Vec<String> = net
        .neighborhoods()
        .iter()
        .flat_map(|n| n.rooms.iter().map(|r| r.to_string()))
        .chain(net.coordination_room.clone())
        .collect();
    let mut missing = 0;
    for room in rooms {
        let Ok(id) = RoomId::parse(room.as_str()) else {
            // An alias that did not resolve: not joinable by ID.
            missing += 1;
            continue;
        };
        if client
            .get_room(&id)
            .is_some_and(|r| r.state() == RoomState::Joined)
        {
            continue;
        }
        match client.join_room_by_id(&id).await {
            Ok(_) => info!(room = %id, "joined a room the reload added"),
            Err(e) => {
                debug!(room = %id, error = %e, "cannot join a room the reload added");
                missing += 1;
            }
        }
    }
    missing
}
