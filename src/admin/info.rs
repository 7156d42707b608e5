//! `!nw help`, `!nw status`, `!nw incidents` and unknown words: for anyone, changing
//! nothing.

use std::sync::Arc;

use super::{AdminCx, Outcome};
use crate::decision::Decision;
use crate::model::Status;

/// Most incidents one `!nw incidents` reply lists (the rest are counted).
pub const MAX_LISTED: usize = 10;

/// `!nw help`.
pub(super) fn help(cx: &AdminCx<'_>) -> Outcome {
    Outcome::say(Decision::Help {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
    })
}

/// `!nw status`: how many incidents are open here, how many confirmed.
pub(super) fn status(cx: &AdminCx<'_>) -> Outcome {
    let open = (cx.open)();
    Outcome::say(Decision::Status {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        open: open.len(),
        confirmed: open
            .iter()
            .filter(|i| i.status == Status::Confirmed)
            .count(),
    })
}

/// `!nw incidents`: the open incidents, oldest first, with their age in minutes.
pub(super) fn incidents(cx: &AdminCx<'_>) -> Outcome {
    let mut open = (cx.open)();
    open.sort_by_key(|i| (i.first_seen, i.id));
    Outcome::say(Decision::Incidents {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        more: open.len().saturating_sub(MAX_LISTED),
        open: open
            .iter()
            .take(MAX_LISTED)
            .map(|i| (i.id, (cx.now - i.first_seen).num_minutes().max(0)))
            .collect(),
    })
}

/// A word after `!nw` that is no command.
pub(super) fn unknown(cx: &AdminCx<'_>, given: String) -> Outcome {
    Outcome::say(Decision::UnknownCommand {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        given,
    })
}
