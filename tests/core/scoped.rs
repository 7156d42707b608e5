//! Issue 24, "reactions and redactions are scoped": a ✅/❌/🟢 reaction counts only on a
//! bot message of the room it is made in (a relation forged to point at another room's
//! message does nothing), a redaction withdraws a report only when it comes from its
//! reporter or a moderator of the report's room, and a relay link is answered only by an
//! admin of the room that was asked.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use neighborwatch::config::Network;
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
use neighborwatch::links::LinkState;
use neighborwatch::model::{IncidentId, ReporterKey, Status};
use neighborwatch::render::Catalogs;
use neighborwatch::store::{MemoryStore, Store};

use crate::support::{NETWORK, open_sled, sent_at};

const HOOVER: &str = "!hooverfoster:oakland.example";
const CLAWSON: &str = "!clawson:eastbay.example";
const PRESCOTT: &str = "!prescott:oakland.example";
const YARDS: &str = "!backoftheyards:chicago.example";
/// A second room of Clawson, added to the example network in the link test.
const CLAWSON_CHAT: &str = "!clawson-chat:eastbay.example";

fn msg(event: &str, room: &str, sender: &str, power: i64, content: Content) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: room.into(),
        sender: sender.into(),
        ts: sent_at(),
        content,
        member: Member { power, since: None },
    }
}

fn text(event: &str, room: &str, sender: &str, power: i64, body: &str) -> IncomingMessage {
    let content = Content::Text {
        body: body.into(),
        notice: false,
        replaces: None,
    };
    msg(event, room, sender, power, content)
}

fn reaction(
    event: &str,
    room: &str,
    sender: &str,
    power: i64,
    to: &str,
    key: &str,
) -> IncomingMessage {
    let content = Content::Reaction {
        key: key.into(),
        relates_to: to.into(),
    };
    msg(event, room, sender, power, content)
}

fn redaction(event: &str, room: &str, sender: &str, power: i64, redacts: &str) -> IncomingMessage {
    let content = Content::Redaction {
        redacts: redacts.into(),
        // The default `redact` level: a moderator's.
        may_redact_others: power >= 50,
    };
    msg(event, room, sender, power, content)
}

/// Handles `m` at `at` and records every message the bot sends as `<event>/<n>` (what
/// the shell does through the outbox).
fn handle<S: Store>(e: &mut Engine<S>, m: &IncomingMessage, at: DateTime<Utc>) -> Vec<Effect> {
    let out = e.handle(m, at).unwrap();
    for (i, effect) in out.iter().enumerate() {
        e.mark_sent(effect, &format!("{}/{i}", m.event_id)).unwrap();
    }
    out
}

/// The event ID the bot's alert about `id` got in `room`.
fn alert_in(out: &[Effect], cause: &str, room: &str) -> String {
    let i = out
        .iter()
        .position(|x| matches!(x, Effect::Relay { room: r, .. } if r == room))
        .unwrap_or_else(|| panic!("no alert in {room}: {out:#?}"));
    format!("{cause}/{i}")
}

fn replies(out: &[Effect]) -> Vec<&str> {
    out.iter()
        .filter_map(|x| match x {
            Effect::Reply { message, .. } => Some(message.body.as_str()),
            _ => None,
        })
        .collect()
}

/// Two neighbors of Hoover-Foster report the same sighting: a confirmed incident
/// alerted in Hoover-Foster and in Clawson next door. Returns its ID and the alerts'
/// event IDs (Hoover-Foster, Clawson).
fn confirmed<S: Store>(e: &mut Engine<S>) -> (IncidentId, String, String) {
    let t = sent_at();
    handle(
        e,
        &text(
            "$r1",
            HOOVER,
            "@maria:x",
            0,
            "!r 2 unmarked black SUVs, agents in vests at 31st & Market",
        ),
        t,
    );
    let out = handle(
        e,
        &text(
            "$r2",
            HOOVER,
            "@dlee:x",
            0,
            "!r agents at 31st and Market St",
        ),
        t + Duration::minutes(1),
    );
    let id = e.incidents().next().expect("an incident").id;
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    (
        id,
        alert_in(&out, "$r2", HOOVER),
        alert_in(&out, "$r2", CLAWSON),
    )
}

