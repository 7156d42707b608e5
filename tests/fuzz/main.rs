//! Fuzzing: the report parser, the network-file loader and replay input lines, over
//! arbitrary and grammar-aware inputs, on the stable toolchain (proptest's runner, no
//! nightly `cargo fuzz`). Not in the default suite: run it with `scripts/fuzz` (cases per
//! target from `NW_FUZZ_CASES`, default 1,000,000).
//!
//! Each target fails on a panic (proptest catches it and shrinks the input) or on an
//! input that takes longer than [`HANG`] (a hang, or a pathological regex). Failing
//! inputs are saved under `tests/fuzz-regressions/` and replayed first on every run: keep
//! them in git as regression cases.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use neighborwatch::config::Network;
use neighborwatch::incident::Engine;
use neighborwatch::model::ReporterKey;
use neighborwatch::render::Catalogs;
use neighborwatch::report::{ParseContext, parse_report};
use neighborwatch::store::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

/// Longer than this for one input counts as a hang.
const HANG: Duration = Duration::from_secs(2);

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/example.toml")
}

static NETWORK: LazyLock<Arc<Network>> =
    LazyLock::new(|| Arc::new(Network::load(&example()).expect("the example network loads")));

fn cases() -> u32 {
    std::env::var("NW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// Runs `check` on `cases()` inputs from `strategy`; reports how many ran and the
/// slowest one.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let regressions = format!(
        "{}/tests/fuzz-regressions/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(Box::leak(
            regressions.into_boxed_str(),
        )))),
        max_shrink_iters: 10_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    let slowest = std::cell::Cell::new(Duration::ZERO);
    let ran = std::cell::Cell::new(0u64);
    let result = runner.run(&strategy, |input| {
        let t = Instant::now();
        check(input);
        let took = t.elapsed();
        ran.set(ran.get() + 1);
        slowest.set(slowest.get().max(took));
        prop_assert!(took < HANG, "one input took {took:?}");
        Ok(())
    });
    eprintln!(
        "fuzz {name}: {} inputs in {:.1?}, slowest {:.1?}",
        ran.get(),
        started.elapsed(),
        slowest.get()
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// Words a report is made of: the example's place and street names, connectors, counts,
/// times, vehicles, Spanish, HTML, and the SALUTE field names.
fn report_word() -> impl Strategy<Value = String> {
    let mut words: Vec<String> = NETWORK
        .neighborhoods()
        .iter()
        .flat_map(|n| {
            n.gazetteer
                .places()
                .iter()
                .map(|p| p.name.clone())
                .chain(n.gazetteer.streets().iter().map(|s| s.name.clone()))
        })
        .collect();
    words.extend(
        [
            "!r",
            "!aviso",
            "!reporte",
            "agents",
            "agentes",
            "ICE",
            "at",
            "en",
            "near",
            "cerca de",
            "&",
            "and",
            "y",
            "/",
            "corner of",
            "esquina",
            "block of",
            "cuadra",
            "800",
            "31st",
            "thirty-first",
            "3",
            "two",
            "dos",
            "SUVs",
            "van",
            "camioneta",
            "plate",
            "placa",
            "7ABC123",
            "8:05am",
            "8:05 pm",
            "20:15",
            "5 min ago",
            "hace 10 min",
            "now",
            "ahora",
            "37.8232, -122.2785",
            "geo:37.8232,-122.2785",
            "geo:91,200",
            "-0.0",
            "1e309",
            "S:",
            "A:",
            "L:",
            "U:",
            "T:",
            "E:",
            "Size:",
            "Location:",
            "Time:",
            "\n",
            "  ",
            "<b>",
            "</script>",
            "&amp;",
            "🚨",
            "é",
            "ñ",
            "\u{200b}",
            "\u{202e}",
            "\0",
        ]
        .map(String::from),
    );
    prop::sample::select(words)
}

fn report_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        prop::collection::vec(report_word(), 0..24).prop_map(|w| w.join(" ")),
        (prop::collection::vec(report_word(), 0..12), any::<String>())
            .prop_map(|(w, s)| format!("{} {s}", w.join(" "))),
        // Long inputs: the size limit and the regexes on big text.
        (report_word(), 1usize..2000).prop_map(|(w, n)| w.repeat(n)),
    ]
}

#[test]
fn report_parser() {
    let nb = &NETWORK.neighborhoods()[0];
    let sent_at = Utc.with_ymd_and_hms(2026, 3, 2, 16, 6, 0).unwrap();
    let ctx = ParseContext {
        gazetteer: &nb.gazetteer,
        tz: nb.settings.timezone,
        sent_at,
    };
    fuzz("report_parser", report_text(), |body| {
        let _ = parse_report(&body, &ctx);
    });
}

