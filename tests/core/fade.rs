//! Alerts fade (PRODUCT.md §6, issue 23): once an incident closes, the bot's messages
//! about it are redacted in every room it sent them to, each room at its neighborhood's
//! `alert_retention_hours` (the coordination room at the incident's neighborhood's),
//! once, across a restart too; and the incident stays in the store until they are.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use neighborwatch::config::Network;
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage};
use neighborwatch::model::{IncidentId, ReporterKey, Status};
use neighborwatch::render::Catalogs;
use neighborwatch::store::{MemoryStore, SledStore, Store};

use crate::support::{example_path, open_sled, sent_at};

const HOOVER: &str = "!hooverfoster:oakland.example";
const CLAWSON: &str = "!clawson:eastbay.example";
const COORD: &str = "!coordination:oakland.example";
const KEY: &[u8] = b"fade-test-key-0123456789abcdef";

/// The example network, Hoover-Foster keeping alerts 30 hours and Clawson 48 (the
/// others, and the defaults: 24, their `retention_hours`).
fn network() -> Arc<Network> {
    let text = std::fs::read_to_string(example_path())
        .unwrap()
        .replace(
            r#"rooms = ["!clawson:eastbay.example"]"#,
            "rooms = [\"!clawson:eastbay.example\"]\nalert_retention_hours = 48",
        )
        .replace(
            r#"rooms = ["!hooverfoster:oakland.example"]"#,
            "rooms = [\"!hooverfoster:oakland.example\"]\nalert_retention_hours = 30",
        );
    Arc::new(Network::parse(&text, &example_path()).unwrap())
}

