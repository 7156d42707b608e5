//! End-to-end tests on real Synapse homeservers federating over loopback, with real
//! end-to-end encryption: `matrix-sdk` clients are the neighbors, the bot is the real
//! `neighborwatch run` process.

#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use matrix_sdk::RoomMemberships;
use matrix_sdk::ruma::OwnedRoomId;
use neighborwatch::devnet::bot::{BotOptions, BotProcess, STORE_PASSPHRASE, bot_joined};
use neighborwatch::devnet::client::{Neighbor, wait_for};
use neighborwatch::devnet::proxy::{Mode as ProxyMode, Proxy};
use neighborwatch::devnet::synapse::{self, Synapse};

mod data_dir;
mod fade;

const PASSWORD: &str = "correct-horse-battery";

mod coordination;
mod downtime;
mod init;
mod reload;
mod scoped;

/// The bot process (killed with SIGKILL when dropped), with the tests' secrets.
struct Bot(BotProcess);

impl Bot {
    fn start(config: &Path, log: &Path) -> Bot {
        Self::start_with(config, log, None)
    }

    fn start_with(config: &Path, log: &Path, fault: Option<&str>) -> Bot {
        Self::start_full(config, log, fault, Some("info"))
    }

    /// With `filter` as `RUST_LOG`, or the bot's default log filter for `None`.
    fn start_full(config: &Path, log: &Path, fault: Option<&str>, filter: Option<&str>) -> Bot {
        let opts = BotOptions {
            exe: Path::new(env!("CARGO_BIN_EXE_neighborwatch")),
            password: PASSWORD,
            log_filter: filter,
            fault,
        };
        Bot(BotProcess::start(&opts, config, log).expect("the bot starts"))
    }

    fn kill(&mut self) {
        self.0.kill();
    }

    fn log(&self) -> String {
        self.0.log()
    }
}

/// Runs a `neighborwatch` command built by `args` (its log off, no input): whether it
/// succeeded, and everything it printed.
fn neighborwatch_cli(args: impl FnOnce(&mut Command) -> &mut Command) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_neighborwatch"));
    let out = args(&mut cmd)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("neighborwatch runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn places(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/places")
        .join(file)
        .display()
        .to_string()
}

struct Rooms<'a> {
    organizer: &'a str,
    a: &'a str,
    b: &'a str,
    c: &'a str,
    u: &'a str,
    coord: &'a str,
}

fn network_file(dir: &Path, hs: &Synapse, bot: &str, rooms: &Rooms<'_>) -> PathBuf {
    let oak = places("oakland.geojson");
    let chi = places("back-of-the-yards.geojson");
    let text = format!(
        r#"coordination_room = "{coord}"
organizers = ["{organizer}"]

[matrix]
homeserver = "{url}"
user = "{bot}"
password_env = "NW_PASSWORD"
store_path = "matrix"
store_passphrase_env = "NW_STORE_PASSPHRASE"
key_backup = true
recovery_key_file = "recovery-key.txt"

[storage]
path = "state.sled"
reporter_key_env = "NW_REPORTER_KEY"

[[neighborhood]]
id = "hoover-foster"
name = "Hoover-Foster"
rooms = ["{a}"]
area = {{ center = [37.8240, -122.2760], radius_m = 600 }}
gazetteer = ["{oak}"]

[[neighborhood]]
id = "clawson"
name = "Clawson & McClymonds"
rooms = ["{b}"]
area = {{ center = [37.8175, -122.2830], radius_m = 600 }}
gazetteer = ["{oak}"]

[[neighborhood]]
id = "back-of-the-yards"
name = "Back of the Yards"
rooms = ["{c}"]
area = {{ center = [41.8080, -87.6650], radius_m = 1300 }}
gazetteer = ["{chi}"]
timezone = "America/Chicago"

[[neighborhood]]
id = "longfellow"
name = "Longfellow"
rooms = ["{u}"]
area = {{ center = [37.8300, -122.2750], radius_m = 400 }}
gazetteer = ["{oak}"]
"#,
        coord = rooms.coord,
        organizer = rooms.organizer,
        url = hs.url,
        a = rooms.a,
        b = rooms.b,
        c = rooms.c,
        u = rooms.u,
    );
    let path = dir.join("network.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Two federating homeservers, the bot account, five neighbors and their rooms:
/// A (Hoover-Foster, created by its moderator mona; alice and bob are plain members),
/// B (Clawson, created by carol, on the *other* homeserver), C (Chicago, far away),
/// U (unencrypted, near A) and the coordination room.
struct World {
    _hs1: Synapse,
    _hs2: Synapse,
    bot_user: String,
    mona: Neighbor,
    alice: Neighbor,
    bob: Neighbor,
    carol: Neighbor,
    dave: Neighbor,
    a: OwnedRoomId,
    b: OwnedRoomId,
    c: OwnedRoomId,
    u: OwnedRoomId,
    coord: OwnedRoomId,
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

async fn world() -> World {
    let (hs1, hs2) = (Synapse::start().unwrap(), Synapse::start().unwrap());
    let bot_user = hs1.register("neighborwatch", PASSWORD).unwrap();
    let mona = Neighbor::new(&hs1, "mona", PASSWORD).await.unwrap();
    let alice = Neighbor::new(&hs1, "alice", PASSWORD).await.unwrap();
    let bob = Neighbor::new(&hs1, "bob", PASSWORD).await.unwrap();
    let carol = Neighbor::new(&hs2, "carol", PASSWORD).await.unwrap();
    let dave = Neighbor::new(&hs1, "dave", PASSWORD).await.unwrap();
    // Room A's creator (a moderator: room version 12 creators outrank everyone) is mona,
    // so that alice and bob are plain neighbors whose reports need each other.
    let a = mona
        .create_room(&[&alice.user, &bob.user, &bot_user], true)
        .await;
    let b = carol.create_room(&[&bot_user], true).await;
    let c = dave.create_room(&[&bot_user], true).await;
    let u = dave.create_room(&[&bot_user], false).await;
    let coord = alice.create_room(&[&bot_user], true).await;
    let dir = tempfile::tempdir().unwrap();
    let rooms = Rooms {
        organizer: &alice.user,
        a: a.as_str(),
        b: b.as_str(),
        c: c.as_str(),
        u: u.as_str(),
        coord: coord.as_str(),
    };
    let cfg = network_file(dir.path(), &hs1, &bot_user, &rooms);
    World {
        _hs1: hs1,
        _hs2: hs2,
        bot_user,
        mona,
        alice,
        bob,
        carol,
        dave,
        a,
        b,
        c,
        u,
        coord,
        dir,
        cfg,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_neighbors_confirm_and_the_nearby_room_on_the_other_homeserver_gets_one_alert() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        bob,
        carol,
        dave,
        a,
        b,
        c,
        u,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    let mut bot = Bot::start(&cfg, &dir.path().join("bot.log"));

    // The bot joins every room (B across federation).
    let alice_a = alice
        .say(&a, &[&bot_user, &bob.user], "hello, is the bot here?")
        .await;
    let _ = alice_a;
    bot_joined(&carol, &b, &bot_user).await;

    // Two neighbors report the same incident.
    let r1 = alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r 2 unmarked black SUVs, agents in vests at 31st & Market",
        )
        .await;
    let ack1 = wait_for("the first acknowledgment", 60, || async {
        alice.replies(&a, &bot_user, r1.as_str()).into_iter().next()
    })
    .await;
    assert_eq!(ack1["content"]["msgtype"], "m.notice");
    assert_eq!(
        ack1["content"]["org.neighborwatch.incident"]["status"],
        "unverified"
    );
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            "!report 4 agents stopping parents near Hoover Elementary",
        )
        .await;
    wait_for("the confirmation acknowledgment", 60, || async {
        bob.replies(&a, &bot_user, r2.as_str()).into_iter().next()
    })
    .await;

    // Room B, on the other homeserver, receives exactly one decrypted alert and its location.
    let alert = wait_for("the alert in room B", 90, || async {
        carol
            .from(&b, &bot_user)
            .into_iter()
            .find(|v| v["content"]["msgtype"] == "m.text")
    })
    .await;
    wait_for("the m.location in room B", 60, || async {
        carol
            .from(&b, &bot_user)
            .into_iter()
            .find(|v| v["content"]["msgtype"] == "m.location")
    })
    .await;
    let content = &alert["content"];
    assert_eq!(content["org.neighborwatch.incident"]["status"], "confirmed");
    assert!(
        content["body"].as_str().unwrap().contains("31st & Market"),
        "{content}"
    );
    assert_eq!(
        content["m.mentions"]["room"], true,
        "near a school: the room is mentioned"
    );

    // A malformed report gets the error reply.
    let bad = bob.say(&a, &[&bot_user], "!r").await;
    let err = wait_for("the error reply", 60, || async {
        bob.replies(&a, &bot_user, bad.as_str()).into_iter().next()
    })
    .await;
    assert!(
        err["content"]["body"].as_str().unwrap().contains("empty"),
        "{err}"
    );

    // The coordination room hears that the unencrypted room was refused.
    wait_for("the refusal notice", 60, || async {
        alice.from(&coord, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("not end-to-end encrypted"))
        })
    })
    .await;

    // Give stragglers time, then check what must NOT have happened.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let in_b = carol.from(&b, &bot_user);
    assert_eq!(
        in_b.iter()
            .filter(|v| v["content"]["msgtype"] == "m.text")
            .count(),
        1,
        "exactly one alert: {in_b:#?}"
    );
    assert_eq!(
        in_b.iter()
            .filter(|v| v["content"]["msgtype"] == "m.location")
            .count(),
        1
    );
    for v in &in_b {
        let text = v["content"].to_string();
        for who in [&alice.user, &bob.user, "alice", "bob"] {
            assert!(
                !text.contains(who),
                "room B received a reporter's identity: {text}"
            );
        }
    }
    assert!(
        dave.from(&c, &bot_user).is_empty(),
        "the far-away room C got: {:#?}",
        dave.from(&c, &bot_user)
    );
    assert!(
        dave.from(&u, &bot_user).is_empty(),
        "the unencrypted room got an alert"
    );

    // Logs at info level hold no message body and no user ID.
    bot.kill();
    let log = bot.log();
    assert!(log.contains("neighborwatch running"), "{log}");
    for secret in [
        "unmarked black SUVs",
        "31st & Market",
        "stopping parents",
        "Hoover Elementary",
        &alice.user,
        &bob.user,
        &carol.user,
        &bot_user,
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}:\n{log}");
    }
}

