//! Reloading the network file while the bot runs (issue 26): `neighborwatch reload` and
//! SIGHUP apply a valid file to the next incident with no restart, refuse an invalid one
//! (changing nothing), and lose or repeat no report that arrives meanwhile.

use super::*;

/// Runs `neighborwatch reload --config cfg`: its exit status and what it printed.
fn reload_command(cfg: &Path) -> (bool, String) {
    neighborwatch_cli(|c| c.args(["reload", "--config"]).arg(cfg))
}

/// The coordination room's notice that says how many rooms incident `id` was relayed to:
/// that number.
async fn relayed_count(alice: &Neighbor, coord: &OwnedRoomId, bot_user: &str, id: &str) -> u32 {
    let v = wait_for(&format!("the relay notice of {id}"), 90, || async {
        alice.from(coord, bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|b| b.starts_with(&format!("Incident {id} confirmed and relayed to")))
        })
    })
    .await;
    let body = v["content"]["body"].as_str().unwrap();
    body.split("relayed to ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a room count in {body:?}"))
}

/// The coordination notice about a reload that contains `words`.
async fn reload_notice(
    alice: &Neighbor,
    coord: &OwnedRoomId,
    bot_user: &str,
    words: &str,
) -> String {
    let v = wait_for(&format!("the reload notice with {words:?}"), 90, || async {
        alice.from(coord, bot_user).into_iter().find(|v| {
            v["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("network file") && b.contains(words))
        })
    })
    .await;
    v["content"]["body"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reloaded_radius_applies_to_the_next_incident_and_an_invalid_file_changes_nothing() {
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

    // With the file's radius (1600 m), a sighting 312 m from Clawson reaches room B.
    let r1 = mona
        .say(&a, &[&bot_user], "!r agents at 31st & Market")
        .await;
    answer(&mona, &a, &bot_user, &r1).await;
    let first = replied_incident(&mona, &a, &bot_user, &r1);
    alert_in(&carol, &b, &bot_user, &first).await;
    let wide = relayed_count(&alice, &coord, &bot_user, &first).await;

    // The organizer narrows Clawson's radius to 200 m and reloads, while reports keep
    // arriving in room A (from plain members, each alone: answered, not confirmed).
    edit_config(
        &cfg,
        "id = \"clawson\"\n",
        "id = \"clawson\"\nalert_radius_m = 200\n",
    );
    let mut during = Vec::new();
    for (i, place) in ["West Grand & Mandela", "DeFremery Park", "14th & Peralta"]
        .iter()
        .enumerate()
    {
        let who = if i % 2 == 0 { &bob } else { &alice };
        during.push((
            who,
            who.send_now(&a, &format!("!r one agent at {place}")).await,
        ));
        if i == 1 {
            let (ok, said) = reload_command(&cfg);
            assert!(ok, "reload succeeded: {said}");
            assert!(
                said.contains("reloaded: 4 neighborhoods") && said.contains("changed:"),
                "{said}"
            );
        }
    }
    let notice = reload_notice(&alice, &coord, &bot_user, "applies now").await;
    assert!(notice.contains("4 neighborhoods"), "{notice}");
    assert!(
        notice.contains("Changed: Clawson & McClymonds."),
        "{notice}"
    );

    // The next incident follows the new radius (243 m from Clawson's area: not room B),
    // with no restart.
    let r2 = mona
        .say(&a, &[&bot_user], "!r agents at West Grand & Market")
        .await;
    answer(&mona, &a, &bot_user, &r2).await;
    let second = replied_incident(&mona, &a, &bot_user, &r2);
    alert_in(&alice, &a, &bot_user, &second).await;
    let narrow = relayed_count(&alice, &coord, &bot_user, &second).await;
    assert!(
        narrow < wide,
        "200 m reaches fewer rooms than 1600 m ({narrow} vs {wide})"
    );

    // An invalid file: `neighborwatch reload` says what `check` says and sends nothing;
    // SIGHUP (as systemd's reload does) is refused by the bot, which says so in
    // coordination and goes on with the 200 m it had.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        good.replace("alert_radius_m = 200", "alert_radius_m = \"wide\""),
    )
    .unwrap();
    let (ok, said) = reload_command(&cfg);
    assert!(!ok, "an invalid file is not sent: {said}");
    assert!(
        said.contains("alert_radius_m") && said.contains("not asked to reload"),
        "{said}"
    );
    let r3 = bob.send_now(&a, "!r one agent at 7th & Mandela").await;
    let hup = Command::new("kill")
        .args(["-HUP", &bot.0.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let refused = reload_notice(&alice, &coord, &bot_user, "was not reloaded").await;
    assert!(refused.contains("alert_radius_m"), "{refused}");
    let r4 = mona
        .say(&a, &[&bot_user], "!r agents at 32nd & San Pablo")
        .await;
    answer(&mona, &a, &bot_user, &r4).await;
    let fourth = replied_incident(&mona, &a, &bot_user, &r4);
    assert_eq!(
        relayed_count(&alice, &coord, &bot_user, &fourth).await,
        narrow,
        "the refused file changed nothing"
    );

    // Every report sent around the reloads was answered, exactly once.
    during.push((&bob, r3));
    for (who, ev) in &during {
        answer(who, &a, &bot_user, ev).await;
        assert_eq!(
            who.replies(&a, &bot_user, ev.as_str()).len(),
            1,
            "one answer to {ev}"
        );
    }
    bot.kill();
}
