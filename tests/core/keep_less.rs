//! Keep only what is needed (PRODUCT.md §6, issue 23): a closed incident's report records
//! hold no event ID, room or reporter hash; closed incidents leave the store, with
//! everything keyed by them, once the statistics window has passed; the numbers of
//! `!nw stats` over that window do not change. On both store backends, sled across
//! reopening.

use chrono::{DateTime, Duration, TimeZone, Utc};
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
use neighborwatch::model::{Incident, IncidentId, ReportRecord, ReporterKey, Status};
use neighborwatch::places::LatLon;
use neighborwatch::render::Catalogs;
use neighborwatch::report::{Details, ReportForm};
use neighborwatch::stats::{MAX_STATS_HOURS, Summary};
use neighborwatch::store::{Batch, IncidentWrite, MemoryStore, Sent, Store};

use crate::store_contract::on_sled;
use crate::support::{NETWORK, sent_at};

const HOOVER: &str = "!hooverfoster:oakland.example";
const CLAWSON: &str = "!clawson:eastbay.example";
const KEY: &[u8] = b"keep-less-test-key-0123456789abc";

// ---- The store's part: deleting an incident deletes everything keyed by it. ----

fn stored_incident(seq: u64, reports: u32) -> Incident {
    let t = Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap();
    let at = LatLon::new(37.82, -122.27).unwrap();
    let key = ReporterKey::new(b"k");
    Incident {
        id: IncidentId::from_seq(seq),
        status: Status::Resolved,
        version: 1,
        origin: "test".into(),
        hops: 0,
        neighborhood: "n".into(),
        location: at,
        label: "31st & Market".into(),
        first_seen: t,
        last_seen: t,
        confirmed_at: None,
        confirmed_by: None,
        closed_at: Some(t),
        after_false_alarm: None,
        updated_at: t,
        reports: (0..reports)
            .map(|n| ReportRecord {
                event_id: Some(format!("$r{seq}.{n}").into()),
                room: Some("!a:x".into()),
                reporter: Some(key.hash(&format!("@u{n}:b"))),
                at,
                observed_at: t,
                received_at: t,
                text: None,
                form: ReportForm::Quick,
                counts: true,
            })
            .collect(),
        reporters: Vec::new(),
        former_reporters: 0,
        details: Details::default(),
        near: None,
        relayed_to: vec!["!a:x".into(), "!b:x".into()],
        linked_rooms: Vec::new(),
        faded: Vec::new(),
        marked_here: Vec::new(),
        support: Vec::new(),
        drill: false,
    }
}

#[test]
fn deleting_an_incident_deletes_its_reports_alerts_and_event_map_entries_in_memory() {
    delete_contract(MemoryStore::new(), &|s| s);
}

#[test]
fn deleting_an_incident_deletes_its_reports_alerts_and_event_map_entries_on_sled() {
    on_sled(|store, reopen| delete_contract(store, reopen));
}

/// What deleting an incident must take with it, on every backend.
fn delete_contract<S: Store>(mut store: S, reopen: &dyn Fn(S) -> S) {
    let (gone, kept) = (stored_incident(1, 3), stored_incident(2, 1));
    store
        .commit(Batch {
            incidents: [gone.clone(), kept.clone()]
                .into_iter()
                .map(IncidentWrite::whole)
                .collect(),
            ..Batch::default()
        })
        .unwrap();
    for (inc, tag) in [(&gone, "g"), (&kept, "k")] {
        for (room, event, alert) in [
            ("!a:x", format!("$alert-a-{tag}"), true),
            ("!b:x", format!("$alert-b-{tag}"), true),
            ("!a:x", format!("$ack-{tag}"), false),
        ] {
            store
                .note_sent(Sent {
                    incident: &inc.id,
                    room,
                    event_id: &event,
                    alert,
                })
                .unwrap();
        }
    }
    let mut store = reopen(store);
    store
        .commit(Batch {
            incidents_delete: vec![gone.id],
            ..Batch::default()
        })
        .unwrap();
    check_deleted(&store, &gone, &kept);
    let store = reopen(store);
    check_deleted(&store, &gone, &kept);
}