/// Replaces `from` with `to` in the network file.
fn edit_config(cfg: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(cfg).unwrap();
    assert!(text.contains(from), "{from:?} is in the network file");
    std::fs::write(cfg, text.replace(from, to)).unwrap();
}

/// Eve, whose app sends room keys to verified sessions only (the bot's is not), invited
/// to `room` by `inviter`.
async fn verified_only_neighbor(hs: &Synapse, inviter: &Neighbor, room: &OwnedRoomId) -> Neighbor {
    let eve = Neighbor::new_verified_only(hs, "eve", PASSWORD)
        .await
        .unwrap();
    inviter.invite(room, &eve.user).await;
    eve
}

/// The bot's saved session (in its store directory, sealed under the test passphrase).
fn bot_session(store: &Path) -> matrix_sdk::authentication::matrix::MatrixSession {
    neighborwatch::matrix::read_session(store, &neighborwatch::devnet::bot::vault())
        .unwrap()
        .expect("a saved session")
}

/// A client on the stopped bot's own crypto store and session, as an operator would open
/// it.
async fn bot_store_client(hs: &Synapse, store: &Path) -> matrix_sdk::Client {
    let client = matrix_sdk::Client::builder()
        .homeserver_url(&hs.url)
        .sqlite_store(store.join("sqlite"), Some(STORE_PASSPHRASE))
        .build()
        .await
        .unwrap();
    client.restore_session(bot_session(store)).await.unwrap();
    client
}

