//! `neighborwatch demo`: a whole local network in one command. Synapse on loopback, the
//! bot, neighbors and the rooms of `config/example.toml`; the example scenario played
//! through real encrypted clients; then it keeps running for you to look around.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use matrix_sdk::RoomMemberships;
use matrix_sdk::ruma::OwnedRoomId;

use super::client::{Neighbor, try_wait_for};
use super::synapse::{DevnetError, Synapse};
use crate::config::Network;
use crate::matrix::Secrets;

/// Password of every demo account.
pub const PASSWORD: &str = "demo-password";

/// The scenario, in real time: (sender, neighborhood id, message).
const SCENARIO: &[(&str, &str, &str)] = &[
    (
        "maria",
        "hoover-foster",
        "!r 2 unmarked black SUVs, agents in vests at 31st & Market 2 min ago",
    ),
    (
        "maria",
        "hoover-foster",
        "everyone ok? school drop-off is starting",
    ),
    (
        "dlee",
        "hoover-foster",
        "!report 4 agents stopping parents near Hoover Elementary, plate 7ABC123",
    ),
    (
        "rosa",
        "back-of-the-yards",
        "!aviso dos camionetas blancas en 47th y Ashland hace 5 min",
    ),
    ("kim", "clawson", "!r agents at Mandela & 18th"),
    (
        "kim",
        "clawson",
        "!r <b>ICE</b> van <script>alert(1)</script> at West Grand & Mandela",
    ),
    ("tom", "prescott", "!r"),
];

fn err(e: impl std::fmt::Display) -> DevnetError {
    DevnetError(e.to_string())
}

/// The example network file, rewritten for the local homeserver and the new rooms.
fn network_text(
    example: &Path,
    hs: &Synapse,
    bot: &str,
    rooms: &BTreeMap<String, OwnedRoomId>,
) -> Result<String, DevnetError> {
    let dir = example
        .parent()
        .unwrap_or(Path::new("."))
        .display()
        .to_string();
    let mut text = std::fs::read_to_string(example).map_err(err)?;
    for (old, new) in rooms {
        text = text.replace(&format!("\"{old}\""), &format!("\"{new}\""));
    }
    let mut out = String::new();
    for line in text.lines() {
        let l = line.trim_start();
        let line = if l.starts_with("homeserver =") {
            format!("homeserver = \"{}\"", hs.url)
        } else if l.starts_with("user =") {
            format!("user = \"{bot}\"")
        } else if l.starts_with("store_path =") {
            "store_path = \"matrix\"".to_owned()
        } else if l.starts_with("path =") {
            "path = \"state.sled\"".to_owned()
        } else if l.starts_with("listen =") {
            // The metrics listener, on a free port.
            "listen = \"127.0.0.1:0\"".to_owned()
        } else if l.starts_with("organizers =") {
            "organizers = []".to_owned()
        } else {
            line.replace("\"places/", &format!("\"{dir}/places/"))
                .replace("\"areas/", &format!("\"{dir}/areas/"))
        };
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Runs the demo until `shutdown` resolves. `repo` holds `config/example.toml`.
pub async fn run(
    repo: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DevnetError> {
    let example = repo.join("config/example.toml");
    let template = Network::load(&example).map_err(err)?;
    let data: PathBuf = std::env::current_dir().map_err(err)?.join("demo-data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(err)?;

    println!("▶ starting Synapse on 127.0.0.1 …");
    let hs = Synapse::start_in(&data.join("synapse"), None)?;
    let bot = hs.register("neighborwatch", PASSWORD)?;
    let organizer = Neighbor::new(&hs, "organizer", PASSWORD).await?;
    let mut neighbors = BTreeMap::new();
    for name in ["maria", "dlee", "rosa", "kim", "tom"] {
        neighbors.insert(name, Neighbor::new(&hs, name, PASSWORD).await?);
    }

    println!("▶ creating the encrypted rooms of config/example.toml …");
    let mut invite: Vec<&str> = vec![&bot];
    invite.extend(neighbors.values().map(|n| n.user.as_str()));
    let mut rooms: BTreeMap<String, OwnedRoomId> = BTreeMap::new();
    let mut names: BTreeMap<OwnedRoomId, String> = BTreeMap::new();
    for n in template.neighborhoods() {
        for r in &n.rooms {
            let id = organizer.try_create_room(&invite, true).await?;
            names.insert(id.clone(), n.name.clone());
            rooms.insert(r.to_string(), id);
        }
    }
    if let Some(c) = &template.coordination_room {
        let id = organizer.try_create_room(&[&bot], true).await?;
        names.insert(id.clone(), "Coordination".into());
        rooms.insert(c.clone(), id);
    }
    let config = data.join("network.toml");
    std::fs::write(&config, network_text(&example, &hs, &bot, &rooms)?).map_err(err)?;
    let net = Network::load(&config).map_err(err)?;

    println!("▶ starting the bot …");
    let secrets = Secrets::new(
        PASSWORD,
        "demo-store-passphrase",
        b"demo-reporter-key-0123456789",
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let bot_task = tokio::spawn(async move {
        crate::matrix::run(net, secrets, async {
            let _ = stop_rx.await;
        })
        .await
    });
    for id in rooms.values() {
        let room = organizer.try_room(id).await?;
        try_wait_for("the bot to join the rooms", 120, || async {
            let m = room.members(RoomMemberships::JOIN).await.ok()?;
            m.iter().any(|x| x.user_id().as_str() == bot).then_some(())
        })
        .await?;
    }

    println!("▶ playing the example scenario through real encrypted clients …\n");
    for (who, hood, body) in SCENARIO {
        let Some(n) = neighbors.get(who) else {
            continue;
        };
        let Some(room) = template
            .neighborhood(hood)
            .and_then(|h| h.rooms.first())
            .and_then(|r| rooms.get(&**r))
        else {
            continue;
        };
        println!(
            "  {who:>6} in {:<28} {body}",
            names.get(room).map_or("", String::as_str)
        );
        n.try_say(room, &[&bot], body).await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    println!("\n▶ what each room received from the bot (as the organizer's client decrypted it):");
    for (id, name) in &names {
        println!("\n── {name} ──");
        let got = organizer.from(id, &bot);
        if got.is_empty() {
            println!("   (nothing)");
        }
        for v in got {
            let c = &v["content"];
            let kind = match (
                c["msgtype"].as_str(),
                c["m.relates_to"]["rel_type"].as_str(),
            ) {
                (_, Some("m.replace")) => "edit",
                (_, Some("m.thread")) => "thread",
                (Some("m.text"), _) => "ALERT",
                (Some("m.location"), _) => "location",
                _ => "notice",
            };
            let first = c["body"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            println!("   [{kind:<8}] {first}");
        }
    }
    println!(
        "\n▶ the network keeps running. Log in with any Matrix client (e.g. Element desktop) at\n\n      homeserver: {}\n      user:       organizer   (or maria, dlee, rosa, kim, tom)\n      password:   {PASSWORD}\n\n  and post reports in the rooms, e.g. `!r 3 agents at 14th & Peralta`. Files: {}\n  Press Ctrl-C to stop.",
        hs.url,
        data.display()
    );
    shutdown.await;
    println!("\nstopping …");
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), bot_task).await;
    drop(neighbors);
    drop(hs);
    Ok(())
}
