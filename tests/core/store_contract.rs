//! One behaviour contract run against every store backend (as matrix-sdk does with
//! `statestore_integration_tests!`), plus resuming a replay from a reopened sled store.

use chrono::{TimeZone, Utc};
use neighborwatch::config::RoomSetting;
use neighborwatch::links::{Link, LinkState};
use neighborwatch::model::{
    Incident, IncidentId, PendingReport, ReportRecord, ReporterKey, Status,
};
use neighborwatch::places::{LatLon, ResolveMethod, Resolved};
use neighborwatch::render::Catalogs;
use neighborwatch::report::{Details, LocationOutcome, ParsedReport, ReportForm};
use neighborwatch::stats::RefusalCount;
use neighborwatch::store::{Batch, IncidentWrite, MemoryStore, Sent, SledStore, Store, StoreError};

use crate::replay_fixtures::{fixture, replay_cmd};

fn incident(seq: u64, status: Status) -> Incident {
    let t = Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap();
    let at = LatLon::new(37.82, -122.27).unwrap();
    Incident {
        id: IncidentId::from_seq(seq),
        status,
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
        closed_at: None,
        after_false_alarm: None,
        updated_at: t,
        reports: Vec::new(),
        reporters: vec![ReporterKey::new(b"k").hash("@a:b")],
        former_reporters: 0,
        details: Details::default(),
        near: None,
        relayed_to: vec!["!r:x".into()],
        linked_rooms: vec!["!r:x".into()],
        faded: Vec::new(),
        marked_here: Vec::new(),
        support: Vec::new(),
        drill: false,
    }
}

fn setting(neighborhood: &str, key: &str, value: &str) -> RoomSetting {
    RoomSetting {
        neighborhood: neighborhood.into(),
        key: key.into(),
        value: value.into(),
        by: "@carol:eastbay.example".into(),
        room: "!clawson:eastbay.example".into(),
        at_ms: 1_772_467_500_000,
    }
}

const HOUR: i64 = 3_600_000;

fn refusals(neighborhood: &str, hour_ms: i64, count: u32) -> RefusalCount {
    RefusalCount {
        neighborhood: neighborhood.into(),
        hour_ms,
        count,
    }
}

fn sorted(mut r: Vec<RefusalCount>) -> Vec<RefusalCount> {
    r.sort_by(|a, b| (&a.neighborhood, a.hour_ms).cmp(&(&b.neighborhood, b.hour_ms)));
    r
}

fn link(id: &str, state: LinkState) -> Link {
    Link {
        id: id.into(),
        from: "back-of-the-yards".into(),
        from_room: "!backoftheyards:chicago.example".into(),
        to: "clawson".into(),
        to_room: "!clawson:eastbay.example".into(),
        state,
        requested_by: "@rosa:chicago.example".into(),
        requested_at_ms: 1_772_467_500_000,
        changed_by: (state != LinkState::Requested).then(|| "@carol:eastbay.example".into()),
        changed_at_ms: (state != LinkState::Requested).then_some(1_772_467_600_000),
    }
}

fn pending(id: &str) -> PendingReport {
    let t = Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap();
    PendingReport {
        event_id: id.into(),
        room: "!r:x".into(),
        reporter: ReporterKey::new(b"k").hash("@a:b"),
        received_at: t,
        report: ParsedReport {
            form: ReportForm::Quick,
            text: "agents at nowhere".into(),
            location: LocationOutcome::Unresolved {
                query: "nowhere".into(),
                suggestions: vec![],
            },
            observed_at: t,
            details: Details::default(),
        },
    }
}

