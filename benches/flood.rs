//! Flood benchmark (issue 24) over the local test network: two Synapse homeservers
//! federating on loopback, real `matrix-sdk` neighbors, the real (release)
//! `neighborwatch run` process. Measures, in one run:
//!
//! - relay latency without a flood: a confirming report by alice (a moderator of room A
//!   on hs1, so her report confirms at once) → its alert decrypted by carol in room B on
//!   hs2, `NW_FLOOD_SAMPLES` times (default 20);
//! - the same relay while dave, a plain member (power 0, no verifier) on hs1, floods a
//!   room of the network with junk (chat, `!r` alone, `!r` with no place it can read,
//!   unknown `!nw` commands) and `!nw help`, three junk messages to one help, as fast
//!   as the homeserver takes them (`NW_FLOOD_IN_FLIGHT` sends in flight, default 12).
//!   The flood sends at least 300 junk + 100 help and keeps going until the last sample
//!   is in, so that every sample is taken under the flood;
//! - the replies dave got: the bot's messages in the flooded room that reply to one of
//!   his messages or mention him, counted once the bot has answered a later message
//!   and then stayed quiet for 5 s.
//!
//! The flooded room is room A itself (`NW_FLOOD_ROOM=a`, the default: the reporter's own
//! room, so her report also waits behind the flood at the homeserver) or room C
//! (`NW_FLOOD_ROOM=c`: another room of the network on hs1, a neighborhood far away, so
//! only the bot and the homeservers' cores are shared with the relay).
//!
//! "As fast as the homeserver takes them": hs1 holds dave to `NW_FLOOD_RATE` messages a
//! second in bursts of five seconds' worth (default 10, fifty times Synapse's default
//! `rc_message`; its admin API's `override_ratelimit`, as an organizer's server would
//! hold any account), and answers him 429 past it (matrix-sdk waits and sends again).
//! `NW_FLOOD_RATE=0` floods unthrottled (devnet gives every account 1000 a second): then
//! hs1 itself saturates, and every request on it waits, the bot's or not.
//!
//! Run: `cargo bench --features devnet --bench flood` (`NW_FLOOD_LOG`, the bot's
//! `RUST_LOG`). Prints a markdown table; a missed target says MISSED in its row.
//! Not a criterion benchmark: each sample costs a whole network round trip.

#![recursion_limit = "256"]

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use matrix_sdk::Room;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId};
use neighborwatch::devnet::bot::{BotOptions, BotProcess, bench_network, bot_joined};
use neighborwatch::devnet::client::{Neighbor, try_wait_for, wait_for};
use neighborwatch::devnet::measure::{ms, quantile};
use neighborwatch::devnet::synapse::Synapse;
use serde_json::Value;
use tokio::task::JoinSet;

const PASSWORD: &str = "bench-password-0123";
/// Centre of rooms A's and B's areas.
const CENTER: (f64, f64) = (37.8240, -122.2760);
/// Junk messages and `!nw help`s the flood sends at least.
const JUNK: usize = 300;
const HELP: usize = 100;
/// Targets of the issue.
const RATIO_TARGET: f64 = 1.5;
const REPLIES_TARGET: usize = 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A message of the flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `!nw help`.
    Help,
    /// Chat: neither a report nor a command (draws no answer).
    Chat,
    /// `!r` alone: an empty report (answered with what a report needs).
    Empty,
    /// `!r` with no place the bot can read (answered "I couldn't place …").
    Unplaced,
    /// An unknown `!nw` command (answered with the commands).
    Unknown,
}

impl Kind {
    /// The `k`-th message of the flood: `!nw help` every fourth, junk kinds in turn.
    fn nth(k: usize) -> Kind {
        if k % 4 == 3 {
            return Kind::Help;
        }
        match (k - k / 4) % 4 {
            0 => Kind::Chat,
            1 => Kind::Empty,
            2 => Kind::Unplaced,
            _ => Kind::Unknown,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Kind::Help => "!nw help",
            Kind::Chat => "did anyone else's power go out this morning? lol",
            Kind::Empty => "!r",
            Kind::Unplaced => "!r agents somewhere over there by the thing",
            Kind::Unknown => "!nw frobnicate",
        }
    }
}

