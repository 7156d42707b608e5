//! The container, proven (issue 26): the image built from `docker/Dockerfile`, run with
//! Podman against a real Synapse on 127.0.0.1. The bot in the container logs in, joins
//! encrypted rooms, is healthy by the image's own HEALTHCHECK, answers a report and
//! relays a confirmed alert; stopped, and started again as a new container on the same
//! data volume, it restores its session (no new login, still one device) and reads and
//! answers a report sent while it was down.
//!
//! Run by `scripts/container-check`, which builds the image and names it in
//! `NEIGHBORWATCH_IMAGE`; not part of `cargo test` (`test = false` in Cargo.toml). Each
//! step's time is printed, and written to `CONTAINER_CHECK_TIMES` when that is set.

#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use neighborwatch::devnet::bot::{
    BotOptions, BotProcess, REPORTER_KEY, STORE_PASSPHRASE, bot_joined,
};
use neighborwatch::devnet::client::{Neighbor, wait_for};
use neighborwatch::devnet::synapse::{Synapse, free_port};

const PASSWORD: &str = "correct-horse-battery";
/// The network file as the container sees it (`/config` is mounted read-only).
const CONFIG_IN_CONTAINER: &str = "/config/network.toml";

/// Each step's name and time, printed as it ends and written to `CONTAINER_CHECK_TIMES`.
struct Steps {
    at: Instant,
    done: Vec<(String, f64)>,
}

impl Steps {
    fn new() -> Self {
        Self {
            at: Instant::now(),
            done: Vec::new(),
        }
    }

    fn end(&mut self, name: &str) {
        let secs = self.at.elapsed().as_secs_f64();
        eprintln!("    ok  {name} ({secs:.1} s)");
        self.done.push((name.to_owned(), secs));
        self.at = Instant::now();
        if let Some(file) = std::env::var_os("CONTAINER_CHECK_TIMES") {
            let text: String = self
                .done
                .iter()
                .map(|(n, s)| format!("{n}\t{s:.1}\n"))
                .collect();
            std::fs::write(file, text).expect("writing CONTAINER_CHECK_TIMES");
        }
    }
}