/// One change to a network file: a line dropped, doubled or swapped, a value replaced,
/// bytes inserted, the text cut.
#[derive(Clone, Debug)]
enum Mutation {
    Drop(usize),
    Double(usize),
    Swap(usize, usize),
    Value(usize, String),
    Insert(usize, String),
    Cut(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        prop::sample::select(vec![
            "-1",
            "0",
            "1e309",
            "nan",
            "inf",
            "\"\"",
            "[]",
            "{}",
            "true",
            "\"zz\"",
            "[0.0, 0.0]",
            "[91.0, 181.0]",
            "\"Mars/Olympus\"",
            "\"!x\"",
            "\"@\"",
            "18446744073709551616",
            "{ center = [37.8, -122.2], radius_m = -5 }",
            "[\"../../etc/passwd\"]",
            "\"\\u0000\"",
        ])
        .prop_map(String::from),
        any::<String>().prop_map(|s| format!("{s:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Drop),
        any::<usize>().prop_map(Mutation::Double),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<usize>(), value).prop_map(|(a, v)| Mutation::Value(a, v)),
        (any::<usize>(), any::<String>()).prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::Cut),
    ]
}

fn mutate(text: &str, changes: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for m in changes {
        let n = lines.len().max(1);
        match m {
            Mutation::Drop(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::Double(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Mutation::Value(i, v) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                if let Some((k, _)) = l.split_once('=') {
                    *l = format!("{k}= {v}");
                }
            }
            Mutation::Insert(i, s) => lines.insert(i % (lines.len() + 1), s.clone()),
            Mutation::Cut(i) => {
                let all = lines.join("\n");
                let mut at = i % (all.len() + 1);
                while !all.is_char_boundary(at) {
                    at -= 1;
                }
                lines = all[..at].lines().map(String::from).collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

#[test]
fn network_file_loader() {
    let path = example();
    let text = std::fs::read_to_string(&path).unwrap();
    let strategy = prop_oneof![
        4 => prop::collection::vec(mutation(), 1..6),
        1 => Just(Vec::new()),
    ]
    .prop_flat_map(|m| (Just(m), any::<String>()));
    fuzz("network_file_loader", strategy, |(changes, junk)| {
        let _ = Network::parse(&mutate(&text, &changes), &path);
        let _ = Network::parse(&junk, Path::new("junk.toml"));
    });
}

/// A replay input line: a JSON object of the fields replay reads, with values from
/// everywhere (or, sometimes, not JSON at all).
fn replay_line() -> impl Strategy<Value = String> {
    let rooms: Vec<String> = NETWORK
        .neighborhoods()
        .iter()
        .flat_map(|n| n.rooms.iter().map(|r| r.to_string()))
        .chain([
            "!coordination:oakland.example".to_owned(),
            "!x:y".to_owned(),
            String::new(),
        ])
        .collect();
    let field = |name: &'static str, v: BoxedStrategy<serde_json::Value>| {
        prop::option::of(v).prop_map(move |v| (name, v))
    };
    let text = || report_text().prop_map(serde_json::Value::from).boxed();
    let id = || {
        prop_oneof![
            prop::sample::select(vec!["$1", "$2", "$1/1", "$2/3", "", "$"]).prop_map(String::from),
            any::<String>()
        ]
        .prop_map(serde_json::Value::from)
        .boxed()
    };
    let int = || {
        prop_oneof![
            Just(1_772_467_500_000i64),
            (1_772_467_500_000i64..1_772_900_000_000),
            any::<i64>()
        ]
        .prop_map(serde_json::Value::from)
        .boxed()
    };
    let object = (
        prop::sample::select(rooms),
        prop::sample::select(vec![
            "@maria:oakland.example",
            "@dlee:oakland.example",
            "@ana.verifier:oakland.example",
            "@x",
            "",
        ]),
        int(),
        (
            field("body", text()),
            field(
                "geo",
                prop::sample::select(vec!["geo:37.8232,-122.2785", "geo:x", "geo:91,0"])
                    .prop_map(serde_json::Value::from)
                    .boxed(),
            ),
            field("event_id", id()),
            field("replaces", id()),
            field(
                "msgtype",
                prop::sample::select(vec!["m.text", "m.notice", "m.emote"])
                    .prop_map(serde_json::Value::from)
                    .boxed(),
            ),
            field(
                "reaction",
                prop::sample::select(vec!["✅", "❌", "🟢", "👍", ""])
                    .prop_map(serde_json::Value::from)
                    .boxed(),
            ),
            field("relates_to", id()),
            field("redacts", id()),
            field("power", int()),
            field("member_since", int()),
        ),
    )
        .prop_map(|(room, sender, ts, f)| {
            let mut o = serde_json::Map::new();
            o.insert("room".into(), room.into());
            o.insert("sender".into(), sender.into());
            o.insert("ts".into(), ts);
            for (k, v) in [f.0, f.1, f.2, f.3, f.4, f.5, f.6, f.7, f.8, f.9] {
                if let Some(v) = v {
                    o.insert(k.into(), v);
                }
            }
            serde_json::Value::Object(o).to_string()
        });
    prop_oneof![8 => object, 1 => any::<String>().prop_map(|s| s.replace('\n', " "))]
}

#[test]
fn replay_input_lines() {
    fuzz(
        "replay_input_lines",
        prop::collection::vec(replay_line(), 1..6),
        |lines| {
            let mut engine = Engine::open(
                Arc::clone(&NETWORK),
                MemoryStore::new(),
                ReporterKey::new(b"fuzz-reporter-key-0123456789abcd"),
                Catalogs::builtin(),
            )
            .expect("opens");
            let input = lines.join("\n");
            let _ = neighborwatch::replay::run(
                &mut engine,
                BufReader::new(input.as_bytes()),
                std::io::sink(),
                std::io::sink(),
            );
        },
    );
}
