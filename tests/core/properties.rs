//! Property tests (`proptest`) over the parser and the engine.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Duration;
use neighborwatch::config::Network;
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage};
use neighborwatch::model::{ReporterKey, Status};
use neighborwatch::places::LatLon;
use neighborwatch::render::Catalogs;
use neighborwatch::report::{ParseContext, parse_report};
use neighborwatch::store::{MemoryStore, Store};
use proptest::prelude::*;

use crate::support::{NETWORK, sent_at};

/// A one-neighborhood network centred at (0, 0) with a big area, so that reports at any
/// nearby coordinates are accepted.
fn open_network(confirmations: u32) -> Arc<Network> {
    let toml = format!(
        r#"
[defaults]
confirmations = {confirmations}
dedupe_radius_m = 250
dedupe_window_min = 20
[[neighborhood]]
id = "grid"
name = "Grid"
rooms = ["!grid:test"]
area = {{ center = [0.0, 0.0], radius_m = 50000 }}
"#
    );
    Arc::new(Network::parse(&toml, std::path::Path::new("grid.toml")).expect("valid"))
}

fn engine(net: Arc<Network>) -> Engine<MemoryStore> {
    Engine::open(
        net,
        MemoryStore::new(),
        ReporterKey::new(b"property-test-key-0123456789"),
        Catalogs::builtin(),
    )
    .unwrap()
}

/// A report at (lat, lon) given in metres north/east of (0, 0).
fn report(i: usize, reporter: u8, north_m: f64, east_m: f64, minute: i64) -> IncomingMessage {
    let lat = north_m / 111_320.0;
    let lon = east_m / 111_320.0;
    IncomingMessage {
        event_id: format!("$e{i}"),
        room: "!grid:test".into(),
        sender: format!("@user{reporter}:test"),
        ts: sent_at() + Duration::minutes(minute),
        content: Content::Text {
            body: format!("!r agents at {lat:.7}, {lon:.7}"),
            notice: false,
            replaces: None,
        },
        member: Default::default(),
    }
}

prop_compose! {
    fn reports(max: usize)(v in prop::collection::vec((0u8..6, -3000.0f64..3000.0, -3000.0f64..3000.0, 0i64..4), 1..max)) -> Vec<IncomingMessage> {
        let mut minute = 0;
        v.into_iter().enumerate().map(|(i, (who, n, e, step))| { minute += step; report(i, who, n, e, minute) }).collect()
    }
}

