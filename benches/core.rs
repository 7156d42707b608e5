//! Throughput of the core, on one core:
//! - `parse`: reading real-looking reports (targets ≥ 100k reports/s);
//! - `ingest_10k_open`: the engine's decisions for located reports (dedupe, merge,
//!   confirmation, routing, atomic commit to the in-memory store) with 10,000 open
//!   incidents, with the R-tree index and with the naive linear scan (targets ≥ 500k
//!   reports/s and ≥ 20× the scan), and, for an honest comparison, with the fastest
//!   linear scan (one distance metric hoisted out of the loop);
//! - `render`: wording those decisions into messages (acknowledgments, alerts).
//!
//! Run: `cargo bench --bench core`. README "Performance" lists the numbers measured here.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use neighborwatch::config::Network;
use neighborwatch::incident::{Engine, IncidentIndex, LinearIndex, LocatedReport, SpatialIndex};
use neighborwatch::model::ReporterKey;
use neighborwatch::places::{LatLon, ResolveMethod, Resolved};
use neighborwatch::render::Catalogs;
use neighborwatch::report::{Details, ParseContext, ReportForm, parse_report};
use neighborwatch::store::MemoryStore;

/// The allocator of the `neighborwatch` binary, so these numbers are the bot's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MESSAGES: &[&str] = &[
    "!r 2 unmarked black SUVs, agents in vests at 31st & Market 8:05am",
    "!report 4 agents stopping parents near Hoover Elementary, plate 7ABC123",
    "!aviso dos camionetas blancas vigilando la Escuela Hoover hace 5 min",
    "!r agents at Market/31st",
    "!r checkpoint at West Oakland BART",
    "!r 800 block of 31st St, van parked",
    "!r agents at Mandela & 18th",
    "Size: 4 agents\nActivity: detaining a man\nLocation: 31st & Market\nUniform: vests\nTime: 8:00am\nEquipment: 2 black SUVs",
    "!aviso se llevaron a un señor en 7th y Mandela ahora",
    "!r geo:37.8237,-122.2762 two agents",
    "hello neighbors, school drop-off is starting",
    "!r people pretending to be ICE at DeFremery Park 7:55",
];

fn network() -> Arc<Network> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    Arc::new(Network::load(&path).expect("example network"))
}

fn parse(c: &mut Criterion) {
    let net = network();
    let nb = net.neighborhood("hoover-foster").expect("hood");
    let ctx = ParseContext {
        gazetteer: &nb.gazetteer,
        tz: nb.settings.timezone,
        sent_at: Utc.with_ymd_and_hms(2026, 3, 2, 16, 6, 0).unwrap(),
    };
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(MESSAGES.len() as u64));
    g.bench_function("mixed_reports", |b| {
        b.iter(|| {
            for m in MESSAGES {
                black_box(parse_report(black_box(m), &ctx).ok());
            }
        })
    });
    g.finish();
}

/// A network whose one neighborhood covers a 40 km square, so 10,000 incidents fit at
/// 400 m spacing (farther apart than the 250 m dedupe radius).
fn grid_network() -> Arc<Network> {
    let toml = r#"
[[neighborhood]]
id = "metro"
name = "Metro"
rooms = ["!metro:bench"]
area = { center = [37.80, -122.27], radius_m = 30000 }
"#;
    Arc::new(Network::parse(toml, Path::new("bench.toml")).expect("valid"))
}

const GRID: usize = 100;
const SPACING_DEG_LAT: f64 = 400.0 / 111_320.0;
const SPACING_DEG_LON: f64 = 400.0 / 88_000.0;
const SW: (f64, f64) = (37.62, -122.49);

/// Deterministic pseudo-random points over the grid (xorshift).
struct Points(u64);
impl Points {
    fn next(&mut self) -> LatLon {
        let mut f = || {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % 1_000_000) as f64 / 1_000_000.0
        };
        let span = GRID as f64;
        LatLon::new(
            SW.0 + span * SPACING_DEG_LAT * f(),
            SW.1 + span * SPACING_DEG_LON * f(),
        )
        .expect("in range")
    }
}

