//! A receiving side for latency measurements: a long-polling `/sync` over raw
//! client-server HTTP that stamps when each response arrives, before parsing it.
//!
//! Owns: one extra device of a neighbor's account (its own login, no keys, so no
//! sender ever shares a room key with it and it never takes to-device messages away
//! from the neighbor's real client), its sync loop, and the log of every timeline event
//! it received with the arrival time of the response that held it. It decrypts nothing:
//! an event is recognized by its ID, room and sender. Waiting wakes on each response
//! (a watch channel), never by polling. Must not touch: anything but loopback.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk::reqwest;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::synapse::{DevnetError, Synapse};

/// One timeline event, as the sync response that held it showed it.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// Its room.
    pub room: String,
    /// Its event ID.
    pub event_id: String,
    /// Its sender.
    pub sender: String,
    /// Its type (`m.room.encrypted` for an encrypted message).
    pub kind: String,
    /// When the sync response holding it had arrived whole (before it was parsed).
    pub at: Instant,
}

#[derive(Default)]
struct Log {
    events: Vec<Arrival>,
    /// Timelines of rooms it had seen before that a sync cut (`limited`): events may be
    /// missing. (A newly joined room's first timeline is often `limited`: that is not
    /// a gap.)
    gaps: usize,
    /// The rooms it has seen.
    rooms: std::collections::HashSet<String>,
}

/// A neighbor's second device, long-polling `/sync` (see the module documentation).
pub struct Probe {
    log: Arc<Mutex<Log>>,
    seq: watch::Sender<usize>,
    task: JoinHandle<()>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The filter of every incremental sync: timelines only, up to 1000 events a room (a
/// catch-up puts 400 into one room between two syncs).
const FILTER: &str = r#"{"presence":{"types":[]},"account_data":{"types":[]},"room":{"state":{"lazy_load_members":true},"ephemeral":{"types":[]},"account_data":{"types":[]},"timeline":{"limit":1000}}}"#;
/// The filter of the first sync, which only fetches the position to start from.
const FIRST_FILTER: &str = r#"{"presence":{"types":[]},"account_data":{"types":[]},"room":{"state":{"lazy_load_members":true},"ephemeral":{"types":[]},"account_data":{"types":[]},"timeline":{"limit":1}}}"#;

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn err(what: impl std::fmt::Display) -> DevnetError {
    DevnetError(format!("probe: {what}"))
}

impl Probe {
    /// Logs `user` in on `hs` as a new device (no keys), syncs once, then long-polls in
    /// the background; returns once the first sync is done, so that every event sent
    /// afterwards is logged.
    pub async fn start(hs: &Synapse, user: &str, password: &str) -> Result<Probe, DevnetError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(err)?;
        let body = serde_json::json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "initial_device_display_name": "neighborwatch latency probe",
        });
        let login: Value = json(
            http.post(format!("{}/_matrix/client/v3/login", hs.url))
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await,
        )
        .await?;
        let token = login["access_token"]
            .as_str()
            .ok_or_else(|| err(format!("login failed: {login}")))?
            .to_owned();
        let base = format!("{}/_matrix/client/v3/sync", hs.url);
        let first: Value = json(
            http.get(format!("{base}?timeout=0&filter={}", enc(FIRST_FILTER)))
                .bearer_auth(&token)
                .send()
                .await,
        )
        .await?;
        let since = first["next_batch"]
            .as_str()
            .ok_or_else(|| err(format!("first sync: {first}")))?
            .to_owned();
        let log = Arc::new(Mutex::new(Log::default()));
        let (seq, _) = watch::channel(0);
        let task = tokio::spawn(poll(http, base, token, since, log.clone(), seq.clone()));
        Ok(Probe { log, seq, task })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many events it has logged: a mark to wait from.
    pub fn mark(&self) -> usize {
        self.lock().events.len()
    }

    /// How many timelines of rooms it knew a sync cut (`limited`); 0 in a sound
    /// measurement.
    pub fn gaps(&self) -> usize {
        self.lock().gaps
    }