fn open<S: Store>(store: S) -> Engine<S> {
    Engine::open(network(), store, ReporterKey::new(KEY), Catalogs::builtin()).unwrap()
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

/// Marks every effect sent (as the shell does once the server accepts it), each as
/// event `<tag>/<n>`.
fn sent<S: Store>(e: &mut Engine<S>, fx: &[Effect], tag: &str) {
    for (n, f) in fx.iter().enumerate() {
        e.mark_sent(f, &format!("${tag}/{n}")).unwrap();
    }
}

/// Two neighbors confirm an incident at 31st & Market at `t0` (relayed to Hoover-Foster
/// and Clawson, the coordination room told), every message sent; it expires 4 hours
/// after the last report. Returns the incident and when it closed.
fn closed_incident<S: Store>(e: &mut Engine<S>, t0: DateTime<Utc>) -> (IncidentId, DateTime<Utc>) {
    let fx = e
        .handle(
            &report(
                "$a",
                "@maria:oakland.example",
                "!r agents at 31st & Market",
                t0,
            ),
            t0,
        )
        .unwrap();
    sent(e, &fx, "a");
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
    assert!(
        fx.iter()
            .any(|f| matches!(f, Effect::Relay { room, .. } if room == CLAWSON))
    );
    sent(e, &fx, "b");
    let closed = t1 + Duration::hours(4);
    let fx = e.tick(closed).unwrap();
    assert!(
        fx.iter().any(|f| matches!(f, Effect::Edit { .. })),
        "{fx:#?}"
    );
    sent(e, &fx, "expiry");
    let id = e.store().load().unwrap().incidents[0].id;
    assert_eq!(
        e.store().load().unwrap().incidents[0].status,
        Status::Expired
    );
    (id, closed)
}

/// The rooms of the fades in `fx`, sorted.
fn fades(fx: &[Effect], id: IncidentId) -> Vec<String> {
    let mut rooms: Vec<String> = fx
        .iter()
        .filter_map(|f| match f {
            Effect::Fade { room, incident } if *incident == id => Some(room.clone()),
            _ => None,
        })
        .collect();
    rooms.sort();
    rooms
}

#[test]
fn the_bots_messages_fade_once_per_room_at_that_rooms_alert_retention_and_never_before() {
    let mut e = open(MemoryStore::new());
    let (id, closed) = closed_incident(&mut e, sent_at());
    // Everything the bot said about it is listed, per room: the acknowledgments in
    // Hoover-Foster, the alerts, locations, edits and thread replies, the notices.
    let listed = |e: &Engine<MemoryStore>, room| e.store().sent_events(&id, room).unwrap();
    assert!(listed(&e, HOOVER).len() >= 6, "{:?}", listed(&e, HOOVER));
    assert!(listed(&e, CLAWSON).len() >= 4, "{:?}", listed(&e, CLAWSON));
    assert!(!listed(&e, COORD).is_empty());
    let before = e
        .tick(closed + Duration::hours(30) - Duration::minutes(1))
        .unwrap();
    assert!(fades(&before, id).is_empty(), "not before: {before:#?}");
    // Hoover-Foster keeps alerts 30 hours, and so does the coordination room (the
    // incident is Hoover-Foster's, not the defaults' 24); Clawson 48.
    let at30 = e.tick(closed + Duration::hours(30)).unwrap();
    assert_eq!(fades(&at30, id), [COORD, HOOVER]);
    assert!(
        at30.iter().all(|f| matches!(f, Effect::Fade { .. })),
        "{at30:#?}"
    );
    assert!(
        fades(&e.tick(closed + Duration::hours(36)).unwrap(), id).is_empty(),
        "once"
    );
    let at48 = e.tick(closed + Duration::hours(48)).unwrap();
    assert_eq!(fades(&at48, id), [CLAWSON]);
    assert!(fades(&e.tick(closed + Duration::hours(60)).unwrap(), id).is_empty());
    // Done (by the shell: here, marked sent), the list is empty.
    sent(&mut e, &at30, "fade30");
    sent(&mut e, &at48, "fade48");
    assert!(e.store().sent_rooms(&id).unwrap().is_empty());
}

#[test]
fn a_verifiers_all_clear_starts_the_retention_and_a_room_may_keep_alerts_longer_by_command() {
    let mut e = open(MemoryStore::new());
    let t0 = sent_at();
    let fx = e
        .handle(
            &report(
                "$a",
                "@maria:oakland.example",
                "!r agents at 31st & Market",
                t0,
            ),
            t0,
        )
        .unwrap();
    sent(&mut e, &fx, "a");
    // A room admin of Hoover-Foster keeps its alerts 3 days; less than its
    // retention_hours, or more than 28 days, is refused.
    let admin = |event: &str, body: &str, at| IncomingMessage {
        member: neighborwatch::incident::Member {
            power: 100,
            ..Default::default()
        },
        ..report(event, "@admin:oakland.example", body, at)
    };
    for (n, (value, ok)) in [("23", false), ("673", false), ("72", true)]
        .into_iter()
        .enumerate()
    {
        let fx = e
            .handle(
                &admin(
                    &format!("$set{n}"),
                    &format!("!nw settings alert_retention_hours {value}"),
                    t0,
                ),
                t0,
            )
            .unwrap();
        let body = match fx.first() {
            Some(Effect::Reply { message, .. }) => message.body.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(body.starts_with("Done"), ok, "{value}: {body}");
        if !ok {
            assert!(
                body.contains("at least retention_hours (24) and at most 672"),
                "{body}"
            );
        }
    }
    assert_eq!(e.network().settings("hoover-foster").alert_retention(), 72);
    // The report alone leaves it unconfirmed: a moderator's !clear closes it.
    let id = e.store().load().unwrap().incidents[0].id;
    let cleared = t0 + Duration::hours(1);
    let fx = e
        .handle(&admin("$clear", &format!("!clear {id}"), cleared), cleared)
        .unwrap();
    sent(&mut e, &fx, "clear");
    assert_eq!(e.incident(&id).map(|i| i.status), Some(Status::Resolved));
    assert!(fades(&e.tick(cleared + Duration::hours(71)).unwrap(), id).is_empty());
    let fx = e.tick(cleared + Duration::hours(72)).unwrap();
    assert!(fades(&fx, id).contains(&HOOVER.to_owned()), "{fx:#?}");
}

#[test]
fn a_fade_queued_before_a_restart_is_not_queued_again_and_its_list_survives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sled");
    let mut e = open(open_sled(&path)).with_outbox();
    let (id, closed) = closed_incident(&mut e, sent_at());
    let at30 = e.tick(closed + Duration::hours(30)).unwrap();
    assert_eq!(fades(&at30, id), [COORD, HOOVER]);
    // A crash before the shell redacted anything.
    drop(e);
    let store: SledStore = open_sled(&path);
    let queued: Vec<Effect> = store
        .outbox()
        .unwrap()
        .into_iter()
        .map(|q| q.entry.effect)
        .collect();
    assert_eq!(
        fades(&queued, id),
        [COORD, HOOVER],
        "the redactions wait in the outbox"
    );
    assert!(!store.sent_events(&id, HOOVER).unwrap().is_empty());
    let mut e = open(store).with_outbox();
    for h in [31, 36, 47] {
        let fx = e.tick(closed + Duration::hours(h)).unwrap();
        assert!(
            fades(&fx, id).is_empty(),
            "at {h} h, after the restart: {fx:#?}"
        );
    }
    assert_eq!(
        fades(&e.tick(closed + Duration::hours(48)).unwrap(), id),
        [CLAWSON]
    );
    let queued: Vec<Effect> = e
        .store()
        .outbox()
        .unwrap()
        .into_iter()
        .map(|q| q.entry.effect)
        .collect();
    assert_eq!(
        fades(&queued, id),
        [CLAWSON, COORD, HOOVER],
        "each room once"
    );
}

#[test]
fn an_incident_stays_in_the_store_past_the_statistics_window_until_its_messages_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sled");
    let mut e = open(open_sled(&path));
    let (id, closed) = closed_incident(&mut e, sent_at());
    let mut fx = e.tick(closed + Duration::hours(30)).unwrap();
    fx.extend(e.tick(closed + Duration::hours(48)).unwrap());
    assert_eq!(fades(&fx, id), [CLAWSON, COORD, HOOVER]);
    // 31 days on, the redactions are still not done (a homeserver down): it stays.
    let in_store = |e: &Engine<SledStore>| {
        e.store()
            .load()
            .unwrap()
            .incidents
            .iter()
            .any(|i| i.id == id)
    };
    e.tick(closed + Duration::days(31)).unwrap();
    assert!(in_store(&e), "kept while its messages are not redacted");
    drop(e);
    let mut e = open(open_sled(&path));
    e.tick(closed + Duration::days(32)).unwrap();
    assert!(in_store(&e), "after a restart too");
    // Once redacted, it leaves at the next hourly look, with its list.
    sent(&mut e, &fx, "fade");
    e.tick(closed + Duration::days(33)).unwrap();
    assert!(!in_store(&e));
    assert!(e.store().sent_rooms(&id).unwrap().is_empty());
}