/// The reaction scenario, on any store: a forged relation and a reaction from a room
/// the message was not sent to do nothing; the same reaction in the message's own room
/// acts.
fn reactions_act_only_in_the_room_of_the_message<S: Store>(mut e: Engine<S>) {
    let (id, hoover_alert, clawson_alert) = confirmed(&mut e);
    let t = sent_at() + Duration::minutes(3);
    let status = |e: &Engine<S>| e.incident(&id).unwrap().status;

    // Clawson's moderator reacts ❌ in Clawson, but the relation is forged to point at
    // the alert in Hoover-Foster: nothing, not even in Clawson.
    let forged = handle(
        &mut e,
        &reaction(
            "$x1",
            CLAWSON,
            "@carol:eastbay.example",
            100,
            &hoover_alert,
            "❌",
        ),
        t,
    );
    assert!(forged.is_empty(), "{forged:#?}");
    assert_eq!(
        status(&e),
        Status::Confirmed,
        "a forged relation changes nothing"
    );

    // A moderator of Prescott (not alerted) reacts there to Clawson's alert: nothing.
    let elsewhere = handle(
        &mut e,
        &reaction(
            "$x2",
            PRESCOTT,
            "@pat:oakland.example",
            100,
            &clawson_alert,
            "🟢",
        ),
        t,
    );
    assert!(elsewhere.is_empty(), "{elsewhere:#?}");
    assert_eq!(
        status(&e),
        Status::Confirmed,
        "a reaction from another room changes nothing"
    );

    // Hoover-Foster's moderator reacts ❌ in Hoover-Foster to Clawson's alert: nothing
    // either (their standing is Hoover-Foster's, the message is Clawson's).
    let crossed = handle(
        &mut e,
        &reaction(
            "$x3",
            HOOVER,
            "@mona:oakland.example",
            50,
            &clawson_alert,
            "❌",
        ),
        t,
    );
    assert!(crossed.is_empty(), "{crossed:#?}");
    assert_eq!(status(&e), Status::Confirmed);

    // The same moderator's ❌ on the alert of their own room: a false alarm, every alert
    // edited.
    let done = handle(
        &mut e,
        &reaction(
            "$x4",
            HOOVER,
            "@mona:oakland.example",
            50,
            &hoover_alert,
            "❌",
        ),
        t,
    );
    assert_eq!(status(&e), Status::FalseAlarm, "{done:#?}");
    assert!(
        done.iter()
            .any(|x| matches!(x, Effect::Edit { room, .. } if room == HOOVER)),
        "{done:#?}"
    );
}

#[test]
fn a_reaction_counts_only_on_a_bot_message_of_its_own_room_in_memory() {
    reactions_act_only_in_the_room_of_the_message(crate::support::engine(
        b"scoped-test-key-0123456789",
    ));
}

#[test]
fn a_reaction_counts_only_on_a_bot_message_of_its_own_room_in_sled() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(
        NETWORK.clone(),
        open_sled(&dir.path().join("state.sled")),
        ReporterKey::new(b"scoped-test-key-0123456789"),
        Catalogs::builtin(),
    )
    .unwrap();
    reactions_act_only_in_the_room_of_the_message(e);
}

#[test]
fn a_report_is_withdrawn_only_by_its_reporter_or_a_moderator_of_its_room() {
    let mut e = crate::support::engine(b"scoped-test-key-0123456789");
    let t = sent_at();
    for (ev, who) in [("$r1", "@maria:x"), ("$r2", "@dlee:x"), ("$r3", "@kim:x")] {
        handle(
            &mut e,
            &text(ev, HOOVER, who, 0, "!r agents at 31st & Market"),
            t,
        );
    }
    let id = e.incidents().next().unwrap().id;
    let count = |e: &Engine<MemoryStore>| e.incident(&id).unwrap().reporter_count();
    assert_eq!(count(&e), 3);
    let later = t + Duration::minutes(2);

    // Another neighbor deletes maria's report (their server sends the redaction even if
    // it will not apply it): the report stays, nobody is told.
    let other = handle(
        &mut e,
        &redaction("$d1", HOOVER, "@dlee:x", 0, "$r1"),
        later,
    );
    assert!(other.is_empty(), "{other:#?}");
    assert_eq!(
        count(&e),
        3,
        "a neighbor cannot withdraw someone else's report"
    );

    // Clawson's moderator, in Clawson, names a report of Hoover-Foster: not that room.
    let remote = handle(
        &mut e,
        &redaction("$d2", CLAWSON, "@carol:eastbay.example", 100, "$r1"),
        later,
    );
    assert!(remote.is_empty(), "{remote:#?}");
    assert_eq!(
        count(&e),
        3,
        "a redaction from another room withdraws nothing"
    );

    // maria withdraws her own report: it leaves, the alerts say so.
    let own = handle(
        &mut e,
        &redaction("$d3", HOOVER, "@maria:x", 0, "$r1"),
        later,
    );
    assert_eq!(count(&e), 2, "the reporter withdraws it");
    assert!(
        own.iter().any(|x| matches!(x, Effect::Edit { .. })),
        "the alerts are updated: {own:#?}"
    );

    // A moderator of Hoover-Foster deletes dlee's report: it leaves too.
    handle(
        &mut e,
        &redaction("$d4", HOOVER, "@mona:oakland.example", 50, "$r2"),
        later,
    );
    assert_eq!(count(&e), 1, "a moderator of the room withdraws it");
    assert!(
        e.incident(&id)
            .unwrap()
            .reports
            .iter()
            .all(|r| !matches!(r.event_id.as_deref(), Some("$r1" | "$r2"))),
    );
}

