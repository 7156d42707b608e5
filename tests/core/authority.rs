//! Authority follows the incident's home (PRODUCT.md §3, issue 24), through the engine:
//! a false alarm or all clear from another alerted neighborhood holds in its own rooms
//! only and asks the home to decide; a remote confirmation is support; the home, a
//! network-wide verifier and the coordination room decide for everyone. The pure table
//! itself is tested in `src/authority.rs`.

use chrono::{DateTime, Duration, Utc};
use neighborwatch::effect::{Effect, MsgType};
use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
use neighborwatch::model::{IncidentId, ReporterKey, Status};
use neighborwatch::render::Catalogs;
use neighborwatch::store::MemoryStore;

use crate::support::{NETWORK, sent_at};

const HOOVER: &str = "!hooverfoster:oakland.example";
const CLAWSON: &str = "!clawson:eastbay.example";
const COORD: &str = "!coordination:oakland.example";
/// Listed for Hoover-Foster only.
const HOOD_VERIFIER: &str = "@ana.verifier:oakland.example";
/// Listed in `[defaults]`: a verifier everywhere.
const NET_VERIFIER: &str = "@lupe.verifier:oakland.example";
/// A moderator (power 100) of Clawson's room, on the other homeserver.
const CLAWSON_MOD: &str = "@carol:eastbay.example";
const KEY: &[u8] = b"authority-test-key-0123456789";

fn say(event: &str, room: &str, sender: &str, power: i64, body: &str) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: room.into(),
        sender: sender.into(),
        ts: at(),
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Member { power, since: None },
    }
}

fn at() -> DateTime<Utc> {
    sent_at() + Duration::minutes(3)
}

/// An engine with one incident of Hoover-Foster confirmed by two reporters and relayed
/// to Hoover-Foster and Clawson, and its ID.
fn confirmed() -> (Engine<MemoryStore>, IncidentId) {
    let mut e = crate::support::engine(KEY);
    let t = sent_at();
    for (ev, who, body) in [
        (
            "$r1",
            "@maria:x",
            "!r 2 unmarked black SUVs at 31st & Market",
        ),
        ("$r2", "@dlee:x", "!r agents at 31st and Market St"),
    ] {
        e.handle(&say(ev, HOOVER, who, 0, body), t).unwrap();
    }
    let inc = e.incidents().next().expect("an incident");
    assert_eq!(inc.status, Status::Confirmed);
    let rooms: Vec<&str> = inc.relayed_to.iter().map(|r| &**r).collect();
    assert!(
        rooms.contains(&HOOVER) && rooms.contains(&CLAWSON),
        "{rooms:?}"
    );
    let id = inc.id;
    (e, id)
}

fn edits(fx: &[Effect]) -> Vec<(&str, &str)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Edit { room, message } => Some((room.as_str(), message.body.as_str())),
            _ => None,
        })
        .collect()
}

fn notices(fx: &[Effect]) -> Vec<(&str, &str)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Notice { room, message } => Some((room.as_str(), message.body.as_str())),
            _ => None,
        })
        .collect()
}

fn reply(fx: &[Effect]) -> &str {
    fx.iter()
        .find_map(|e| match e {
            Effect::Reply { message, .. } => Some(message.body.as_str()),
            _ => None,
        })
        .expect("a reply")
}