async fn wait_for_log(bot: &Bot, needle: &str, count: usize, secs: u64) {
    wait_for(needle, secs, || async {
        (bot.log().matches(needle).count() >= count).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bot_killed_between_the_confirming_report_and_the_relay_sends_exactly_one_alert_after_restart()
 {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        bob,
        carol,
        a,
        b,
        dir,
        cfg,
        ..
    } = world().await;
    let log = dir.path().join("bot.log");
    // First run: everything is decided and committed, but nothing is sent.
    let mut bot = Bot::start_with(&cfg, &log, Some("hold-outbox"));
    bot_joined(&carol, &b, &bot_user).await;
    alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r 2 unmarked black SUVs at 31st & Market",
        )
        .await;
    wait_for_log(&bot, "effects queued", 1, 60).await;
    bob.say(
        &a,
        &[&bot_user, &alice.user],
        "!r agents near Hoover Elementary",
    )
    .await;
    wait_for_log(&bot, "effects queued", 2, 60).await;
    bot.kill(); // SIGKILL: the confirmed alert is committed to the outbox, not sent
    assert!(
        carol.from(&b, &bot_user).is_empty(),
        "nothing was sent before the kill"
    );

    // While the bot is down, carol reports from room B, and the room goes on talking:
    // more messages than one sync returns, so the report is only found by reading back.
    let down = carol
        .say(&b, &[&bot_user], "!r agents still at 31st and Market")
        .await;
    for i in 0..14 {
        carol
            .say(
                &b,
                &[&bot_user],
                &format!("neighbors checking in, message {i}"),
            )
            .await;
    }

    // Restart normally: the outbox is sent once; the report from the downtime is handled.
    let _bot = Bot::start(&cfg, &log);
    let reply = wait_for(
        "the reply to the report sent while the bot was down",
        120,
        || async {
            carol
                .replies(&b, &bot_user, down.as_str())
                .into_iter()
                .next()
        },
    )
    .await;
    assert!(
        reply["content"]["body"]
            .as_str()
            .unwrap()
            .contains("confirmed incident"),
        "{reply}"
    );
    wait_for("the alert in room B", 60, || async {
        carol
            .from(&b, &bot_user)
            .into_iter()
            .find(|v| v["content"]["msgtype"] == "m.text")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts: Vec<_> = carol
        .from(&b, &bot_user)
        .into_iter()
        .filter(|v| v["content"]["msgtype"] == "m.text")
        .collect();
    let top_level: Vec<_> = texts
        .iter()
        .filter(|v| v["content"]["m.relates_to"].is_null())
        .collect();
    assert_eq!(
        top_level.len(),
        1,
        "exactly one alert in room B: {texts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invites_from_strangers_are_declined_and_from_organizers_accepted() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        dave,
        dir,
        cfg,
        ..
    } = world().await;
    let _bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    // alice is an organizer: her room outside the network file is joined.
    let x = alice.create_room(&[&bot_user], true).await;
    // dave is a neighbor but not an organizer: his extra room is declined.
    let y = dave.create_room(&[&bot_user], true).await;
    let member_with = |n: &Neighbor, room: OwnedRoomId, m: RoomMemberships| {
        let client = n.client.clone();
        let bot = bot_user.clone();
        async move {
            let r = client.get_room(&room)?;
            let members = r.members(m).await.ok()?;
            members
                .iter()
                .any(|x| x.user_id().as_str() == bot)
                .then_some(())
        }
    };
    wait_for("the bot to join the organizer's room", 90, || {
        member_with(&alice, x.clone(), RoomMemberships::JOIN)
    })
    .await;
    wait_for("the bot to decline the stranger's invite", 90, || {
        member_with(&dave, y.clone(), RoomMemberships::LEAVE)
    })
    .await;
    assert!(
        member_with(&dave, y.clone(), RoomMemberships::JOIN)
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limited_bot_still_delivers_every_reply_once_and_location_shares_and_edits_complete_reports()
 {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        bob,
        carol,
        a,
        b,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    // The bot's homeserver lets it send one message a second: most of its sends are
    // refused with 429 at first and must be retried.
    _hs1.limit_messages(&bot_user, 1, 1).unwrap();
    let _bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&carol, &b, &bot_user).await;

    // A report from a place the bot does not know: it asks for the location.
    let r1 = alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r agents in vests at the old cannery gate",
        )
        .await;
    let replies_to = |who: &Neighbor, event: &str| who.replies(&a, &bot_user, event);
    wait_for("the question for a location", 60, || async {
        (!replies_to(&alice, r1.as_str()).is_empty()).then_some(())
    })
    .await;
    // Alice shares her location (31st & Market) from her phone: the report is complete.
    alice
        .share_location(&a, "geo:37.8237,-122.2762;u=20", "Location")
        .await;
    wait_for("the acknowledgment of the located report", 60, || async {
        (replies_to(&alice, r1.as_str()).len() >= 2).then_some(())
    })
    .await;
    // Bob misspells the place, then edits his report: the edit is read again.
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            "!r 3 agents stopping cars at 31st and Marker Plaza",
        )
        .await;
    wait_for("the question for bob's location", 60, || async {
        (!replies_to(&bob, r2.as_str()).is_empty()).then_some(())
    })
    .await;
    bob.edit(&a, &r2, "!r 3 agents stopping cars at 31st and Market")
        .await;
    wait_for("the confirmation", 60, || async {
        (replies_to(&bob, r2.as_str()).len() >= 2).then_some(())
    })
    .await;
    wait_for("the alert and its location in room B", 90, || async {
        let got = carol.from(&b, &bot_user);
        (got.iter().any(|v| v["content"]["msgtype"] == "m.text")
            && got.iter().any(|v| v["content"]["msgtype"] == "m.location"))
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    let first = replies_to(&alice, r1.as_str());
    assert_eq!(
        first.len(),
        2,
        "one question, one acknowledgment: {first:#?}"
    );
    assert!(
        first[1]["content"]["org.neighborwatch.incident"]["id"].is_string(),
        "the second reply names the incident: {first:#?}"
    );
    let second = replies_to(&bob, r2.as_str());
    assert_eq!(
        second.len(),
        2,
        "one question, one confirmation: {second:#?}"
    );
    assert_eq!(
        second[1]["content"]["org.neighborwatch.incident"]["status"], "confirmed",
        "{second:#?}"
    );
    let in_b = carol.from(&b, &bot_user);
    let count = |t: &str| {
        in_b.iter()
            .filter(|v| v["content"]["msgtype"] == t && v["content"]["m.relates_to"].is_null())
            .count()
    };
    assert_eq!((count("m.text"), count("m.location")), (1, 1), "{in_b:#?}");
    let synapse_log = std::fs::read_to_string(_hs1.dir.join("synapse.log")).unwrap();
    assert!(
        synapse_log
            .lines()
            .any(|l| l.contains(" 429 ") && l.contains("/send/")),
        "the homeserver did refuse some sends"
    );
    // The coordination room was warned, once for this whole episode (issue 24).
    let warned = |v: &serde_json::Value| {
        v["content"]["body"].as_str().is_some_and(|b| {
            b.contains("rate-limiting the bot") && b.contains("override_ratelimit")
        })
    };
    wait_for("the rate-limit warning in coordination", 60, || async {
        alice
            .from(&coord, &bot_user)
            .iter()
            .find(|v| warned(v))
            .cloned()
    })
    .await;
    let n = alice
        .from(&coord, &bot_user)
        .iter()
        .filter(|v| warned(v))
        .count();
    assert_eq!(n, 1, "one warning per rate-limit episode");
}

/// What `neighborwatch demo` printed, by room: the lines under each `── name ──` heading.
fn demo_rooms(out: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut rooms = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("── ").and_then(|l| l.strip_suffix(" ──")) {
            current = Some(name.to_owned());
            rooms.insert(name.to_owned(), Vec::new());
        } else if line.starts_with('▶') {
            current = None;
        } else if let Some(c) = &current
            && let Some(v) = rooms.get_mut(c)
            && !line.trim().is_empty()
        {
            v.push(line.trim().to_owned());
        }
    }
    rooms
}

/// README quick start #1: the demo brings up a network, plays the scenario, prints what
/// each room got, keeps running, and stops cleanly on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_plays_the_scenario_prints_each_room_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_neighborwatch"))
        .arg("demo")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !out.contains("Press Ctrl-C to stop") {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) => {
                out.push_str(&l);
                out.push('\n');
            }
            Err(_) if std::time::Instant::now() < deadline => {}
            Err(_) => {
                let _ = child.kill();
                panic!("the demo did not finish its scenario:\n{out}");
            }
        }
    }
    assert!(
        dir.path()
            .join("demo-data/synapse/homeserver.yaml")
            .exists(),
        "its files are in ./demo-data"
    );
    // Ctrl-C (SIGINT): it stops cleanly.
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..60 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the demo did not stop on Ctrl-C")
    });
    assert!(status.success(), "{status:?}\n{out}");

    let rooms = demo_rooms(&out);
    let lines = |name: &str| {
        rooms
            .get(name)
            .unwrap_or_else(|| panic!("no section for {name}:\n{out}"))
    };
    let alerts = |name: &str| {
        lines(name)
            .iter()
            .filter(|l| l.starts_with("[ALERT"))
            .count()
    };
    // Two neighbors at Hoover Elementary / 31st & Market: one alert there, and in the
    // neighborhoods within alert range; none in Chicago or Fruitvale.
    assert_eq!(alerts("Hoover-Foster"), 1, "{out}");
    assert_eq!(alerts("Back of the Yards"), 0, "{out}");
    assert_eq!(alerts("Fruitvale"), 0, "{out}");
    assert!(
        lines("Back of the Yards")
            .iter()
            .any(|l| l.starts_with("[notice") && l.contains("47th")),
        "Rosa's Spanish report is acknowledged: {out}"
    );
    assert!(
        lines("Prescott (Lower Bottoms)")
            .iter()
            .any(|l| l.starts_with("[notice")),
        "the empty report gets an answer: {out}"
    );
    assert!(!lines("Coordination").is_empty(), "{out}");
    for who in ["maria", "dlee", "rosa", "kim", "tom"] {
        for (room, ls) in &rooms {
            assert!(
                ls.iter().all(|l| !l.contains(&format!("@{who}"))),
                "{room} names a reporter: {ls:#?}"
            );
        }
    }
}

