//! Nothing missed after downtime (issue 24): what neighbors did while the bot was down,
//! for longer than the dedupe window, takes effect once it is back.

use super::*;

/// The incident ID of the bot's reply to `event` in `room`, once it came.
async fn acked_incident(who: &Neighbor, room: &OwnedRoomId, bot: &str, event: &str) -> String {
    let ack = wait_for("the acknowledgment", 60, || async {
        who.replies(room, bot, event).into_iter().next()
    })
    .await;
    incident_id(&ack)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_and_a_withdrawal_sent_while_the_bot_was_down_take_effect_after_restart() {
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
    // A one-minute dedupe window: the bot is down for longer than that.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[defaults]\ndedupe_window_min = 1\n");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("bot.log");
    let mut bot = Bot::start(&cfg, &log);
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&carol, &b, &bot_user).await;

    // Two plain members of A report two incidents (unverified): one at 31st & Market,
    // one near room B's neighborhood.
    let r1 = alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            "!r agents in vests at 31st & Market",
        )
        .await;
    let first = acked_incident(&alice, &a, &bot_user, r1.as_str()).await;
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            "!r agents at 37.81810, -122.28420",
        )
        .await;
    let second = acked_incident(&bob, &a, &bot_user, r2.as_str()).await;
    assert_ne!(first, second);
    bot.kill();

    // While it is down: A's moderator confirms the second, and alice withdraws hers.
    let confirm = mona
        .say(&a, &[&bot_user], &format!("!confirm {second}"))
        .await;
    alice.redact(&a, &r1).await;
    // Then the room talks on: more than a sync brings of a room's timeline, so the
    // restarted bot's first sync leaves a gap that must be read back far enough.
    for n in 0..15 {
        bob.say(
            &a,
            &[&bot_user, &alice.user],
            &format!("stay safe everyone ({n})"),
        )
        .await;
    }
    // Real time must pass: longer than the dedupe window, which is all that was read
    // back after a restart before.
    tokio::time::sleep(Duration::from_secs(65)).await;

    let _bot = Bot::start(&cfg, &log);
    // The confirmation takes effect: mona is answered, and B gets the alert.
    wait_for("the answer to the confirmation", 90, || async {
        mona.replies(&a, &bot_user, confirm.as_str())
            .into_iter()
            .next()
    })
    .await;
    wait_for("the alert in room B", 90, || async {
        carol.from(&b, &bot_user).into_iter().find(|v| {
            v["content"]["msgtype"] == "m.text"
                && v["content"]["org.neighborwatch.incident"]["id"] == second.as_str()
                && v["content"]["org.neighborwatch.incident"]["status"] == "confirmed"
        })
    })
    .await;
    // The withdrawal took effect: the first incident is gone, so A's moderator asking
    // to confirm it is told the room has no such incident.
    let ask = mona
        .say(&a, &[&bot_user], &format!("!confirm {first}"))
        .await;
    let answer = wait_for("the answer about the withdrawn incident", 60, || async {
        mona.replies(&a, &bot_user, ask.as_str()).into_iter().next()
    })
    .await;
    assert!(
        answer["content"]["org.neighborwatch.incident"].is_null(),
        "no incident (first {first}, second {second}): {answer:#?}"
    );
}
