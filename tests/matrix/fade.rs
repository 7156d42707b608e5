//! Alerts fade from every server (issue 23): a report's own words stay in its room, and
//! once the incident closes and the retention passes, the bot's messages about it are
//! redacted on both homeservers. Read back through the client-server API (`/messages`)
//! as members on each server, decrypted.

use std::path::Path;

use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::{OwnedRoomId, uint};
use neighborwatch::devnet::bot::{BotOptions, BotProcess, TestClock, bot_joined};
use neighborwatch::devnet::client::{Neighbor, wait_for};
use serde_json::Value;

use crate::{PASSWORD, World, alert_in, edits_of, incident_id, thread_reply, world};

/// The word only the reporter wrote.
const WORD: &str = "quokkablue";

/// One event of a room as a member reads it from their homeserver.
#[derive(Debug)]
struct Seen {
    id: String,
    sender: String,
    /// The decrypted event (the encrypted one when it cannot be decrypted).
    json: Value,
    decrypted: bool,
}

impl Seen {
    fn redacted(&self) -> bool {
        !self.json["unsigned"]["redacted_because"].is_null()
    }

    fn incident(&self) -> Option<&str> {
        self.json["content"]["org.neighborwatch.incident"]["id"].as_str()
    }
}

/// Every event of `room` that `who` can read from their homeserver, newest first.
async fn history(who: &Neighbor, room: &OwnedRoomId) -> Vec<Seen> {
    let r = who.room(room).await;
    let mut out = Vec::new();
    let mut from = None;
    loop {
        let mut opts = MessagesOptions::backward();
        opts.limit = uint!(100);
        opts.from = from.take();
        let page = r.messages(opts).await.expect("/messages");
        for ev in &page.chunk {
            let json: Value = serde_json::from_str(ev.raw().json().get()).unwrap_or_default();
            out.push(Seen {
                id: ev.event_id().map(|e| e.to_string()).unwrap_or_default(),
                sender: ev.sender().map(|s| s.to_string()).unwrap_or_default(),
                decrypted: !ev.kind.is_utd() && json["type"] != "m.room.encrypted",
                json,
            });
        }
        match page.end {
            Some(end) if !page.chunk.is_empty() => from = Some(end),
            _ => break,
        }
    }
    out
}

/// The history of `room` as `who` reads it, once it holds a message of the bot about
/// incident `id` and every message of the bot since `since_ms` is decrypted.
async fn decrypted_history(
    who: &Neighbor,
    room: &OwnedRoomId,
    bot_user: &str,
    id: &str,
    since_ms: i64,
) -> Vec<Seen> {
    wait_for("the bot's messages, decrypted", 60, || async {
        let h = history(who, room).await;
        let bots: Vec<&Seen> = h
            .iter()
            .filter(|s| s.sender == bot_user)
            .filter(|s| {
                s.json["origin_server_ts"]
                    .as_i64()
                    .is_none_or(|t| t >= since_ms)
            })
            .collect();
        (bots.iter().any(|s| s.incident() == Some(id)) && bots.iter().all(|s| s.decrypted))
            .then_some(h)
    })
    .await
}

