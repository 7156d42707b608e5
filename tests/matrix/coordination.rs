//! An unencrypted coordination room gets no incident details (issue 24): the bot says
//! so once, in that room, at start, and keeps every incident out of it; after a restart
//! it says so in its log at start, and `neighborwatch check --state` tells organizers.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unencrypted_coordination_room_is_told_once_and_gets_no_incident_details() {
    let World {
        _hs1,
        _hs2,
        bot_user,
        alice,
        bob,
        a,
        coord,
        dir,
        cfg,
        ..
    } = world().await;
    // The organizer's coordination room is replaced by an unencrypted one.
    let open = alice.create_room(&[&bot_user], false).await;
    edit_config(
        &cfg,
        &format!("coordination_room = \"{coord}\""),
        &format!("coordination_room = \"{open}\""),
    );
    let log = dir.path().join("bot.log");
    let mut bot = Bot::start_full(&cfg, &log, None, Some("info,neighborwatch=debug"));
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&alice, &open, &bot_user).await;
    // Said in the log and in the room: at start if the bot is in the room by then, or
    // at the first incident detail kept out.
    // Two reports confirm an incident: A is answered, the coordination room hears
    // nothing of it.
    alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r agents in vests at 31st & Market",
        )
        .await;
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            "!r 4 agents near Hoover Elementary",
        )
        .await;
    wait_for("the confirmation", 60, || async {
        bob.replies(&a, &bot_user, r2.as_str()).into_iter().next()
    })
    .await;
    wait_for_log(
        &bot,
        "incident details kept out of the unencrypted coordination room",
        1,
        60,
    )
    .await;
    wait_for_log(&bot, "the coordination room is not encrypted", 1, 60).await;
    let told = wait_for("the notice in the coordination room", 60, || async {
        alice.from(&open, &bot_user).into_iter().next()
    })
    .await;
    let body = told["content"]["body"].as_str().unwrap_or_default();
    assert!(body.contains("not end-to-end encrypted"), "{body}");

    // Told once; nothing there carries an incident or a place (the notice that room U,
    // also unencrypted, got no alert names only that room).
    let said = alice.from(&open, &bot_user);
    let told_n = said
        .iter()
        .filter(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("coordination room is not end-to-end encrypted"))
        })
        .count();
    assert_eq!(told_n, 1, "{said:#?}");
    for v in &said {
        assert!(
            v["content"]["org.neighborwatch.incident"].is_null(),
            "{v:#?}"
        );
        let body = v["content"]["body"].as_str().unwrap_or_default();
        assert!(!body.contains("31st") && !body.contains("Hoover"), "{body}");
    }

    // Restarted, already in the room: the bot says it at start, and records it for
    // `neighborwatch check --state`.
    bot.kill();
    let log2 = dir.path().join("bot2.log");
    let mut bot = Bot::start(&cfg, &log2);
    wait_for_log(
        &bot,
        "the coordination room is not encrypted: no incident details will be posted there until it is",
        1,
        90,
    )
    .await;
    bot.kill();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neighborwatch"))
        .args(["check", "--config"])
        .arg(&cfg)
        .arg("--state")
        .arg(dir.path().join("state.sled"))
        .env("NW_STORE_PASSPHRASE", STORE_PASSPHRASE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "warning: the coordination room {open} was not end-to-end encrypted"
        )),
        "{stdout}"
    );
}
