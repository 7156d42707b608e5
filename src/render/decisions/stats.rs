//! Answers to `!nw stats [hours]`: one line per neighborhood (and the network) of
//! reports, incidents and response times; usage.

use std::sync::Arc;

use crate::render::Renderer;
use crate::stats::Summary;

use super::Cx;

/// `!nw stats`: the last `hours`, one line per summary.
pub(super) fn stats(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    hours: u32,
    summaries: &[(Option<Arc<str>>, Summary)],
) {
    let r = cx.renderer(room);
    let mut lines = vec![(
        "stats.header",
        vec![("hours", r.count("count.hours", u64::from(hours)))],
    )];
    for (who, s) in summaries {
        let who = match who {
            Some(id) => cx.hood_name(id).to_owned(),
            None => r.plain("stats.network", &[]),
        };
        lines.push(stats_line(&r, &who, s));
    }
    lines.push(("stats.footer", vec![]));
    cx.reply(room, in_reply_to, r.notice_lines(&lines));
}

/// `!nw stats` with hours it cannot take.
pub(super) fn stats_usage(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str, given: &str) {
    let r = cx.renderer(room);
    cx.reply(
        room,
        in_reply_to,
        r.notice(
            "stats.usage",
            &[
                ("given", given),
                ("max", &crate::stats::MAX_STATS_HOURS.to_string()),
            ],
            None,
        ),
    );
}

/// One summary's line of `!nw stats`.
fn stats_line(
    r: &Renderer<'_>,
    who: &str,
    s: &Summary,
) -> (&'static str, Vec<(&'static str, String)>) {
    let n = |x: usize| x.to_string();
    (
        "stats.line",
        vec![
            ("who", who.to_owned()),
            ("reports", n(s.reports)),
            ("incidents", n(s.incidents)),
            ("confirmed", n(s.confirmed)),
            ("false_alarms", n(s.false_alarms)),
            ("median", span_words(r, s.median_s)),
            ("p90", span_words(r, s.p90_s)),
            ("rooms", n(s.rooms_alerted)),
            ("refusals", n(s.refusals)),
        ],
    )
}

/// A time span as people say it: `45 s`, `12 min`, `2 h 5 min`.
fn span_words(r: &Renderer<'_>, s: Option<i64>) -> String {
    match s {
        None => r.plain("stats.no_time", &[]),
        Some(s) if s < 60 => r.plain("stats.seconds", &[("n", &s.to_string())]),
        Some(s) if s < 3600 => r.plain("stats.minutes", &[("n", &(s / 60).to_string())]),
        Some(s) => r.plain(
            "stats.hours_minutes",
            &[
                ("h", &(s / 3600).to_string()),
                ("m", &(s % 3600 / 60).to_string()),
            ],
        ),
    }
}
