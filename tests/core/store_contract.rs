//! One behaviour contract run against every store backend (as matrix-sdk does with
//! `statestore_integration_tests!`), plus resuming a replay from a reopened sled store.

use chrono::{TimeZone, Utc};
use neighborwatch::incident::{Incident, IncidentId, PendingReport, ReporterKey, Status};
use neighborwatch::places::{LatLon, ResolveMethod, Resolved};
use neighborwatch::report::{Details, LocationOutcome, ParsedReport, ReportForm};
use neighborwatch::store::{Batch, MemoryStore, SledStore, Store};

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
        updated_at: t,
        reports: Vec::new(),
        reporters: vec![ReporterKey::new(b"k").hash("@a:b")],
        details: Details::default(),
        near: None,
        relayed_to: vec!["!r:x".into()],
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
            seen: vec!["$a".into(), "$b".into()],
            incidents: vec![
                incident(0, Status::Unverified),
                incident(1, Status::Confirmed),
            ],
            pending_put: vec![pending("$p1"), pending("$p2")],
            pending_delete: vec![],
            next_seq: Some(2),
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

    // Upsert replaces; delete removes; an empty batch changes nothing.
    store
        .commit(Batch {
            incidents: vec![incident(0, Status::Expired)],
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
}

#[test]
fn memory_store_meets_the_contract() {
    contract(MemoryStore::new(), |s| s);
}

#[test]
fn sled_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sled");
    contract(SledStore::open(&path).unwrap(), |s| {
        drop(s);
        SledStore::open(&path).unwrap()
    });
}

#[test]
fn resolved_locations_round_trip_through_sled() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(&dir.path().join("db")).unwrap();
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
