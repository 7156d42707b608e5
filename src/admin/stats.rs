//! `!nw stats [HOURS]`: a neighborhood's numbers; in the coordination room, the
//! network's and each active neighborhood's.

use std::sync::Arc;

use super::{AdminCx, Outcome};
use crate::decision::Decision;
use crate::stats::{DEFAULT_STATS_HOURS, MAX_STATS_HOURS, Summary};

pub(super) fn run(cx: &AdminCx<'_>, hours: Option<String>) -> Outcome {
    let hours = match hours {
        None => DEFAULT_STATS_HOURS,
        Some(given) => match given
            .trim_end_matches(['h', 'H'])
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=MAX_STATS_HOURS).contains(h))
        {
            Some(h) => h,
            None => {
                return Outcome::say(Decision::StatsUsage {
                    room: Arc::clone(cx.room),
                    in_reply_to: Arc::clone(cx.event_id),
                    given,
                });
            }
        },
    };
    let now_ms = cx.now.timestamp_millis();
    let summary = |id: Option<&str>| cx.ledger.summary(id, hours, now_ms);
    let summaries = match cx.net.neighborhood_of_room(cx.room) {
        Some(n) => vec![(Some(Arc::from(n.id.as_str())), summary(Some(&n.id)))],
        None => std::iter::once((None, summary(None)))
            .chain(cx.net.neighborhoods().iter().filter_map(|n| {
                let s = summary(Some(&n.id));
                (s != Summary::default()).then(|| (Some(Arc::from(n.id.as_str())), s))
            }))
            .collect(),
    };
    Outcome::say(Decision::Stats {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        hours,
        summaries,
    })
}
