//! Time-driven behaviour (PRODUCT.md §3, §6), with time as an argument and no sleeping:
//! incident expiry (alerts edited, the coordination room told), pending reports that never
//! get a location, and closed incidents leaving memory while the store keeps them.

use chrono::{DateTime, Duration, Utc};
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage};
use neighborwatch::model::Status;
use neighborwatch::store::{MemoryStore, Store};

use crate::support::sent_at;

const HOOVER: &str = "!hooverfoster:oakland.example";
const CLAWSON: &str = "!clawson:eastbay.example";
const COORD: &str = "!coordination:oakland.example";

fn engine() -> Engine<MemoryStore> {
    crate::support::engine(b"timers-test-key-0123456789abcdef")
}

fn report(event: &str, sender: &str, body: &str, at: DateTime<Utc>) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: HOOVER.into(),
        sender: sender.into(),
        ts: at,
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Default::default(),
    }
}

/// (kind of effect, room, body) of each effect.
fn shapes(effects: &[Effect]) -> Vec<(&'static str, String, String)> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Reply { room, message, .. } => ("reply", room.clone(), message.body.clone()),
            Effect::Notice { room, message } => ("notice", room.clone(), message.body.clone()),
            Effect::Relay { room, message, .. } => ("relay", room.clone(), message.body.clone()),
            Effect::Location { room, body, .. } => ("location", room.clone(), body.clone()),
            Effect::Edit { room, message } => ("edit", room.clone(), message.body.clone()),
            Effect::ThreadReply { room, message } => ("thread", room.clone(), message.body.clone()),
            Effect::Fade { room, .. } => ("fade", room.clone(), String::new()),
        })
        .collect()
}

/// A confirmed incident at 31st & Market (two neighbors), relayed to Hoover-Foster and
/// Clawson; the second report at `t0 + 5 min`.
fn confirmed(e: &mut Engine<MemoryStore>, t0: DateTime<Utc>) {
    e.handle(
        &report(
            "$a",
            "@maria:oakland.example",
            "!r agents at 31st & Market",
            t0,
        ),
        t0,
    )
    .unwrap();
    let t1 = t0 + Duration::minutes(5);
    let fx = e
        .handle(
            &report(
                "$b",
                "@dlee:oakland.example",
                "!r agents at 31st and Market St",
                t1,
            ),
            t1,
        )
        .unwrap();
    let relayed: Vec<String> = shapes(&fx)
        .into_iter()
        .filter(|(k, _, _)| *k == "relay")
        .map(|(_, r, _)| r)
        .collect();
    assert_eq!(relayed, [HOOVER, CLAWSON], "relayed to both rooms");
}

#[test]
fn an_incident_with_no_new_report_for_expiry_hours_expires_every_alert_is_edited_and_coordination_told()
 {
    let mut e = engine();
    let t0 = sent_at();
    confirmed(&mut e, t0);
    let last = t0 + Duration::minutes(5);
    // The example network's expiry_hours is 4: a minute before, nothing happens.
    let early = e
        .tick(last + Duration::hours(4) - Duration::minutes(1))
        .unwrap();
    assert!(early.is_empty(), "{early:#?}");
    assert!(e.incidents().all(|i| i.status == Status::Confirmed));
    let fx = shapes(&e.tick(last + Duration::hours(4)).unwrap());
    for room in [HOOVER, CLAWSON] {
        let edit = fx
            .iter()
            .find(|(k, r, _)| *k == "edit" && r == room)
            .unwrap_or_else(|| panic!("no edit in {room}: {fx:#?}"));
        assert!(
            edit.2.contains("EXPIRED") && edit.2.contains("Status: expired"),
            "{}",
            edit.2
        );
        assert!(
            fx.iter().any(|(k, r, b)| *k == "thread"
                && r == room
                && b.contains("no new report for 4 hours")),
            "{fx:#?}"
        );
    }
    assert!(
        fx.iter()
            .any(|(k, r, b)| *k == "notice" && r == COORD && b.contains("expired")),
        "{fx:#?}"
    );
    assert!(e.incidents().all(|i| i.status == Status::Expired));
    assert!(
        e.store()
            .load()
            .unwrap()
            .incidents
            .iter()
            .all(|i| i.status == Status::Expired),
        "stored expired"
    );
    // Expired once: a later tick says nothing more.
    assert!(e.tick(last + Duration::hours(5)).unwrap().is_empty());
}