#[test]
fn a_linked_moderators_false_alarm_holds_in_their_rooms_and_asks_the_home() {
    let (mut e, id) = confirmed();
    let version = e.incident(&id).unwrap().version;
    let fx = e
        .handle(
            &say(
                "$f",
                CLAWSON,
                CLAWSON_MOD,
                100,
                &format!("!false {id} they left an hour ago"),
            ),
            at(),
        )
        .unwrap();
    let inc = e.incident(&id).unwrap();
    assert_eq!(
        inc.status,
        Status::Confirmed,
        "the home's alert stays confirmed"
    );
    assert!(inc.version > version, "the change is versioned");
    // Clawson's alert shows it, worded for Clawson; Hoover-Foster's is not touched.
    let ed = edits(&fx);
    assert_eq!(ed.len(), 1, "{ed:?}");
    assert_eq!(ed[0].0, CLAWSON);
    assert!(ed[0].1.contains("FALSE ALARM"), "{}", ed[0].1);
    assert!(
        ed[0]
            .1
            .contains("Marked false alarm here by a moderator of Clawson & McClymonds"),
        "{}",
        ed[0].1
    );
    let thread: Vec<&Effect> = fx
        .iter()
        .filter(|x| matches!(x, Effect::ThreadReply { .. }))
        .collect();
    assert!(
        matches!(thread[..], [Effect::ThreadReply { room, message }]
            if room == CLAWSON && message.msgtype == MsgType::Text
                && message.body.contains("they left an hour ago")),
        "{thread:#?}"
    );
    // The home and the coordination room are asked, once each, with the commands.
    let asked = notices(&fx);
    let rooms: Vec<&str> = asked.iter().map(|(r, _)| *r).collect();
    assert_eq!(rooms, [HOOVER, COORD], "{asked:#?}");
    for (_, body) in &asked {
        assert!(body.contains(id.as_str()), "{body}");
        assert!(body.contains("Clawson & McClymonds"), "{body}");
        assert!(body.contains("they left an hour ago"), "{body}");
        assert!(body.contains(&format!("!false {id}")), "{body}");
        assert!(body.contains(&format!("!confirm {id}")), "{body}");
    }
    // The moderator is told it holds in their rooms only.
    let r = reply(&fx);
    assert!(r.contains("Clawson & McClymonds's rooms only"), "{r}");
    // Again: nothing new.
    let again = e
        .handle(
            &say("$f2", CLAWSON, CLAWSON_MOD, 100, &format!("!false {id}")),
            at(),
        )
        .unwrap();
    assert!(
        edits(&again).is_empty() && notices(&again).is_empty(),
        "{again:#?}"
    );
    assert!(reply(&again).contains("already"), "{}", reply(&again));

    // A report's update keeps Clawson's mark in Clawson's alert.
    let fx = e
        .handle(
            &say(
                "$r3",
                HOOVER,
                "@sam:x",
                0,
                "!r agents still at 31st & Market",
            ),
            at(),
        )
        .unwrap();
    let ed = edits(&fx);
    let clawson = ed.iter().find(|(r, _)| *r == CLAWSON).expect("{ed:?}");
    assert!(
        clawson.1.contains("Marked false alarm here"),
        "{}",
        clawson.1
    );
    let hoover = ed.iter().find(|(r, _)| *r == HOOVER).expect("{ed:?}");
    assert!(hoover.1.contains("CONFIRMED"), "{}", hoover.1);

    // The mark survives a restart.
    let mut e = Engine::open(
        NETWORK.clone(),
        e.into_store(),
        ReporterKey::new(KEY),
        Catalogs::builtin(),
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().marked_here.len(), 1);

    // The home's verifier decides: false alarm everywhere, both alerts edited.
    let fx = e
        .handle(
            &say("$h", HOOVER, HOOD_VERIFIER, 0, &format!("!false {id}")),
            at(),
        )
        .unwrap();
    let inc = e.incident(&id).unwrap();
    assert_eq!(inc.status, Status::FalseAlarm);
    assert!(inc.marked_here.is_empty());
    let ed = edits(&fx);
    for room in [HOOVER, CLAWSON] {
        let (_, body) = ed.iter().find(|(r, _)| *r == room).expect("{ed:?}");
        assert!(body.contains("FALSE ALARM"), "{body}");
        assert!(!body.contains("Marked false alarm here"), "{body}");
    }
}

#[test]
fn the_home_confirming_again_takes_a_linked_mark_back() {
    let (mut e, id) = confirmed();
    e.handle(
        &say("$c", CLAWSON, CLAWSON_MOD, 100, &format!("!clear {id}")),
        at(),
    )
    .unwrap();
    let mark = &e.incident(&id).unwrap().marked_here;
    assert!(
        matches!(&mark[..], [m] if m.status == Status::Resolved && m.by_moderator),
        "{mark:?}"
    );
    // The home's room moderator confirms: Clawson shows it confirmed again.
    let fx = e
        .handle(
            &say(
                "$k",
                HOOVER,
                "@mod:oakland.example",
                50,
                &format!("!confirm {id}"),
            ),
            at(),
        )
        .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    assert!(e.incident(&id).unwrap().marked_here.is_empty());
    let ed = edits(&fx);
    assert!(
        matches!(&ed[..], [(CLAWSON, body)] if body.contains("CONFIRMED")),
        "{ed:?}"
    );
    assert!(reply(&fx).starts_with("Done"), "{}", reply(&fx));
}

