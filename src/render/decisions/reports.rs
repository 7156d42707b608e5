//! Answers to a report: its acknowledgment (new, merged, confirmed, update), and why a
//! report was not taken (rejected, place not found, too old, undecryptable, not in the
//! network).

use crate::decision::{AckKind, AckNote};
use crate::model::{ConfirmedBy, IncidentId};
use crate::report::ReportError;

use super::Cx;

/// The acknowledgment of a report, with its notes; none when the incident is not found.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per field of `Decision::Ack`"
)]
pub(super) fn ack(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    id: &IncidentId,
    kind: AckKind,
    rooms: usize,
    needed: u32,
    note: Option<AckNote>,
) {
    let Some(inc) = cx.incident(id) else {
        return;
    };
    let r = cx.renderer(room);
    let key = match kind {
        AckKind::Confirmed if inc.confirmed_by == Some(ConfirmedBy::Verifier) => {
            "ack.confirmed_by_verifier"
        }
        AckKind::New => "ack.new",
        AckKind::Merged => "ack.merged",
        AckKind::SameReporter => "ack.same_reporter",
        AckKind::Confirmed => "ack.confirmed",
        AckKind::Update => "ack.update",
    };
    let args = vec![
        ("id", inc.id.to_string()),
        ("place", inc.label.to_string()),
        ("count", inc.reporter_count().to_string()),
        (
            "reports",
            r.count("count.reports", inc.reporter_count() as u64),
        ),
        ("needed", needed.to_string()),
        ("room_count", r.count("count.rooms", rooms as u64)),
    ];
    let mut parts = vec![(key, args)];
    match note {
        Some(AckNote::NewMember { hours }) => {
            parts.push(("ack.note_new_member", vec![("hours", hours.to_string())]));
        }
        Some(AckNote::RateLimited { max }) => {
            parts.push(("ack.note_rate_limited", vec![("max", max.to_string())]));
        }
        None => {}
    }
    if let (AckKind::New | AckKind::Confirmed, Some(t)) = (kind, inc.after_false_alarm) {
        parts.push(("ack.after_false_alarm", vec![("time", r.time(t))]));
    }
    cx.reply(room, in_reply_to, r.notice_parts(&parts, Some(inc.tag())));
}

/// Why a report could not be read, with the catalog's example of one that can.
pub(super) fn rejected(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str, error: &ReportError) {
    let r = cx.renderer(room);
    let args = error_args(error, r.example());
    let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cx.reply(room, in_reply_to, r.notice(error.catalog_key(), &a, None));
}

/// A report's place that was not found, with the places it may have meant.
pub(super) fn unresolved(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    query: &str,
    suggestions: &[String],
) {
    let r = cx.renderer(room);
    let message = if suggestions.is_empty() {
        r.notice("location.unresolved_none", &[("query", query)], None)
    } else {
        let list = r.list(suggestions);
        r.notice(
            "location.unresolved",
            &[("query", query), ("suggestions", &list)],
            None,
        )
    };
    cx.reply(room, in_reply_to, message);
}

/// A report of a sighting older than the window.
pub(super) fn too_old(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    place: &str,
    window_min: u32,
) {
    let r = cx.renderer(room);
    cx.reply(
        room,
        in_reply_to,
        r.notice(
            "ack.old",
            &[("place", place), ("window", &window_min.to_string())],
            None,
        ),
    );
}

/// A message the bot could not decrypt.
pub(super) fn undecryptable(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str) {
    let r = cx.renderer(room);
    cx.reply(room, in_reply_to, r.notice("room.undecryptable", &[], None));
}

/// A report in a room of no neighborhood, in the network's language.
pub(super) fn not_in_network(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str) {
    cx.reply(
        room,
        in_reply_to,
        cx.coordination().notice("room.not_in_network", &[], None),
    );
}

/// A sender whose reply budget ran dry: one answer saying so.
pub(super) fn slow_down(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str) {
    let r = cx.renderer(room);
    cx.reply(room, in_reply_to, r.notice("room.too_fast", &[], None));
}

/// The arguments of a rejection's catalog entry.
fn error_args(e: &ReportError, example: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![("example", example.to_owned())];
    match e {
        ReportError::TooLong { chars, max } => {
            v.push(("chars", chars.to_string()));
            v.push(("max", max.to_string()));
        }
        ReportError::FutureTime { minutes } => v.push(("minutes", minutes.to_string())),
        ReportError::SaluteTooShort { found } => v.push(("found", found.to_string())),
        ReportError::Empty | ReportError::SaluteNoLocation => {}
    }
    v
}
