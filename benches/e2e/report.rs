//! The end-to-end benchmark's figures and its tables (p50 and p90 of every figure, the
//! floor beside it, the ratio and issue 25's target, "MISSED" where one is missed).

use std::time::Duration;

pub use neighborwatch::devnet::measure::ms;
use neighborwatch::devnet::measure::quantile;

/// Sends in flight for the catch-up floor (as many as the bot may have).
pub const IN_FLIGHT: usize = 16;

/// p50 and p90 of `v`.
fn p(v: &[f64]) -> (f64, f64) {
    (quantile(v, 0.5), quantile(v, 0.9))
}

/// Everything measured, in ms unless said otherwise.
#[derive(Default)]
pub struct Figures {
    pub samples: usize,
    pub fan: usize,
    pub reports: usize,
    pub local: Vec<f64>,
    pub federated: Vec<f64>,
    pub local_plain: Vec<f64>,
    pub federated_plain: Vec<f64>,
    /// The second client's (local, federated) hops, unencrypted.
    pub python: Option<(Vec<f64>, Vec<f64>)>,
    /// The same with as many devices syncing in its rooms as the Rust floor's.
    pub python_matched: Option<(Vec<f64>, Vec<f64>)>,
    pub relay: Vec<f64>,
    /// (first, last) room.
    pub fan_floor_cold: (f64, f64),
    pub fan_floor_warm: Vec<(f64, f64)>,
    pub fan_bot_cold: (f64, f64),
    pub fan_bot_warm: Vec<(f64, f64)>,
    /// Seconds.
    pub catch_up_floor: f64,
    pub catch_up_raced: usize,
    /// Seconds, from the bot's process start: all answered and all alerts delivered
    /// (the later of the two), every answer, every alert.
    pub catch_up: f64,
    pub catch_up_answered: f64,
    pub catch_up_alerted: f64,
    pub rooms: usize,
    pub rss: f64,
    /// RssAnon, RssFile (MB), threads.
    pub rss_parts: (f64, f64, usize),
    pub recovered: Duration,
    pub gaps: usize,
}

/// A row's target: met or "MISSED".
fn target(text: &str, met: bool) -> String {
    format!("{text} {}", if met { "met" } else { "**MISSED**" })
}

impl Figures {
    pub fn new(samples: usize, fan: usize, reports: usize) -> Figures {
        Figures {
            samples,
            fan,
            reports,
            ..Figures::default()
        }
    }

    /// The two-hop floor (p50 of the local hop + p50 of the federated hop).
    pub fn two_hops(&self) -> f64 {
        quantile(&self.local, 0.5) + quantile(&self.federated, 0.5)
    }