fn check_deleted<S: Store>(store: &S, gone: &Incident, kept: &Incident) {
    let snap = store.load().unwrap();
    assert_eq!(
        snap.incidents,
        vec![kept.clone()],
        "only the other incident"
    );
    for room in ["!a:x", "!b:x"] {
        assert_eq!(store.alert_event(&gone.id, room).unwrap(), None);
        assert!(store.alert_event(&kept.id, room).unwrap().is_some());
    }
    for ev in ["$alert-a-g", "$alert-b-g", "$ack-g", "$r1.0"] {
        assert_eq!(store.event_incident(ev).unwrap(), None, "{ev}");
    }
    for ev in ["$alert-a-k", "$alert-b-k", "$ack-k"] {
        assert_eq!(store.event_incident(ev).unwrap(), Some(kept.id), "{ev}");
    }
}

// ---- The engine's part, through the store. ----

fn open<S: Store>(store: S) -> Engine<S> {
    Engine::open(
        NETWORK.clone(),
        store,
        ReporterKey::new(KEY),
        Catalogs::builtin(),
    )
    .unwrap()
}

fn text(event: &str, sender: &str, power: i64, ts: DateTime<Utc>, body: &str) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: HOOVER.into(),
        sender: sender.into(),
        ts,
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Member { power, since: None },
    }
}

/// The bot's messages accepted by the server: (event ID, incident, room, alert or not).
type SentLog = Vec<(String, IncidentId, String, bool)>;

/// Marks each effect sent as `<cause>/<n>`, as the shell does through the outbox.
fn mark<S: Store>(e: &mut Engine<S>, cause: &str, fx: &[Effect], log: &mut SentLog) {
    for (n, f) in fx.iter().enumerate() {
        let ev = format!("{cause}/{}", n + 1);
        e.mark_sent(f, &ev).unwrap();
        if let Some(s) = Sent::of(f, &ev) {
            log.push((ev.clone(), *s.incident, s.room.to_owned(), s.alert));
        }
    }
}

fn handle<S: Store>(e: &mut Engine<S>, m: &IncomingMessage, log: &mut SentLog) {
    let fx = e.handle(m, m.ts).unwrap();
    mark(e, &m.event_id, &fx, log);
}

/// A tick at `now`; (c): no tick changes the numbers `!nw stats` shows over the whole
/// window at that time (expiry, purges and deletions change no fact inside it).
fn tick<S: Store>(e: &mut Engine<S>, now: DateTime<Utc>, log: &mut SentLog) {
    let before = stats(e, now);
    let fx = e.tick(now).unwrap();
    assert_eq!(
        stats(e, now),
        before,
        "the tick at {now} changed the numbers"
    );
    mark(e, &format!("$tick{}", now.timestamp()), &fx, log);
}

fn id_of_report<S: Store>(e: &Engine<S>, event: &str) -> IncidentId {
    e.incidents()
        .find(|i| {
            i.reports
                .iter()
                .any(|r| r.event_id.as_deref() == Some(event))
        })
        .map(|i| i.id)
        .unwrap_or_else(|| panic!("no incident has report {event}"))
}

/// (a): every report record of a closed incident, as stored, names no event, room or
/// reporter; the incident keeps the number of its reporters, not their hashes.
fn assert_scrubbed(inc: &Incident, reporters: usize) {
    assert!(!inc.status.is_open(), "{:?}", inc.status);
    assert!(!inc.reports.is_empty());
    for r in &inc.reports {
        assert_eq!(
            (&r.event_id, &r.room, &r.reporter),
            (&None, &None, &None),
            "a closed incident's record names nothing: {r:?}"
        );
    }
    assert!(inc.reporters.is_empty(), "{:?}", inc.reporters);
    assert_eq!(inc.reporter_count(), reporters);
}

