//! Metrics: what an operator watches in production.
//!
//! Owns: the counters, gauges and histograms the Matrix shell updates, their Prometheus
//! text exposition, the `/health` verdict, and the optional HTTP listener (`[metrics]
//! listen` in the network file) that serves both. Metric names follow Prometheus
//! conventions (`neighborwatch_…_total` counters, histograms in seconds).
//! The statistics of `!nw stats` (reports, incidents, confirmations, false alarms, rooms
//! alerted, refusals, per neighborhood) are counted here too, from the engine's
//! [`Tally`]s after each commit: counters since the process started, where `!nw stats`
//! reads a window of the store.
//! Must not touch: decisions, message bodies, user IDs. Labels are room IDs, neighborhood
//! IDs and kinds of message, never who wrote what.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::{debug, info, warn};

use crate::stats::Tally;

/// A room, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoomLabel {
    /// The room ID.
    pub room: String,
}

/// A kind of message the bot sends, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `alert`, `update` (edits, thread replies, locations), `reply` or `notice`.
    pub kind: &'static str,
}

/// A neighborhood (its `id` in the network file; `coordination` for the coordination
/// room's refusals), as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NeighborhoodLabel {
    /// The neighborhood's id.
    pub neighborhood: String,
}

/// A histogram per neighborhood.
type PerNeighborhood = Family<NeighborhoodLabel, Histogram, fn() -> Histogram>;

/// How long the bot may go without a completed sync and still count as syncing: the
/// sync long-polls for 10 s, so three missed polls.
pub const SYNC_STALE: Duration = Duration::from_secs(30);
/// How long the outbox may hold messages without sending any and still count as
/// draining (a room in backoff retries within 30 s).
pub const OUTBOX_STALE: Duration = Duration::from_secs(90);

/// Every metric of the bot, and what `/health` needs. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Seconds from the bot receiving the event that confirmed (or changed) an incident
    /// to the server accepting the alert in a room.
    pub alert_delay: Histogram,
    /// Seconds from an event's server timestamp to the bot receiving it.
    pub sync_lag: Histogram,
    /// Messages waiting in the outbox, per room.
    pub outbox_depth: Family<RoomLabel, Gauge>,
    /// Messages the server accepted, by kind.
    pub sent: Family<KindLabel, Counter>,
    /// Sends that must be tried again (rate limits, server errors, lost connections).
    pub send_retries: Counter,
    /// Messages the server refused for good (dropped, and said so in coordination).
    pub send_refused: Counter,
    /// Events handed to the engine (messages, reactions, redactions).
    pub events: Counter,
    /// When the last sync completed (seconds since 1970).
    pub last_sync: Gauge<f64, AtomicU64>,
    /// Reports taken in, per neighborhood (drills never count, here or below).
    pub reports: Family<NeighborhoodLabel, Counter>,
    /// Incidents opened, per neighborhood.
    pub incidents: Family<NeighborhoodLabel, Counter>,
    /// Incidents confirmed, per neighborhood.
    pub confirmed: Family<NeighborhoodLabel, Counter>,
    /// Incidents marked false alarms, per neighborhood.
    pub false_alarms: Family<NeighborhoodLabel, Counter>,
    /// Rooms alerted, per neighborhood of the incident.
    pub rooms_alerted: Family<NeighborhoodLabel, Counter>,
    /// Commands and verifier actions refused, per neighborhood.
    pub refusals: Family<NeighborhoodLabel, Counter>,
    /// Seconds from an incident's first report to its confirmation, per neighborhood.
    pub confirmation: PerNeighborhood,
    clock: Mutex<Clock>,
}

#[derive(Debug, Default)]
struct Clock {
    last_sync: Option<Instant>,
    last_send: Option<Instant>,
    depth: i64,
}

/// Buckets for first report to confirmation: 5 s to about 2.8 h, doubling.
fn confirmation_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        5.0, 2.0, 12,
    ))
}

