//! End-to-end benchmark over the local test network: two Synapse homeservers federating
//! on loopback, real `matrix-sdk` neighbors, the real (release) `neighborwatch run`
//! process. Measures, in one run, each figure next to the floor a plain client reaches
//! on the same servers:
//!
//! - the floors: an encrypted message between plain clients, one local hop (hs1 → hs1)
//!   and one federated hop (hs1 → hs2); the two-hop floor is their sum. The same hops in
//!   unencrypted rooms, next to a second client implementation (`scripts/floor-check`,
//!   Python's standard library) run against the same servers;
//! - relay latency: a confirming report sent in room A (hs1) → its alert in room B (hs2);
//! - fan-out: one confirmed incident → its alert in each of N rooms on hs2, for the
//!   first alert after the bot joined (a new room key per room) and the next ones, next
//!   to a plain client sending one message into N rooms at once (cold, then warm keys);
//! - catch-up: N reports queued while the bot was down → every acknowledgment received,
//!   counted from the bot's process start, next to a plain client sending N messages
//!   into one room with 16 in flight, until the receiver has all of them;
//! - the bot's resident memory after all of the above;
//! - recovery: the bot's homeserver crashes and restarts → the next report answered.
//!
//! Every arrival, for the floors and the bot alike, is taken by the same receiver
//! (`devnet::probe`): a second device of the receiving neighbor that long-polls `/sync`
//! over raw HTTP and stamps each response when it has arrived, before parsing it. Sends
//! are timed from just before their request. The `matrix-sdk` neighbors only confirm
//! what the stamped events were (they decrypt them), and pace the samples.
//!
//! Run: `cargo bench --features devnet --bench e2e` (sizes: `NW_E2E_SAMPLES`, default
//! 20; `NW_E2E_ROOMS`, default 50; `NW_E2E_REPORTS`, default 400; `NW_E2E_FANOUTS`, warm
//! fan-outs, default 3; `NW_E2E_LOG`, the bot's `RUST_LOG`). Prints two tables.
//! Not a criterion benchmark: each sample costs a whole network round trip.

#![recursion_limit = "256"]

#[path = "e2e/report.rs"]
mod report;

use std::collections::HashSet;
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use matrix_sdk::Room;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use neighborwatch::devnet::bot::{BotOptions, BotProcess, bench_network, bot_joined};
use neighborwatch::devnet::client::{Neighbor, try_wait_for, wait_for};
use neighborwatch::devnet::probe::Probe;
use neighborwatch::devnet::synapse::{SHARED_SECRET, Synapse, venv};
use report::{Figures, IN_FLIGHT, ms};
use serde_json::Value;

const PASSWORD: &str = "bench-password-0123";
/// Centre of room A's (and every other room's) area.
const CENTER: (f64, f64) = (37.8240, -122.2760);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts the (release) bot on `config`; returns it and when it started.
fn start_bot(config: &Path, log: &Path) -> (BotProcess, Instant) {
    let filter = std::env::var("NW_E2E_LOG").ok();
    let opts = BotOptions {
        exe: Path::new(env!("CARGO_BIN_EXE_neighborwatch")),
        password: PASSWORD,
        // The bot's default log level, unless NW_E2E_LOG says otherwise.
        log_filter: filter.as_deref(),
        fault: None,
    };
    let started = Instant::now();
    let bot = BotProcess::start(&opts, config, log).expect("the bot starts");
    (bot, started)
}

/// A network file: room A, then one neighborhood per room of `rooms`, every area the
/// same circle.
fn network(dir: &Path, hs: &Synapse, bot: &str, a: &OwnedRoomId, rooms: &[OwnedRoomId]) -> PathBuf {
    let mut hoods = vec![("a".to_owned(), a.to_string(), CENTER)];
    for (i, r) in rooms.iter().enumerate() {
        hoods.push((format!("n{i}"), r.to_string(), CENTER));
    }
    bench_network(dir, &hs.url, bot, &hoods)
}

/// The `i`-th of many places, 300 m apart (the bench's merge radius is 100 m).
fn place(i: usize) -> String {
    let (lat, lon) = spot(i);
    format!("{lat:.6}, {lon:.6}")
}