fn stats<S: Store>(e: &Engine<S>, at: DateTime<Utc>) -> [Summary; 2] {
    [
        e.stats(None, MAX_STATS_HOURS, at),
        e.stats(Some("hoover-foster"), MAX_STATS_HOURS, at),
    ]
}

/// Incident A: confirmed by two neighbors, relayed to Hoover-Foster and Clawson, marked
/// a false alarm ten minutes in. Incident B, twenty days later at the same corner: one
/// report, expired. At 31 days A is past the statistics window, B is not.
/// `restart_before_deletion`: the engine is opened again before the deleting tick (A
/// and B are in memory then; otherwise they left it when their text was purged).
fn keep_less<S: Store>(store: S, reopen: &dyn Fn(S) -> S, restart_before_deletion: bool) {
    let mut e = open(store);
    let mut log = SentLog::new();
    let t0 = sent_at();
    let at = |d: i64, m: i64| t0 + Duration::days(d) + Duration::minutes(m);
    let corner = "!r agents at 31st & Market";
    handle(
        &mut e,
        &text("$a", "@maria:oakland.example", 0, t0, corner),
        &mut log,
    );
    let a = id_of_report(&e, "$a");
    let second = "!r agents at 31st and Market St";
    handle(
        &mut e,
        &text("$b", "@dlee:oakland.example", 0, at(0, 5), second),
        &mut log,
    );
    assert_eq!(e.incident(&a).unwrap().status, Status::Confirmed);
    assert!(
        log.iter()
            .any(|(_, i, r, alert)| *i == a && r == CLAWSON && *alert)
    );
    let fa = format!("!false {a}");
    handle(
        &mut e,
        &text("$f", "@mona:oakland.example", 50, at(0, 10), &fa),
        &mut log,
    );
    assert_eq!(e.incident(&a).unwrap().status, Status::FalseAlarm);
    assert_scrubbed(e.incident(&a).unwrap(), 2);
    // Written so in the same commit, not only at the next write (the text purge).
    let mut e = open(reopen(e.into_store()));
    let snap = e.store().load().unwrap();
    assert_scrubbed(snap.incidents.iter().find(|i| i.id == a).unwrap(), 2);
    // A's text is purged a day later; it leaves memory, the store keeps it.
    tick(&mut e, at(2, 0), &mut log);
    assert!(e.incident(&a).is_none());
    handle(
        &mut e,
        &text("$c", "@kim:oakland.example", 0, at(20, 0), corner),
        &mut log,
    );
    let b = id_of_report(&e, "$c");
    assert_ne!(a, b, "a closed incident takes no report");
    // B expires (expiry_hours = 4): the timer's close scrubs too.
    tick(&mut e, at(20, 4 * 60 + 1), &mut log);
    assert_eq!(e.incident(&b).unwrap().status, Status::Expired);
    let mut e = open(reopen(e.into_store()));
    let snap = e.store().load().unwrap();
    let stored = |id| snap.incidents.iter().find(|i| i.id == id).unwrap();
    assert_scrubbed(stored(a), 2);
    assert_scrubbed(stored(b), 1);
    // B's text is purged a day after (it leaves memory too).
    tick(&mut e, at(21, 4 * 60 + 2), &mut log);
    if restart_before_deletion {
        e = open(reopen(e.into_store()));
    }

    // Before the deletion: everything of A is there.
    let deletion = at(31, 0);
    let about = |id: IncidentId| -> Vec<String> {
        log.iter()
            .filter(|(_, i, _, _)| *i == id)
            .map(|(ev, _, _, _)| ev.clone())
            .collect()
    };
    let (sent_a, sent_b) = (about(a), about(b));
    assert!(sent_a.len() >= 4 && !sent_b.is_empty(), "{log:?}");
    for ev in &sent_a {
        assert_eq!(e.store().event_incident(ev).unwrap(), Some(a), "{ev}");
    }
    for room in [HOOVER, CLAWSON] {
        assert!(e.store().alert_event(&a, room).unwrap().is_some());
    }
    let before = stats(&e, deletion);
    assert_eq!(
        (before[0].incidents, before[0].reports),
        (1, 1),
        "B only: A was first seen before the window"
    );
    // (b): 30 days after A closed, A and everything keyed by it leave the store.
    tick(&mut e, deletion, &mut log);
    let check = |e: &Engine<S>, what: &str| {
        // (c): the numbers of the window are what they were before the deletion.
        assert_eq!(stats(e, deletion), before, "{what}");
        let snap = e.store().load().unwrap();
        let ids: Vec<IncidentId> = snap.incidents.iter().map(|i| i.id).collect();
        assert_eq!(
            ids,
            vec![b],
            "{what}: A deleted, B (closed 11 days ago) kept"
        );
        assert!(e.incident(&a).is_none(), "{what}");
        for ev in sent_a.iter().map(String::as_str).chain(["$a", "$b", "$f"]) {
            assert_eq!(e.store().event_incident(ev).unwrap(), None, "{what}: {ev}");
        }
        for room in [HOOVER, CLAWSON] {
            assert_eq!(e.store().alert_event(&a, room).unwrap(), None, "{what}");
        }
        for ev in &sent_b {
            assert_eq!(
                e.store().event_incident(ev).unwrap(),
                Some(b),
                "{what}: {ev}"
            );
        }
    };
    check(&e, "after the deleting tick");
    let mut e = open(reopen(e.into_store()));
    check(&e, "after reopening");
    // And B, 30 days after it closed.
    tick(&mut e, at(51, 0), &mut log);
    let e = open(reopen(e.into_store()));
    assert_eq!(e.store().load().unwrap().incidents, vec![]);
    for ev in &sent_b {
        assert_eq!(e.store().event_incident(ev).unwrap(), None, "{ev}");
    }
}