fn run(engine: &mut Engine<MemoryStore>, msgs: &[IncomingMessage]) -> Vec<Effect> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend(engine.handle(m, m.ts).unwrap());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(body in any::<String>()) {
        let nb = &NETWORK.neighborhoods()[0];
        let ctx = ParseContext { gazetteer: &nb.gazetteer, tz: nb.settings.timezone, sent_at: sent_at() };
        let _ = parse_report(&body, &ctx);
        let _ = parse_report(&format!("!r {body}"), &ctx);
        let _ = parse_report(&format!("Size: {body}\nLocation: {body}\nTime: {body}"), &ctx);
    }

    #[test]
    fn parser_never_panics_on_report_like_text(body in "(!r|!aviso|S:|L:)?[ 0-9a-zA-Z&/:,.áñ\n-]{0,80}(am|pm|min ago| y | & )?[0-9: ]{0,6}") {
        let nb = &NETWORK.neighborhoods()[0];
        let ctx = ParseContext { gazetteer: &nb.gazetteer, tz: nb.settings.timezone, sent_at: sent_at() };
        let _ = parse_report(&body, &ctx);
    }

    #[test]
    fn every_report_lands_in_exactly_one_incident(msgs in reports(40)) {
        let mut e = engine(open_network(2));
        run(&mut e, &msgs);
        let mut owner: HashMap<String, usize> = HashMap::new();
        for inc in e.incidents() {
            for r in &inc.reports {
                *owner.entry(r.event_id.as_deref().unwrap_or_default().to_owned()).or_default() += 1;
            }
        }
        for m in &msgs {
            prop_assert_eq!(owner.get(&m.event_id).copied(), Some(1), "{} is in {:?} incidents", m.event_id, owner.get(&m.event_id));
        }
    }

    #[test]
    fn reports_farther_apart_than_twice_the_radius_never_share_an_incident(msgs in reports(40)) {
        let mut e = engine(open_network(2));
        run(&mut e, &msgs);
        for inc in e.incidents() {
            for a in &inc.reports {
                for b in &inc.reports {
                    let d = a.at.distance_m(b.at);
                    prop_assert!(d <= 2.0 * 250.0 + 1.0, "{:?} and {:?} are {d:.0} m apart in {}", a.event_id, b.event_id, inc.id);
                }
            }
        }
    }

    #[test]
    fn one_reporter_never_confirms_alone(points in prop::collection::vec((-200.0f64..200.0, -200.0f64..200.0), 1..30)) {
        let mut e = engine(open_network(2));
        let msgs: Vec<_> = points.iter().enumerate().map(|(i, (n, east))| report(i, 7, *n, *east, i as i64 / 3)).collect();
        let effects = run(&mut e, &msgs);
        prop_assert!(e.incidents().all(|i| i.status == Status::Unverified));
        let relays = effects.iter().filter(|x| matches!(x, Effect::Relay { .. })).count();
        prop_assert_eq!(relays, 0);
    }

    #[test]
    fn the_spatial_index_decides_exactly_like_a_linear_scan(msgs in reports(40)) {
        let mut fast = engine(open_network(2));
        let mut naive = Engine::open_naive(open_network(2), MemoryStore::new(), ReporterKey::new(b"property-test-key-0123456789"), Catalogs::builtin()).unwrap();
        prop_assert_eq!(run(&mut fast, &msgs), run(&mut naive, &msgs));
    }

    #[test]
    fn handling_the_same_event_twice_changes_nothing(msgs in reports(25)) {
        let mut once = engine(open_network(2));
        let first = run(&mut once, &msgs);
        let snapshot = once.store().load().unwrap();
        // Every event again, in order: no action, no state change.
        let again = run(&mut once, &msgs);
        prop_assert!(again.is_empty(), "second pass produced {} actions", again.len());
        prop_assert_eq!(once.store().load().unwrap(), snapshot);
        // Duplicates interleaved give the same actions as the clean run.
        let mut twice = engine(open_network(2));
        let doubled: Vec<_> = msgs.iter().flat_map(|m| [m.clone(), m.clone()]).collect();
        prop_assert_eq!(run(&mut twice, &doubled), first);
    }
}

#[test]
fn distinct_reporters_confirm_and_the_same_one_does_not() {
    let mut e = engine(open_network(2));
    run(
        &mut e,
        &[report(0, 1, 0.0, 0.0, 0), report(1, 1, 10.0, 0.0, 1)],
    );
    assert!(e.incidents().all(|i| i.status == Status::Unverified));
    let fx = run(&mut e, &[report(2, 2, 0.0, 10.0, 2)]);
    let confirmed: HashSet<_> = e
        .incidents()
        .filter(|i| i.status == Status::Confirmed)
        .map(|i| i.id)
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(
        fx.iter()
            .filter(|x| matches!(x, Effect::Relay { .. }))
            .count(),
        1
    );
    let inc = e.incidents().next().unwrap();
    let c = LatLon::centroid(inc.reports.iter().map(|r| r.at)).unwrap();
    assert_eq!(
        inc.location, c,
        "the incident sits at the centroid of its reports"
    );
}

#[test]
fn a_drifting_centroid_never_pulls_in_a_report_beyond_twice_the_radius() {
    // Each report is within 250 m of the moving centroid, but the last is 510 m from the first.
    let mut e = engine(open_network(9));
    let east = [0.0, 240.0, 360.0, 450.0, 510.0];
    let msgs: Vec<_> = east
        .iter()
        .enumerate()
        .map(|(i, x)| report(i, i as u8, 0.0, *x, i as i64))
        .collect();
    run(&mut e, &msgs);
    // Every report was taken in, and the drift was real: the first two (240 m apart)
    // merged, so the centroid moved east.
    assert_eq!(
        e.incidents().map(|i| i.reports.len()).sum::<usize>(),
        east.len(),
        "every report is in an incident"
    );
    let of = |event: &str| {
        e.incidents()
            .find(|i| {
                i.reports
                    .iter()
                    .any(|r| r.event_id.as_deref() == Some(event))
            })
            .map(|i| i.id)
    };
    assert_eq!(of("$e0"), of("$e1"), "240 m apart: one incident");
    assert!(of("$e0").is_some());
    for inc in e.incidents() {
        for a in &inc.reports {
            for b in &inc.reports {
                assert!(
                    a.at.distance_m(b.at) <= 500.0,
                    "{:?} and {:?} share {}",
                    a.event_id,
                    b.event_id,
                    inc.id
                );
            }
        }
    }
}