/// A lost state store (the sled database) must never make the bot answer, or relay,
/// sightings from before it was lost, even though it reads room history back on start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_state_store_never_replays_old_sightings() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        bob,
        a,
        dir,
        cfg,
        ..
    } = world().await;
    let log = dir.path().join("bot.log");
    let mut bot = Bot::start(&cfg, &log);
    wait_for_log(&bot, "caught up", 1, 90).await;
    let old = alice
        .say(&a, &[&bot_user, &bob.user], "!r agents at 31st & Market")
        .await;
    let replies_to = |event: &str| alice.replies(&a, &bot_user, event).len();
    wait_for("the acknowledgment", 60, || async {
        (replies_to(old.as_str()) == 1).then_some(())
    })
    .await;
    bot.kill();
    std::fs::remove_dir_all(dir.path().join("state.sled")).unwrap();

    let bot = Bot::start(&cfg, &log);
    wait_for_log(&bot, "caught up", 2, 90).await;
    // Alive: a new report is answered…
    let new = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            "!r two agents at 31st and Market",
        )
        .await;
    wait_for("the new report's acknowledgment", 60, || async {
        alice
            .replies(&a, &bot_user, new.as_str())
            .into_iter()
            .next()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // …but the old one is not answered again, and nothing was confirmed from it.
    assert_eq!(replies_to(old.as_str()), 1);
    assert!(
        alice
            .from(&a, &bot_user)
            .iter()
            .all(|v| v["content"]["msgtype"] != "m.text"),
        "the forgotten sighting did not confirm the new one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alert_the_server_refuses_is_reported_to_coordination_and_never_holds_up_the_room() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        bob,
        carol,
        a,
        b,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    let _bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&carol, &b, &bot_user).await;
    // Room B's admin takes the bot's right to post there.
    carol.set_power_level(&b, &bot_user, -1).await;

    // An incident near B is confirmed: the server refuses the alert for B.
    alice
        .say(&a, &[&bot_user, &bob.user], "!r agents at 31st & Market")
        .await;
    let r2 = bob
        .say(&a, &[&bot_user, &alice.user], "!r agents at Market/31st")
        .await;
    let ack = wait_for("the confirmation acknowledgment", 60, || async {
        bob.replies(&a, &bot_user, r2.as_str()).into_iter().next()
    })
    .await;
    let first = ack["content"]["org.neighborwatch.incident"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let notice = wait_for("the refusal in the coordination room", 90, || async {
        alice.from(&coord, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|s| s.contains("Could not post the alert"))
        })
    })
    .await;
    let body = notice["content"]["body"].as_str().unwrap();
    assert!(
        body.contains(&first) && body.contains(b.as_str()),
        "names the incident and the room: {body}"
    );

    // Once the bot may post again, the next alert reaches B: the refused one did not
    // block the room's queue, and it is not delivered late.
    carol.set_power_level(&b, &bot_user, 0).await;
    alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r agents at 37.81810, -122.28420",
        )
        .await;
    let r4 = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            "!r two agents at 37.81800, -122.28410",
        )
        .await;
    let ack = wait_for("the second confirmation", 60, || async {
        bob.replies(&a, &bot_user, r4.as_str()).into_iter().next()
    })
    .await;
    let second = ack["content"]["org.neighborwatch.incident"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second, "a separate incident");
    wait_for("the second alert in room B", 90, || async {
        carol.from(&b, &bot_user).into_iter().find(|v| {
            v["content"]["msgtype"] == "m.text"
                && v["content"]["org.neighborwatch.incident"]["id"] == second.as_str()
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts: Vec<_> = carol
        .from(&b, &bot_user)
        .into_iter()
        .filter(|v| v["content"]["msgtype"] == "m.text")
        .collect();
    assert_eq!(alerts.len(), 1, "only the second alert: {alerts:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_neighbor_whose_keys_never_reach_the_bot_is_asked_once_to_send_again() {
    let World {
        _hs1,
        bot_user,
        mona,
        alice,
        a,
        dir,
        cfg,
        ..
    } = world().await;
    edit_config(
        &cfg,
        "store_path = \"matrix\"",
        "store_path = \"matrix\"\nask_resend_after_s = 3",
    );
    let eve = verified_only_neighbor(&_hs1, &mona, &a).await;
    let _bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&eve, &a, &bot_user).await;

    let locked = eve
        .say(&a, &[&bot_user, &alice.user], "!r agents at 31st & Market")
        .await;
    let ask = wait_for("the request to send it again", 60, || async {
        eve.replies(&a, &bot_user, locked.as_str())
            .into_iter()
            .next()
    })
    .await;
    let body = ask["content"]["body"].as_str().unwrap();
    assert!(body.contains("please send it again"), "{body}");
    assert_eq!(ask["content"]["msgtype"], "m.notice");
    // Asked once, however often the bot looks at the message again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let asks = eve.replies(&a, &bot_user, locked.as_str()).len();
    assert_eq!(asks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_lost_to_the_network_or_a_failing_gateway_are_delivered_once_and_the_bot_survives_a_homeserver_crash()
 {
    let World {
        mut _hs1,
        _hs2,
        bot_user,
        alice,
        bob,
        carol,
        a,
        b,
        dir,
        cfg,
        ..
    } = world().await;
    // The bot reaches its homeserver through a proxy the test can break.
    let proxy = behind_proxy(&_hs1, &cfg).await;
    let bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&carol, &b, &bot_user).await;

    // The network drops every message the bot sends; the reports still reach it.
    proxy.set(ProxyMode::Drop);
    let r1 = alice
        .say(&a, &[&bot_user, &bob.user], "!r agents at 31st & Market")
        .await;
    let r2 = bob
        .say(&a, &[&bot_user, &alice.user], "!r agents at Market/31st")
        .await;
    wait_for_log(&bot, "input handled; effects queued", 2, 60).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Then the gateway answers 502 for a while.
    proxy.set(ProxyMode::BadGateway);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        carol.from(&b, &bot_user).is_empty() && alice.from(&a, &bot_user).is_empty(),
        "nothing got through while sends were failing"
    );

    // The way out is back: every reply and the alert arrive, each once.
    proxy.set(ProxyMode::Pass);
    for (who, ev) in [(&alice, &r1), (&bob, &r2)] {
        wait_for("the acknowledgment", 90, || async {
            who.replies(&a, &bot_user, ev.as_str()).into_iter().next()
        })
        .await;
    }
    wait_for("the alert in room B", 90, || async {
        carol
            .from(&b, &bot_user)
            .into_iter()
            .find(|v| v["content"]["msgtype"] == "m.text")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for ev in [&r1, &r2] {
        let acks = alice.replies(&a, &bot_user, ev.as_str());
        assert_eq!(acks.len(), 1, "one acknowledgment per report: {acks:#?}");
    }
    let alerts = carol
        .from(&b, &bot_user)
        .into_iter()
        .filter(|v| v["content"]["msgtype"] == "m.text")
        .count();
    assert_eq!(alerts, 1, "exactly one alert");

    // The homeserver crashes and comes back: the bot's sync recovers on its own and the
    // next report is answered.
    _hs1.restart().unwrap();
    let r3 = alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r agents at 37.81810, -122.28420",
        )
        .await;
    wait_for("an answer after the homeserver restarted", 60, || async {
        alice.replies(&a, &bot_user, r3.as_str()).into_iter().next()
    })
    .await;
    assert!(
        bot.log().contains("sync failed; retrying"),
        "the sync did fail:\n{}",
        bot.log()
    );
}

/// Keys that arrive late: the bot keeps what it cannot decrypt, across a restart, and
/// handles it once the keys are there. Here they come the way an operator restores keys
/// into the bot's store (imported from the sender's export while the bot is stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_kept_undecrypted_is_handled_after_a_restart_once_its_keys_arrive() {
    let World {
        _hs1,
        bot_user,
        mona,
        alice,
        a,
        dir,
        cfg,
        ..
    } = world().await;
    let eve = verified_only_neighbor(&_hs1, &mona, &a).await;
    let log = dir.path().join("bot.log");
    let mut bot = Bot::start(&cfg, &log);
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&eve, &a, &bot_user).await;
    let locked = eve
        .say(&a, &[&bot_user, &alice.user], "!r agents at 31st & Market")
        .await;
    wait_for_log(&bot, "caught up", 1, 60).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    bot.kill();
    let acked = |n: &Neighbor| {
        n.replies(&a, &bot_user, locked.as_str())
            .iter()
            .any(|v| v["content"]["org.neighborwatch.incident"]["id"].is_string())
    };
    assert!(!acked(&eve), "the bot could not read it");
    // Kept sealed: the stored files name neither the event nor its room (nor its sender).
    for file in walk(&dir.path().join("state.sled")) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [locked.as_str(), a.as_str(), eve.user.as_str()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle}",
                file.display()
            );
        }
    }

    // The room's keys reach the bot's crypto store while it is down.
    let keys = dir.path().join("keys.txt");
    eve.client
        .encryption()
        .export_room_keys(keys.clone(), "export-passphrase", |s| s.room_id() == a)
        .await
        .unwrap();
    {
        let client = bot_store_client(&_hs1, &dir.path().join("matrix")).await;
        let imported = client
            .encryption()
            .import_room_keys(keys, "export-passphrase")
            .await
            .unwrap();
        assert!(imported.imported_count > 0);
    }

    // Restarted, the bot decrypts the message it kept and acknowledges the report (once:
    // reading the room back finds it too).
    let bot = Bot::start(&cfg, &log);
    wait_for_log(&bot, "a late-decrypted event is handled", 1, 90).await;
    wait_for("the acknowledgment of the kept report", 90, || async {
        acked(&eve).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acks = eve.replies(&a, &bot_user, locked.as_str()).len();
    assert_eq!(acks, 1, "acknowledged once");
}

/// One device for the life of the deployment, cross-signed, with its room keys backed up
/// on the server and a recovery key shown to the operator once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bot_keeps_one_cross_signed_device_with_key_backup_and_shows_its_recovery_key_once() {
    let World {
        _hs1,
        bot_user,
        alice,
        a,
        dir,
        cfg,
        ..
    } = world().await;
    let log = dir.path().join("bot.log");
    let store = dir.path().join("matrix");
    let mut bot = Bot::start(&cfg, &log);
    bot_joined(&alice, &a, &bot_user).await;
    wait_for_log(&bot, "caught up", 1, 60).await;
    let device = bot_session(&store).meta.device_id;
    // Written where the network file says (`recovery_key_file`), never beside the store.
    let key_file = dir.path().join("recovery-key.txt");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let key = key.trim();
    assert!(!key.is_empty());
    assert_eq!(bot.log().matches(key).count(), 1, "shown once");
    for f in walk(&store) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(key),
            "the recovery key is in {}",
            f.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only");
    }

    // Neighbors see the bot's device signed by the bot's own cross-signing identity.
    let uid = matrix_sdk::ruma::OwnedUserId::try_from(bot_user.as_str()).unwrap();
    let enc = alice.client.encryption();
    wait_for("the bot's cross-signed device", 60, || async {
        let _ = enc.request_user_identity(&uid).await;
        let d = enc.get_device(&uid, &device).await.ok()??;
        d.is_cross_signed_by_owner().then_some(())
    })
    .await;

    // Restarted: the same device, no new recovery key, and the backup is on the server.
    bot.kill();
    let bot = Bot::start(&cfg, &log);
    wait_for_log(&bot, "session restored", 1, 60).await;
    wait_for_log(&bot, "caught up", 2, 60).await;
    assert_eq!(bot_session(&store).meta.device_id, device, "same device");
    assert_eq!(bot.log().matches(key).count(), 1, "not shown again");
    assert_eq!(bot.log().matches("Recovery key").count(), 1);
    drop(bot);
    let client = bot_store_client(&_hs1, &store).await;
    assert!(
        client
            .encryption()
            .backups()
            .exists_on_server()
            .await
            .unwrap()
    );
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The incident ID in a bot message's `org.neighborwatch.incident` tag.
fn incident_id(v: &serde_json::Value) -> String {
    v["content"]["org.neighborwatch.incident"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no incident tag: {v}"))
        .to_owned()
}

fn event_id(v: &serde_json::Value) -> matrix_sdk::ruma::OwnedEventId {
    v["event_id"].as_str().unwrap().try_into().unwrap()
}

/// The bot's top-level alert for incident `id` in `room`, as `who` decrypted it.
async fn alert_in(
    who: &Neighbor,
    room: &OwnedRoomId,
    bot_user: &str,
    id: &str,
) -> serde_json::Value {
    wait_for(&format!("the alert for {id}"), 90, || async {
        who.from(room, bot_user).into_iter().find(|v| {
            v["content"]["msgtype"] == "m.text"
                && v["content"]["m.relates_to"].is_null()
                && v["content"]["org.neighborwatch.incident"]["id"] == id
        })
    })
    .await
}

/// The edits of the alert `alert` in `room` whose new text contains `words`, as `who`
/// decrypted them.
fn edits_of(
    who: &Neighbor,
    room: &OwnedRoomId,
    bot_user: &str,
    alert: &serde_json::Value,
    words: &str,
) -> Vec<serde_json::Value> {
    who.from(room, bot_user)
        .into_iter()
        .filter(|v| {
            v["content"]["m.relates_to"]["rel_type"] == "m.replace"
                && v["content"]["m.relates_to"]["event_id"] == alert["event_id"]
                && v["content"]["m.new_content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(words))
        })
        .collect()
}

/// A reply in the thread of `alert` whose text contains `words`.
async fn thread_reply(
    who: &Neighbor,
    room: &OwnedRoomId,
    bot_user: &str,
    alert: &serde_json::Value,
    words: &str,
) -> serde_json::Value {
    wait_for(&format!("a thread reply saying {words:?}"), 90, || async {
        who.from(room, bot_user).into_iter().find(|v| {
            v["content"]["m.relates_to"]["rel_type"] == "m.thread"
                && v["content"]["m.relates_to"]["event_id"] == alert["event_id"]
                && v["content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(words))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifiers_and_moderators_on_both_homeservers_run_the_alert_lifecycle() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        mona,
        alice,
        bob,
        carol,
        a,
        b,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    let mut bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&carol, &b, &bot_user).await;
    bot_joined(&alice, &a, &bot_user).await;

    // Two plain neighbors confirm an incident; it is relayed to A and, across
    // federation, to B.
    let r1 = alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r 2 unmarked black SUVs, agents in vests at 31st & Market",
        )
        .await;
    let ack1 = wait_for("the first acknowledgment", 60, || async {
        alice.replies(&a, &bot_user, r1.as_str()).into_iter().next()
    })
    .await;
    assert_eq!(
        ack1["content"]["org.neighborwatch.incident"]["status"],
        "unverified"
    );
    let id = incident_id(&ack1);
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            "!r agents at 31st and Market St",
        )
        .await;
    wait_for("the confirmation", 60, || async {
        bob.replies(&a, &bot_user, r2.as_str()).into_iter().next()
    })
    .await;
    let alert_b = alert_in(&carol, &b, &bot_user, &id).await;
    let alert_a = alert_in(&alice, &a, &bot_user, &id).await;

    // A plain member's ❌ does nothing; their `!false` gets one quiet reply and changes
    // nothing (both are handled in order, so by the reply the reaction was too).
    bob.react(&a, &event_id(&alert_a), "❌").await;
    let nf = bob.say(&a, &[&bot_user], &format!("!false {id}")).await;
    let refusal = wait_for("the refusal", 60, || async {
        bob.replies(&a, &bot_user, nf.as_str()).into_iter().next()
    })
    .await;
    assert_eq!(refusal["content"]["msgtype"], "m.notice");
    assert!(
        refusal["content"]["body"]
            .as_str()
            .unwrap()
            .contains("Only verifiers and room moderators"),
        "{refusal}"
    );
    assert!(
        edits_of(&alice, &a, &bot_user, &alert_a, "").is_empty(),
        "a neighbor's ❌ and !false edited nothing"
    );

    // The creator of room B (its moderator, on the other homeserver) reacts ❌ to the
    // alert there. Room B is Clawson's, not the incident's home (issue 24): room B's
    // alert shows it marked false alarm there, room A's stays confirmed, and room A and
    // the coordination room are asked to decide.
    carol.react(&b, &event_id(&alert_b), "❌").await;
    let marked = wait_for("the mark in room B", 90, || async {
        edits_of(&carol, &b, &bot_user, &alert_b, "Marked false alarm here")
            .into_iter()
            .next()
    })
    .await;
    let new = &marked["content"]["m.new_content"];
    let body = new["body"].as_str().unwrap();
    assert!(
        body.lines().next().unwrap().contains("FALSE ALARM")
            && body.contains("by a moderator of Clawson & McClymonds"),
        "{body}"
    );
    assert_eq!(
        new["org.neighborwatch.incident"]["status"], "confirmed",
        "the incident itself stays confirmed"
    );
    thread_reply(&carol, &b, &bot_user, &alert_b, "marked false alarm here").await;
    let asks = format!("!false {id}");
    for (who, room) in [(&alice, &a), (&alice, &coord)] {
        wait_for("the home asked to decide", 90, || async {
            who.from(room, &bot_user).into_iter().find(|v| {
                v["content"]["body"].as_str().is_some_and(|t| {
                    t.contains(&id) && t.contains("Clawson & McClymonds") && t.contains(&asks)
                })
            })
        })
        .await;
    }
    // The ask comes after any edit of room A's alert (alerts and edits go out first).
    assert!(
        edits_of(&alice, &a, &bot_user, &alert_a, "").is_empty(),
        "room A's alert is untouched"
    );

    // Room A's moderator decides: a false alarm in every room, on both servers.
    let decided = mona.say(&a, &[&bot_user], &asks).await;
    wait_for("the reply to !false", 60, || async {
        mona.replies(&a, &bot_user, decided.as_str())
            .into_iter()
            .next()
    })
    .await;
    for (who, room, alert) in [(&carol, &b, &alert_b), (&alice, &a, &alert_a)] {
        let edit = wait_for("the false-alarm edit", 90, || async {
            edits_of(who, room, &bot_user, alert, "FALSE ALARM")
                .into_iter()
                .find(|e| {
                    e["content"]["m.new_content"]["org.neighborwatch.incident"]["status"]
                        == "false_alarm"
                })
        })
        .await;
        let new = &edit["content"]["m.new_content"];
        let body = new["body"].as_str().unwrap();
        assert!(
            body.lines().next().unwrap().contains("FALSE ALARM")
                && !body.contains("Marked false alarm here"),
            "{body}"
        );
        assert!(
            !body.contains("SUVs"),
            "the sighting is no longer shown as current: {body}"
        );
        assert!(
            new["org.neighborwatch.incident"]["version"].as_u64()
                > alert["content"]["org.neighborwatch.incident"]["version"].as_u64()
        );
        let reply = thread_reply(who, room, &bot_user, alert, "FALSE ALARM").await;
        assert_eq!(reply["content"]["msgtype"], "m.text", "it notifies");
    }
    wait_for("the coordination notice", 60, || async {
        alice.from(&coord, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|t| t.contains(&id) && t.contains("is now false alarm"))
        })
    })
    .await;

    // Room A's moderator reports at the same place: a new incident, confirmed at once
    // (a moderator's own report), that says a false alarm was marked there.
    let r3 = mona
        .say(
            &a,
            &[&bot_user, &alice.user, &bob.user],
            "!r agents back at 31st & Market",
        )
        .await;
    let ack3 = wait_for("the moderator's acknowledgment", 60, || async {
        mona.replies(&a, &bot_user, r3.as_str()).into_iter().next()
    })
    .await;
    let id2 = incident_id(&ack3);
    assert_ne!(id2, id, "a false alarm is not reopened by a report");
    assert_eq!(
        ack3["content"]["org.neighborwatch.incident"]["status"],
        "confirmed"
    );
    assert!(
        ack3["content"]["body"]
            .as_str()
            .unwrap()
            .contains("marked a false alarm at"),
        "{ack3}"
    );
    let alert2_a = alert_in(&alice, &a, &bot_user, &id2).await;
    let alert2_b = alert_in(&carol, &b, &bot_user, &id2).await;

    // Bob adds a report, then deletes it: it leaves the incident.
    let r4 = bob
        .say(
            &a,
            &[&bot_user, &mona.user],
            "!r SECRETWORD two agents at 31st & Market",
        )
        .await;
    wait_for(
        "the acknowledgment of the report to withdraw",
        60,
        || async { bob.replies(&a, &bot_user, r4.as_str()).into_iter().next() },
    )
    .await;
    bob.redact(&a, &r4).await;
    thread_reply(&alice, &a, &bot_user, &alert2_a, "withdrawn").await;

    // `!clear ID` (any case) by room A's moderator: all clear, in every room.
    let c = mona
        .say(&a, &[&bot_user], &format!("!clear {}", id2.to_lowercase()))
        .await;
    let done = wait_for("the reply to !clear", 60, || async {
        mona.replies(&a, &bot_user, c.as_str()).into_iter().next()
    })
    .await;
    assert!(
        done["content"]["body"]
            .as_str()
            .unwrap()
            .contains("all clear"),
        "{done}"
    );
    wait_for("the all-clear edit in room B", 90, || async {
        edits_of(&carol, &b, &bot_user, &alert2_b, "ALL CLEAR")
            .into_iter()
            .next()
    })
    .await;
    thread_reply(&carol, &b, &bot_user, &alert2_b, "ALL CLEAR").await;

    // In the store: both incidents closed as decided, the withdrawn report and its text
    // gone.
    bot.kill();
    let store = neighborwatch::store::SledStore::open(
        &dir.path().join("state.sled"),
        &neighborwatch::devnet::bot::vault(),
    )
    .unwrap();
    let snap = neighborwatch::store::Store::load(&store).unwrap();
    let status = |i: &str| {
        snap.incidents
            .iter()
            .find(|x| x.id.as_str() == i)
            .map(|x| (x.status, x.reports.len()))
    };
    use neighborwatch::model::Status;
    assert_eq!(status(&id), Some((Status::FalseAlarm, 2)));
    assert_eq!(status(&id2), Some((Status::Resolved, 1)));
    assert!(
        !format!("{snap:?}").contains("SECRETWORD"),
        "the withdrawn report's text is purged"
    );
    // No reporter identity in any alert or edit.
    for v in carol.from(&b, &bot_user) {
        let text = v["content"].to_string();
        for who in [&alice.user, &bob.user, &mona.user, "alice", "bob", "mona"] {
            assert!(!text.contains(who), "room B received an identity: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_accounts_cannot_confirm_but_a_moderator_still_can() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        mona,
        alice,
        bob,
        carol,
        a,
        b,
        dir,
        cfg,
        ..
    } = world().await;
    // Every account here is minutes old: none counts toward confirmation.
    edit_config(
        &cfg,
        "[[neighborhood]]\nid = \"hoover-foster\"",
        "[defaults]\nmin_member_hours = 1\n\n[[neighborhood]]\nid = \"hoover-foster\"",
    );
    let _bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&carol, &b, &bot_user).await;
    bot_joined(&alice, &a, &bot_user).await;
    let mut id = String::new();
    for (who, other, text) in [
        (&alice, &bob, "!r agents at 31st & Market"),
        (&bob, &alice, "!r agents at 31st and Market St"),
    ] {
        let r = who.say(&a, &[&bot_user, &other.user], text).await;
        let ack = wait_for("the acknowledgment", 60, || async {
            who.replies(&a, &bot_user, r.as_str()).into_iter().next()
        })
        .await;
        let body = ack["content"]["body"].as_str().unwrap();
        assert!(body.contains("less than 1 hours"), "{body}");
        assert_eq!(
            ack["content"]["org.neighborwatch.incident"]["status"],
            "unverified"
        );
        id = incident_id(&ack);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !carol
            .from(&b, &bot_user)
            .iter()
            .any(|v| v["content"]["msgtype"] == "m.text"),
        "two fresh accounts raised no alert"
    );
    // Room A's moderator confirms.
    let c = mona.say(&a, &[&bot_user], &format!("!confirm {id}")).await;
    wait_for("the reply to !confirm", 60, || async {
        mona.replies(&a, &bot_user, c.as_str()).into_iter().next()
    })
    .await;
    let alert = alert_in(&carol, &b, &bot_user, &id).await;
    assert!(
        alert["content"]["body"]
            .as_str()
            .unwrap()
            .contains("confirmed by a verifier"),
        "{alert}"
    );
}

/// Puts a proxy the test can break between the bot (its network file `cfg`) and `hs`.
async fn behind_proxy(hs: &Synapse, cfg: &Path) -> Proxy {
    let proxy = Proxy::start(&hs.url).await.unwrap();
    edit_config(
        cfg,
        &format!("homeserver = \"{}\"", hs.url),
        &format!("homeserver = \"{}\"", proxy.url),
    );
    proxy
}

/// `GET path` on `127.0.0.1:port`: the status code and the body.
async fn http_get(port: u16, path: &str) -> (u16, String) {
    let path = path.to_owned();
    let out = tokio::task::spawn_blocking(move || synapse::http_get(port, &path))
        .await
        .unwrap()
        .unwrap_or_default();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// The value of the sample `name` (with its labels) on a metrics page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of a labelled metric's samples over every label set on a metrics page.
fn total(page: &str, metric: &str) -> f64 {
    page.lines()
        .filter_map(|l| l.strip_prefix(metric)?.strip_prefix('{'))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_whose_sends_hang_holds_up_no_other_room_and_gets_its_alerts_once_and_metrics_show_it()
 {
    let World {
        _hs1,
        _hs2,
        bot_user,
        mona,
        carol,
        a,
        b,
        dir,
        cfg,
        ..
    } = world().await;
    // The bot reaches its homeserver through a proxy that can make one room's sends hang;
    // its metrics listen on a free port.
    let proxy = behind_proxy(&_hs1, &cfg).await;
    let port = synapse::free_port().unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{text}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    // At the default log level, as an operator runs it.
    let bot = Bot::start_full(&cfg, &dir.path().join("bot.log"), None, None);
    bot_joined(&mona, &a, &bot_user).await;
    bot_joined(&carol, &b, &bot_user).await;
    wait_for_log(&bot, "caught up", 1, 60).await;
    let (status, _) = http_get(port, "/health").await;
    assert_eq!(status, 200, "healthy once syncing");
    let (_, before) = http_get(port, "/metrics").await;
    assert_eq!(
        total(&before, "neighborwatch_reports_total"),
        0.0,
        "{before}"
    );

    // Room B's sends hang. Room A's moderator reports two incidents near both rooms (a
    // moderator's report confirms at once): room A gets both alerts while B's first one
    // is still hanging.
    proxy.hold_room(b.as_str());
    mona.say(&a, &[&bot_user], "!r agents at 31st & Market")
        .await;
    let first = wait_for("the first alert in room A", 60, || async {
        mona.from(&a, &bot_user)
            .into_iter()
            .find(|v| v["content"]["msgtype"] == "m.text" && v["content"]["m.relates_to"].is_null())
    })
    .await;
    let first = incident_id(&first);
    mona.say(&a, &[&bot_user], "!r agents at 37.81810, -122.28420")
        .await;
    let second = wait_for("the second alert in room A, while B hangs", 25, || async {
        mona.from(&a, &bot_user).into_iter().find_map(|v| {
            let id = v["content"]["org.neighborwatch.incident"]["id"].as_str()?;
            (v["content"]["msgtype"] == "m.text"
                && v["content"]["m.relates_to"].is_null()
                && id != first)
                .then(|| id.to_owned())
        })
    })
    .await;
    assert!(proxy.held() >= 1, "room B's send is still hanging");
    assert!(
        carol.from(&b, &bot_user).is_empty(),
        "nothing reached room B while its sends hung"
    );
    // The operator sees the waiting messages, per room.
    let (status, page) = http_get(port, "/metrics").await;
    assert_eq!(status, 200);
    let depth_b = format!("neighborwatch_outbox_depth{{room=\"{b}\"}}");
    assert!(
        sample(&page, &depth_b).is_some_and(|n| n >= 1.0),
        "room B's queue is visible:\n{page}"
    );

    // The room comes back: each of its alerts arrives once, and its queue empties.
    proxy.release();
    for id in [&first, &second] {
        alert_in(&carol, &b, &bot_user, id).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts: Vec<String> = carol
        .from(&b, &bot_user)
        .iter()
        .filter(|v| v["content"]["msgtype"] == "m.text" && v["content"]["m.relates_to"].is_null())
        .map(incident_id)
        .collect();
    assert_eq!(alerts.len(), 2, "each alert once: {alerts:?}");
    let (_, page) = http_get(port, "/metrics").await;
    assert_eq!(
        sample(&page, &depth_b),
        None,
        "room B's queue is empty:\n{page}"
    );
    assert!(
        sample(&page, "neighborwatch_messages_sent_total{kind=\"alert\"}")
            .is_some_and(|n| n >= 4.0),
        "four alerts accepted:\n{page}"
    );
    assert!(
        sample(&page, "neighborwatch_alert_delay_seconds_count").is_some_and(|n| n >= 4.0),
        "every alert's delay measured:\n{page}"
    );
    assert!(
        sample(&page, "neighborwatch_events_received_total").is_some_and(|n| n >= 2.0),
        "{page}"
    );
    // The statistics moved: two reports, each its own incident, confirmed at once (a
    // moderator's), each relayed to A, B and U (near A, and unencrypted: the alert the
    // bot holds back there still counts as the room alerted, as in `!nw stats`).
    for (metric, n) in [
        ("neighborwatch_reports_total", 2.0),
        ("neighborwatch_incidents_total", 2.0),
        ("neighborwatch_confirmed_total", 2.0),
        ("neighborwatch_confirmation_seconds_count", 2.0),
        ("neighborwatch_rooms_alerted_total", 6.0),
        ("neighborwatch_false_alarms_total", 0.0),
    ] {
        assert_eq!(total(&page, metric), n, "{metric}:\n{page}");
    }
    assert!(
        sample(
            &page,
            "neighborwatch_reports_total{neighborhood=\"hoover-foster\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "labelled by neighborhood:\n{page}"
    );
    assert_eq!(http_get(port, "/health").await.0, 200);
    assert_eq!(http_get(port, "/nothing").await.0, 404);
    // The operator's log says how far each incident went.
    wait_for_log(&bot, &format!("incident={second}"), 1, 10).await;
    assert!(
        bot.log().contains("relayed incident to 2 room(s)"),
        "{}",
        bot.log()
    );
    // At the default level: neighborwatch's own lines say what happened, and the SDK's
    // chatter (an INFO line per sync, ERRORs for the 404s of a first start) is gone.
    let log = bot.log();
    for line in ["joined", "caught up", "metrics on /metrics"] {
        assert!(log.contains(line), "{line:?} missing:\n{log}");
    }
    assert!(!log.contains("ERROR"), "no errors:\n{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains(" INFO "))
            .all(|l| l.contains(" neighborwatch::")),
        "only neighborwatch's own lines at info:\n{log}"
    );
    for private in [
        mona.user.as_str(),
        carol.user.as_str(),
        bot_user.as_str(),
        "31st & Market",
    ] {
        assert!(!log.contains(private), "{private:?} in the log:\n{log}");
    }
}

/// The bot's reply to `event`, as `who` decrypted it: its plain body.
async fn answer(
    who: &Neighbor,
    room: &OwnedRoomId,
    bot_user: &str,
    event: &matrix_sdk::ruma::OwnedEventId,
) -> String {
    let v = wait_for(&format!("the reply to {event}"), 90, || async {
        who.replies(room, bot_user, event.as_str())
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(v["content"]["msgtype"], "m.notice", "{v}");
    v["content"]["body"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_admin_on_the_other_homeserver_narrows_the_alert_radius_and_routing_follows_it_across_a_restart()
 {
    let World {
        _hs1,
        _hs2,
        bot_user,
        mona,
        alice,
        bob,
        carol,
        a,
        b,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    let log = dir.path().join("bot.log");
    let mut bot = Bot::start(&cfg, &log);
    bot_joined(&carol, &b, &bot_user).await;
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&alice, &coord, &bot_user).await;

    // A plain member of room A asks for a wider radius: refused, nothing changes.
    let asked = bob
        .say(&a, &[&bot_user], "!nw settings alert_radius_m 5000")
        .await;
    let refusal = answer(&bob, &a, &bot_user, &asked).await;
    assert!(refusal.contains("Only room admins"), "{refusal}");
    let shown = mona
        .say(&a, &[&bot_user], "!nw settings alert_radius_m")
        .await;
    let shown = answer(&mona, &a, &bot_user, &shown).await;
    assert!(shown.contains("alert_radius_m = 1600 (file)"), "{shown}");

    // Room B's creator, on the other homeserver, narrows Clawson's radius to 200 m.
    let set = carol
        .say(&b, &[&bot_user], "!nw settings alert_radius_m 200")
        .await;
    let done = answer(&carol, &b, &bot_user, &set).await;
    assert!(done.contains("now 200 (was 1600)"), "{done}");
    // The coordination room reads who changed what, old → new, where.
    let audit = wait_for("the audit line", 60, || async {
        alice.from(&coord, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("1600 → 200"))
        })
    })
    .await;
    let audit = audit["content"]["body"].as_str().unwrap();
    assert!(
        audit.contains(&carol.user)
            && audit.contains(b.as_str())
            && audit.contains("alert_radius_m"),
        "{audit}"
    );

    // A sighting at 31st & Market, 312 m from Clawson's area, confirmed by room A's
    // moderator: alerted in room A only (with the file's 1600 m, B got it: the first
    // end-to-end test).
    let r1 = mona
        .say(&a, &[&bot_user], "!r agents at 31st & Market")
        .await;
    let ack = answer(&mona, &a, &bot_user, &r1).await;
    assert!(ack.contains("confirmed"), "{ack}");
    let first = incident_id(
        &mona
            .replies(&a, &bot_user, r1.as_str())
            .into_iter()
            .next()
            .unwrap(),
    );
    alert_in(&alice, &a, &bot_user, &first).await;

    // Restart: the room's value is still in force, shown with who set it.
    bot.kill();
    let mut bot = Bot::start(&cfg, &log);
    let shown = carol
        .say(&b, &[&bot_user], "!nw settings alert_radius_m")
        .await;
    let shown = answer(&carol, &b, &bot_user, &shown).await;
    assert!(
        shown.contains(&format!(
            "alert_radius_m = 200 (room, set by {}",
            carol.user
        )),
        "{shown}"
    );
    let r2 = mona
        .say(&a, &[&bot_user], "!r agents at 32nd & San Pablo")
        .await;
    let ack = answer(&mona, &a, &bot_user, &r2).await;
    assert!(ack.contains("confirmed"), "{ack}");

    // Reset: the file's 1600 m again, and the next sighting reaches room B.
    let reset = carol
        .say(&b, &[&bot_user], "!nw settings alert_radius_m reset")
        .await;
    let done = answer(&carol, &b, &bot_user, &reset).await;
    assert!(done.contains("1600 (was 200)"), "{done}");
    let r3 = mona
        .say(&a, &[&bot_user], "!r agents at West Grand & Market")
        .await;
    answer(&mona, &a, &bot_user, &r3).await;
    let third = incident_id(
        &mona
            .replies(&a, &bot_user, r3.as_str())
            .into_iter()
            .next()
            .unwrap(),
    );
    alert_in(&carol, &b, &bot_user, &third).await;

    // Room B never got the two alerts of the narrow radius (sent before this one, alerts
    // first: they would be here by now).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_b: Vec<String> = carol
        .from(&b, &bot_user)
        .into_iter()
        .filter(|v| v["content"]["m.relates_to"].is_null() && v["content"]["msgtype"] == "m.text")
        .filter_map(|v| {
            v["content"]["org.neighborwatch.incident"]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(in_b, vec![third], "room B's alerts");
    bot.kill();
    let log = bot.log();
    assert!(
        !log.contains(&carol.user) && !log.contains("alert_radius_m 200"),
        "the log names no admin and no command text:\n{log}"
    );
}

/// The incident tagged in the bot's first reply to `event` in `room`.
fn replied_incident(
    who: &Neighbor,
    room: &OwnedRoomId,
    bot_user: &str,
    event: &matrix_sdk::ruma::OwnedEventId,
) -> String {
    incident_id(
        &who.replies(room, bot_user, event.as_str())
            .into_iter()
            .next()
            .expect("a reply"),
    )
}

/// The incidents of the bot's top-level alerts in `room`, in order.
fn alerts_in(who: &Neighbor, room: &OwnedRoomId, bot_user: &str) -> Vec<String> {
    who.from(room, bot_user)
        .into_iter()
        .filter(|v| v["content"]["m.relates_to"].is_null() && v["content"]["msgtype"] == "m.text")
        .filter_map(|v| {
            v["content"]["org.neighborwatch.incident"]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_link_between_far_rooms_on_two_homeservers_carries_alerts_only_after_both_admins_agree_and_stops_when_removed()
 {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        carol,
        dave,
        b,
        c,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    let mut bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&carol, &b, &bot_user).await;
    bot_joined(&dave, &c, &bot_user).await;
    bot_joined(&alice, &coord, &bot_user).await;
    // Room B (Clawson, Oakland, on the other homeserver) has a public alias; room C is in
    // Chicago, 2,968 km away. dave and carol created their rooms: each is its room's admin.
    let alias = carol
        .add_alias(&b, "clawson", &_hs2.server_name)
        .await
        .unwrap();

    // Before any link, Chicago's alert stays in Chicago.
    let r1 = dave
        .say(&c, &[&bot_user], "!r agents at 47th & Ashland")
        .await;
    answer(&dave, &c, &bot_user, &r1).await;
    let first = replied_incident(&dave, &c, &bot_user, &r1);
    alert_in(&dave, &c, &bot_user, &first).await;

    // dave asks for a link, naming room B by its alias on the other homeserver.
    let asked = dave
        .say(&c, &[&bot_user], &format!("!nw relay request {alias}"))
        .await;
    let reply = answer(&dave, &c, &bot_user, &asked).await;
    let id = reply
        .split_whitespace()
        .find(|w| w.starts_with('L') && w.len() == 5)
        .unwrap_or_else(|| panic!("the request names its ID: {reply}"))
        .to_owned();
    assert!(
        reply.contains(&format!("Request {id} sent to Clawson")),
        "{reply}"
    );
    let posted = wait_for("the request in room B", 60, || async {
        carol.from(&b, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("!nw relay accept {id}")))
        })
    })
    .await;
    assert_eq!(posted["content"]["msgtype"], "m.notice");
    assert!(
        posted["content"]["body"]
            .as_str()
            .unwrap()
            .contains(&dave.user),
        "{posted}"
    );

    // The asking side cannot accept for the other; while only asked, nothing crosses.
    let own = dave
        .say(&c, &[&bot_user], &format!("!nw relay accept {id}"))
        .await;
    let refused = answer(&dave, &c, &bot_user, &own).await;
    assert!(refused.contains("Only an admin of Clawson"), "{refused}");
    let r2 = dave
        .say(&c, &[&bot_user], "!r agents at 51st & Ashland")
        .await;
    answer(&dave, &c, &bot_user, &r2).await;

    // Room B's admin accepts: room C hears it, the coordination room reads it.
    let yes = carol
        .say(&b, &[&bot_user], &format!("!nw relay accept {id}"))
        .await;
    let accepted = answer(&carol, &b, &bot_user, &yes).await;
    assert!(accepted.contains("is active"), "{accepted}");
    wait_for("the acceptance in room C", 60, || async {
        dave.from(&c, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("accepted link {id}")))
        })
    })
    .await;
    let audit = wait_for("the audit line", 60, || async {
        alice.from(&coord, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|t| t.contains("waiting for an answer → active"))
        })
    })
    .await;
    assert!(
        audit["content"]["body"]
            .as_str()
            .unwrap()
            .contains(&carol.user),
        "{audit}"
    );

    // Now Chicago's next alert reaches room B across federation, one hop from its origin.
    let r3 = dave
        .say(&c, &[&bot_user], "!r agents at 47th & Damen")
        .await;
    answer(&dave, &c, &bot_user, &r3).await;
    let third = replied_incident(&dave, &c, &bot_user, &r3);
    let in_b = alert_in(&carol, &b, &bot_user, &third).await;
    assert_eq!(
        in_b["content"]["org.neighborwatch.incident"]["hops"], 1,
        "{in_b}"
    );

    // Removed from room B: room C hears it, and the next alert stays in Chicago.
    let rm = carol
        .say(&b, &[&bot_user], &format!("!nw relay remove {id}"))
        .await;
    let removed = answer(&carol, &b, &bot_user, &rm).await;
    assert!(removed.contains("is removed"), "{removed}");
    let r4 = dave
        .say(&c, &[&bot_user], "!r agents at Davis Square")
        .await;
    answer(&dave, &c, &bot_user, &r4).await;
    let fourth = replied_incident(&dave, &c, &bot_user, &r4);
    alert_in(&dave, &c, &bot_user, &fourth).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        alerts_in(&carol, &b, &bot_user),
        vec![third],
        "room B got only the alert sent while the link was accepted"
    );
    bot.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drill_reaches_every_room_quietly_on_both_homeservers_and_clears_itself() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        mona,
        alice,
        bob,
        carol,
        dave,
        a,
        b,
        c,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    let mut bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    bot_joined(&carol, &b, &bot_user).await;
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&alice, &coord, &bot_user).await;

    let refused = bob.say(&a, &[&bot_user], "!nw drill").await;
    assert!(
        answer(&bob, &a, &bot_user, &refused)
            .await
            .contains("Only room admins")
    );
    let started = mona.say(&a, &[&bot_user], "!nw drill").await;
    let ack = answer(&mona, &a, &bot_user, &started).await;
    assert!(ack.starts_with("🧪 DRILL — "), "{ack}");
    let id = replied_incident(&mona, &a, &bot_user, &started);
    // Room A and, across federation, room B get the drill alert: quiet, no mention, DRILL
    // first.
    for (who, room) in [(&alice, &a), (&carol, &b)] {
        let alert = wait_for("the drill alert", 90, || async {
            who.from(room, &bot_user).into_iter().find(|v| {
                v["content"]["m.relates_to"].is_null()
                    && v["content"]["org.neighborwatch.incident"]["id"] == id.as_str()
                    && v["content"]["msgtype"] == "m.notice"
            })
        })
        .await;
        let content = &alert["content"];
        assert!(
            content["body"].as_str().unwrap().starts_with("🧪 DRILL — "),
            "{content}"
        );
        assert_ne!(content["m.mentions"]["room"], true, "{content}");
    }
    wait_for("the drill's audit line", 60, || async {
        alice.from(&coord, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("{} started a drill", mona.user)))
        })
    })
    .await;
    // A minute on, the all clear edits both alerts, still labelled and quiet.
    for (who, room) in [(&alice, &a), (&carol, &b)] {
        let alert = wait_for("the drill alert", 10, || async {
            who.from(room, &bot_user).into_iter().find(|v| {
                v["content"]["m.relates_to"].is_null()
                    && v["content"]["org.neighborwatch.incident"]["id"] == id.as_str()
            })
        })
        .await;
        let edit = wait_for("the drill's all clear", 150, || async {
            edits_of(who, room, &bot_user, &alert, "ALL CLEAR")
                .into_iter()
                .next()
        })
        .await;
        let new = edit["content"]["m.new_content"]["body"].as_str().unwrap();
        assert!(new.starts_with("🧪 DRILL — 🟢 ALL CLEAR"), "{new}");
        let reply = thread_reply(who, room, &bot_user, &alert, "ALL CLEAR").await;
        assert_eq!(reply["content"]["msgtype"], "m.notice", "{reply}");
    }
    // The far-away room heard nothing.
    assert!(dave.from(&c, &bot_user).is_empty());
    bot.kill();
}