#[test]
fn a_report_that_never_gets_a_location_is_dropped_after_the_dedupe_window() {
    let mut e = engine();
    let t0 = sent_at();
    let fx = e
        .handle(
            &report(
                "$p",
                "@maria:oakland.example",
                "!r agents by the blue house",
                t0,
            ),
            t0,
        )
        .unwrap();
    assert!(
        shapes(&fx)
            .iter()
            .any(|(k, _, b)| *k == "reply" && b.contains("couldn't place")),
        "{fx:#?}"
    );
    assert_eq!(e.pending().len(), 1);
    assert_eq!(e.store().load().unwrap().pending.len(), 1);
    // dedupe_window_min is 20: kept a minute before, dropped at 20 minutes.
    e.tick(t0 + Duration::minutes(19)).unwrap();
    assert_eq!(e.pending().len(), 1, "still waiting for a location");
    e.tick(t0 + Duration::minutes(20)).unwrap();
    assert!(e.pending().is_empty(), "dropped in memory");
    assert!(
        e.store().load().unwrap().pending.is_empty(),
        "and in the store"
    );
    // A location shared afterwards is a report of its own, not a late completion.
    let share = IncomingMessage {
        event_id: "$loc".into(),
        content: Content::Location {
            geo_uri: "geo:37.8232,-122.2785".into(),
            body: "Location".into(),
        },
        ..report(
            "$loc",
            "@maria:oakland.example",
            "",
            t0 + Duration::minutes(21),
        )
    };
    e.handle(&share, share.ts).unwrap();
    let inc = e.incidents().next().expect("an incident from the share");
    assert_eq!(inc.reports.len(), 1);
    assert_ne!(
        inc.reports[0].event_id.as_deref(),
        Some("$p"),
        "the dropped report stays dropped"
    );
}

#[test]
fn a_closed_incident_leaves_memory_once_its_text_is_purged_and_the_store_keeps_it() {
    let mut e = engine();
    let t0 = sent_at();
    confirmed(&mut e, t0);
    let id = e.incidents().next().unwrap().id;
    // Expired after 4 hours: still in memory (its report text is kept for 24 hours).
    e.tick(t0 + Duration::hours(5)).unwrap();
    assert!(e.incident(&id).is_some_and(|i| i.status == Status::Expired));
    // Once retention_hours (24) purged the text, the closed incident leaves memory...
    e.tick(t0 + Duration::hours(25)).unwrap();
    assert!(e.incident(&id).is_none(), "evicted from memory");
    assert_eq!(e.open_count(), 0);
    // ...and stays in the store, without text, for the record and the statistics.
    let stored = e.store().load().unwrap();
    let inc = stored
        .incidents
        .iter()
        .find(|i| i.id == id)
        .expect("stored");
    assert_eq!(inc.status, Status::Expired);
    assert_eq!(inc.reports.len(), 2);
    assert!(inc.reports.iter().all(|r| r.text.is_none()), "text purged");
    assert_eq!(
        e.stats(Some("hoover-foster"), 48, t0 + Duration::hours(25))
            .confirmed,
        1
    );
    // A report at the same place now opens a new incident, not the evicted one.
    let t = t0 + Duration::hours(26);
    e.handle(
        &report(
            "$c",
            "@kim:oakland.example",
            "!r agents at 31st & Market",
            t,
        ),
        t,
    )
    .unwrap();
    let new = e.incidents().next().expect("a new incident");
    assert_ne!(new.id, id);
}

/// An incident that expires in the same tick that purges its text leaves memory at once;
/// its expiry must still be worded, in every room and in coordination (the bot's outbox
/// and `replay` word the same decisions, before the incident leaves). Replay used to
/// word a tick after that and lost these edits.
#[test]
fn an_incident_that_expires_as_its_text_is_purged_still_edits_every_alert() {
    let mut e = engine();
    let t0 = sent_at();
    confirmed(&mut e, t0);
    // Past both the 4-hour expiry and the 24-hour retention: one tick does both.
    let fx = e.tick(t0 + Duration::hours(25)).unwrap();
    let s = shapes(&fx);
    for room in [HOOVER, CLAWSON] {
        assert!(
            s.iter()
                .any(|(k, r, b)| *k == "edit" && r == room && b.contains("EXPIRED")),
            "the alert in {room} is edited: {s:?}"
        );
        assert!(
            s.iter().any(|(k, r, _)| *k == "thread" && r == room),
            "one thread reply in {room}: {s:?}"
        );
    }
    assert!(
        s.iter().any(|(k, r, _)| *k == "notice" && r == COORD),
        "coordination is told: {s:?}"
    );
    assert_eq!(e.open_count(), 0);
    assert!(
        e.incidents().next().is_none(),
        "the closed incident with no text left memory"
    );
}
