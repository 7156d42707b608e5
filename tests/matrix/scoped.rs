//! Scoped authority (issue 24): a relay link is answered only from the room asked, which
//! is kept by ID even when the alias it was asked by moves to another room of the same
//! neighborhood; a moderator's deletion withdraws a report of their room. (Reactions and
//! redactions forged to point at another room's event cannot be sent through an honest
//! Synapse, which refuses cross-room relations and redactions: the core tests,
//! tests/core/scoped.rs, cover them.)

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_asked_by_alias_is_answered_only_from_that_room_after_the_alias_moves() {
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
        dir,
        cfg,
        ..
    } = world().await;
    // Clawson gets a second room, B2, also created (so administered) by carol.
    let b2 = carol.create_room(&[&bot_user], true).await;
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("rooms = [\"{b}\"]"),
        &format!("rooms = [\"{b}\", \"{b2}\"]"),
    );
    assert!(
        text.contains(b2.as_str()),
        "Clawson's rooms are in the file"
    );
    std::fs::write(&cfg, text).unwrap();
    let mut bot = Bot::start(&cfg, &dir.path().join("bot.log"));
    for (who, room) in [(&carol, &b), (&carol, &b2), (&dave, &c), (&alice, &a)] {
        bot_joined(who, room, &bot_user).await;
    }
    let alias = carol
        .add_alias(&b, "clawson-alerts", &_hs2.server_name)
        .await
        .unwrap();

    // dave (Chicago) asks Clawson by the alias of room B.
    let asked = dave
        .say(&c, &[&bot_user], &format!("!nw relay request {alias}"))
        .await;
    let reply = answer(&dave, &c, &bot_user, &asked).await;
    let id = reply
        .split_whitespace()
        .find(|w| w.starts_with('L') && w.len() == 5)
        .unwrap_or_else(|| panic!("the request names its ID: {reply}"))
        .to_owned();

    // The alias moves to B2. The link stays with room B: an admin of B2 is refused,
    // with an answer naming room B.
    let parsed = matrix_sdk::ruma::RoomAliasId::parse(&alias).unwrap();
    carol.client.remove_room_alias(&parsed).await.unwrap();
    carol.client.create_room_alias(&parsed, &b2).await.unwrap();
    let no = carol
        .say(&b2, &[&bot_user], &format!("!nw relay accept {id}"))
        .await;
    let refused = answer(&carol, &b2, &bot_user, &no).await;
    assert!(
        refused.contains("Only an admin of the room this request was sent to")
            && refused.contains(b.as_str()),
        "{refused}"
    );
    // The admin of room B accepts: active.
    let yes = carol
        .say(&b, &[&bot_user], &format!("!nw relay accept {id}"))
        .await;
    let accepted = answer(&carol, &b, &bot_user, &yes).await;
    assert!(accepted.contains("is active"), "{accepted}");

    // In room A, alice and bob report the same sighting (confirmed); room A's moderator
    // deletes bob's report: it is withdrawn, the alert's thread says so.
    let r1 = alice
        .say(
            &a,
            &[&bot_user, &bob.user, &mona.user],
            "!r agents in vests at 31st & Market",
        )
        .await;
    answer(&alice, &a, &bot_user, &r1).await;
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user, &mona.user],
            "!r agents at 31st and Market St",
        )
        .await;
    wait_for("the second acknowledgment", 90, || async {
        bob.replies(&a, &bot_user, r2.as_str()).into_iter().next()
    })
    .await;
    let id_a = replied_incident(&alice, &a, &bot_user, &r1);
    let alert = alert_in(&alice, &a, &bot_user, &id_a).await;
    mona.redact(&a, &r2).await;
    let withdrawn = thread_reply(&alice, &a, &bot_user, &alert, "withdrawn").await;
    assert!(
        withdrawn["content"]["body"]
            .as_str()
            .unwrap()
            .contains("1 independent"),
        "{withdrawn}"
    );
    bot.kill();
}