/// `podman --runtime <PODMAN_RUNTIME or runc> args…`, its output; panics if it fails.
fn podman(args: &[&str]) -> String {
    let runtime = std::env::var("PODMAN_RUNTIME").unwrap_or_else(|_| "runc".into());
    let out = Command::new("podman")
        .args(["--runtime", &runtime])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("podman runs (apt-get install -y podman runc)");
    assert!(
        out.status.success(),
        "podman {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image's HEALTHCHECK, run now in container `name`: whether it said healthy.
/// (Podman schedules health checks with systemd timers; where there is no systemd, it
/// logs that it cannot, and the check runs them itself with this.)
fn healthy(name: &str) -> bool {
    let runtime = std::env::var("PODMAN_RUNTIME").unwrap_or_else(|_| "runc".into());
    Command::new("podman")
        .args(["--runtime", &runtime, "healthcheck", "run", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The containers of one check and their data volume: removed when dropped, whatever
/// happened.
struct Deployment {
    image: String,
    volume: String,
    config_dir: PathBuf,
    env_file: PathBuf,
    log: PathBuf,
    names: Vec<String>,
    bot: Option<BotProcess>,
}

impl Deployment {
    /// Starts a new container of the image on the volume, in the foreground of a
    /// `podman run` whose output is appended to the log. Run as `docker/compose.yaml`
    /// runs it: read-only root, no capabilities, secrets from an env file, the network
    /// file read-only in `/config`; on the host's network, to reach Synapse on loopback.
    fn start(&mut self) {
        let name = format!("{}-{}", self.volume, self.names.len() + 1);
        let runtime = std::env::var("PODMAN_RUNTIME").unwrap_or_else(|_| "runc".into());
        let data = format!("{}:/data", self.volume);
        let config = format!("{}:/config:ro", self.config_dir.display());
        let env_file = self.env_file.display().to_string();
        let launcher: Vec<String> = [
            "--runtime",
            runtime.as_str(),
            "run",
            "--rm",
            "--name",
            name.as_str(),
            "--network",
            "host",
            "--ulimit",
            "nofile=4096:4096",
            "--ulimit",
            "nproc=4096:4096",
            "--read-only",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--volume",
            data.as_str(),
            "--volume",
            config.as_str(),
            "--env-file",
            env_file.as_str(),
            self.image.as_str(),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let opts = BotOptions {
            exe: Path::new("podman"),
            password: PASSWORD,
            log_filter: None,
            fault: None,
        };
        let bot =
            BotProcess::start_via(&opts, &launcher, Path::new(CONFIG_IN_CONTAINER), &self.log)
                .expect("podman run starts");
        self.bot = Some(bot);
        self.names.push(name);
    }

    /// The container now running.
    fn current(&self) -> &str {
        self.names.last().expect("a container was started")
    }

    /// `podman stop`: SIGTERM, as `docker stop` and `docker compose down` send; waits for
    /// the bot to exit by itself and for `podman run` to return its exit status.
    async fn stop(&mut self) -> std::process::ExitStatus {
        podman(&["stop", "--time", "60", self.current()]);
        let bot = self.bot.as_mut().expect("running");
        wait_for("podman run to return", 60, || {
            let status = bot.exited();
            async move { status }
        })
        .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log so far; a failure, with the log, if the container has exited.
    fn live_log(&mut self) -> String {
        let log = self.log();
        if let Some(status) = self.bot.as_mut().and_then(BotProcess::exited) {
            panic!("the container exited ({status}):\n{log}");
        }
        log
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let runtime = std::env::var("PODMAN_RUNTIME").unwrap_or_else(|_| "runc".into());
        for name in &self.names {
            let _ = Command::new("podman")
                .args(["--runtime", &runtime, "rm", "--force", "--time", "0", name])
                .output();
        }
        drop(self.bot.take());
        let _ = Command::new("podman")
            .args([
                "--runtime",
                &runtime,
                "volume",
                "rm",
                "--force",
                &self.volume,
            ])
            .output();
    }
}

/// The repository's `docker/` folder.
fn docker_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docker")
}

/// The network file for the container: `docker/network.toml` as shipped (its `[matrix]`
/// and `[storage]` paths in `/data`, the names of its secrets), with this check's
/// homeserver, bot account, metrics port and two neighborhoods: A and B, 900 m apart.
fn network_file(hs: &Synapse, bot: &str, a: &OwnedRoomId, b: &OwnedRoomId, port: u16) -> String {
    let text = std::fs::read_to_string(docker_dir().join("network.toml")).unwrap();
    let mut net: toml::Table = text.parse().expect("docker/network.toml is TOML");
    net.remove("coordination_room");
    net.remove("neighborhood");
    let m = net["matrix"].as_table_mut().expect("a [matrix] section");
    m.insert("homeserver".into(), hs.url.clone().into());
    m.insert("user".into(), bot.into());
    let metrics = net["metrics"].as_table_mut().expect("a [metrics] section");
    metrics.insert("listen".into(), format!("127.0.0.1:{port}").into());
    let mut text = toml::to_string(&net).unwrap();
    text.push_str(&format!(
        r#"
[[neighborhood]]
id = "hoover-foster"
name = "Hoover-Foster"
rooms = ["{a}"]
area = {{ center = [37.8240, -122.2760], radius_m = 600 }}
gazetteer = ["places.geojson"]

[[neighborhood]]
id = "clawson"
name = "Clawson & McClymonds"
rooms = ["{b}"]
area = {{ center = [37.8175, -122.2830], radius_m = 600 }}
gazetteer = ["places.geojson"]
"#
    ));
    text
}

/// The secrets as `docker/.env` holds them: every name `docker/env.example` lists, the
/// bot's three with this check's values.
fn env_file() -> String {
    let example = std::fs::read_to_string(docker_dir().join("env.example")).unwrap();
    let mut out = String::new();
    for name in example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
    {
        let value = match name {
            "NW_PASSWORD" => PASSWORD,
            "NW_STORE_PASSPHRASE" => STORE_PASSPHRASE,
            "NW_REPORTER_KEY" => REPORTER_KEY,
            _ => continue,
        };
        out.push_str(&format!("{name}={value}\n"));
    }
    assert_eq!(
        out.lines().count(),
        3,
        "docker/env.example names NW_PASSWORD, NW_STORE_PASSPHRASE and NW_REPORTER_KEY"
    );
    out
}

/// The config folder mounted at `/config`: readable by the container's user (uid 10001).
fn config_dir(dir: &Path, network: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let cfg = dir.join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("network.toml"), network).unwrap();
    let places = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/places/oakland.geojson");
    std::fs::copy(places, cfg.join("places.geojson")).unwrap();
    for p in [&cfg, &cfg.join("network.toml"), &cfg.join("places.geojson")] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    cfg
}

/// The bot's devices as `who`'s client learns them from the homeserver now.
async fn devices(who: &Neighbor, bot: &str) -> Vec<String> {
    let uid = OwnedUserId::try_from(bot).unwrap();
    let enc = who.client.encryption();
    let _ = enc.request_user_identity(&uid).await;
    let mut ids: Vec<String> = enc
        .get_user_devices(&uid)
        .await
        .unwrap()
        .devices()
        .map(|d| d.device_id().to_string())
        .collect();
    ids.sort();
    ids
}

/// Waits until the bot's log shows what `f` looks for (`Some`), failing at once if the
/// container exits.
async fn wait_for_log<T>(d: &mut Deployment, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
    wait_for(what, 120, || {
        let found = f(&d.live_log());
        async move { found }
    })
    .await
}

/// The bot's answer to `report` in `room`, as `who` decrypted it.
async fn answer(
    who: &Neighbor,
    room: &OwnedRoomId,
    bot: &str,
    report: &str,
    what: &str,
) -> serde_json::Value {
    wait_for(what, 120, || async {
        who.replies(room, bot, report).into_iter().next()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_image_runs_the_bot_and_its_volume_keeps_the_device_across_a_restart() {
    let image = std::env::var("NEIGHBORWATCH_IMAGE").expect(
        "NEIGHBORWATCH_IMAGE names the image to check: run scripts/container-check, which builds it",
    );
    eprintln!("    image {image}");
    let mut steps = Steps::new();

    // A homeserver, the bot's account, three neighbors and two encrypted rooms.
    let hs = Synapse::start().unwrap();
    let bot = hs.register("neighborwatch", PASSWORD).unwrap();
    let alice = Neighbor::new(&hs, "alice", PASSWORD).await.unwrap();
    let bob = Neighbor::new(&hs, "bob", PASSWORD).await.unwrap();
    let carol = Neighbor::new(&hs, "carol", PASSWORD).await.unwrap();
    // Room A's creator (a moderator, whose own report would confirm at once) is mona, so
    // that alice and bob are plain neighbors whose reports need each other.
    let mona = Neighbor::new(&hs, "mona", PASSWORD).await.unwrap();
    let a = mona
        .create_room(&[&alice.user, &bob.user, &bot], true)
        .await;
    let b = carol.create_room(&[&bot], true).await;
    let dir = tempfile::tempdir().unwrap();
    let network = network_file(&hs, &bot, &a, &b, free_port().unwrap());
    let env = dir.path().join("env");
    std::fs::write(&env, env_file()).unwrap();
    let volume = format!("neighborwatch-check-{}", std::process::id());
    podman(&["volume", "create", volume.as_str()]);
    let mut d = Deployment {
        image,
        config_dir: config_dir(dir.path(), &network),
        env_file: env,
        log: dir.path().join("bot.log"),
        volume,
        names: Vec::new(),
        bot: None,
    };
    steps.end("Synapse on 127.0.0.1, 4 neighbors, 2 encrypted rooms");

    d.start();
    wait_for_log(&mut d, "the bot to log in", |log| {
        log.contains("logged in; session saved").then_some(())
    })
    .await;
    steps.end("the container starts and the bot logs in");
    bot_joined(&alice, &a, &bot).await;
    bot_joined(&carol, &b, &bot).await;
    steps.end("it joins both encrypted rooms");
    let name = d.current().to_owned();
    wait_for("the HEALTHCHECK to pass", 120, || async {
        healthy(&name).then_some(())
    })
    .await;
    steps.end("the image's HEALTHCHECK says healthy");

    let r1 = alice
        .say(
            &a,
            &[&bot, &bob.user],
            "!r 2 unmarked SUVs at 31st & Market",
        )
        .await;
    let ack = answer(&alice, &a, &bot, r1.as_str(), "the answer to the report").await;
    let status = &ack["content"]["org.neighborwatch.incident"]["status"];
    assert_eq!(status, "unverified", "one neighbor's report: {ack}");
    steps.end("it answers a report");
    let r2 = bob
        .say(
            &a,
            &[&bot, &alice.user],
            "!r agents in vests near Hoover Elementary",
        )
        .await;
    answer(&bob, &a, &bot, r2.as_str(), "the confirmation").await;
    let alert = wait_for("the alert in room B", 120, || async {
        carol.from(&b, &bot).into_iter().find(|v| {
            v["content"]["msgtype"] == "m.text"
                && v["content"]["org.neighborwatch.incident"]["id"].is_string()
        })
    })
    .await;
    let status = &alert["content"]["org.neighborwatch.incident"]["status"];
    assert_eq!(status, "confirmed", "{alert}");
    steps.end("it relays the confirmed alert to the nearby room");
    let before = devices(&alice, &bot).await;
    assert_eq!(before.len(), 1, "one device: {before:?}");

    let status = d.stop().await;
    assert!(
        status.success(),
        "the bot stops cleanly on SIGTERM: {status}"
    );
    steps.end("podman stop: the bot exits cleanly on SIGTERM");
    // Sent while the bot is down: only its kept device can read it.
    let r3 = alice
        .send_now(&a, "!r agents detaining a man at 32nd & San Pablo")
        .await;

    d.start();
    let started = wait_for_log(&mut d, "the second container's bot to sign in", |log| {
        let logins = log.matches("logged in; session saved").count();
        (log.contains("session restored") || logins > 1).then_some(logins)
    })
    .await;
    assert_eq!(started, 1, "no new login: the volume kept the session");
    steps.end("a new container on the same volume restores the session");
    answer(
        &alice,
        &a,
        &bot,
        r3.as_str(),
        "the answer to the report sent while down",
    )
    .await;
    steps.end("it reads and answers the report sent while it was down");
    let name = d.current().to_owned();
    wait_for("the HEALTHCHECK to pass again", 120, || async {
        healthy(&name).then_some(())
    })
    .await;
    let log = d.log();
    assert_eq!(
        log.matches("logged in; session saved").count(),
        1,
        "no new login"
    );
    let after = devices(&alice, &bot).await;
    assert_eq!(after, before, "the same one device after the restart");
    for utd in ["Failed to decrypt", "undecryptable"] {
        assert!(!log.contains(utd), "the bot logged {utd:?}:\n{log}");
    }
    steps.end("healthy, one device, no new login, nothing undecryptable");
    let status = d.stop().await;
    assert!(status.success(), "stopped: {status}");
    eprintln!(
        "    the bot's one device, before and after: {}\n    ---- the bot's log (both containers) ----\n{}    ---- end of the bot's log ----",
        after[0],
        d.log()
    );
}
