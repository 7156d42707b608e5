//! `!nw verifiers add USER… | remove USER… | list`: the neighborhood's verifiers, changed
//! in the overlay (a user the file lists and a room removed is one record, `removed`; one
//! a room added is `added`; back to the file's list, no record), audited per verifier.

use std::sync::Arc;

use super::{AdminCx, Outcome, OverlayChange};
use crate::command::VerifiersCommand;
use crate::config::{VERIFIER_ADDED, VERIFIER_KEY, VERIFIER_REMOVED, is_user_id};
use crate::decision::{AuditChange, Decision, VerifiersOutcome};

pub(super) fn run(cx: &AdminCx<'_>, cmd: VerifiersCommand) -> Outcome {
    let say = |outcome| {
        Outcome::say(Decision::VerifiersReply {
            room: Arc::clone(cx.room),
            in_reply_to: Arc::clone(cx.event_id),
            outcome,
        })
    };
    let Some(nb) = cx.net.neighborhood_of_room(cx.room) else {
        return say(VerifiersOutcome::InCoordination);
    };
    let (users, add) = match cmd {
        VerifiersCommand::Usage => return say(VerifiersOutcome::Usage),
        VerifiersCommand::List => {
            let list = nb
                .settings
                .verifiers
                .iter()
                .map(|u| {
                    let set = nb.set_in_room(&format!("{VERIFIER_KEY}{u}")).cloned();
                    (u.clone(), set)
                })
                .collect();
            return say(VerifiersOutcome::List(list));
        }
        VerifiersCommand::Add(users) => (users, true),
        VerifiersCommand::Remove(users) => (users, false),
    };
    let in_file = &cx.file_net.settings(&nb.id).verifiers;
    let mut out = Outcome::default();
    let mut audits = Vec::new();
    let (mut added, mut removed, mut unchanged, mut invalid) = (vec![], vec![], vec![], vec![]);
    let mut seen = Vec::new();
    for u in users {
        if seen.contains(&u) {
            continue;
        }
        seen.push(u.clone());
        if !is_user_id(&u) {
            invalid.push(u);
            continue;
        }
        if nb.settings.is_verifier(&u) == add {
            unchanged.push(u);
            continue;
        }
        let key = format!("{VERIFIER_KEY}{u}");
        // Back to what the file says: the record goes; otherwise one says the change.
        out.changes.push(if in_file.contains(&u) == add {
            OverlayChange::Remove(nb.id.clone(), key)
        } else {
            let value = if add {
                VERIFIER_ADDED
            } else {
                VERIFIER_REMOVED
            };
            OverlayChange::Set(cx.setting(&nb.id, key, value.to_owned()))
        });
        audits.extend(cx.audit(AuditChange::Verifier {
            neighborhood: Arc::from(nb.id.as_str()),
            user: u.clone(),
            added: add,
        }));
        if add {
            added.push(u);
        } else {
            removed.push(u);
        }
    }
    // The answer first, then the audit lines.
    out.decisions.push(Decision::VerifiersReply {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        outcome: VerifiersOutcome::Changed {
            added,
            removed,
            unchanged,
            invalid,
        },
    });
    out.decisions.extend(audits);
    out
}