    pub fn print(&self) {
        let row = |what: &str,
                   n: String,
                   bot: Option<(f64, f64)>,
                   floor: Option<(f64, f64)>,
                   unit: &str,
                   target: String| {
            let f = |x: Option<f64>| x.map_or("".to_owned(), |x| format!("{x:.1} {unit}"));
            let ratio = match (bot, floor) {
                (Some(b), Some(fl)) => format!("{:.2}× / {:.2}×", b.0 / fl.0, b.1 / fl.0),
                _ => String::new(),
            };
            println!(
                "| {what} | {n} | {} | {} | {} | {} | {ratio} | {target} |",
                f(bot.map(|b| b.0)),
                f(bot.map(|b| b.1)),
                f(floor.map(|b| b.0)),
                f(floor.map(|b| b.1)),
            );
        };
        let (samples, fan) = (self.samples.to_string(), self.fan);
        println!(
            "\n| measure | n | neighborwatch p50 | p90 | floor p50 | floor p90 | ratio p50 / p90 (÷ floor p50) | target (issue 25) |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        let (local, federated) = (p(&self.local), p(&self.federated));
        row(
            "floor: local hop (hs1 → hs1), plain client, encrypted",
            samples.clone(),
            None,
            Some(local),
            "ms",
            String::new(),
        );
        row(
            "floor: federated hop (hs1 → hs2), plain client, encrypted",
            samples.clone(),
            None,
            Some(federated),
            "ms",
            String::new(),
        );
        let two = (local.0 + federated.0, local.1 + federated.1);
        row(
            "floor: two hops (sum of the hops' p50s; of their p90s)",
            samples.clone(),
            None,
            Some(two),
            "ms",
            String::new(),
        );
        let relay = p(&self.relay);
        let met = relay.0 <= 1.25 * two.0 && relay.1 <= 1.5 * two.0;
        row(
            "relay: report in A on hs1 → alert in B on hs2",
            samples.clone(),
            Some(relay),
            Some(two),
            "ms",
            target("p50 ≤ 1.25×, p90 ≤ 1.5×", met),
        );
        let last = |v: &[(f64, f64)]| p(&v.iter().map(|x| x.1).collect::<Vec<_>>());
        let first = |v: &[(f64, f64)]| p(&v.iter().map(|x| x.0).collect::<Vec<_>>());
        let one = |x: f64| (x, x);
        let (bc, fc) = (one(self.fan_bot_cold.1), one(self.fan_floor_cold.1));
        row(
            &format!(
                "fan-out, first alert after joining (new room keys): last of {fan} rooms on hs2"
            ),
            "1".into(),
            Some(bc),
            Some(fc),
            "ms",
            target("≤ 1.25×", bc.0 <= 1.25 * fc.0),
        );
        row(
            &format!("fan-out, new room keys: first of {fan} rooms"),
            "1".into(),
            Some(one(self.fan_bot_cold.0)),
            Some(one(self.fan_floor_cold.0)),
            "ms",
            String::new(),
        );
        let (bw, fw) = (last(&self.fan_bot_warm), last(&self.fan_floor_warm));
        let n = self.fan_bot_warm.len().to_string();
        row(
            &format!("fan-out, keys already shared: last of {fan} rooms"),
            n.clone(),
            Some(bw),
            Some(fw),
            "ms",
            target("≤ 1.25×", bw.0 <= 1.25 * fw.0),
        );
        row(
            &format!("fan-out, keys already shared: first of {fan} rooms"),
            n,
            Some(first(&self.fan_bot_warm)),
            Some(first(&self.fan_floor_warm)),
            "ms",
            String::new(),
        );
        let (cb, cf) = (one(self.catch_up), one(self.catch_up_floor));
        row(
            &format!(
                "catch-up: {} queued reports ({} incidents) all answered in A and every alert delivered in B, from process start (floor: {} sends into A, {IN_FLIGHT} in flight, until received)",
                self.reports,
                self.reports / 2,
                self.reports
            ),
            "1".into(),
            Some(cb),
            Some(cf),
            "s",
            target("≤ 1.5×", cb.0 <= 1.5 * cf.0),
        );
        row(
            "catch-up: every answer received (A, hs1)",
            "1".into(),
            Some(one(self.catch_up_answered)),
            Some(cf),
            "s",
            String::new(),
        );
        row(
            "catch-up: every alert received (B, hs2)",
            "1".into(),
            Some(one(self.catch_up_alerted)),
            Some(cf),
            "s",
            String::new(),
        );
        row(
            &format!(
                "bot RSS, {} rooms joined, after all of the above",
                self.rooms
            ),
            "1".into(),
            Some(one(self.rss)),
            None,
            "MB",
            target("≤ 80 MB", self.rss <= 80.0),
        );
        row(
            "homeserver restart → next report answered",
            "1".into(),
            Some(one(self.recovered.as_secs_f64())),
            None,
            "s",
            "a few seconds".into(),
        );
        self.print_cross_check();
        let (anon, file, threads) = self.rss_parts;
        println!(
            "\nRSS {:.0} MB = {anon:.0} MB heap and stacks + {file:.0} MB mapped files (its own code), {threads} threads. \
             Catch-up floor: {} of its sends raced the room key's rotation and went again. \
             Receivers' syncs cut short: {} (0: no event missed).",
            self.rss, self.catch_up_raced, self.gaps
        );
    }

    /// The floor by two client implementations, unencrypted, same servers, same run.
    fn print_cross_check(&self) {
        println!(
            "\n| hop, unencrypted rooms (same servers, same run) | matrix-sdk + raw /sync p50 / p90 | Python urllib, one device syncing p50 / p90 | ÷ Rust (p50) | Python urllib, two devices per user syncing (as the Rust rooms) p50 / p90 | ÷ Rust (p50) |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        let rust = (p(&self.local_plain), p(&self.federated_plain));
        let py = |x: &Option<(Vec<f64>, Vec<f64>)>| x.as_ref().map(|(l, f)| (p(l), p(f)));
        let (py, matched) = (py(&self.python), py(&self.python_matched));
        let sum = |a: (f64, f64), b: (f64, f64)| (a.0 + b.0, a.1 + b.1);
        let rows = [
            (
                "local hop (hs1 → hs1)",
                rust.0,
                py.map(|x| x.0),
                matched.map(|x| x.0),
            ),
            (
                "federated hop (hs1 → hs2)",
                rust.1,
                py.map(|x| x.1),
                matched.map(|x| x.1),
            ),
            (
                "two hops",
                sum(rust.0, rust.1),
                py.map(|x| sum(x.0, x.1)),
                matched.map(|x| sum(x.0, x.1)),
            ),
        ];
        let cell = |x: Option<(f64, f64)>, r: f64| {
            x.map_or("failed | ".to_owned(), |x| {
                format!("{:.1} / {:.1} ms | {:.2}×", x.0, x.1, x.0 / r)
            })
        };
        for (what, r, py, matched) in rows {
            println!(
                "| {what} | {:.1} / {:.1} ms | {} | {} |",
                r.0,
                r.1,
                cell(py, r.0),
                cell(matched, r.0)
            );
        }
    }
}