#[test]
fn closed_incidents_keep_no_names_and_leave_the_memory_store_after_the_stats_window() {
    keep_less(MemoryStore::new(), &|s| s, false);
    keep_less(MemoryStore::new(), &|s| s, true);
}

#[test]
fn closed_incidents_keep_no_names_and_leave_the_sled_store_after_the_stats_window() {
    on_sled(|store, reopen| keep_less(store, reopen, false));
    on_sled(|store, reopen| keep_less(store, reopen, true));
}

/// A closed incident stored by an older version, still naming its reporters, is scrubbed
/// at the first hourly tick; an open one keeps its names.
fn older_version_scrubbed<S: Store>(mut store: S, reopen: &dyn Fn(S) -> S) {
    let mut closed = stored_incident(1, 3);
    let key = ReporterKey::new(b"k");
    closed.reporters = (0..3).map(|n| key.hash(&format!("@u{n}:b"))).collect();
    let mut open_one = stored_incident(2, 2);
    open_one.status = Status::Confirmed;
    open_one.closed_at = None;
    store
        .commit(Batch {
            incidents: [closed.clone(), open_one.clone()]
                .into_iter()
                .map(IncidentWrite::whole)
                .collect(),
            ..Batch::default()
        })
        .unwrap();
    let mut e = open(reopen(store));
    e.tick(closed.updated_at + Duration::hours(1)).unwrap();
    let e = open(reopen(e.into_store()));
    let snap = e.store().load().unwrap();
    let stored = |id| snap.incidents.iter().find(|i| i.id == id).unwrap();
    assert_scrubbed(stored(closed.id), 3);
    assert_eq!(
        stored(open_one.id),
        &open_one,
        "an open incident keeps its names"
    );
}

#[test]
fn closed_incidents_an_older_version_stored_are_scrubbed_in_memory() {
    older_version_scrubbed(MemoryStore::new(), &|s| s);
}

#[test]
fn closed_incidents_an_older_version_stored_are_scrubbed_on_sled() {
    on_sled(|store, reopen| older_version_scrubbed(store, reopen));
}