/// The contract every `Store` must meet.
fn contract<S: Store>(mut store: S, reopen: impl Fn(S) -> S) {
    // Empty at first.
    let snap = store.load().unwrap();
    assert!(snap.incidents.is_empty() && snap.pending.is_empty());
    assert_eq!(snap.next_seq, 0);
    assert!(!store.is_seen("$a").unwrap());

    // A batch is applied whole.
    store
        .commit(Batch {
            seen: smallvec::smallvec!["$a".into(), "$b".into()],
            incidents: smallvec::smallvec![
                IncidentWrite::whole(incident(0, Status::Unverified)),
                IncidentWrite::whole(incident(1, Status::Confirmed)),
            ],
            pending_put: vec![pending("$p1"), pending("$p2")],
            pending_delete: vec![],
            incidents_delete: vec![],
            next_seq: Some(2),
            outbox: vec![],
            at_ms: 0,
            settings_put: vec![setting("clawson", "alert_radius_m", "200")],
            settings_delete: vec![],
            links_put: vec![link("LC9TU", LinkState::Requested)],
            refusals_put: vec![refusals("clawson", 0, 1), refusals("clawson", HOUR, 2)],
            refusals_delete: vec![],
        })
        .unwrap();
    assert!(
        store.is_seen("$a").unwrap()
            && store.is_seen("$b").unwrap()
            && !store.is_seen("$c").unwrap()
    );
    let snap = store.load().unwrap();
    assert_eq!(snap.incidents.len(), 2);
    assert_eq!(snap.pending.len(), 2);
    assert_eq!(snap.next_seq, 2);
    assert!(
        snap.incidents.contains(&incident(1, Status::Confirmed)),
        "round trip keeps every field"
    );
    assert_eq!(
        snap.settings,
        vec![setting("clawson", "alert_radius_m", "200")]
    );

    assert_eq!(snap.links, vec![link("LC9TU", LinkState::Requested)]);
    assert_eq!(
        sorted(snap.refusals),
        vec![refusals("clawson", 0, 1), refusals("clawson", HOUR, 2)]
    );

    // An hour's refusal count written again replaces it; a delete removes only its hour.
    store
        .commit(Batch {
            refusals_put: vec![refusals("clawson", HOUR, 3), refusals("prescott", HOUR, 1)],
            refusals_delete: vec![("clawson".into(), 0)],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(
        sorted(store.load().unwrap().refusals),
        vec![refusals("clawson", HOUR, 3), refusals("prescott", HOUR, 1)]
    );

    // A link written again replaces its record.
    store
        .commit(Batch {
            links_put: vec![
                link("LC9TU", LinkState::Accepted),
                link("LT89D", LinkState::Requested),
            ],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(
        store.load().unwrap().links,
        vec![
            link("LC9TU", LinkState::Accepted),
            link("LT89D", LinkState::Requested)
        ]
    );

    // A setting set again replaces its value; a reset removes only its own key.
    store
        .commit(Batch {
            settings_put: vec![
                setting("clawson", "alert_radius_m", "300"),
                setting("clawson", "confirmations", "3"),
                setting("prescott", "alert_radius_m", "900"),
            ],
            ..Batch::default()
        })
        .unwrap();
    store
        .commit(Batch {
            settings_delete: vec![("clawson".into(), "confirmations".into())],
            ..Batch::default()
        })
        .unwrap();
    let mut settings = store.load().unwrap().settings;
    settings.sort_by(|a, b| (&a.neighborhood, &a.key).cmp(&(&b.neighborhood, &b.key)));
    assert_eq!(
        settings,
        vec![
            setting("clawson", "alert_radius_m", "300"),
            setting("prescott", "alert_radius_m", "900"),
        ]
    );

    // Upsert replaces; delete removes; an empty batch changes nothing.
    store
        .commit(Batch {
            incidents: smallvec::smallvec![IncidentWrite::whole(incident(0, Status::Expired))],
            pending_delete: vec!["$p1".into(), "$missing".into()],
            ..Batch::default()
        })
        .unwrap();
    store.commit(Batch::default()).unwrap();
    let snap = store.load().unwrap();
    assert_eq!(snap.incidents.len(), 2);
    assert!(
        snap.incidents
            .iter()
            .any(|i| i.id == IncidentId::from_seq(0) && i.status == Status::Expired)
    );
    assert_eq!(snap.pending, vec![pending("$p2")]);
    assert_eq!(
        snap.next_seq, 2,
        "the counter is kept when a batch does not set it"
    );

    // What was committed survives reopening.
    let store = reopen(store);
    let again = store.load().unwrap();
    assert_eq!(again, snap);
    assert!(store.is_seen("$b").unwrap());
    reports_contract(store, reopen);
}

fn record(n: u32, text: &str) -> ReportRecord {
    let t = Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap();
    ReportRecord {
        event_id: Some(format!("$r{n}").into()),
        room: Some("!r:x".into()),
        reporter: Some(ReporterKey::new(b"k").hash(&format!("@u{n}:b"))),
        at: LatLon::new(37.82, -122.27 + f64::from(n) * 1e-4).unwrap(),
        observed_at: t,
        received_at: t,
        text: Some(text.into()),
        form: ReportForm::Quick,
        counts: true,
    }
}

/// Reports are written one record at a time: a write names the first report it
/// replaces, and the ones before it stay as they were.
fn reports_contract<S: Store>(mut store: S, reopen: impl Fn(S) -> S) {
    let id = IncidentId::from_seq(7);
    let mut inc = incident(7, Status::Unverified);
    inc.reports = vec![record(0, "first"), record(1, "second")];
    store
        .commit(Batch {
            incidents: smallvec::smallvec![IncidentWrite::whole(inc.clone())],
            ..Batch::default()
        })
        .unwrap();
    // A third report: only it is written, with the incident's new fields.
    let mut tail = inc.clone();
    tail.status = Status::Confirmed;
    tail.reports = vec![record(2, "third")];
    store
        .commit(Batch {
            incidents: smallvec::smallvec![IncidentWrite {
                reports_from: 2,
                incident: tail,
            }],
            ..Batch::default()
        })
        .unwrap();
    let got = |s: &S| {
        s.load()
            .unwrap()
            .incidents
            .into_iter()
            .find(|i| i.id == id)
            .unwrap()
    };
    let stored = got(&store);
    assert_eq!(stored.status, Status::Confirmed);
    assert_eq!(
        stored.reports,
        vec![record(0, "first"), record(1, "second"), record(2, "third")]
    );
    // Text retention rewrites reports from the first purged one on.
    let mut purged = stored.clone();
    purged.reports = vec![record(1, "second"), record(2, "third")];
    for r in &mut purged.reports {
        r.text = None;
    }
    store
        .commit(Batch {
            incidents: smallvec::smallvec![IncidentWrite {
                reports_from: 1,
                incident: purged.clone(),
            }],
            ..Batch::default()
        })
        .unwrap();
    let stored = got(&store);
    assert_eq!(stored.reports[0], record(0, "first"));
    assert_eq!(&stored.reports[1..], &purged.reports[..]);
    // A write that would leave a hole is refused whole: nothing of its batch is applied.
    let mut gap = stored.clone();
    gap.status = Status::Expired;
    gap.reports = vec![record(9, "ninth")];
    let err = store
        .commit(Batch {
            seen: smallvec::smallvec!["$gap".into()],
            incidents: smallvec::smallvec![IncidentWrite {
                reports_from: 5,
                incident: gap,
            }],
            ..Batch::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("report 5"), "{err}");
    assert!(!store.is_seen("$gap").unwrap());
    assert_eq!(got(&store), stored);
    let mut store = reopen(store);
    assert_eq!(got(&store), stored, "reports survive reopening");
    // A withdrawn report shrinks the list: the stores agree, and nothing stale is left.
    let mut shrunk = stored.clone();
    shrunk.reports = vec![stored.reports[2].clone()];
    store
        .commit(Batch {
            incidents: smallvec::smallvec![IncidentWrite {
                reports_from: 1,
                incident: shrunk,
            }],
            ..Batch::default()
        })
        .unwrap();
    let mut store = reopen(store);
    let after = got(&store);
    assert_eq!(
        after.reports,
        vec![stored.reports[0].clone(), stored.reports[2].clone()],
        "the withdrawn report is gone, after reopening too"
    );
    // Deleting an incident takes its reports with it.
    store
        .commit(Batch {
            incidents_delete: vec![id],
            ..Batch::default()
        })
        .unwrap();
    let store = reopen(store);
    assert!(store.load().unwrap().incidents.iter().all(|i| i.id != id));
}

/// Runs a contract on a sled store in a fresh directory; reopening closes the database
/// and opens it again from disk.
pub(crate) fn on_sled(contract: impl FnOnce(SledStore, &dyn Fn(SledStore) -> SledStore)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sled");
    contract(crate::support::open_sled(&path), &|s| {
        drop(s);
        crate::support::open_sled(&path)
    });
}

#[test]
fn memory_store_meets_the_contract() {
    contract(MemoryStore::new(), |s| s);
}

#[test]
fn sled_store_meets_the_contract() {
    on_sled(|store, reopen| contract(store, reopen));
}

#[test]
fn resolved_locations_round_trip_through_sled() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(&dir.path().join("db"), crate::support::test_vault()).unwrap();
    let mut p = pending("$p");
    p.report.location = LocationOutcome::Resolved(Resolved {
        at: LatLon::new(41.8, -87.66).unwrap(),
        label: "47th & Ashland".into(),
        method: ResolveMethod::Intersection,
        uncertainty_m: 30.0,
    });
    s.commit(Batch {
        pending_put: vec![p.clone()],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(s.load().unwrap().pending, vec![p]);
}

#[test]
fn replaying_half_then_reopening_sled_and_the_rest_gives_the_same_actions() {
    let whole: String = ["school_dropoff", "unknown_place", "far_away", "html_report"]
        .iter()
        .map(|n| std::fs::read_to_string(fixture(n)).unwrap())
        .collect();
    // The fixtures each start at 08:06; shift each file by an hour so time only moves forward.
    let mut lines: Vec<serde_json::Value> = whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut hour = 0i64;
    let mut last = 0i64;
    for l in &mut lines {
        let ts = l["ts"].as_i64().unwrap();
        if ts + hour * 3_600_000 < last {
            hour += 1;
        }
        let t = ts + hour * 3_600_000;
        l["ts"] = t.into();
        last = t;
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, ls: &[serde_json::Value]| {
        let p = dir.path().join(name);
        std::fs::write(&p, ls.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        p
    };
    let all = write("all.jsonl", &lines);
    let mid = lines.len() / 2;
    let first = write("first.jsonl", &lines[..mid]);
    let rest = write("rest.jsonl", &lines[mid..]);

    let (one_run, err, code) = replay_cmd(&all, Some(&dir.path().join("one.sled")));
    assert_eq!(code, 0, "{err}");
    let store = dir.path().join("split.sled");
    let (mut split, err, code) = replay_cmd(&first, Some(&store));
    assert_eq!(code, 0, "{err}");
    let (second, err, code) = replay_cmd(&rest, Some(&store));
    assert_eq!(code, 0, "{err}");
    split.extend(second);
    assert!(one_run.iter().filter(|a| a["action"] == "relay").count() >= 5);
    assert_eq!(split, one_run);

    // Replaying the whole file again into the same store does nothing: every event is known.
    let (again, err, code) = replay_cmd(&all, Some(&store));
    assert_eq!(code, 0, "{err}");
    assert!(again.is_empty(), "{again:#?}");
}

#[test]
fn a_sled_replay_refuses_to_start_without_the_reporter_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neighborwatch"))
        .args(["replay", "--config"])
        .arg(crate::support::example_path())
        .arg("--store")
        .arg(dir.path().join("s"))
        .arg(fixture("times"))
        .env_remove("NW_REPORTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NW_REPORTER_KEY"), "{err}");
}

/// The outbox part of the contract: queued with the state, in order, removed once sent,
/// and the relayed alert's event ID remembered.
fn outbox_contract<S: Store>(mut store: S, reopen: impl Fn(S) -> S) {
    use neighborwatch::effect::Effect;
    use neighborwatch::store::OutboxEntry;
    let effect = |room: &str, body: &str| Effect::Location {
        room: room.into(),
        incident: incident(0, Status::Confirmed).tag(),
        geo_uri: "geo:37.8,-122.27".into(),
        body: body.into(),
    };
    assert!(store.outbox().unwrap().is_empty());
    store
        .commit(Batch {
            seen: smallvec::smallvec!["$x".into()],
            outbox: vec![
                OutboxEntry {
                    txn_id: "t1".into(),
                    at_ms: 10_001,
                    effect: effect("!a:x", "first"),
                },
                OutboxEntry {
                    txn_id: "t2".into(),
                    at_ms: 10_002,
                    effect: effect("!b:x", "second"),
                },
            ],
            ..Batch::default()
        })
        .unwrap();
    store
        .commit(Batch {
            outbox: vec![OutboxEntry {
                txn_id: "t3".into(),
                at_ms: 10_003,
                effect: effect("!a:x", "third"),
            }],
            ..Batch::default()
        })
        .unwrap();
    let q = store.outbox().unwrap();
    assert_eq!(
        q.iter()
            .map(|e| e.entry.txn_id.as_str())
            .collect::<Vec<_>>(),
        ["t1", "t2", "t3"]
    );
    assert!(q.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(q[0].entry.at_ms, 10_001, "the receive time is kept");
    // The sender reads only what is new since the last entry it knows.
    let newer = |after| {
        store
            .outbox_after(after)
            .unwrap()
            .into_iter()
            .map(|e| e.entry.txn_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(newer(Some(q[0].seq)), ["t2", "t3"]);
    assert_eq!(newer(Some(q[2].seq)), Vec::<String>::new());
    assert_eq!(newer(None), ["t1", "t2", "t3"]);
    let id = IncidentId::from_seq(0);
    assert_eq!(store.alert_event(&id, "!a:x").unwrap(), None);
    assert_eq!(store.event_incident("$alert1").unwrap(), None);
    store
        .outbox_sent(
            q[0].seq,
            Some(Sent {
                incident: &id,
                room: "!a:x",
                event_id: "$alert1",
                alert: true,
            }),
        )
        .unwrap();
    let mut store = reopen(store);
    let q2 = store.outbox().unwrap();
    assert_eq!(
        q2.iter()
            .map(|e| e.entry.txn_id.as_str())
            .collect::<Vec<_>>(),
        ["t2", "t3"],
        "survives reopening"
    );
    assert_eq!(
        store.alert_event(&id, "!a:x").unwrap().as_deref(),
        Some("$alert1")
    );
    assert_eq!(
        store.event_incident("$alert1").unwrap(),
        Some(id),
        "reactions to the alert find its incident, after reopening too"
    );
    store
        .note_sent(Sent {
            incident: &id,
            room: "!a:x",
            event_id: "$ack1",
            alert: false,
        })
        .unwrap();
    assert_eq!(store.event_incident("$ack1").unwrap(), Some(id));
    assert_eq!(
        store.alert_event(&id, "!a:x").unwrap().as_deref(),
        Some("$alert1"),
        "an acknowledgment is not the room's alert"
    );
    store.outbox_sent(q2[0].seq, None).unwrap();
    store
        .commit(Batch {
            outbox: vec![OutboxEntry {
                txn_id: "t4".into(),
                at_ms: 10_004,
                effect: effect("!a:x", "fourth"),
            }],
            ..Batch::default()
        })
        .unwrap();
    let q3 = store.outbox().unwrap();
    assert_eq!(
        q3.iter()
            .map(|e| e.entry.txn_id.as_str())
            .collect::<Vec<_>>(),
        ["t3", "t4"],
        "new entries queue after old ones"
    );
}

#[test]
fn memory_outbox_meets_the_contract() {
    outbox_contract(MemoryStore::new(), |s| s);
}

#[test]
fn sled_outbox_meets_the_contract() {
    on_sled(|store, reopen| outbox_contract(store, reopen));
}

#[test]
fn the_engine_queues_exactly_its_effects_with_stable_transaction_ids() {
    use neighborwatch::incident::{Content, Engine, IncomingMessage};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sled");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(fixture("school_dropoff"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let msgs: Vec<IncomingMessage> = lines
        .iter()
        .filter(|l| l.get("msgtype").is_none())
        .map(|l| IncomingMessage {
            event_id: l["event_id"].as_str().unwrap().into(),
            room: l["room"].as_str().unwrap().into(),
            sender: l["sender"].as_str().unwrap().into(),
            ts: Utc.timestamp_millis_opt(l["ts"].as_i64().unwrap()).unwrap(),
            content: Content::Text {
                body: l["body"].as_str().unwrap().into(),
                notice: false,
                replaces: None,
            },
            member: Default::default(),
        })
        .collect();
    let key = || ReporterKey::new(b"outbox-test-key-0123456789");
    let net = crate::support::NETWORK.clone();
    let mut e = Engine::open(
        net.clone(),
        crate::support::open_sled(&path),
        key(),
        Catalogs::builtin(),
    )
    .unwrap()
    .with_outbox();
    let mut returned = Vec::new();
    for m in &msgs {
        returned.extend(e.handle(m, m.ts).unwrap());
    }
    let queued = e.store().outbox().unwrap();
    assert_eq!(
        queued
            .iter()
            .map(|q| q.entry.effect.clone())
            .collect::<Vec<_>>(),
        returned,
        "the outbox holds exactly what was decided"
    );
    assert!(
        queued
            .iter()
            .any(|q| matches!(q.entry.effect, neighborwatch::effect::Effect::Relay { .. }))
    );
    let txns: std::collections::HashSet<_> =
        queued.iter().map(|q| q.entry.txn_id.clone()).collect();
    assert_eq!(txns.len(), queued.len(), "transaction IDs are unique");
    drop(e);
    // After a restart the same events change nothing and queue nothing more.
    let mut e = Engine::open(
        net.clone(),
        crate::support::open_sled(&path),
        key(),
        Catalogs::builtin(),
    )
    .unwrap()
    .with_outbox();
    for m in &msgs {
        assert!(e.handle(m, m.ts).unwrap().is_empty());
    }
    assert_eq!(e.store().outbox().unwrap().len(), queued.len());
    // The same input on a fresh store derives the same transaction IDs.
    let mut fresh = Engine::open(net, MemoryStore::new(), key(), Catalogs::builtin())
        .unwrap()
        .with_outbox();
    for m in &msgs {
        fresh.handle(m, m.ts).unwrap();
    }
    let again: Vec<_> = fresh
        .store()
        .outbox()
        .unwrap()
        .into_iter()
        .map(|q| q.entry.txn_id)
        .collect();
    assert_eq!(
        again,
        queued
            .iter()
            .map(|q| q.entry.txn_id.clone())
            .collect::<Vec<_>>()
    );
}

/// Handled event IDs are forgotten by age, atomically with nothing else, and survive
/// reopening until then.
fn seen_contract<S: Store>(mut store: S, reopen: impl Fn(S) -> S) {
    let day = 86_400_000;
    for (id, at_ms) in [("$old", day), ("$new", 9 * day)] {
        store
            .commit(Batch {
                seen: smallvec::smallvec![id.into()],
                at_ms,
                ..Batch::default()
            })
            .unwrap();
    }
    let mut store = reopen(store);
    assert!(store.is_seen("$old").unwrap() && store.is_seen("$new").unwrap());
    assert_eq!(
        store.forget_seen(day, 10 * day).unwrap(),
        0,
        "nothing is older than day 1"
    );
    assert_eq!(store.forget_seen(2 * day, 10 * day).unwrap(), 1);
    let store = reopen(store);
    assert!(!store.is_seen("$old").unwrap(), "forgotten");
    assert!(store.is_seen("$new").unwrap(), "still remembered");
}

#[test]
fn memory_store_forgets_old_handled_events() {
    seen_contract(MemoryStore::new(), |s| s);
}

#[test]
fn sled_store_forgets_old_handled_events() {
    on_sled(|store, reopen| seen_contract(store, reopen));
}

#[test]
fn an_event_id_stored_without_a_time_counts_as_handled_at_the_time_given() {
    let day = 86_400_000;
    on_sled(|mut store, _| {
        // As older versions stored them: the key, and no time.
        let engine = store.db().open_tree("engine").unwrap();
        engine.insert("seen/$legacy", &b""[..]).unwrap();
        assert!(store.is_seen("$legacy").unwrap());
        // Stamped with "now" (day 3), not forgotten by a cutoff before it...
        assert_eq!(store.forget_seen(2 * day, 3 * day).unwrap(), 0);
        assert!(store.is_seen("$legacy").unwrap());
        // ...and forgotten once the cutoff passes that day, whatever the machine's clock.
        assert_eq!(store.forget_seen(3 * day + 1, 4 * day).unwrap(), 1);
        assert!(!store.is_seen("$legacy").unwrap());
    });
}

#[test]
fn the_engine_remembers_handled_events_for_a_week() {
    use neighborwatch::incident::{Content, Engine, IncomingMessage};
    use neighborwatch::model::ReporterKey;
    let mut e = Engine::open(
        crate::support::NETWORK.clone(),
        MemoryStore::new(),
        ReporterKey::new(b"seen-test-key-0123456789abcdef"),
        Catalogs::builtin(),
    )
    .unwrap();
    let t0 = crate::support::sent_at();
    let m = IncomingMessage {
        event_id: "$report".into(),
        room: "!hooverfoster:oakland.example".into(),
        sender: "@maria:oakland.example".into(),
        ts: t0,
        content: Content::Text {
            body: "!r agents at 31st & Market".into(),
            notice: false,
            replaces: None,
        },
        member: Default::default(),
    };
    assert!(!e.handle(&m, t0).unwrap().is_empty());
    e.tick(t0 + chrono::Duration::days(6)).unwrap();
    assert!(e.store().is_seen("$report").unwrap(), "kept for a week");
    assert!(
        e.handle(&m, t0 + chrono::Duration::days(6))
            .unwrap()
            .is_empty()
    );
    // A second report, five days later.
    let later = IncomingMessage {
        event_id: "$later".into(),
        ts: t0 + chrono::Duration::days(5),
        ..m.clone()
    };
    assert!(!e.handle(&later, later.ts).unwrap().is_empty());
    e.tick(t0 + chrono::Duration::days(8)).unwrap();
    assert!(
        !e.store().is_seen("$report").unwrap(),
        "forgotten after a week"
    );
    assert!(
        e.store().is_seen("$later").unwrap(),
        "the one handled three days ago is kept"
    );
    assert!(
        e.handle(&later, t0 + chrono::Duration::days(8))
            .unwrap()
            .is_empty(),
        "and still handled once"
    );
}

/// A store whose commits fail while `failing` is set (the disk is full, the database is
/// gone), in front of a memory store.
struct FailingStore {
    inner: MemoryStore,
    failing: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Store for FailingStore {
    fn load(&self) -> Result<neighborwatch::store::Snapshot, StoreError> {
        self.inner.load()
    }
    fn is_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        self.inner.is_seen(event_id)
    }
    fn forget_seen(&mut self, before_ms: i64, now_ms: i64) -> Result<usize, StoreError> {
        self.inner.forget_seen(before_ms, now_ms)
    }
    fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        if self.failing.get() {
            return Err(StoreError::Encode("the disk is full".into()));
        }
        self.inner.commit(batch)
    }
    fn outbox(&self) -> Result<Vec<neighborwatch::store::Queued>, StoreError> {
        self.inner.outbox()
    }
    fn outbox_sent(&mut self, seq: u64, sent: Option<Sent<'_>>) -> Result<(), StoreError> {
        self.inner.outbox_sent(seq, sent)
    }
    fn note_sent(&mut self, sent: Sent<'_>) -> Result<(), StoreError> {
        self.inner.note_sent(sent)
    }
    fn alert_event(&self, incident: &IncidentId, room: &str) -> Result<Option<String>, StoreError> {
        self.inner.alert_event(incident, room)
    }
    fn event_incident(&self, event_id: &str) -> Result<Option<IncidentId>, StoreError> {
        self.inner.event_incident(event_id)
    }
    fn sent_events(&self, incident: &IncidentId, room: &str) -> Result<Vec<String>, StoreError> {
        self.inner.sent_events(incident, room)
    }
    fn sent_rooms(&self, incident: &IncidentId) -> Result<Vec<String>, StoreError> {
        self.inner.sent_rooms(incident)
    }
    fn redacted(
        &mut self,
        incident: &IncidentId,
        room: &str,
        event_id: &str,
    ) -> Result<(), StoreError> {
        self.inner.redacted(incident, room, event_id)
    }
}

/// An engine over the example network whose store fails while the returned switch is
/// on (it starts `failing`).
fn failing_engine(
    failing: bool,
    key: &[u8],
) -> (
    neighborwatch::incident::Engine<FailingStore>,
    std::rc::Rc<std::cell::Cell<bool>>,
) {
    let switch = std::rc::Rc::new(std::cell::Cell::new(failing));
    let store = FailingStore {
        inner: MemoryStore::new(),
        failing: std::rc::Rc::clone(&switch),
    };
    let net = std::sync::Arc::clone(&crate::support::NETWORK);
    let engine = neighborwatch::incident::Engine::open(
        net,
        store,
        ReporterKey::new(key),
        Catalogs::builtin(),
    )
    .unwrap();
    (engine, switch)
}

#[test]
fn a_setting_change_the_store_cannot_commit_is_not_applied_and_can_be_sent_again() {
    use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
    let (mut engine, failing) = failing_engine(true, b"k");
    let msg = IncomingMessage {
        event_id: "$set".into(),
        room: "!clawson:eastbay.example".into(),
        sender: "@carol:eastbay.example".into(),
        ts: crate::support::sent_at(),
        content: Content::Text {
            body: "!nw settings alert_radius_m 200".into(),
            notice: false,
            replaces: None,
        },
        member: Member {
            power: 100,
            since: None,
        },
    };
    let now = crate::support::sent_at();
    let radius = |e: &Engine<FailingStore>| e.network().settings("clawson").alert_radius_m;
    assert!(engine.handle(&msg, now).is_err(), "the commit failed");
    assert_eq!(
        radius(&engine),
        1600.0,
        "the change is not applied in memory"
    );
    assert!(engine.overlay().is_empty());
    // Once the store works again, the same event is handled as new.
    failing.set(false);
    let effects = engine.handle(&msg, now).unwrap();
    assert!(!effects.is_empty());
    assert_eq!(radius(&engine), 200.0);
    assert_eq!(engine.store().inner.load().unwrap().settings.len(), 1);
}

#[test]
fn refusal_counts_older_than_stats_can_show_leave_the_sled_store() {
    use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
    on_sled(|store, reopen| {
        let key = || ReporterKey::new(b"stats-test-key-0123456789abcdef");
        let net = std::sync::Arc::clone(&crate::support::NETWORK);
        let mut e = Engine::open(
            std::sync::Arc::clone(&net),
            store,
            key(),
            Catalogs::builtin(),
        )
        .unwrap();
        let t0 = crate::support::sent_at();
        let refused = IncomingMessage {
            event_id: "$stats".into(),
            room: "!hooverfoster:oakland.example".into(),
            sender: "@bob:oakland.example".into(),
            ts: t0,
            content: Content::Text {
                body: "!nw stats".into(),
                notice: false,
                replaces: None,
            },
            member: Member {
                power: 0,
                since: None,
            },
        };
        assert!(!e.handle(&refused, t0).unwrap().is_empty(), "answered");
        let refusals = |e: &Engine<SledStore>, at| e.stats(Some("hoover-foster"), 720, at).refusals;
        assert_eq!(refusals(&e, t0), 1);
        assert_eq!(e.store().load().unwrap().refusals.len(), 1);
        // Still within the 30 days `!nw stats 720` looks back: kept, on disk too.
        let day = |n| t0 + chrono::Duration::days(n);
        e.tick(day(20)).unwrap();
        let mut e = Engine::open(
            net.clone(),
            reopen(e.into_store()),
            key(),
            Catalogs::builtin(),
        )
        .unwrap();
        assert_eq!(refusals(&e, day(20)), 1, "read back after a restart");
        // Past it: forgotten in memory and gone from the store.
        e.tick(day(31)).unwrap();
        assert_eq!(e.store().load().unwrap().refusals, vec![]);
        let e = Engine::open(net, reopen(e.into_store()), key(), Catalogs::builtin()).unwrap();
        assert_eq!(e.store().load().unwrap().refusals, vec![]);
        assert_eq!(e.stats(Some("hoover-foster"), 720, day(20)).refusals, 0);
    });
}

/// Everything of the engine a user could notice: incidents, pending reports, the stats.
fn engine_state<S: Store>(
    e: &neighborwatch::incident::Engine<S>,
    now: chrono::DateTime<Utc>,
) -> (
    Vec<Incident>,
    Vec<PendingReport>,
    neighborwatch::stats::Summary,
) {
    let mut incidents: Vec<Incident> = e.incidents().cloned().collect();
    incidents.sort_by_key(|i| i.id);
    (incidents, e.pending().to_vec(), e.stats(None, 24, now))
}

#[test]
fn a_report_the_store_cannot_commit_leaves_the_engine_as_before_and_can_be_handled_again() {
    use neighborwatch::incident::{Content, IncomingMessage};
    const KEY: &[u8] = b"rollback-test-key-0123456789abcd";
    let (mut engine, failing) = failing_engine(false, KEY);
    let mut control = crate::support::engine(KEY);
    let t0 = crate::support::sent_at();
    let msg = |event: &str, sender: &str, body: &str, minute: i64| IncomingMessage {
        event_id: event.into(),
        room: "!hooverfoster:oakland.example".into(),
        sender: sender.into(),
        ts: t0 + chrono::Duration::minutes(minute),
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Default::default(),
    };
    let first = msg(
        "$1",
        "@maria:oakland.example",
        "!r agents at 31st & Market",
        0,
    );
    let unplaced = msg(
        "$2",
        "@kim:oakland.example",
        "!r agents by the blue house",
        1,
    );
    for m in [&first, &unplaced] {
        engine.handle(m, m.ts).unwrap();
        control.handle(m, m.ts).unwrap();
    }
    let now = t0 + chrono::Duration::minutes(5);
    let before = engine_state(&engine, now);
    let stored = engine.store().inner.load().unwrap();
    // The confirming report, a location for the pending one, and a verifier's action:
    // each fails to commit and leaves everything as it was.
    let confirming = msg(
        "$3",
        "@dlee:oakland.example",
        "!r agents at 31st and Market St",
        5,
    );
    let id = before.0[0].id;
    let clear = msg(
        "$4",
        "@ana.verifier:oakland.example",
        &format!("!clear {id}"),
        5,
    );
    failing.set(true);
    for m in [&confirming, &clear] {
        assert!(engine.handle(m, now).is_err(), "the commit failed");
        assert_eq!(
            engine_state(&engine, now),
            before,
            "nothing changed in memory"
        );
        assert_eq!(
            engine.store().inner.load().unwrap(),
            stored,
            "nor in the store"
        );
        assert!(
            !engine.store().is_seen(&m.event_id).unwrap(),
            "not marked handled"
        );
    }
    assert!(
        engine.tick(now + chrono::Duration::hours(5)).is_err(),
        "timers too"
    );
    assert_eq!(engine_state(&engine, now), before);
    // The store works again: the same events give exactly what they give to an engine
    // that never failed.
    failing.set(false);
    for m in [&confirming, &clear] {
        assert_eq!(
            engine.handle(m, now).unwrap(),
            control.handle(m, now).unwrap()
        );
    }
    assert_eq!(engine_state(&engine, now), engine_state(&control, now));
    assert_eq!(engine_state(&engine, now).2.confirmed, 1);
}

/// Every file of the database directory, read whole.
fn files_of(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in walk(dir) {
        all.extend(std::fs::read(entry).unwrap());
    }
    all
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn purged_and_redacted_report_text_cannot_be_read_back_from_the_files_after_a_restart_too() {
    use neighborwatch::incident::{Content, Engine, IncomingMessage};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sled");
    let key = || ReporterKey::new(b"retention-test-key-0123456789abc");
    let net = std::sync::Arc::clone(&crate::support::NETWORK);
    let open = || {
        let s = crate::support::open_sled(&path);
        Engine::open(net.clone(), s, key(), Catalogs::builtin()).unwrap()
    };
    let t0 = crate::support::sent_at();
    let msg = |event: &str, sender: &str, content: Content, minute: i64| IncomingMessage {
        event_id: event.into(),
        room: "!hooverfoster:oakland.example".into(),
        sender: sender.into(),
        ts: t0 + chrono::Duration::minutes(minute),
        content,
        member: Default::default(),
    };
    let text = |body: &str| Content::Text {
        body: body.into(),
        notice: false,
        replaces: None,
    };
    const KEPT: &str = "zebra-purple-7781";
    const REDACTED: &str = "okapi-green-4410";
    let mut e = open();
    for m in [
        msg(
            "$1",
            "@maria:oakland.example",
            text(&format!("!r agents at 31st & Market {KEPT}")),
            0,
        ),
        msg(
            "$2",
            "@dlee:oakland.example",
            text(&format!("!r agents at 31st and Market St {REDACTED}")),
            2,
        ),
    ] {
        e.handle(&m, m.ts).unwrap();
    }
    // The raw records as they are now: what someone reading the files later could find.
    let raw = |e: &Engine<SledStore>| -> Vec<(Vec<u8>, Vec<u8>)> {
        let tree = e.store().db().open_tree("engine").unwrap();
        tree.scan_prefix(b"report/")
            .map(|r| r.unwrap())
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    };
    let opens_to = |e: &Engine<SledStore>, records: &[(Vec<u8>, Vec<u8>)], needle: &str| {
        records.iter().any(|(k, v)| {
            e.store()
                .sealer()
                .open_value(k, v)
                .is_ok_and(|p| p.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
    };
    let before = raw(&e);
    assert!(
        opens_to(&e, &before, KEPT) && opens_to(&e, &before, REDACTED),
        "readable now"
    );
    let on_disk = |needle: &str| {
        let all = files_of(&path);
        all.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    assert!(!on_disk(KEPT), "never in the clear in the files");

    // The second neighbor redacts their report: its text goes at once; the old copy
    // stops opening at the next hourly pass.
    let redaction = msg(
        "$3",
        "@dlee:oakland.example",
        Content::Redaction {
            redacts: "$2".into(),
            may_redact_others: false,
        },
        3,
    );
    e.handle(&redaction, redaction.ts).unwrap();
    e.tick(t0 + chrono::Duration::minutes(3)).unwrap();
    assert!(
        !opens_to(&e, &before, REDACTED),
        "the redacted text no longer opens"
    );
    let now = raw(&e);
    assert!(
        opens_to(&e, &now, KEPT),
        "the other report's text is still kept"
    );
    assert!(!opens_to(&e, &now, REDACTED));
    drop(e);

    // After a restart, past retention_hours (24): the kept text is purged, and no copy of
    // any report from before opens, with the keys of a fresh start either.
    let mut e = open();
    let purged_at = t0 + chrono::Duration::hours(25);
    e.tick(purged_at).unwrap();
    assert!(
        !opens_to(&e, &before, KEPT),
        "the purged text no longer opens"
    );
    let after = raw(&e);
    assert!(!opens_to(&e, &after, KEPT) && !opens_to(&e, &after, REDACTED));
    drop(e);
    let e = open();
    assert!(!opens_to(&e, &before, KEPT) && !opens_to(&e, &before, REDACTED));
    assert!(!on_disk(KEPT) && !on_disk(REDACTED));
    // The aggregates stay: the incident, its report, its confirmation count.
    let stored = e.store().load().unwrap();
    let inc = stored.incidents.first().expect("the incident is kept");
    assert!(inc.reports.iter().all(|r| r.text.is_none()));
    assert!(!inc.reports.is_empty());
    assert_eq!(
        e.stats(Some("hoover-foster"), 48, purged_at).reports,
        inc.reports.len()
    );
}

#[test]
fn records_an_older_version_stored_in_the_clear_still_load_and_get_sealed() {
    on_sled(|mut store, reopen| {
        let s = setting("clawson", "alert_radius_m", "200");
        let tree = store.db().open_tree("engine").unwrap();
        let k = b"setting/clawson/alert_radius_m";
        tree.insert(k, serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(store.load().unwrap().settings, vec![s.clone()]);
        store.shred().unwrap();
        let raw = tree.get(k).unwrap().unwrap();
        assert!(!raw.windows(7).any(|w| w == b"clawson"), "sealed now");
        drop(tree);
        let store = reopen(store);
        assert_eq!(store.load().unwrap().settings, vec![s]);
    });
}

/// The bot's messages about each incident, listed per room until redacted; deleting an
/// incident drops what was queued about it, but not its redactions nor the list they
/// work from.
fn sent_contract<S: Store>(mut store: S, reopen: impl Fn(S) -> S) {
    use neighborwatch::effect::Effect;
    use neighborwatch::store::OutboxEntry;
    let (i0, i1) = (IncidentId::from_seq(0), IncidentId::from_seq(1));
    store
        .commit(Batch {
            incidents: smallvec::smallvec![
                IncidentWrite::whole(incident(0, Status::Resolved)),
                IncidentWrite::whole(incident(1, Status::Expired)),
            ],
            ..Batch::default()
        })
        .unwrap();
    let sent = |incident, room, event_id, alert| Sent {
        incident,
        room,
        event_id,
        alert,
    };
    store
        .note_sent(sent(&i0, "!a:x", "$alert-a", true))
        .unwrap();
    store
        .note_sent(sent(&i0, "!a:x", "$edit-a", false))
        .unwrap();
    store
        .note_sent(sent(&i0, "!b:y", "$alert-b", true))
        .unwrap();
    store.note_sent(sent(&i1, "!a:x", "$other", true)).unwrap();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(store.sent_rooms(&i0).unwrap()), ["!a:x", "!b:y"]);
    assert_eq!(
        sorted(store.sent_events(&i0, "!a:x").unwrap()),
        ["$alert-a", "$edit-a"]
    );
    store.redacted(&i0, "!a:x", "$edit-a").unwrap();
    let mut store = reopen(store);
    assert_eq!(
        store.sent_events(&i0, "!a:x").unwrap(),
        ["$alert-a"],
        "a redacted message leaves the list, for good"
    );
    let location = |id: u64, room: &str| Effect::Location {
        room: room.into(),
        incident: incident(id, Status::Confirmed).tag(),
        geo_uri: "geo:37.8,-122.27".into(),
        body: "here".into(),
    };
    let fade = |id: IncidentId, room: &str| Effect::Fade {
        room: room.into(),
        incident: id,
    };
    let entry = |txn: &str, effect| OutboxEntry {
        txn_id: txn.into(),
        at_ms: 0,
        effect,
    };
    store
        .commit(Batch {
            outbox: vec![
                entry("fade0a", fade(i0, "!a:x")),
                entry("loc0b", location(0, "!b:y")),
                entry("loc1a", location(1, "!a:x")),
            ],
            ..Batch::default()
        })
        .unwrap();
    // Incident 0 is deleted: what was queued about it goes, but its redaction in !a and
    // the messages it redacts stay; nothing of incident 1 changes.
    store
        .commit(Batch {
            incidents_delete: vec![i0],
            ..Batch::default()
        })
        .unwrap();
    let mut store = reopen(store);
    let txns = |s: &S| -> Vec<String> {
        s.outbox()
            .unwrap()
            .into_iter()
            .map(|q| q.entry.txn_id)
            .collect()
    };
    assert_eq!(txns(&store), ["fade0a", "loc1a"]);
    assert_eq!(store.sent_rooms(&i0).unwrap(), ["!a:x"]);
    assert_eq!(store.sent_events(&i0, "!a:x").unwrap(), ["$alert-a"]);
    assert!(store.sent_events(&i0, "!b:y").unwrap().is_empty());
    assert_eq!(store.sent_events(&i1, "!a:x").unwrap(), ["$other"]);
    // A redaction queued with the deletion keeps its list too.
    store
        .commit(Batch {
            incidents_delete: vec![i1],
            outbox: vec![entry("fade1a", fade(i1, "!a:x"))],
            ..Batch::default()
        })
        .unwrap();
    let store = reopen(store);
    assert_eq!(txns(&store), ["fade0a", "fade1a"]);
    assert_eq!(store.sent_events(&i1, "!a:x").unwrap(), ["$other"]);
    assert!(store.load().unwrap().incidents.is_empty());
}

#[test]
fn memory_store_lists_the_bots_messages_until_redacted() {
    sent_contract(MemoryStore::new(), |s| s);
}

#[test]
fn sled_store_lists_the_bots_messages_until_redacted() {
    on_sled(|store, reopen| sent_contract(store, reopen));
}