/// The coordinates of [`place`] `i`.
fn spot(i: usize) -> (f64, f64) {
    let (row, col) = ((i / 12) as f64, (i % 12) as f64);
    let lat = CENTER.0 + (row - 6.0) * 300.0 / 111_320.0;
    let lon = CENTER.1 + (col - 6.0) * 300.0 / 88_000.0;
    (lat, lon)
}

fn is_alert(v: &Value) -> bool {
    v["content"]["msgtype"] == "m.text" && v["content"]["m.relates_to"].is_null()
}

fn is_location(v: &Value) -> bool {
    v["content"]["msgtype"] == "m.location"
}

fn tag_id(v: &Value) -> Option<String> {
    v["content"]["org.neighborwatch.incident"]["id"]
        .as_str()
        .map(str::to_owned)
}

/// Sends `body` into `room` (plain `matrix-sdk`): its event ID. A send that races the
/// room key's rotation (matrix-sdk 0.18 panics then, before any request; see
/// ARCHITECTURE.md) goes again; `raced` counts those.
async fn send(room: &Room, body: &str, raced: &std::sync::atomic::AtomicUsize) -> String {
    loop {
        let content = RoomMessageEventContent::text_plain(body);
        match std::panic::AssertUnwindSafe(room.send(content).into_future())
            .catch_unwind()
            .await
        {
            Ok(r) => {
                return r
                    .expect("a plain client's send")
                    .response
                    .event_id
                    .to_string();
            }
            Err(_) => {
                raced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Waits until `who` has decrypted the event `id` in `room`: its content.
async fn decrypted(who: &Neighbor, room: &OwnedRoomId, id: &str) -> Value {
    wait_for("the event to be decrypted", 60, || async {
        who.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(r, v, _)| r == room && v["event_id"] == id)
            .map(|(_, v, _)| v.clone())
    })
    .await
}

/// Time from sending in `room` (by `from`) to `to` (the receiver's probe) having the
/// message, `n` times; `to_sdk`, the receiver's own client, decrypting it paces them.
async fn hop(
    from: &Neighbor,
    room: &OwnedRoomId,
    to: &Probe,
    to_sdk: &Neighbor,
    n: usize,
) -> Vec<f64> {
    let r = from.room(room).await;
    let raced = std::sync::atomic::AtomicUsize::new(0);
    let mut out = Vec::new();
    for i in 0..n {
        let mark = to.mark();
        let t0 = Instant::now();
        let id = send(&r, &format!("ping {i}"), &raced).await;
        let got = to
            .wait("the ping", 30, mark, |a| a.event_id == id)
            .await
            .expect("the ping arrives");
        out.push(ms(got.at - t0));
        decrypted(to_sdk, room, &id).await;
    }
    out
}

/// `from` sends one message into each of `rooms` at once: the time until `to` (a probe)
/// has the first and the last; `to_sdk` decrypting every one paces the next.
async fn spread(
    from: &Neighbor,
    rooms: &[OwnedRoomId],
    to: &Probe,
    to_sdk: &Neighbor,
    body: &str,
) -> (f64, f64) {
    let mut rs = Vec::new();
    for r in rooms {
        rs.push(from.room(r).await);
    }
    let raced = std::sync::atomic::AtomicUsize::new(0);
    let t0 = Instant::now();
    let ids = futures_util::future::join_all(rs.iter().map(|r| send(r, body, &raced))).await;
    let last = to
        .wait_all("the message in every room", 120, &ids)
        .await
        .expect("every room gets it");
    let first = to.arrivals(&ids).into_iter().min().unwrap_or(last);
    for (r, id) in rooms.iter().zip(&ids) {
        decrypted(to_sdk, r, id).await;
    }
    (ms(first - t0), ms(last - t0))
}

/// The second client (`scripts/floor-check`) against the same servers: its local and
/// federated hops, in ms; `matched`: with as many devices syncing as the Rust floor.
async fn python_floor(
    hs1: &Synapse,
    hs2: &Synapse,
    samples: usize,
    matched: bool,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/floor-check");
    let python = venv().ok()?.join("bin/python");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args([&hs1.url, &hs2.url, SHARED_SECRET, &samples.to_string()])
        .args(matched.then_some("--matched"))
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "floor-check failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let list = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    Some((list("local"), list("federated")))
}

/// Everyone taking part: two homeservers, three neighbors and their probes.
struct Net {
    hs1: Synapse,
    hs2: Synapse,
    bot_user: String,
    alice: Neighbor,
    bob: Neighbor,
    carol: Neighbor,
    /// Alice's second device (hs1): receives the catch-up.
    alice_p: Probe,
    /// Bob's (hs1): receives the local hop.
    bob_p: Probe,
    /// Carol's (hs2): receives the federated hop, the relay and the fan-out.
    carol_p: Probe,
    dir: PathBuf,
    log: PathBuf,
}

impl Net {
    async fn new() -> Net {
        let (hs1, hs2) = (Synapse::start().unwrap(), Synapse::start().unwrap());
        let bot_user = hs1.register("neighborwatch", PASSWORD).unwrap();
        let alice = Neighbor::new(&hs1, "alice", PASSWORD).await.unwrap();
        let bob = Neighbor::new(&hs1, "bob", PASSWORD).await.unwrap();
        let carol = Neighbor::new(&hs2, "carol", PASSWORD).await.unwrap();
        let alice_p = Probe::start(&hs1, &alice.user, PASSWORD).await.unwrap();
        let bob_p = Probe::start(&hs1, &bob.user, PASSWORD).await.unwrap();
        let carol_p = Probe::start(&hs2, &carol.user, PASSWORD).await.unwrap();
        // Kept afterwards, for a look at the bot's log.
        let dir = tempfile::tempdir().unwrap().keep();
        let log = dir.join("bot.log");
        eprintln!("bot log: {}", log.display());
        Net {
            hs1,
            hs2,
            bot_user,
            alice,
            bob,
            carol,
            alice_p,
            bob_p,
            carol_p,
            dir,
            log,
        }
    }
}

/// The hop floors, encrypted and not, and the second client's.
async fn floors(net: &Net, samples: usize, fig: &mut Figures) {
    let (alice, bob, carol) = (&net.alice, &net.bob, &net.carol);
    for encrypted in [true, false] {
        let f1 = alice.create_room(&[&bob.user], encrypted).await;
        let f2 = alice.create_room(&[&carol.user], encrypted).await;
        // Warm-up: members and devices known, room keys shared.
        let w1 = alice.say(&f1, &[&bob.user], "warm-up").await;
        let w2 = alice.say(&f2, &[&carol.user], "warm-up").await;
        decrypted(bob, &f1, w1.as_str()).await;
        decrypted(carol, &f2, w2.as_str()).await;
        let local = hop(alice, &f1, &net.bob_p, bob, samples).await;
        let federated = hop(alice, &f2, &net.carol_p, carol, samples).await;
        if encrypted {
            fig.local = local;
            fig.federated = federated;
        } else {
            fig.local_plain = local;
            fig.federated_plain = federated;
        }
    }
    eprintln!("floor measured: {:.1} ms", fig.two_hops());
    fig.python = python_floor(&net.hs1, &net.hs2, samples, false).await;
    fig.python_matched = python_floor(&net.hs1, &net.hs2, samples, true).await;
}

/// Relay latency: alice created room A, so she is its moderator and her report
/// confirms at once; room B is on hs2. Returns rooms A and B.
async fn relay(
    net: &Net,
    samples: usize,
    seen: &mut HashSet<String>,
    fig: &mut Figures,
) -> (OwnedRoomId, OwnedRoomId) {
    let (alice, bob, carol, bot_user) = (&net.alice, &net.bob, &net.carol, net.bot_user.as_str());
    let a = alice.create_room(&[&bob.user, bot_user], true).await;
    let b = carol.create_room(&[bot_user], true).await;
    let cfg = network(&net.dir, &net.hs1, bot_user, &a, std::slice::from_ref(&b));
    let (bot, _) = start_bot(&cfg, &net.log);
    bot_joined(alice, &a, bot_user).await;
    bot_joined(carol, &b, bot_user).await;
    alice.say(&a, &[bot_user, &bob.user], "hello").await;
    carol.say(&b, &[bot_user], "hello").await;
    let room_a = alice.room(&a).await;
    let raced = std::sync::atomic::AtomicUsize::new(0);
    for i in 0..samples {
        let mark = net.carol_p.mark();
        let t0 = Instant::now();
        let report = send(&room_a, &format!("!r agents at {}", place(i)), &raced).await;
        // The bot's first event in room B after the report: in this phase it sends
        // nothing there but alerts and their locations (checked below).
        let got = net
            .carol_p
            .wait("the bot's next event in room B", 60, mark, |e| {
                e.room == b.as_str() && e.sender == bot_user
            })
            .await
            .expect("the alert arrives");
        fig.relay.push(ms(got.at - t0));
        let v = decrypted(carol, &b, &got.event_id).await;
        let id = tag_id(&v).filter(|id| is_alert(&v) && !seen.contains(id));
        let Some(id) = id else {
            panic!("the bot's first event in room B after a report is not a new alert: {v}");
        };
        seen.insert(id.clone());
        // Its location follows, and the bot answers the report in A: both received
        // before the next sample starts, so that each report finds the bot and hs1
        // idle, as each of the floor's hops finds the previous message received.
        wait_for("the alert's location", 60, || async {
            carol.arrived(&b, |v| {
                is_location(v) && tag_id(v).as_deref() == Some(id.as_str())
            })
        })
        .await;
        wait_for("the bot's answer to the report", 60, || async {
            alice.arrived(&a, |v| {
                v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == report.as_str()
            })
        })
        .await;
    }
    drop(bot);
    (a, b)
}

/// The bot's fan-out to `rooms` (all on hs2): for each confirmed incident, when its
/// alert reached the first and the last room. `k`: the place of its report, one no
/// earlier report used.
async fn bot_fan_out(
    net: &Net,
    a: &OwnedRoomId,
    rooms: &[OwnedRoomId],
    k: usize,
    seen: &mut HashSet<String>,
) -> (f64, f64) {
    let raced = std::sync::atomic::AtomicUsize::new(0);
    let room_a = net.alice.room(a).await;
    let t0 = Instant::now();
    send(&room_a, &format!("!r agents at {}", place(k)), &raced).await;
    // Which events are the alerts: carol's client decrypts them.
    let mut ids = Vec::new();
    let mut tag = None;
    for r in rooms {
        let v = wait_for("the alert in every room", 120, || async {
            net.carol
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .find(|(room, v, _)| {
                    room == r && is_alert(v) && tag_id(v).is_some_and(|id| !seen.contains(&id))
                })
                .map(|(_, v, _)| v.clone())
        })
        .await;
        ids.push(v["event_id"].as_str().unwrap_or_default().to_owned());
        tag = tag_id(&v);
    }
    let last = net
        .carol_p
        .wait_all("the alerts", 60, &ids)
        .await
        .expect("the probe saw the alerts");
    let first = net.carol_p.arrivals(&ids).into_iter().min().unwrap_or(last);
    let tag = tag.unwrap_or_default();
    seen.insert(tag.clone());
    // Every location follows before the next incident.
    for r in rooms {
        wait_for("the alert's location", 120, || async {
            net.carol.arrived(r, |v| {
                is_location(v) && tag_id(v).as_deref() == Some(tag.as_str())
            })
        })
        .await;
    }
    (ms(first - t0), ms(last - t0))
}

/// Fan-out to `fan` rooms on hs2: the plain client's floor, then the bot's.
async fn fan_out(
    net: &Net,
    a: &OwnedRoomId,
    b: &OwnedRoomId,
    fan: usize,
    warm: usize,
    seen: &mut HashSet<String>,
    fig: &mut Figures,
) -> Vec<OwnedRoomId> {
    let (bob, carol, bot_user) = (&net.bob, &net.carol, net.bot_user.as_str());
    let mut rooms = vec![b.clone()];
    for _ in 1..fan {
        rooms.push(carol.create_room(&[bot_user], true).await);
    }
    // Its floor: a plain client on hs1 sends one message into each of `fan` rooms on hs2
    // at once, first into rooms where it has no room key yet (each send shares a new
    // one over federation), then again (keys already shared). The sender creates these
    // rooms, so its client knows them as encrypted at once (a room created on hs2 and
    // joined while its encryption was being turned on could stay unknown as encrypted
    // to the joiner's client for over a minute on a loaded machine).
    let mut plain_rooms = Vec::new();
    for _ in 0..fan {
        plain_rooms.push(bob.create_room(&[&carol.user], true).await);
    }
    for r in &plain_rooms {
        bob.ready_for(r, &[&carol.user]).await;
        let room = bob.room(r).await;
        wait_for("the room to be known as encrypted", 60, || async {
            let state = room.latest_encryption_state().await.ok()?;
            state.is_encrypted().then_some(())
        })
        .await;
    }
    fig.fan_floor_cold = spread(bob, &plain_rooms, &net.carol_p, carol, "first").await;
    for i in 0..warm {
        let w = spread(
            bob,
            &plain_rooms,
            &net.carol_p,
            carol,
            &format!("again {i}"),
        )
        .await;
        fig.fan_floor_warm.push(w);
    }
    eprintln!(
        "fan-out floor measured: {:.1} ms cold",
        fig.fan_floor_cold.1
    );

    let cfg = network(&net.dir, &net.hs1, bot_user, a, &rooms);
    let (bot, _) = start_bot(&cfg, &net.log);
    for r in &rooms {
        bot_joined(carol, r, bot_user).await;
        carol.say(r, &[bot_user], "hello").await;
    }
    // A bot joins its rooms long before their first alert: let it finish reading them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The first alert in each room after the bot joined (a new room key per room), then
    // the next ones (keys already shared, as in a network that had an alert this week).
    fig.fan_bot_cold = bot_fan_out(net, a, &rooms, fig.samples, seen).await;
    for k in 1..=warm {
        let w = bot_fan_out(net, a, &rooms, fig.samples + k, seen).await;
        fig.fan_bot_warm.push(w);
    }
    drop(bot);
    rooms
}

/// Catch-up: `reports` reports queued in room A while the bot is down, two per place
/// (bob's and alice's, which confirms: she is A's moderator), so `reports / 2`
/// incidents. The places lie far from room A's area and inside room B's (on hs2): A gets
/// the answers, B the alerts (and their locations). The floor: the same sends by the
/// same two clients into A, 16 in flight, until the receiver has them all. The bot's
/// figure: from its process start until every report is answered in A and every
/// incident's alert has arrived in B.
async fn catch_up(
    net: &Net,
    a: &OwnedRoomId,
    b: &OwnedRoomId,
    reports: usize,
    fig: &mut Figures,
) -> BotProcess {
    let senders = [net.bob.room(a).await, net.alice.room(a).await];
    let raced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut set = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    for i in 0..reports {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let (room, raced) = (senders[i % 2].clone(), raced.clone());
        set.spawn(async move {
            let id = send(
                &room,
                &format!("!r agents at {}", place(2000 + i / 2)),
                &raced,
            )
            .await;
            drop(permit);
            id
        });
    }
    let sent: Vec<String> = set.join_all().await;
    let last = net
        .alice_p
        .wait_all("every queued report", 300, &sent)
        .await
        .expect("the receiver has every report");
    fig.catch_up_floor = ms(last - t0) / 1000.0;
    fig.catch_up_raced = raced.load(std::sync::atomic::Ordering::Relaxed);

    // The catch-up's places are some 50 km north of room A's area, and room B's area
    // is centred on them (each within 3.1 km of its centre: inside its 2 km circle, or
    // within the 1.6 km alert radius of it).
    let n = (reports / 2).max(1);
    let (lat, lon) = (0..n)
        .map(|i| spot(2000 + i))
        .fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
    let hoods = [
        ("a".to_owned(), a.to_string(), CENTER),
        (
            "n0".to_owned(),
            b.to_string(),
            (lat / n as f64, lon / n as f64),
        ),
    ];
    let cfg = bench_network(&net.dir, &net.hs1.url, &net.bot_user, &hoods);
    let alerts_before: HashSet<String> = net
        .carol
        .from(b, &net.bot_user)
        .iter()
        .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
        .collect();
    let (bot, started) = start_bot(&cfg, &net.log);
    let sent: HashSet<&str> = sent.iter().map(String::as_str).collect();
    // Which events are the answers and the alerts: bob's and carol's clients decrypt them.
    let answers = wait_for("every queued report answered", 300, || async {
        let answers: Vec<String> = net
            .bob
            .from(a, &net.bot_user)
            .iter()
            .filter(|v| {
                v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
                    .as_str()
                    .is_some_and(|e| sent.contains(e))
            })
            .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
            .collect();
        (answers.len() >= reports).then_some(answers)
    })
    .await;
    let probe_mark = net.carol_p.mark();
    let alerts = try_wait_for("every incident's alert delivered", 300, || async {
        let mut incidents = HashSet::new();
        let alerts: Vec<String> = net
            .carol
            .from(b, &net.bot_user)
            .iter()
            .filter(|v| is_alert(v))
            .filter(|v| {
                v["event_id"]
                    .as_str()
                    .is_some_and(|e| !alerts_before.contains(e))
            })
            .filter(|v| tag_id(v).is_some_and(|id| incidents.insert(id)))
            .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
            .collect();
        (alerts.len() >= reports / 2).then_some(alerts)
    })
    .await
    .unwrap_or_else(|e| {
        // What carol's client and her probe have, to tell a lost alert from one that
        // arrived but could not be decrypted.
        let mine = net.carol.from(b, &net.bot_user);
        let seen: HashSet<String> = mine
            .iter()
            .filter(|v| is_alert(v) && v["event_id"].as_str().is_some_and(|e| !alerts_before.contains(e)))
            .filter_map(tag_id)
            .collect();
        let arrived = net
            .carol_p
            .since(probe_mark)
            .iter()
            .filter(|e| e.room == b.as_str() && e.sender == net.bot_user)
            .count();
        let _ = std::fs::copy(net.hs1.dir.join("synapse.log"), net.dir.join("hs1.log"));
        let _ = std::fs::copy(net.hs2.dir.join("synapse.log"), net.dir.join("hs2.log"));
        panic!(
            "{e}: carol's client decrypted {} new alerts ({} bot events in B in all); her probe saw {arrived} bot events in B",
            seen.len(),
            mine.len()
        )
    });
    let answered = net
        .alice_p
        .wait_all("every answer", 60, &answers)
        .await
        .expect("the receiver has every answer");
    let alerted = net
        .carol_p
        .wait_all("every alert", 60, &alerts)
        .await
        .expect("the receiver has every alert");
    fig.catch_up = ms(answered.max(alerted) - started) / 1000.0;
    fig.catch_up_answered = ms(answered - started) / 1000.0;
    fig.catch_up_alerted = ms(alerted - started) / 1000.0;
    bot
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let samples = env_usize("NW_E2E_SAMPLES", 20);
    let fan = env_usize("NW_E2E_ROOMS", 50);
    let reports = env_usize("NW_E2E_REPORTS", 400);
    let warm = env_usize("NW_E2E_FANOUTS", 3).max(1);
    let mut fig = Figures::new(samples, fan, reports);
    let mut net = Net::new().await;
    let mut seen = HashSet::new();

    floors(&net, samples, &mut fig).await;
    let (a, b) = relay(&net, samples, &mut seen, &mut fig).await;
    let rooms = fan_out(&net, &a, &b, fan, warm, &mut seen, &mut fig).await;
    let bot = catch_up(&net, &a, &b, reports, &mut fig).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    fig.rooms = rooms.len() + 1;
    fig.rss = bot.rss_mb();
    fig.rss_parts = (
        bot.status_mb("RssAnon:"),
        bot.status_mb("RssFile:"),
        bot.threads(),
    );
    // Where the memory is, region by region, for a look afterwards.
    let _ = std::fs::copy(
        format!("/proc/{}/smaps", bot.pid()),
        net.dir.join("bot.smaps"),
    );

    // The homeserver crashes and comes back: from its answering again to the next
    // report's acknowledgment.
    net.hs1.restart().unwrap();
    let back = Instant::now();
    let probe = net
        .bob
        .send_now(&a, &format!("!r agents at {}", place(3000)))
        .await;
    fig.recovered = wait_for("an answer after the restart", 120, || async {
        net.bob.arrived(&a, |v| {
            v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == probe.as_str()
        })
    })
    .await
        - back;
    drop(bot);

    fig.gaps = net.alice_p.gaps() + net.bob_p.gaps() + net.carol_p.gaps();
    fig.print();
    // The homeservers' logs (access log at INFO: every request and its timing) stay too.
    let _ = std::fs::copy(net.hs1.dir.join("synapse.log"), net.dir.join("hs1.log"));
    let _ = std::fs::copy(net.hs2.dir.join("synapse.log"), net.dir.join("hs2.log"));
    println!("bot log: {}", net.log.display());
}