#[test]
fn a_withdrawn_unconfirmed_report_fades_the_bots_acknowledgment_at_once() {
    let mut e = open(MemoryStore::new()).with_outbox();
    let t0 = sent_at();
    let fx = e
        .handle(
            &report(
                "$a",
                "@maria:oakland.example",
                "!r agents at 31st & Market",
                t0,
            ),
            t0,
        )
        .unwrap();
    sent(&mut e, &fx, "a");
    let id = e.store().load().unwrap().incidents[0].id;
    let rooms = e.store().sent_rooms(&id).unwrap();
    assert!(
        rooms.contains(&HOOVER.to_owned()),
        "the acknowledgment: {rooms:?}"
    );
    let t1 = t0 + Duration::minutes(2);
    let withdraw = IncomingMessage {
        event_id: "$redaction".into(),
        content: Content::Redaction {
            redacts: "$a".into(),
            may_redact_others: false,
        },
        ..report("$redaction", "@maria:oakland.example", "", t1)
    };
    let fx = e.handle(&withdraw, t1).unwrap();
    let mut expected = rooms.clone();
    expected.sort();
    assert_eq!(fades(&fx, id), expected, "{fx:#?}");
    assert!(e.store().load().unwrap().incidents.is_empty(), "deleted");
    assert_eq!(
        e.store().sent_events(&id, HOOVER).unwrap().len(),
        1,
        "kept for the redaction"
    );
    sent(&mut e, &fx, "fade");
    assert!(e.store().sent_rooms(&id).unwrap().is_empty());
}

/// The engine after the shell sent everything queued (the outbox drained).
fn drained(e: Engine<MemoryStore>) -> Engine<MemoryStore> {
    let mut store = e.into_store();
    for q in store.outbox().unwrap() {
        store.outbox_sent(q.seq, None).unwrap();
    }
    open(store).with_outbox()
}

#[test]
fn a_message_sent_after_its_room_faded_is_faded_too_before_the_incident_leaves_the_store() {
    let mut e = open(MemoryStore::new()).with_outbox();
    let (id, closed) = closed_incident(&mut e, sent_at());
    let mut fx = e.tick(closed + Duration::hours(30)).unwrap();
    fx.extend(e.tick(closed + Duration::hours(48)).unwrap());
    assert_eq!(fades(&fx, id), [CLAWSON, COORD, HOOVER]);
    sent(&mut e, &fx, "fade");
    let mut e = drained(e);
    // A week later the bot answers a late command about it in Hoover-Foster.
    let late = Effect::Reply {
        room: HOOVER.into(),
        in_reply_to: "$late-command".into(),
        message: neighborwatch::effect::OutgoingMessage {
            msgtype: neighborwatch::effect::MsgType::Notice,
            body: "already closed".into(),
            html: "already closed".into(),
            mentions_room: false,
            incident: Some(e.store().load().unwrap().incidents[0].tag()),
        },
    };
    e.mark_sent(&late, "$late-answer").unwrap();
    // Past the statistics window: that answer fades, once, and the incident waits.
    let at31 = e.tick(closed + Duration::days(31)).unwrap();
    assert_eq!(fades(&at31, id), [HOOVER], "{at31:#?}");
    assert!(
        fades(
            &e.tick(closed + Duration::days(31) + Duration::hours(2))
                .unwrap(),
            id
        )
        .is_empty(),
        "queued already"
    );
    let in_store = |e: &Engine<MemoryStore>| {
        e.store()
            .load()
            .unwrap()
            .incidents
            .iter()
            .any(|i| i.id == id)
    };
    assert!(in_store(&e));
    sent(&mut e, &at31, "late-fade");
    let mut e = drained(e);
    e.tick(closed + Duration::days(32)).unwrap();
    assert!(!in_store(&e), "gone once redacted");
}
