//! End-to-end benchmark over the local test network: two Synapse homeservers federating
//! on loopback, real `matrix-sdk` neighbors, the real (release) `neighborwatch run`
//! process. Measures, in one run:
//!
//! - the floor: an encrypted message between plain clients, one local hop (hs1 → hs1)
//!   and one federated hop (hs1 → hs2);
//! - relay latency: a confirming report sent in room A (hs1) → its alert decrypted by a
//!   neighbor in room B (hs2);
//! - fan-out: one confirmed incident → its alert in each of N rooms on hs2, for the
//!   first alert after the bot joined (a new room key per room) and the next one, each
//!   next to its floor (a plain client sending into N rooms at once);
//! - catch-up: N reports queued while the bot was down → every acknowledgment received,
//!   counted from the bot's process start, next to a plain client sending N messages
//!   into one room one after another;
//! - the bot's resident memory after all of the above;
//! - recovery: the bot's homeserver crashes and restarts → the next report answered.
//!
//! Run: `cargo bench --bench e2e` (sizes: `NW_E2E_SAMPLES`, default 20; `NW_E2E_ROOMS`,
//! default 50; `NW_E2E_REPORTS`, default 400; `NW_E2E_LOG`, the bot's `RUST_LOG`). Prints
//! a table with ratios to the floor.
//! Not a criterion benchmark: each sample costs a whole network round trip.

#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use matrix_sdk::ruma::OwnedRoomId;
use neighborwatch::devnet::bot::{BotOptions, BotProcess, bot_joined};
use neighborwatch::devnet::client::{Neighbor, wait_for};
use neighborwatch::devnet::synapse::Synapse;
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

/// A network file: room A (hoover), room B and `extra` rooms, every area the same circle.
fn network(dir: &Path, hs: &Synapse, bot: &str, a: &OwnedRoomId, rooms: &[OwnedRoomId]) -> PathBuf {
    let mut text = format!(
        r#"[matrix]
homeserver = "{url}"
user = "{bot}"
password_env = "NW_PASSWORD"
store_path = "matrix"
store_passphrase_env = "NW_STORE_PASSPHRASE"

[storage]
path = "state.sled"
reporter_key_env = "NW_REPORTER_KEY"

[defaults]
max_reports_per_10min = 1000
dedupe_radius_m = 100

[[neighborhood]]
id = "a"
name = "Room A"
rooms = ["{a}"]
area = {{ center = [{lat}, {lon}], radius_m = 2000 }}
"#,
        url = hs.url,
        lat = CENTER.0,
        lon = CENTER.1,
    );
    for (i, r) in rooms.iter().enumerate() {
        text.push_str(&format!(
            "\n[[neighborhood]]\nid = \"n{i}\"\nname = \"Room {i}\"\nrooms = [\"{r}\"]\narea = {{ center = [{}, {}], radius_m = 2000 }}\n",
            CENTER.0, CENTER.1
        ));
    }
    let path = dir.join("network.toml");
    std::fs::write(&path, text).expect("network file");
    path
}

/// The `i`-th of many places, 300 m apart (the bench's merge radius is 100 m).
fn place(i: usize) -> String {
    let (row, col) = ((i / 12) as f64, (i % 12) as f64);
    let lat = CENTER.0 + (row - 6.0) * 300.0 / 111_320.0;
    let lon = CENTER.1 + (col - 6.0) * 300.0 / 88_000.0;
    format!("{lat:.6}, {lon:.6}")
}

fn is_alert(v: &Value) -> bool {
    v["content"]["msgtype"] == "m.text" && v["content"]["m.relates_to"].is_null()
}