/// Buckets for delays: 5 ms to about 82 s, doubling.
fn delay_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 15)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set, all zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("neighborwatch");
        let alert_delay = Histogram::new(delay_buckets());
        registry.register(
            "alert_delay_seconds",
            "From receiving the event that confirmed or changed an incident to the server accepting its alert or update in a room",
            alert_delay.clone(),
        );
        let sync_lag = Histogram::new(delay_buckets());
        registry.register(
            "sync_lag_seconds",
            "From an event's server timestamp to the bot receiving it",
            sync_lag.clone(),
        );
        let outbox_depth = Family::<RoomLabel, Gauge>::default();
        registry.register(
            "outbox_depth",
            "Messages waiting to be sent, per room",
            outbox_depth.clone(),
        );
        let sent = Family::<KindLabel, Counter>::default();
        registry.register(
            "messages_sent",
            "Messages the homeserver accepted, by kind",
            sent.clone(),
        );
        let send_retries = Counter::default();
        registry.register(
            "send_retries",
            "Sends to be tried again (rate limit, server error, lost connection, not joined yet)",
            send_retries.clone(),
        );
        let send_refused = Counter::default();
        registry.register(
            "send_refused",
            "Messages the homeserver refused for good",
            send_refused.clone(),
        );
        let events = Counter::default();
        registry.register(
            "events_received",
            "Events handed to the engine (messages, reactions, redactions)",
            events.clone(),
        );
        let last_sync = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_sync_timestamp_seconds",
            "When the last sync with the homeserver completed",
            last_sync.clone(),
        );
        let mut per_neighborhood = |name: &str, help: &str| {
            let f = Family::<NeighborhoodLabel, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let reports = per_neighborhood(
            "reports",
            "Reports taken in, per neighborhood (drills never count)",
        );
        let incidents = per_neighborhood("incidents", "Incidents opened, per neighborhood");
        let confirmed = per_neighborhood("confirmed", "Incidents confirmed, per neighborhood");
        let false_alarms = per_neighborhood(
            "false_alarms",
            "Incidents marked false alarms, per neighborhood",
        );
        let rooms_alerted = per_neighborhood(
            "rooms_alerted",
            "Rooms alerted about an incident, per neighborhood of the incident",
        );
        let refusals = per_neighborhood(
            "refusals",
            "Commands and verifier actions refused, per neighborhood",
        );
        let confirmation: PerNeighborhood = Family::new_with_constructor(confirmation_histogram);
        registry.register(
            "confirmation_seconds",
            "From an incident's first report to its confirmation, per neighborhood",
            confirmation.clone(),
        );
        Self {
            registry,
            reports,
            incidents,
            confirmed,
            false_alarms,
            rooms_alerted,
            refusals,
            confirmation,
            alert_delay,
            sync_lag,
            outbox_depth,
            sent,
            send_retries,
            send_refused,
            events,
            last_sync,
            clock: Mutex::new(Clock::default()),
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        // A panic elsewhere while holding the lock leaves plain numbers behind: still
        // good to read.
        self.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A sync completed now.
    pub fn synced(&self) {
        self.clock().last_sync = Some(Instant::now());
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        self.last_sync.set(now);
    }

    /// The server accepted a message of `kind` now.
    pub fn sent(&self, kind: &'static str) {
        self.clock().last_send = Some(Instant::now());
        self.sent.get_or_create(&KindLabel { kind }).inc();
    }

    /// The outbox now holds `depth` messages for `room`.
    pub fn outbox(&self, room: &str, depth: usize) {
        let label = RoomLabel {
            room: room.to_owned(),
        };
        if depth == 0 {
            self.outbox_depth.remove(&label);
        } else {
            self.outbox_depth
                .get_or_create(&label)
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
    }

    /// Adds what one committed input changed in a neighborhood's numbers.
    pub fn tally(&self, t: &Tally) {
        let label = NeighborhoodLabel {
            neighborhood: t.neighborhood.to_string(),
        };
        let add = |f: &Family<NeighborhoodLabel, Counter>, n: u32| {
            if n > 0 {
                f.get_or_create(&label).inc_by(u64::from(n));
            }
        };
        add(&self.reports, t.reports);
        add(&self.incidents, t.incidents);
        add(&self.false_alarms, t.false_alarms);
        add(&self.rooms_alerted, t.rooms_alerted);
        add(&self.refusals, t.refusals);
        for s in &t.confirmed_after_s {
            self.confirmed.get_or_create(&label).inc();
            self.confirmation.get_or_create(&label).observe(*s);
        }
    }

    /// The outbox now holds `total` messages in all.
    pub fn outbox_total(&self, total: usize) {
        self.clock().depth = i64::try_from(total).unwrap_or(i64::MAX);
    }

    /// Messages waiting in the outbox now.
    pub fn outbox_len(&self) -> i64 {
        self.clock().depth
    }

    /// Whether the bot is healthy now; see [`health`].
    pub fn health(&self) -> Result<(), &'static str> {
        let c = self.clock();
        health(Instant::now(), c.last_sync, c.depth, c.last_send)
    }

    /// The Prometheus text exposition (OpenMetrics) of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing into a String does not fail; if it ever did, say so in the page.
            out = "# encoding failed\n".into();
        }
        out
    }
}

/// The `/health` verdict: healthy while a sync completed within [`SYNC_STALE`] and the
/// outbox is empty or sent something within [`OUTBOX_STALE`]. The reason otherwise.
pub fn health(
    now: Instant,
    last_sync: Option<Instant>,
    outbox_depth: i64,
    last_send: Option<Instant>,
) -> Result<(), &'static str> {
    let fresh = |t: Option<Instant>, within: Duration| {
        t.is_some_and(|t| now.saturating_duration_since(t) <= within)
    };
    if !fresh(last_sync, SYNC_STALE) {
        return Err("not syncing with the homeserver");
    }
    if outbox_depth > 0 && !fresh(last_send, OUTBOX_STALE) {
        return Err("the outbox is not draining");
    }
    Ok(())
}