fn located(i: u64, at: LatLon, minute: i64) -> LocatedReport {
    LocatedReport {
        event_id: format!("$e{i}").into(),
        room: "!metro:bench".into(),
        reporter: ReporterKey::new(b"bench-key-0123456789").hash(&format!("@u{}:bench", i % 97)),
        place: Resolved {
            at,
            label: "somewhere".into(),
            method: ResolveMethod::Coordinates,
            uncertainty_m: 25.0,
        },
        observed_at: Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap()
            + Duration::minutes(minute),
        text: "agents at a corner".into(),
        details: Details::default(),
        form: ReportForm::Quick,
        standing: Default::default(),
    }
}

/// A store holding 10,000 open incidents on a 100 × 100 grid.
fn seeded_store(net: &Arc<Network>) -> MemoryStore {
    let mut e = Engine::open(
        Arc::clone(net),
        MemoryStore::new(),
        ReporterKey::new(b"seed"),
        Catalogs::builtin(),
    )
    .expect("engine");
    for i in 0..GRID * GRID {
        let at = LatLon::new(
            SW.0 + (i / GRID) as f64 * SPACING_DEG_LAT,
            SW.1 + (i % GRID) as f64 * SPACING_DEG_LON,
        )
        .expect("in range");
        let r = located(i as u64, at, 0);
        let now = r.observed_at;
        e.ingest(r, now).expect("ingest");
    }
    assert_eq!(
        e.open_count(),
        GRID * GRID,
        "seeding made 10,000 open incidents"
    );
    e.into_store()
}

fn ingest(c: &mut Criterion) {
    let net = grid_network();
    let store = seeded_store(&net);
    let mut g = c.benchmark_group("ingest_10k_open");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20)
        .measurement_time(StdDuration::from_secs(8));
    for (name, index) in [
        ("rtree", SpatialIndex::RTree(IncidentIndex::new())),
        ("linear_scan", SpatialIndex::Linear(LinearIndex::default())),
        (
            "linear_scan_hoisted",
            SpatialIndex::Linear(LinearIndex::hoisted()),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // Fresh engine per chunk (not timed), so state does not grow without bound.
                let mut total = StdDuration::ZERO;
                let mut done = 0u64;
                let mut pts = Points(0x2545_F491_4F6C_DD1D ^ iters);
                while done < iters {
                    let chunk = (iters - done).min(5_000);
                    let key = ReporterKey::new(b"bench-key-0123456789");
                    let mut e = Engine::open_with(
                        Arc::clone(&net),
                        store.clone(),
                        key,
                        index.rebuilt([]),
                        Catalogs::builtin(),
                    )
                    .expect("engine");
                    let reports: Vec<_> = (0..chunk)
                        .map(|k| located(1_000_000 + done + k, pts.next(), 1))
                        .collect();
                    let now = reports[0].observed_at;
                    let t = Instant::now();
                    for r in reports {
                        black_box(e.ingest(r, now).expect("ingest"));
                    }
                    total += t.elapsed();
                    done += chunk;
                }
                total
            })
        });
    }
    g.finish();
}

fn render(c: &mut Criterion) {
    let net = grid_network();
    let store = seeded_store(&net);
    let mut e = Engine::open(
        Arc::clone(&net),
        store,
        ReporterKey::new(b"bench-key-0123456789"),
        Catalogs::builtin(),
    )
    .expect("engine");
    let mut pts = Points(0x1234_5678_9ABC_DEF1);
    let mut decisions = Vec::new();
    for k in 0..2_000u64 {
        let r = located(2_000_000 + k, pts.next(), 1);
        let now = r.observed_at;
        decisions.extend(e.ingest(r, now).expect("ingest"));
    }
    let mut g = c.benchmark_group("render");
    g.throughput(Throughput::Elements(decisions.len() as u64));
    g.bench_function("decisions_of_2000_reports", |b| {
        b.iter(|| black_box(e.render(black_box(&decisions))))
    });
    g.finish();
}

criterion_group!(benches, parse, ingest, render);
criterion_main!(benches);