fn tag_id(v: &Value) -> Option<String> {
    v["content"]["org.neighborwatch.incident"]["id"]
        .as_str()
        .map(str::to_owned)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// `from` sends one message into each of `rooms` at once: the time until `to` has
/// decrypted the first and the last.
async fn spread(
    from: &Neighbor,
    to: &Neighbor,
    rooms: &[OwnedRoomId],
    body: &str,
) -> (Duration, Duration) {
    let t0 = Instant::now();
    let ids = futures_util::future::join_all(rooms.iter().map(|r| from.send_now(r, body))).await;
    let (mut first, mut last) = (Duration::MAX, Duration::ZERO);
    for (r, id) in rooms.iter().zip(&ids) {
        let at = wait_for("the message in every room", 120, || async {
            to.arrived(r, |v| v["event_id"] == id.as_str())
        })
        .await;
        first = first.min(at - t0);
        last = last.max(at - t0);
    }
    (first, last)
}

/// Time from sending in `room` (by `from`) to `to` decrypting it, `n` times.
async fn hop(from: &Neighbor, to: &Neighbor, room: &OwnedRoomId, n: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..n {
        let t0 = Instant::now();
        let id = from.send_now(room, &format!("ping {i}")).await;
        let at = wait_for("the ping", 30, || async {
            to.arrived(room, |v| v["event_id"] == id.as_str())
        })
        .await;
        out.push(ms(at - t0));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let samples = env_usize("NW_E2E_SAMPLES", 20);
    let fan = env_usize("NW_E2E_ROOMS", 50);
    let reports = env_usize("NW_E2E_REPORTS", 400);
    let (hs1, hs2) = (Synapse::start().unwrap(), Synapse::start().unwrap());
    let bot_user = hs1.register("neighborwatch", PASSWORD).unwrap();
    let alice = Neighbor::new(&hs1, "alice", PASSWORD).await.unwrap();
    let bob = Neighbor::new(&hs1, "bob", PASSWORD).await.unwrap();
    let carol = Neighbor::new(&hs2, "carol", PASSWORD).await.unwrap();
    // Kept afterwards, for a look at the bot's log.
    let dir = tempfile::tempdir().unwrap().keep();
    let log = dir.join("bot.log");
    eprintln!("bot log: {}", log.display());

    // The floor, between plain clients.
    let f1 = alice.create_room(&[&bob.user], true).await;
    let f2 = alice.create_room(&[&carol.user], true).await;
    alice.say(&f1, &[&bob.user], "warm-up").await;
    alice.say(&f2, &[&carol.user], "warm-up").await;
    let local = hop(&alice, &bob, &f1, samples).await;
    let federated = hop(&alice, &carol, &f2, samples).await;
    let floor = quantile(&local, 0.5) + quantile(&federated, 0.5);
    eprintln!("floor measured: {floor:.1} ms");

    // Relay latency: alice created room A, so she is its moderator and her report
    // confirms at once; room B is on hs2.
    let a = alice.create_room(&[&bob.user, &bot_user], true).await;
    let b = carol.create_room(&[&bot_user], true).await;
    let cfg = network(&dir, &hs1, &bot_user, &a, std::slice::from_ref(&b));
    let (bot, _) = start_bot(&cfg, &log);
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&carol, &b, &bot_user).await;
    alice.say(&a, &[&bot_user, &bob.user], "hello").await;
    carol.say(&b, &[&bot_user], "hello").await;
    let mut seen = std::collections::HashSet::new();
    let mut relay = Vec::new();
    for i in 0..samples {
        let t0 = Instant::now();
        alice
            .send_now(&a, &format!("!r agents at {}", place(i)))
            .await;
        let at = wait_for("the alert in room B", 60, || async {
            carol.arrived(&b, |v| {
                is_alert(v) && tag_id(v).is_some_and(|id| !seen.contains(&id))
            })
        })
        .await;
        for v in carol.from(&b, &bot_user) {
            if let Some(id) = tag_id(&v) {
                seen.insert(id);
            }
        }
        relay.push(ms(at - t0));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(bot);

    // Fan-out to `fan` rooms on hs2.
    let mut rooms = vec![b.clone()];
    for _ in 1..fan {
        rooms.push(carol.create_room(&[&bot_user], true).await);
    }
    // Its floor: a plain client on hs1 sends one message into each of `fan` rooms on hs2
    // at once, first into rooms where it has no room key yet (each send shares a new
    // one over federation), then again (keys already shared).
    let mut plain_rooms = Vec::new();
    for _ in 0..fan {
        plain_rooms.push(carol.create_room(&[&bob.user], true).await);
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
    let plain_cold = spread(&bob, &carol, &plain_rooms, "first").await;
    let plain_warm = spread(&bob, &carol, &plain_rooms, "second").await;
    eprintln!(
        "fan-out floor measured: {:.1} ms cold, {:.1} ms warm",
        ms(plain_cold.1),
        ms(plain_warm.1)
    );

    let cfg = network(&dir, &hs1, &bot_user, &a, &rooms);
    let (bot, _) = start_bot(&cfg, &log);
    for r in &rooms {
        bot_joined(&carol, r, &bot_user).await;
        carol.say(r, &[&bot_user], "hello").await;
    }
    // A bot joins its rooms long before their first alert: let it finish reading them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The first alert in each room after the bot joined (a new room key per room), then
    // the next one (keys already shared, as in a network that had an alert this week).
    let mut fan_out = Vec::new();
    for k in 1..=2 {
        let t0 = Instant::now();
        alice
            .send_now(&a, &format!("!r agents at {}", place(samples + k)))
            .await;
        let (mut first, mut last) = (Duration::MAX, Duration::ZERO);
        for r in &rooms {
            let at = wait_for("the alert in every room", 120, || async {
                carol.arrived(r, |v| {
                    is_alert(v) && tag_id(v).is_some_and(|id| !seen.contains(&id))
                })
            })
            .await;
            last = last.max(at - t0);
            first = first.min(at - t0);
        }
        for v in carol.from(&b, &bot_user) {
            if let Some(id) = tag_id(&v) {
                seen.insert(id);
            }
        }
        fan_out.push((first, last));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(bot);

    // Catch-up: reports queued while the bot is down (two per place, one reporter, so
    // nothing is confirmed: every one is answered with an acknowledgment).
    let mut sent = Vec::new();
    let sending = Instant::now();
    for i in 0..reports {
        sent.push(
            bob.send_now(&a, &format!("!r agents at {}", place(1000 + i / 2)))
                .await,
        );
    }
    let sequential = sending.elapsed();
    let cfg = network(&dir, &hs1, &bot_user, &a, &[]);
    let (bot, started) = start_bot(&cfg, &log);
    let done = wait_for("every queued report answered", 300, || async {
        let replied = bob
            .from(&a, &bot_user)
            .iter()
            .filter(|v| {
                v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
                    .as_str()
                    .is_some_and(|e| sent.iter().any(|s| s.as_str() == e))
            })
            .count();
        (replied >= reports).then(Instant::now)
    })
    .await;
    let catch_up = done - started;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = bot.rss_mb();
    let (anon, file, threads) = (
        bot.status_mb("RssAnon:"),
        bot.status_mb("RssFile:"),
        bot.threads(),
    );
    // Where the memory is, region by region, for a look afterwards.
    let _ = std::fs::copy(format!("/proc/{}/smaps", bot.pid()), dir.join("bot.smaps"));

    // The homeserver crashes and comes back: from its answering again to the next
    // report's acknowledgment.
    let mut hs1 = hs1;
    hs1.restart().unwrap();
    let back = Instant::now();
    let probe = bob
        .send_now(&a, &format!("!r agents at {}", place(2000)))
        .await;
    let recovered = wait_for("an answer after the restart", 120, || async {
        bob.arrived(&a, |v| {
            v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == probe.as_str()
        })
    })
    .await
        - back;
    drop(bot);

    let row = |what: &str, value: String, ratio: String, target: &str| {
        println!("| {what} | {value} | {ratio} | {target} |");
    };
    println!("\n| measure | result | ratio | target |\n| --- | --- | --- | --- |");
    row(
        "floor: local hop (p50)",
        format!("{:.1} ms", quantile(&local, 0.5)),
        String::new(),
        "",
    );
    row(
        "floor: federated hop (p50)",
        format!("{:.1} ms", quantile(&federated, 0.5)),
        String::new(),
        "",
    );
    row(
        "floor: two hops",
        format!("{floor:.1} ms"),
        "1.00×".into(),
        "",
    );
    for (q, target) in [(0.5, "≤ 1.5×"), (0.9, "≤ 2×")] {
        let v = quantile(&relay, q);
        row(
            &format!(
                "relay latency p{} (report → alert on hs2)",
                (q * 100.0) as u32
            ),
            format!("{v:.1} ms"),
            format!("{:.2}×", v / floor),
            target,
        );
    }
    let one = quantile(&relay, 0.5);
    row(
        &format!(
            "fan-out floor: plain client, one message into {fan} rooms at once, last (new room keys)"
        ),
        format!("{:.1} ms", ms(plain_cold.1)),
        String::new(),
        "",
    );
    row(
        "fan-out floor: the same again, last (keys already shared)",
        format!("{:.1} ms", ms(plain_warm.1)),
        String::new(),
        "",
    );
    for ((first, last), (plain, what)) in fan_out.iter().zip([
        (plain_cold.1, "new room keys"),
        (plain_warm.1, "keys already shared"),
    ]) {
        row(
            &format!("fan-out ({what}): first of {fan} rooms"),
            format!("{:.1} ms", ms(*first)),
            format!("{:.2}× one-room", ms(*first) / one),
            "",
        );
        row(
            &format!("fan-out ({what}): last of {fan} rooms"),
            format!("{:.1} ms", ms(*last)),
            format!(
                "{:.2}× one-room, {:.2}× the plain client",
                ms(*last) / one,
                ms(*last) / ms(plain)
            ),
            "≤ 3× one-room",
        );
    }
    row(
        &format!(
            "catch-up floor: plain client sending {reports} messages into one room, one after another"
        ),
        format!("{:.1} s", sequential.as_secs_f64()),
        String::new(),
        "",
    );
    row(
        &format!("catch-up: {reports} queued reports answered"),
        format!("{:.1} s", catch_up.as_secs_f64()),
        format!(
            "{:.2}× the plain client",
            catch_up.as_secs_f64() / sequential.as_secs_f64()
        ),
        "≤ 10 s",
    );
    row(
        "homeserver restart → next report answered",
        format!("{:.1} s", recovered.as_secs_f64()),
        String::new(),
        "a few seconds",
    );
    row(
        &format!("bot RSS, {} rooms joined", fan + 1),
        format!("{rss:.0} MB"),
        String::new(),
        "≤ 100 MB",
    );
    // The homeservers' logs (access log at INFO: every request and its timing) stay too.
    let _ = std::fs::copy(hs1.dir.join("synapse.log"), dir.join("hs1.log"));
    let _ = std::fs::copy(hs2.dir.join("synapse.log"), dir.join("hs2.log"));
    println!(
        "\n({samples} samples each; bot RSS {rss:.0} MB = {anon:.0} MB heap and stacks + {file:.0} MB mapped files (its own code), {threads} threads; bot log: {})",
        log.display()
    );
}