#[test]
fn a_linked_moderator_may_take_their_own_mark_back() {
    let (mut e, id) = confirmed();
    e.handle(
        &say("$f", CLAWSON, CLAWSON_MOD, 100, &format!("!false {id}")),
        at(),
    )
    .unwrap();
    let fx = e
        .handle(
            &say("$u", CLAWSON, CLAWSON_MOD, 100, &format!("!confirm {id}")),
            at(),
        )
        .unwrap();
    assert!(e.incident(&id).unwrap().marked_here.is_empty());
    let ed = edits(&fx);
    assert!(
        matches!(&ed[..], [(CLAWSON, body)] if body.contains("CONFIRMED")),
        "{ed:?}"
    );
    // The home is told there is nothing left to decide.
    let told = notices(&fx);
    assert_eq!(told.len(), 2, "{told:#?}");
    assert!(
        told.iter().all(|(_, b)| b.contains("Nothing to decide")),
        "{told:#?}"
    );
    assert!(reply(&fx).starts_with("Taken back"), "{}", reply(&fx));
}

#[test]
fn a_remote_confirmation_is_support_never_the_homes_verification() {
    let (mut e, id) = confirmed();
    e.handle(
        &say("$h", HOOVER, HOOD_VERIFIER, 0, &format!("!false {id}")),
        at(),
    )
    .unwrap();
    // Clawson still sees agents there: its moderator confirms.
    let fx = e
        .handle(
            &say("$s", CLAWSON, CLAWSON_MOD, 100, &format!("!confirm {id}")),
            at(),
        )
        .unwrap();
    let inc = e.incident(&id).unwrap();
    assert_eq!(inc.status, Status::FalseAlarm, "support changes no status");
    assert_eq!(inc.support.len(), 1);
    assert!(edits(&fx).is_empty(), "no alert changes: {fx:#?}");
    let told = notices(&fx);
    let rooms: Vec<&str> = told.iter().map(|(r, _)| *r).collect();
    assert_eq!(rooms, [HOOVER, COORD]);
    assert!(
        told.iter()
            .all(|(_, b)| b.contains("support") && b.contains(&format!("!confirm {id}"))),
        "{told:#?}"
    );
    assert!(
        reply(&fx).starts_with("Recorded as support"),
        "{}",
        reply(&fx)
    );
    // Twice is once.
    let again = e
        .handle(
            &say("$s2", CLAWSON, CLAWSON_MOD, 100, &format!("!confirm {id}")),
            at(),
        )
        .unwrap();
    assert!(notices(&again).is_empty(), "{again:#?}");
    // The home confirms: everywhere, and the support is spent.
    e.handle(
        &say("$k", HOOVER, HOOD_VERIFIER, 0, &format!("!confirm {id}")),
        at(),
    )
    .unwrap();
    let inc = e.incident(&id).unwrap();
    assert_eq!(inc.status, Status::Confirmed);
    assert!(inc.support.is_empty());
}

#[test]
fn the_network_and_the_coordination_room_decide_for_everyone() {
    // A network-wide verifier acting in Clawson's room.
    let (mut e, id) = confirmed();
    let fx = e
        .handle(
            &say("$n", CLAWSON, NET_VERIFIER, 0, &format!("!false {id}")),
            at(),
        )
        .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::FalseAlarm);
    assert_eq!(edits(&fx).len(), 2, "{fx:#?}");
    // A moderator of the coordination room.
    let (mut e, id) = confirmed();
    e.handle(
        &say(
            "$o",
            COORD,
            "@org:oakland.example",
            50,
            &format!("!clear {id}"),
        ),
        at(),
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Resolved);
    // Hoover-Foster's own verifier, acting in Clawson's room: still the home.
    let (mut e, id) = confirmed();
    e.handle(
        &say("$a", CLAWSON, HOOD_VERIFIER, 0, &format!("!false {id}")),
        at(),
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::FalseAlarm);
    // A plain member of Clawson's room: refused, nothing marked.
    let (mut e, id) = confirmed();
    let fx = e
        .handle(
            &say(
                "$p",
                CLAWSON,
                "@dave:eastbay.example",
                0,
                &format!("!false {id}"),
            ),
            at(),
        )
        .unwrap();
    assert!(e.incident(&id).unwrap().marked_here.is_empty());
    assert!(reply(&fx).contains("Only verifiers"), "{}", reply(&fx));
}

#[test]
fn spanish_rooms_word_the_mark_in_spanish() {
    // Back of the Yards (Spanish) is far from Hoover-Foster: its own incident, marked
    // by nobody else, is its home's. The wording check is on the catalogs' side: every
    // key added for the marks exists in Spanish (the catalog test checks all keys).
    let cat = Catalogs::builtin();
    for key in [
        "alert.marked_here_false_alarm",
        "update.marked_here",
        "asked.false_alarm",
        "action.here",
        "who.moderator",
    ] {
        let es = cat.template("es", key);
        let en = cat.template("en", key);
        assert_ne!(es, en, "{key} is translated");
    }
}
