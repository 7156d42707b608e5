//! `neighborwatch init` against a real Synapse, with flags as a script gives them (issue
//! 26): the homeserver and login checked, the rooms made with the organizer as admin, the
//! two files written (secrets mode 0600), never overwritten without `--force`, and
//! `neighborwatch run` works on them with no editing.

use std::os::unix::fs::PermissionsExt;

use super::*;

/// `neighborwatch init --no-input` with the common flags and `extra`; exit status and
/// everything it printed.
fn init(
    hs: &Synapse,
    bot: &str,
    organizer: &str,
    dir: &Path,
    password: &str,
    extra: &[&str],
) -> (bool, String) {
    neighborwatch_cli(|c| {
        c.args(["init", "--no-input", "--homeserver", &hs.url, "--user", bot])
            .args(["--organizer", organizer, "--neighborhood", "Hoover-Foster"])
            .args(["--center", "37.8240,-122.2760", "--radius-m", "800"])
            .args(["--timezone", "America/Los_Angeles", "--dir"])
            .arg(dir)
            .args(extra)
            .env("NW_PASSWORD", password)
    })
}

/// The variables of an env file as `init` writes it (`KEY=value`, maybe quoted).
fn env_vars(file: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('\'').to_owned())
        })
        .collect()
}

/// `neighborwatch run` on the written files, with the env file's secrets only; killed
/// when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn init_checks_the_login_makes_the_rooms_writes_the_files_and_the_bot_runs_on_them() {
    let hs = Synapse::start().unwrap();
    let bot_user = hs.register("nwbot", PASSWORD).unwrap();
    let olive = Neighbor::new(&hs, "olive", PASSWORD).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("network.toml");
    let env = dir.path().join("neighborwatch.env");

    // A wrong password: said plainly, and nothing is written.
    let (ok, said) = init(
        &hs,
        &bot_user,
        &olive.user,
        dir.path(),
        "wrong-password",
        &[],
    );
    assert!(
        !ok && said.contains("could not log in") && said.contains("password"),
        "{said}"
    );
    assert!(!cfg.exists() && !env.exists());

    let (ok, said) = init(&hs, &bot_user, &olive.user, dir.path(), PASSWORD, &[]);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("neighborwatch check --config {}", cfg.display()))
            && said.contains(&format!("neighborwatch run --config {}", cfg.display())),
        "the two next commands: {said}"
    );
    assert_eq!(
        std::fs::metadata(&env).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let vars = env_vars(&env);
    let secret = |k: &str| {
        vars.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(secret("NW_PASSWORD"), PASSWORD);
    assert_eq!(
        secret("NW_STORE_PASSPHRASE").len(),
        64,
        "32 random bytes, in hex"
    );
    assert_ne!(secret("NW_STORE_PASSPHRASE"), secret("NW_REPORTER_KEY"));
    let net = neighborwatch::config::Network::load(&cfg).expect("the written file is valid");
    let room = net.neighborhoods()[0].rooms[0].to_string();
    let coord = net.coordination_room.clone().unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(!text.contains(PASSWORD), "no secret in the network file");

    // Again, without --force: refused, and both files are as they were.
    let before = (text.clone(), std::fs::read_to_string(&env).unwrap());
    let (ok, said) = init(&hs, &bot_user, &olive.user, dir.path(), PASSWORD, &[]);
    assert!(!ok && said.contains("--force"), "{said}");
    assert_eq!(
        before,
        (
            std::fs::read_to_string(&cfg).unwrap(),
            std::fs::read_to_string(&env).unwrap()
        )
    );

    // The organizer was invited to both rooms (they joined) and is their admin.
    let room: OwnedRoomId = room.try_into().unwrap();
    let coord: OwnedRoomId = coord.try_into().unwrap();
    for r in [&room, &coord] {
        wait_for("olive to join the room init invited her to", 60, || async {
            let room = olive.client.get_room(r)?;
            (room.state() == matrix_sdk::RoomState::Joined).then_some(())
        })
        .await;
        let joined = olive.room(r).await;
        assert!(
            joined
                .latest_encryption_state()
                .await
                .unwrap()
                .is_encrypted()
        );
        // The power levels change after the invite: as olive's client syncs them.
        let me = olive.client.user_id().unwrap().to_owned();
        wait_for("olive as the room's admin", 60, || async {
            let power = joined.power_levels().await.ok()?;
            (power.for_user(&me) == matrix_sdk::ruma::Int::from(100)).then_some(())
        })
        .await;
    }

    // The bot runs on the two files as written (logging JSON, as under systemd), its
    // secrets only from the env file.
    let log = dir.path().join("bot.log");
    let out = std::fs::File::create(&log).unwrap();
    // As the README says, through a shell: `set -a; . ENV; set +a; neighborwatch run`.
    let _bot = Running(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "set -a; . '{}'; set +a; exec '{}' --log-format json run --config '{}'",
                env.display(),
                env!("CARGO_BIN_EXE_neighborwatch"),
                cfg.display()
            ))
            .env_clear()
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    );
    // One device: init logged its own session out, and the one `run` made is the one
    // olive's client learns of (before she writes: her message's key goes to it).
    let bot_id = matrix_sdk::ruma::UserId::parse(&bot_user).unwrap();
    let enc = olive.client.encryption();
    wait_for(
        "the bot's one device, as olive's client knows it",
        60,
        || async {
            let _ = enc.request_user_identity(&bot_id).await;
            let devices = enc.get_user_devices(&bot_id).await.ok()?;
            let names: Vec<Option<String>> = devices
                .devices()
                .map(|d| d.display_name().map(str::to_owned))
                .collect();
            (names.len() == 1 && names[0].as_deref() != Some("neighborwatch init")).then_some(())
        },
    )
    .await;
    let report = olive
        .say(&room, &[&bot_user], "!r agents at 37.8241,-122.2761")
        .await;
    let ack = answer(&olive, &room, &bot_user, &report).await;
    assert!(
        ack.contains("confirmed"),
        "the organizer is a moderator there: {ack}"
    );
    wait_for("the incident in the coordination room", 90, || async {
        olive.from(&coord, &bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("Incident"))
        })
    })
    .await;
    // Every log line is one JSON object, and names no one.
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(lines.lines().count() >= 3, "{lines}");
    for line in lines.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(
        !lines.contains(&olive.user) && !lines.contains(&bot_user),
        "no user ID in the log:\n{lines}"
    );
}