    /// Every event logged from `mark` on.
    pub fn since(&self, mark: usize) -> Vec<Arrival> {
        self.lock().events.get(mark..).unwrap_or_default().to_vec()
    }

    /// The first event logged from `mark` on for which `f` holds, waiting for it for at
    /// most `secs` seconds.
    pub async fn wait(
        &self,
        what: &str,
        secs: u64,
        mark: usize,
        f: impl Fn(&Arrival) -> bool,
    ) -> Result<Arrival, DevnetError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut rx = self.seq.subscribe();
        loop {
            if let Some(a) = self
                .lock()
                .events
                .get(mark..)
                .and_then(|e| e.iter().find(|a| f(a)))
            {
                return Ok(a.clone());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(err(format!("sync loop ended waiting for {what}"))),
                Err(_) => return Err(err(format!("timed out after {secs} s waiting for {what}"))),
            }
        }
    }

    /// When the last of `ids` arrived, once every one of them has (at most `secs` s).
    pub async fn wait_all(
        &self,
        what: &str,
        secs: u64,
        ids: &[String],
    ) -> Result<Instant, DevnetError> {
        let want: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let mut rx = self.seq.subscribe();
        loop {
            // The first arrival of each wanted event (its first sync response).
            let mut found = std::collections::HashMap::new();
            for a in self.lock().events.iter() {
                if want.contains(a.event_id.as_str()) {
                    found.entry(a.event_id.clone()).or_insert(a.at);
                }
            }
            if found.len() == want.len()
                && let Some(last) = found.into_values().max()
            {
                return Ok(last);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(err(format!("sync loop ended waiting for {what}"))),
                Err(_) => return Err(err(format!("timed out after {secs} s waiting for {what}"))),
            }
        }
    }

    /// When the events `ids` arrived (those it has seen).
    pub fn arrivals(&self, ids: &[String]) -> Vec<Instant> {
        let log = self.lock();
        ids.iter()
            .filter_map(|id| log.events.iter().find(|a| &a.event_id == id).map(|a| a.at))
            .collect()
    }
}

/// The body of a response, as JSON.
async fn json(resp: reqwest::Result<reqwest::Response>) -> Result<Value, DevnetError> {
    let resp = resp.map_err(err)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(err)?;
    if !status.is_success() {
        return Err(err(format!("{status}: {}", String::from_utf8_lossy(&body))));
    }
    serde_json::from_slice(&body).map_err(err)
}

/// The sync loop: each response is stamped when its body has arrived, then parsed.
async fn poll(
    http: reqwest::Client,
    base: String,
    token: String,
    mut since: String,
    log: Arc<Mutex<Log>>,
    seq: watch::Sender<usize>,
) {
    let filter = enc(FILTER);
    loop {
        let url = format!("{base}?timeout=30000&filter={filter}&since={}", enc(&since));
        let resp = http.get(&url).bearer_auth(&token).send().await;
        let body = match resp {
            Ok(r) if r.status().is_success() => r.bytes().await,
            Ok(r) => {
                eprintln!("probe: sync answered {}", r.status());
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => Err(e),
        };
        let at = Instant::now();
        let Ok(body) = body else {
            // A lost connection (the homeserver restarting): try again shortly.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            continue;
        };
        if let Some(next) = v["next_batch"].as_str() {
            since = next.to_owned();
        }
        let mut l = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        timeline(&v, at, &mut l);
        let n = l.events.len();
        drop(l);
        seq.send_replace(n);
    }
}

/// Logs every timeline event of the joined rooms of a sync response, and counts the
/// known rooms' timelines it cut.
fn timeline(v: &Value, at: Instant, log: &mut Log) {
    let Some(rooms) = v["rooms"]["join"].as_object() else {
        return;
    };
    for (room, r) in rooms {
        let known = !log.rooms.insert(room.clone());
        if known && r["timeline"]["limited"] == true {
            log.gaps += 1;
        }
        let Some(events) = r["timeline"]["events"].as_array() else {
            continue;
        };
        for e in events {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            log.events.push(Arrival {
                room: room.clone(),
                event_id: s("event_id"),
                sender: s("sender"),
                kind: s("type"),
                at,
            });
        }
    }
}
