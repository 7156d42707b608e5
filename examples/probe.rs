//! Profiling aid: the benchmark's ingest workload as a plain program (for callgrind/perf).
//! `CHUNKS=N` sets the number of 5,000-report chunks; `ALLOCS=1` also counts allocations.
use chrono::{TimeZone, Utc};
use neighborwatch::render::Catalogs;
use neighborwatch::{
    config::Network, incident::*, model::ReporterKey, places::*, report::*, store::MemoryStore,
};
use std::{path::Path, sync::Arc};
#[global_allocator]
static GLOBAL: Counting = Counting;
static ALLOCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static REALLOCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
struct Counting;
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(p, l, n) }
    }
}
fn main() {
    let toml = "[[neighborhood]]\nid = \"metro\"\nname = \"Metro\"\nrooms = [\"!metro:bench\"]\narea = { center = [37.80, -122.27], radius_m = 30000 }\n";
    let net = Arc::new(Network::parse(toml, Path::new("b.toml")).unwrap());
    let mut e = Engine::open(
        net,
        MemoryStore::new(),
        ReporterKey::new(b"seed"),
        Catalogs::builtin(),
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0).unwrap();
    let key = ReporterKey::new(b"k");
    let mk = |i: u64, at: LatLon| LocatedReport {
        event_id: format!("$e{i}").into(),
        room: "!metro:bench".into(),
        reporter: key.hash(&format!("@u{}:b", i % 97)),
        place: Resolved {
            at,
            label: "x".into(),
            method: ResolveMethod::Coordinates,
            uncertainty_m: 25.0,
        },
        observed_at: now,
        text: "agents at a corner".into(),
        details: Details::default(),
        form: ReportForm::Quick,
        standing: Default::default(),
    };
    for i in 0..10_000u64 {
        let at = LatLon::new(
            37.62 + (i / 100) as f64 * 400.0 / 111_320.0,
            -122.49 + (i % 100) as f64 * 400.0 / 88_000.0,
        )
        .unwrap();
        e.ingest(mk(i, at), now).unwrap();
    }
    let store = e.into_store();
    let mut s: u64 = 0x2545F4914F6CDD1D;
    let mut total = std::time::Duration::ZERO;
    let mut n = 0;
    let mut per_chunk = Vec::new();
    for chunk in 0..std::env::var("CHUNKS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(30u64)
    {
        let net = Arc::new(Network::parse(toml, Path::new("b.toml")).unwrap());
        let mut e = Engine::open(
            net,
            store.clone(),
            ReporterKey::new(b"k2"),
            Catalogs::builtin(),
        )
        .unwrap();
        let reports: Vec<_> = (0..5_000u64)
            .map(|i| {
                let mut f = || {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % 1_000_000) as f64 / 1e6
                };
                mk(
                    1_000_000 + chunk * 5_000 + i,
                    LatLon::new(
                        37.62 + 100.0 * 400.0 / 111_320.0 * f(),
                        -122.49 + 100.0 * 400.0 / 88_000.0 * f(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        let t = timed(&mut e, reports, now);
        per_chunk.push(t.as_secs_f64() * 1e6 / 5_000.0);
        total += t;
        n += 5_000;
    }
    per_chunk.sort_by(f64::total_cmp);
    eprintln!(
        "{:.2} us/ingest (chunks: min {:.2} median {:.2})",
        total.as_secs_f64() * 1e6 / n as f64,
        per_chunk[0],
        per_chunk[per_chunk.len() / 2]
    );
}

/// The measured part, apart for profilers.
#[inline(never)]
fn timed(
    e: &mut Engine<MemoryStore>,
    reports: Vec<LocatedReport>,
    now: chrono::DateTime<Utc>,
) -> std::time::Duration {
    let a0 = ALLOCS.load(std::sync::atomic::Ordering::Relaxed);
    let r0 = REALLOCS.load(std::sync::atomic::Ordering::Relaxed);
    let n = reports.len() as f64;
    let t = std::time::Instant::now();
    for r in reports {
        std::hint::black_box(e.ingest(r, now).unwrap());
    }
    let el = t.elapsed();
    if std::env::var("ALLOCS").is_ok() {
        eprintln!(
            "allocs/report {:.2} reallocs/report {:.2}",
            (ALLOCS.load(std::sync::atomic::Ordering::Relaxed) - a0) as f64 / n,
            (REALLOCS.load(std::sync::atomic::Ordering::Relaxed) - r0) as f64 / n
        );
    }
    el
}