/// The history of `room` as `who` reads it, once the events `ids` (the bot's, which
/// `who` read decrypted before) are all redacted, their content gone.
async fn redacted_history(who: &Neighbor, room: &OwnedRoomId, ids: &[&str]) -> Vec<Seen> {
    assert!(
        !ids.is_empty(),
        "{} read the bot's messages in {room}",
        who.user
    );
    let h = wait_for("the bot's messages redacted", 120, || async {
        let h = history(who, room).await;
        let gone = ids
            .iter()
            .all(|id| h.iter().any(|s| s.id == *id && s.redacted()));
        gone.then_some(h)
    })
    .await;
    for s in h.iter().filter(|s| ids.contains(&s.id.as_str())) {
        assert!(
            s.json["content"].as_object().is_none_or(|c| c.is_empty()),
            "content gone: {}",
            s.json
        );
        // Redacted once: one redaction event for it on this server.
        let redactions = h
            .iter()
            .filter(|r| r.json["type"] == "m.room.redaction")
            .filter(|r| r.json["content"]["redacts"] == s.id || r.json["redacts"] == s.id)
            .count();
        assert_eq!(redactions, 1, "redactions of {}", s.id);
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn report_words_stay_in_their_room_and_the_bots_messages_are_redacted_on_both_servers_after_the_retention()
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
    let clock = TestClock::new(dir.path().join("clock-offset"));
    let opts = BotOptions {
        exe: Path::new(env!("CARGO_BIN_EXE_neighborwatch")),
        password: PASSWORD,
        log_filter: Some("info"),
        fault: None,
    };
    let _bot = BotProcess::start_with_clock(&opts, &cfg, &dir.path().join("bot.log"), &clock)
        .expect("the bot starts");
    bot_joined(&carol, &b, &bot_user).await;
    bot_joined(&alice, &a, &bot_user).await;
    bot_joined(&alice, &coord, &bot_user).await;

    // Every room is read on both servers: alice (first server) joins B, carol (second
    // server) joins A and the coordination room, before anything is said there.
    for (host, room, guest) in [
        (&mona, &a, &carol),
        (&carol, &b, &alice),
        (&alice, &coord, &carol),
    ] {
        host.invite(room, &guest.user).await;
        host.ready_for(room, &[&guest.user, &bot_user]).await;
    }
    // What the bot says from now on, every reader can decrypt.
    let since_ms = chrono::Utc::now().timestamp_millis() - 1000;
    let readers = [
        (&alice, &a),
        (&carol, &a),
        (&alice, &b),
        (&carol, &b),
        (&alice, &coord),
        (&carol, &coord),
    ];

    // A report with a word of its own, confirmed by a second neighbor: relayed to A and,
    // across federation, to B.
    let r1 = alice
        .say(
            &a,
            &[&bot_user, &bob.user, &carol.user],
            &format!("!r {WORD} two agents in vests at 31st & Market"),
        )
        .await;
    let ack1 = wait_for("the acknowledgment", 60, || async {
        alice.replies(&a, &bot_user, r1.as_str()).into_iter().next()
    })
    .await;
    let id = incident_id(&ack1);
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user, &carol.user],
            "!r agents at 31st and Market St",
        )
        .await;
    wait_for("the confirmation", 60, || async {
        bob.replies(&a, &bot_user, r2.as_str()).into_iter().next()
    })
    .await;
    let alert_b = alert_in(&carol, &b, &bot_user, &id).await;
    let alert_a = alert_in(&alice, &a, &bot_user, &id).await;
    wait_for("the m.location in room B", 60, || async {
        carol
            .from(&b, &bot_user)
            .into_iter()
            .find(|v| v["content"]["msgtype"] == "m.location")
    })
    .await;

    // A moderator's all clear; the alerts are edited and a thread reply said.
    mona.say(&a, &[&bot_user], &format!("!clear {id}")).await;
    wait_for("the all-clear edit in room B", 90, || async {
        edits_of(&carol, &b, &bot_user, &alert_b, "ALL CLEAR")
            .into_iter()
            .next()
    })
    .await;
    thread_reply(&carol, &b, &bot_user, &alert_b, "ALL CLEAR").await;
    thread_reply(&alice, &a, &bot_user, &alert_a, "ALL CLEAR").await;

    // The word is nowhere but in the report and its acknowledgment, in any room, on
    // either server: every message of the bot there (alerts, locations, edits, thread
    // replies, notices) is read decrypted.
    let mut about = Vec::new();
    for (who, room) in readers {
        let seen = decrypted_history(who, room, &bot_user, &id, since_ms).await;
        for s in &seen {
            let has_word = s.json.to_string().to_lowercase().contains(WORD);
            let allowed = *room == a
                && (s.id == r1.as_str()
                    || (s.sender == bot_user
                        && s.json["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
                            == r1.as_str()));
            assert!(
                !has_word || allowed,
                "the report's word in {room} ({}): {}",
                who.user,
                s.json
            );
        }
        assert!(
            *room != a
                || seen
                    .iter()
                    .any(|s| s.id == r1.as_str() && s.json.to_string().contains(WORD)),
            "the report itself is read with its word"
        );
        if *room == b {
            // What fades there: the alert, its location, the edit and the thread reply.
            let bots = || {
                seen.iter()
                    .filter(|s| s.sender == bot_user && s.incident() == Some(&id))
            };
            let c = |s: &Seen| s.json["content"].clone();
            assert!(bots().any(|s| c(s)["msgtype"] == "m.location"));
            assert!(bots().any(|s| c(s)["m.relates_to"]["rel_type"] == "m.replace"));
            assert!(bots().any(|s| c(s)["m.relates_to"]["rel_type"] == "m.thread"));
            assert!(bots().any(|s| c(s)["m.relates_to"].is_null() && c(s)["msgtype"] == "m.text"));
        }
        about.extend(
            seen.iter()
                .filter(|s| s.sender == bot_user && s.incident() == Some(&id))
                .map(|s| (who, room, s.id.clone())),
        );
    }

    // A day on (the retention, 24 hours; that nothing fades before is the core tests'
    // to show): every message of the bot about the incident, in every room, read on
    // both servers, is redacted, edits, thread replies and locations too; the
    // neighbors' own messages are untouched.
    clock.advance(chrono::Duration::hours(25)).unwrap();
    for (who, room) in readers {
        let mine: Vec<&str> = about
            .iter()
            .filter(|(w, r, _)| w.user == who.user && *r == room)
            .map(|(_, _, id)| id.as_str())
            .collect();
        let h = redacted_history(who, room, &mine).await;
        if *room == a {
            let report = h.iter().find(|s| s.id == r1.as_str()).expect("the report");
            assert!(!report.redacted(), "the reporter's message is untouched");
            assert!(report.json.to_string().contains(WORD));
        }
    }
}