#[test]
fn a_report_waiting_for_its_place_is_withdrawn_only_by_its_reporter() {
    let mut e = crate::support::engine(b"scoped-test-key-0123456789");
    let t = sent_at();
    handle(
        &mut e,
        &text("$p1", HOOVER, "@maria:x", 0, "!r agents at Zzyzx Plaza"),
        t,
    );
    assert_eq!(e.pending().len(), 1, "waits for a place");
    handle(&mut e, &redaction("$d1", HOOVER, "@dlee:x", 0, "$p1"), t);
    assert_eq!(e.pending().len(), 1, "a neighbor cannot withdraw it");
    handle(&mut e, &redaction("$d2", HOOVER, "@maria:x", 0, "$p1"), t);
    assert!(e.pending().is_empty(), "its reporter can");
}

/// The example network with a second room for Clawson.
fn two_clawson_rooms() -> Arc<Network> {
    let path = crate::support::example_path();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "rooms = [\"!clawson:eastbay.example\"]",
        &format!("rooms = [\"{CLAWSON}\", \"{CLAWSON_CHAT}\"]"),
    );
    let net = Network::parse(&text, &path).unwrap();
    assert!(
        net.neighborhood_of_room(CLAWSON_CHAT).is_some(),
        "the second room is Clawson's"
    );
    Arc::new(net)
}

#[test]
fn a_link_is_answered_only_by_an_admin_of_the_room_that_was_asked() {
    let mut e = Engine::open(
        two_clawson_rooms(),
        MemoryStore::new(),
        ReporterKey::new(b"scoped-test-key-0123456789"),
        Catalogs::builtin(),
    )
    .unwrap();
    let t = sent_at();
    let asked = handle(
        &mut e,
        &text(
            "$l1",
            YARDS,
            "@rosa:chicago.example",
            100,
            &format!("!nw relay request {CLAWSON}"),
        ),
        t,
    );
    let link = e
        .overlay()
        .links()
        .next()
        .expect("a link is requested")
        .clone();
    assert_eq!(
        link.to_room, CLAWSON,
        "stored by the room asked: {asked:#?}"
    );
    let state = |e: &Engine<MemoryStore>| e.overlay().link(&link.id).unwrap().state;

    // An admin of Clawson's other room accepts, then declines: refused, with an answer
    // that names the room to answer from; the link still waits.
    for (ev, verb) in [("$l2", "accept"), ("$l3", "decline")] {
        let out = handle(
            &mut e,
            &text(
                ev,
                CLAWSON_CHAT,
                "@dana:eastbay.example",
                100,
                &format!("!nw relay {verb} {}", link.id),
            ),
            t,
        );
        let said = replies(&out);
        assert_eq!(said.len(), 1, "{out:#?}");
        assert!(
            said[0].contains("Only an admin of the room") && said[0].contains(CLAWSON),
            "{}",
            said[0]
        );
        assert_eq!(state(&e), LinkState::Requested, "nothing changed");
    }
    // Nothing crosses yet.
    let before = handle(
        &mut e,
        &text(
            "$l4",
            YARDS,
            "@rosa:chicago.example",
            100,
            "!aviso agentes en 47th y Ashland",
        ),
        t,
    );
    assert!(
        !before
            .iter()
            .any(|x| matches!(x, Effect::Relay { room, .. } if room.starts_with("!clawson"))),
        "{before:#?}"
    );

    // An admin of the asked room accepts: the link is active.
    let out = handle(
        &mut e,
        &text(
            "$l5",
            CLAWSON,
            "@carol:eastbay.example",
            100,
            &format!("!nw relay accept {}", link.id),
        ),
        t,
    );
    assert_eq!(state(&e), LinkState::Accepted, "{out:#?}");
    assert!(replies(&out)[0].contains("is active"), "{out:#?}");
}