fn respond(metrics: &Metrics, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, ctype: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(ctype),
        );
        r
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "only GET is served\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/health" => match metrics.health() {
            Ok(()) => text(StatusCode::OK, PLAIN, "ok\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{why}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: try /metrics or /health\n".into(),
        ),
    }
}

/// Serves `/metrics` and `/health` on `addr` until the task is dropped or aborted.
/// Binding fails early, with the address in the error.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("metrics listener on {addr}: {e}")))?;
    let addr = listener.local_addr().unwrap_or(addr);
    info!(%addr, "metrics on /metrics, health on /health");
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let m = Arc::clone(&metrics);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let m = Arc::clone(&m);
                    async move { Ok::<_, Infallible>(respond(&m, &req)) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
                {
                    debug!(error = %e, "metrics connection ended with an error");
                }
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_needs_a_recent_sync_and_a_draining_outbox() {
        let now = Instant::now() + Duration::from_secs(1000);
        let ago = |s: u64| Some(now - Duration::from_secs(s));
        assert_eq!(
            health(now, None, 0, None),
            Err("not syncing with the homeserver")
        );
        assert_eq!(
            health(now, ago(31), 0, None),
            Err("not syncing with the homeserver")
        );
        assert_eq!(health(now, ago(5), 0, None), Ok(()));
        // Messages waiting while sends still go through: draining.
        assert_eq!(health(now, ago(5), 12, ago(2)), Ok(()));
        // Waiting, and nothing accepted for too long (or ever).
        assert_eq!(
            health(now, ago(5), 3, ago(91)),
            Err("the outbox is not draining")
        );
        assert_eq!(
            health(now, ago(5), 3, None),
            Err("the outbox is not draining")
        );
    }

    #[test]
    fn the_exposition_names_every_metric_and_counts_what_happened() {
        let m = Metrics::new();
        m.alert_delay.observe(0.25);
        m.sent("alert");
        m.sent("alert");
        m.outbox("!a:hs", 3);
        m.outbox("!b:hs", 1);
        m.outbox("!b:hs", 0);
        let page = m.encode();
        for name in [
            "neighborwatch_alert_delay_seconds_count 1",
            "neighborwatch_alert_delay_seconds_sum 0.25",
            "neighborwatch_messages_sent_total{kind=\"alert\"} 2",
            "neighborwatch_outbox_depth{room=\"!a:hs\"} 3",
            "neighborwatch_send_retries_total 0",
            "neighborwatch_sync_lag_seconds_count 0",
            "neighborwatch_last_sync_timestamp_seconds",
        ] {
            assert!(page.contains(name), "{name} missing from:\n{page}");
        }
        // The statistics, per neighborhood.
        let hf = |reports, refusals| Tally {
            neighborhood: "hoover-foster".into(),
            reports,
            refusals,
            ..Tally::default()
        };
        m.tally(&hf(1, 0));
        m.tally(&Tally {
            incidents: 1,
            confirmed_after_s: vec![300.0],
            rooms_alerted: 2,
            ..hf(1, 0)
        });
        m.tally(&Tally {
            neighborhood: "coordination".into(),
            ..hf(0, 1)
        });
        let page = m.encode();
        for name in [
            "neighborwatch_reports_total{neighborhood=\"hoover-foster\"} 2",
            "neighborwatch_incidents_total{neighborhood=\"hoover-foster\"} 1",
            "neighborwatch_confirmed_total{neighborhood=\"hoover-foster\"} 1",
            "neighborwatch_rooms_alerted_total{neighborhood=\"hoover-foster\"} 2",
            "neighborwatch_refusals_total{neighborhood=\"coordination\"} 1",
            "neighborwatch_confirmation_seconds_sum{neighborhood=\"hoover-foster\"} 300.0",
            "neighborwatch_confirmation_seconds_bucket{le=\"320.0\",neighborhood=\"hoover-foster\"} 1",
            "neighborwatch_confirmation_seconds_bucket{le=\"160.0\",neighborhood=\"hoover-foster\"} 0",
        ] {
            assert!(page.contains(name), "{name} missing from:\n{page}");
        }
        // Nothing counted, nothing listed: no false alarm line yet, no refusal here.
        assert!(
            !page.contains("neighborwatch_false_alarms_total{"),
            "{page}"
        );
        assert!(
            !page.contains("neighborwatch_refusals_total{neighborhood=\"hoover-foster\"}"),
            "{page}"
        );
        // A room whose queue emptied is no longer listed.
        assert!(!page.contains("!b:hs"), "{page}");
        assert!(page.ends_with("# EOF\n"), "{page}");
    }
}