/// What the flood did.
#[derive(Debug, Default)]
struct FloodReport {
    /// Messages the homeserver accepted, by kind.
    help: usize,
    chat: usize,
    empty: usize,
    unplaced: usize,
    unknown: usize,
    /// Sends that failed (not retried), and the first error.
    errors: usize,
    first_error: Option<String>,
    /// Sends that raced the room key's rotation in matrix-sdk (a panic) and were sent
    /// again alone.
    raced: usize,
    /// From the flood's start to the planned 400th message accepted.
    planned_done: Option<Duration>,
    /// From the flood's start to its last message accepted.
    total: Duration,
}

impl FloodReport {
    fn junk(&self) -> usize {
        self.chat + self.empty + self.unplaced + self.unknown
    }
}

/// The flood's accepted messages, as they are accepted (the bench watches them).
type SentLog = Arc<Mutex<Vec<(OwnedEventId, Kind)>>>;

fn sent_ids(log: &SentLog) -> Vec<(OwnedEventId, Kind)> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Sends the flood into `room`: `in_flight` sends at once, at least `JUNK + HELP`
/// messages, and on until `stop` is set.
async fn flood(room: Room, in_flight: usize, stop: Arc<AtomicBool>, log: SentLog) -> FloodReport {
    let started = Instant::now();
    let planned = JUNK + HELP;
    let mut rep = FloodReport::default();
    let mut set = JoinSet::new();
    let (mut issued, mut accepted) = (0usize, 0usize);
    let mut retry: Vec<Kind> = Vec::new();
    // After a raced send: one at a time until the next success (the key rotates then).
    let mut alone = false;
    loop {
        let more = issued < planned || !stop.load(Ordering::Relaxed);
        let cap = if alone { 1 } else { in_flight };
        if (more || !retry.is_empty()) && set.len() < cap {
            let kind = retry.pop().unwrap_or_else(|| {
                issued += 1;
                Kind::nth(issued - 1)
            });
            let room = room.clone();
            set.spawn(async move {
                let content = RoomMessageEventContent::text_plain(kind.body());
                let sent = AssertUnwindSafe(room.send(content).into_future())
                    .catch_unwind()
                    .await;
                (kind, sent)
            });
            continue;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        match done {
            Ok((kind, Ok(Ok(resp)))) => {
                alone = false;
                accepted += 1;
                *match kind {
                    Kind::Help => &mut rep.help,
                    Kind::Chat => &mut rep.chat,
                    Kind::Empty => &mut rep.empty,
                    Kind::Unplaced => &mut rep.unplaced,
                    Kind::Unknown => &mut rep.unknown,
                } += 1;
                log.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((resp.response.event_id, kind));
                if accepted == planned {
                    rep.planned_done = Some(started.elapsed());
                }
                rep.total = started.elapsed();
            }
            Ok((kind, Err(_panic))) => {
                rep.raced += 1;
                alone = true;
                retry.push(kind);
            }
            Ok((_, Ok(Err(e)))) => {
                rep.errors += 1;
                rep.first_error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => {
                rep.errors += 1;
                rep.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    rep
}

/// Starts the (release) bot on `config`.
fn start_bot(config: &Path, log: &Path) -> BotProcess {
    let filter = std::env::var("NW_FLOOD_LOG").ok();
    let opts = BotOptions {
        exe: Path::new(env!("CARGO_BIN_EXE_neighborwatch")),
        password: PASSWORD,
        log_filter: filter.as_deref(),
        fault: None,
    };
    BotProcess::start(&opts, config, log).expect("the bot starts")
}

/// A network file: room A and room B with the same area; room C, if any, a neighborhood
/// 50 km away (no alert of A's is routed there).
fn network(
    dir: &Path,
    hs: &Synapse,
    bot: &str,
    a: &OwnedRoomId,
    b: &OwnedRoomId,
    c: Option<&OwnedRoomId>,
) -> PathBuf {
    let (lat, lon) = CENTER;
    let mut hoods = vec![
        ("a".to_owned(), a.to_string(), CENTER),
        ("b".to_owned(), b.to_string(), CENTER),
    ];
    if let Some(c) = c {
        hoods.push(("c".to_owned(), c.to_string(), (lat + 0.45, lon)));
    }
    bench_network(dir, &hs.url, bot, &hoods)
}

/// The `i`-th of many places, 300 m apart (the bench's merge radius is 100 m).
fn place(i: usize) -> String {
    let (row, col) = ((i / 12) as f64, (i % 12) as f64);
    let lat = CENTER.0 + (row - 2.0) * 300.0 / 111_320.0;
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

fn reply_to(v: &Value) -> Option<&str> {
    v["content"]["m.relates_to"]["m.in_reply_to"]["event_id"].as_str()
}

/// The relay being measured: alice reports in room A, carol reads room B.
struct Relay<'a> {
    alice: &'a Neighbor,
    carol: &'a Neighbor,
    a: &'a OwnedRoomId,
    b: &'a OwnedRoomId,
    bot: &'a str,
    /// Incidents whose alert carol already has.
    seen: HashSet<String>,
}

impl Relay<'_> {
    /// `n` samples at places `first..first + n`, paced 300 ms apart; stops at the first
    /// alert that does not come within 60 s (and says so).
    async fn samples(&mut self, first: usize, n: usize, what: &str) -> (Vec<f64>, Option<String>) {
        let mut out = Vec::new();
        for i in first..first + n {
            let t0 = Instant::now();
            self.alice
                .send_now(self.a, &format!("!r agents at {}", place(i)))
                .await;
            let seen = &self.seen;
            let got = try_wait_for("the alert in room B", 60, || async {
                self.carol.arrived(self.b, |v| {
                    is_alert(v) && tag_id(v).is_some_and(|id| !seen.contains(&id))
                })
            })
            .await;
            let at = match got {
                Ok(at) => at,
                Err(e) => return (out, Some(format!("{what}, sample {}: {e}", i - first))),
            };
            for v in self.carol.from(self.b, self.bot) {
                if let Some(id) = tag_id(&v) {
                    self.seen.insert(id);
                }
            }
            out.push(ms(at - t0));
            eprintln!("{what}: sample {} {:.1} ms", i - first, ms(at - t0));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        (out, None)
    }
}

/// Waits until the bot has answered a later message in `room` (alice's `!nw help`: she
/// is a moderator, never budgeted) and then sent nothing there for 5 s; returns how long
/// the answer took.
async fn settle(alice: &Neighbor, watcher: &Neighbor, room: &OwnedRoomId, bot: &str) -> Duration {
    let t0 = Instant::now();
    let probe = alice.send_now(room, "!nw help").await;
    let answered = wait_for("the bot's answer after the flood", 600, || async {
        alice.arrived(room, |v| reply_to(v) == Some(probe.as_str()))
    })
    .await;
    let (mut count, mut since) = (watcher.from(room, bot).len(), Instant::now());
    while since.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = watcher.from(room, bot).len();
        if now != count {
            (count, since) = (now, Instant::now());
        }
    }
    answered - t0
}

/// The bot's messages in `room` addressed to `user`: replies to one of `sent`, or
/// mentioning him. Returns (to a help, to junk, mentions without a reply).
fn replies_to(
    dave: &Neighbor,
    room: &OwnedRoomId,
    bot: &str,
    sent: &[(OwnedEventId, Kind)],
) -> (usize, usize, usize) {
    let (mut help, mut junk, mut other) = (0, 0, 0);
    for v in dave.from(room, bot) {
        let kind = reply_to(&v).and_then(|e| sent.iter().find(|(id, _)| id.as_str() == e));
        match kind {
            Some((_, Kind::Help)) => help += 1,
            Some(_) => junk += 1,
            None => {
                let mentions = v["content"]["m.mentions"]["user_ids"].as_array();
                if mentions.is_some_and(|m| m.iter().any(|u| u == dave.user.as_str())) {
                    other += 1;
                }
            }
        }
    }
    (help, junk, other)
}

/// Everything measured, for the table.
struct Outcome {
    quiet: Vec<f64>,
    flooded: Vec<f64>,
    timed_out: Option<String>,
    flood: FloodReport,
    replies: (usize, usize, usize),
    /// From the flood's start to the first and after the last flooded sample.
    window: (Duration, Duration),
    caught_up: Duration,
    room: &'static str,
    in_flight: usize,
    /// dave's messages a second on hs1 (0: unthrottled).
    rate: usize,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "✅" } else { "MISSED" }
}

fn print_table(o: &Outcome) {
    let row = |what: &str, quiet: String, flooded: String, ratio: String, target: String| {
        println!("| {what} | {quiet} | {flooded} | {ratio} | {target} |");
    };
    println!(
        "\n| measure | without flood | with flood | ratio | target |\n| --- | --- | --- | --- | --- |"
    );
    for (q, targeted) in [(0.5, true), (0.9, false)] {
        let (x, y) = (quantile(&o.quiet, q), quantile(&o.flooded, q));
        let r = y / x;
        let target = if targeted {
            format!("≤ {RATIO_TARGET}× {}", verdict(r <= RATIO_TARGET))
        } else {
            String::new()
        };
        row(
            &format!(
                "relay latency p{} (report in A on hs1 → alert in B on hs2)",
                (q * 100.0) as u32
            ),
            format!("{x:.1} ms"),
            format!("{y:.1} ms"),
            format!("{r:.2}×"),
            target,
        );
    }
    let f = &o.flood;
    let sent = f.junk() + f.help;
    row(
        &format!(
            "flooder's messages accepted (room {}, {} in flight, {})",
            o.room,
            o.in_flight,
            if o.rate == 0 {
                "unthrottled".to_owned()
            } else {
                format!("hs1 takes {}/s in bursts of {}", o.rate, o.rate * 5)
            }
        ),
        String::new(),
        format!(
            "{sent}: {} junk ({} chat, {} `!r` alone, {} `!r` unplaced, {} unknown `!nw`) + {} `!nw help`",
            f.junk(),
            f.chat,
            f.empty,
            f.unplaced,
            f.unknown,
            f.help
        ),
        String::new(),
        format!("≥ {JUNK} + {HELP}"),
    );
    let (help, junk, other) = o.replies;
    let total = help + junk + other;
    row(
        "replies the flooder got",
        String::new(),
        format!("{total} ({help} to a help, {junk} to junk, {other} other mentions)"),
        String::new(),
        format!("≤ {REPLIES_TARGET} {}", verdict(total <= REPLIES_TARGET)),
    );
    let secs = f.total.as_secs_f64();
    row(
        "flood duration",
        String::new(),
        format!(
            "{secs:.1} s ({:.0} msg/s; the first {} in {}; samples from {:.1} s to {:.1} s)",
            sent as f64 / secs,
            JUNK + HELP,
            f.planned_done
                .map_or("—".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            o.window.0.as_secs_f64(),
            o.window.1.as_secs_f64(),
        ),
        String::new(),
        String::new(),
    );
    row(
        "bot's answer to a moderator's `!nw help` sent after the flood",
        String::new(),
        format!("{:.1} s", o.caught_up.as_secs_f64()),
        String::new(),
        String::new(),
    );
    println!(
        "\n({} samples without, {} with the flood; {} failed sends, {} sends raced the room key's rotation and were sent again)",
        o.quiet.len(),
        o.flooded.len(),
        f.errors,
        f.raced
    );
    if let Some(e) = &f.first_error {
        println!("first failed send: {e}");
    }
    if let Some(t) = &o.timed_out {
        println!("MISSED: {t}");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let samples = env_usize("NW_FLOOD_SAMPLES", 20);
    let in_flight = env_usize("NW_FLOOD_IN_FLIGHT", 12).max(1);
    let rate = env_usize("NW_FLOOD_RATE", 10);
    let in_c = std::env::var("NW_FLOOD_ROOM").is_ok_and(|r| r.eq_ignore_ascii_case("c"));
    let (hs1, hs2) = (Synapse::start().unwrap(), Synapse::start().unwrap());
    let bot_user = hs1.register("neighborwatch", PASSWORD).unwrap();
    let alice = Neighbor::new(&hs1, "alice", PASSWORD).await.unwrap();
    let dave = Neighbor::new(&hs1, "dave", PASSWORD).await.unwrap();
    if rate > 0 {
        let rate = u32::try_from(rate).unwrap_or(u32::MAX);
        hs1.limit_messages(&dave.user, rate, rate.saturating_mul(5))
            .expect("hs1 limits dave's messages");
    }
    let carol = Neighbor::new(&hs2, "carol", PASSWORD).await.unwrap();
    // Kept afterwards, for a look at the bot's log.
    let dir = tempfile::tempdir().unwrap().keep();
    let log = dir.join("bot.log");
    eprintln!("bot log: {}", log.display());

    // alice created A (and C), so she is their moderator: her report confirms at once.
    // dave, invited, is a plain member (power 0) and no verifier.
    let a_invites: &[&str] = if in_c {
        &[&bot_user]
    } else {
        &[&bot_user, &dave.user]
    };
    let a = alice.create_room(a_invites, true).await;
    let b = carol.create_room(&[&bot_user], true).await;
    let c = if in_c {
        Some(alice.create_room(&[&bot_user, &dave.user], true).await)
    } else {
        None
    };
    let flooded = c.clone().unwrap_or_else(|| a.clone());
    let cfg = network(&dir, &hs1, &bot_user, &a, &b, c.as_ref());
    let bot = start_bot(&cfg, &log);
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&carol, &b, &bot_user).await;
    bot_joined(&alice, &flooded, &bot_user).await;
    alice.say(&a, &[&bot_user], "hello").await;
    carol.say(&b, &[&bot_user], "hello").await;
    alice
        .say(&flooded, &[&bot_user, &dave.user], "hello dave")
        .await;
    dave.say(&flooded, &[&bot_user, &alice.user], "hi").await;

    let mut relay = Relay {
        alice: &alice,
        carol: &carol,
        a: &a,
        b: &b,
        bot: &bot_user,
        seen: HashSet::new(),
    };
    let (quiet, mut timed_out) = relay.samples(0, samples, "without flood").await;

    // The flood, in the background; the samples start once the homeserver has taken
    // 40 of its messages and the bot has answered one.
    let stop = Arc::new(AtomicBool::new(false));
    let sent: SentLog = Arc::default();
    let started = Instant::now();
    let flooding = tokio::spawn(flood(
        dave.room(&flooded).await,
        in_flight,
        Arc::clone(&stop),
        Arc::clone(&sent),
    ));
    let under_way = try_wait_for("the flood to be under way", 120, || async {
        let ids = sent_ids(&sent);
        let answered = dave
            .from(&flooded, &bot_user)
            .iter()
            .any(|v| reply_to(v).is_some_and(|e| ids.iter().any(|(id, _)| id.as_str() == e)));
        (ids.len() >= 40 && answered).then_some(())
    })
    .await;
    if let Err(e) = under_way {
        eprintln!("sampling anyway: {e}");
    }
    let first = started.elapsed();
    let (with, late) = relay.samples(samples, samples, "with flood").await;
    timed_out = timed_out.or(late);
    let last = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let flood = flooding.await.expect("the flood task");
    eprintln!("flood over after {:.1} s", flood.total.as_secs_f64());
    let caught_up = settle(&alice, &dave, &flooded, &bot_user).await;
    let replies = replies_to(&dave, &flooded, &bot_user, &sent_ids(&sent));
    drop(bot);
    let _ = std::fs::copy(hs1.dir.join("synapse.log"), dir.join("hs1.log"));
    let _ = std::fs::copy(hs2.dir.join("synapse.log"), dir.join("hs2.log"));

    print_table(&Outcome {
        quiet,
        flooded: with,
        timed_out,
        flood,
        replies,
        window: (first, last),
        caught_up,
        room: if in_c { "C" } else { "A" },
        in_flight,
        rate,
    });
    println!("bot log and homeserver logs: {}", dir.display());
}
