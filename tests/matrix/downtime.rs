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

/// Issue 25: the bot is killed in the middle of a catch-up, after the engine committed
/// every queued report's answer and alert but before the sender sent them all (it starts
/// five sends, then holds the rest). After a restart every report is answered once and
/// every incident's alert reaches room B once: sends recorded as accepted are not sent
/// again, sends whose record the kill lost go again under the same transaction ID (the
/// homeserver answers with the event it has), and the rest go for the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bot_killed_between_commits_and_sends_in_a_catch_up_delivers_every_alert_exactly_once() {
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
    // Each neighbor reports eight places; the default five counted per ten minutes would
    // leave the last three unconfirmed.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[defaults]\nmax_reports_per_10min = 50\n");
    std::fs::write(&cfg, text).unwrap();
    let mut bot = Bot::start(&cfg, &dir.path().join("bot-1.log"));
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&carol, &b, &bot_user).await;
    bot.kill();

    // While it is down: eight places between A and B, some 330 m apart, each reported
    // by alice and by bob (two reporters confirm): eight incidents alerted in B.
    let mut reports = Vec::new();
    for k in 0..8 {
        let lat = 37.8190 + f64::from(k / 2) * 0.003;
        let lon = if k % 2 == 0 { -122.2810 } else { -122.2770 };
        let body = format!("!r agents at {lat:.5}, {lon:.5}");
        reports.push(alice.say(&a, &[&bot_user, &bob.user], &body).await);
        reports.push(bob.say(&a, &[&bot_user, &alice.user], &body).await);
    }

    // The catch-up: everything is decided and committed; five sends start, then the
    // sender holds, and the bot is killed.
    let log = dir.path().join("bot-2.log");
    let mut bot = Bot::start_with(&cfg, &log, Some("hold-outbox-after=5"));
    wait_for_log(&bot, "the outbox is held after 5 sends", 1, 120).await;
    wait_for_log(&bot, "caught up", 1, 120).await;
    wait_for_log(&bot, "effects queued", reports.len(), 120).await;
    bot.kill();
    let alerts_in_b = |incident: Option<&str>| {
        carol
            .from(&b, &bot_user)
            .into_iter()
            .filter(|v| {
                v["content"]["msgtype"] == "m.text"
                    && v["content"]["m.relates_to"].is_null()
                    && incident
                        .is_none_or(|id| v["content"]["org.neighborwatch.incident"]["id"] == id)
            })
            .count()
    };
    let before = alerts_in_b(None);
    assert!(
        before < 8,
        "the kill came before every alert was sent ({before})"
    );

    // Restarted: the rest goes.
    let _bot = Bot::start(&cfg, &dir.path().join("bot-3.log"));
    let answers = wait_for("every report answered", 180, || async {
        let answers: Vec<Vec<serde_json::Value>> = reports
            .iter()
            .map(|r| {
                alice
                    .replies(&a, &bot_user, r.as_str())
                    .into_iter()
                    .chain(bob.replies(&a, &bot_user, r.as_str()))
                    .collect()
            })
            .collect();
        answers.iter().all(|r| !r.is_empty()).then_some(answers)
    })
    .await;
    let incidents: std::collections::BTreeSet<String> =
        answers.iter().map(|r| incident_id(&r[0])).collect();
    assert_eq!(incidents.len(), 8, "eight incidents: {incidents:?}");
    wait_for("every incident's alert in room B", 180, || async {
        incidents
            .iter()
            .all(|id| alerts_in_b(Some(id)) > 0)
            .then_some(())
    })
    .await;
    // A last question in B, answered after what was queued before it.
    let ask = carol.say(&b, &[&bot_user], "!nw incidents").await;
    wait_for("the answer to the last question", 60, || async {
        carol
            .replies(&b, &bot_user, ask.as_str())
            .into_iter()
            .next()
    })
    .await;
    for id in &incidents {
        assert_eq!(alerts_in_b(Some(id)), 1, "incident {id}: one alert in B");
    }
    for (r, answers) in reports.iter().zip(&answers) {
        // Alice's client and bob's each see the answer once: one event.
        let ids: std::collections::BTreeSet<&str> = answers
            .iter()
            .filter_map(|v| v["event_id"].as_str())
            .collect();
        let now: usize = alice.replies(&a, &bot_user, r.as_str()).len();
        assert_eq!(ids.len(), 1, "report {r}: one answer ({ids:?})");
        assert_eq!(now, 1, "report {r}: one answer seen by alice");
    }
}
