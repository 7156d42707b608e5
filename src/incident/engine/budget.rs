//! The reply budget applied to one input's answers (see [`crate::budget`]): a member
//! without standing in the room who sends junk, unknown commands or `!nw help` faster
//! than the budget refills gets one "too fast" answer, then none until it refills.
//! Moderators and room admins are not budgeted; acknowledgments of valid reports,
//! verifier answers, alerts, updates and coordination notices never are.

use chrono::{DateTime, Utc};

/// The buckets of members whose budgets are full again are forgotten once this many are
/// kept (and hourly).
const PRUNE_AT: usize = 256;

use super::{Engine, IncomingMessage, Tx};
use crate::budget::Verdict;
use crate::decision::Decision;
use crate::lifecycle::is_room_admin;
use crate::store::Store;

impl<S: Store> Engine<S> {
    /// Draws from the sender's budget once for this input's answers (if it has any),
    /// and replaces them by a "too fast" answer or drops them when it is dry.
    pub(super) fn budget_answers(
        &mut self,
        tx: &mut Tx,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) {
        if is_room_admin(msg.member.power) || !tx.decisions.iter().any(Decision::is_budgeted_answer)
        {
            return;
        }
        if self.budgets.len() >= PRUNE_AT {
            self.budgets.forget_full(now);
        }
        // The room's neighborhood's effective settings (a room may have changed them).
        let rule = self.net.settings_of_room(&msg.room).budget_rule();
        match self.budgets.draw(&msg.room, &msg.sender, now, rule) {
            Verdict::Answer => {}
            verdict => {
                tx.decisions.retain(|d| !d.is_budgeted_answer());
                if verdict == Verdict::TooFast {
                    tx.decisions.push(Decision::SlowDown {
                        room: msg.room.as_str().into(),
                        in_reply_to: msg.event_id.as_str().into(),
                    });
                }
            }
        }
    }
}
