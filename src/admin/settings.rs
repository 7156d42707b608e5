//! `!nw settings [KEY [VALUE | reset]]`: show a neighborhood's settings, or change one,
//! validated by the network file's own rules and words; and the set/reset steps every
//! value changed from a room shares (settings and the area).

use std::sync::Arc;

use super::{AdminCx, Outcome, OverlayChange};
use crate::command::SettingChange;
use crate::config::{Network, SettingError, kind_of};
use crate::decision::{AuditChange, Decision, SettingOutcome};

pub(super) fn run(cx: &AdminCx<'_>, key: Option<String>, change: Option<SettingChange>) -> Outcome {
    let (Some(key), Some(change)) = (key.clone(), change) else {
        return show(cx, key);
    };
    let Some(nb) = cx.net.neighborhood_of_room(cx.room) else {
        return Outcome::say(answer(cx, key, SettingOutcome::DefaultsInFile));
    };
    let old = nb.settings.value_of(&key).unwrap_or_default();
    let c = RoomChange {
        neighborhood: nb.id.clone(),
        key,
    };
    match change {
        SettingChange::Set(value) => match nb.settings.with_setting(&c.key, &value) {
            Err(SettingError::Unknown(_)) => show(cx, Some(c.key)),
            Err(SettingError::OwnCommand(_)) => {
                Outcome::say(answer(cx, c.key, SettingOutcome::OwnCommand))
            }
            Err(SettingError::Bad(p)) => Outcome::say(answer(cx, c.key, SettingOutcome::Bad(p))),
            Ok(t) => {
                let new = t.value_of(&c.key).unwrap_or_default();
                set_in_room(cx, c, old, new)
            }
        },
        SettingChange::Reset if kind_of(&c.key).is_none() => {
            if c.key == "verifiers" {
                Outcome::say(answer(cx, c.key, SettingOutcome::OwnCommand))
            } else {
                show(cx, Some(c.key))
            }
        }
        SettingChange::Reset => reset_in_room(cx, c, old, |n, c| {
            n.settings(&c.neighborhood)
                .value_of(&c.key)
                .unwrap_or_default()
        }),
    }
}

/// The effective settings (or one of them, or the valid keys for an unknown one).
fn show(cx: &AdminCx<'_>, key: Option<String>) -> Outcome {
    Outcome::say(Decision::Settings {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        key,
    })
}

/// The answer to a change of `key`.
pub(super) fn answer(cx: &AdminCx<'_>, key: String, outcome: SettingOutcome) -> Decision {
    Decision::Setting {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        key,
        outcome,
    }
}

/// Which value of which neighborhood a room changes.
pub(super) struct RoomChange {
    pub(super) neighborhood: String,
    pub(super) key: String,
}

/// Sets `c.key` of a neighborhood to `new` (shown as such) from the room: stored in the
/// input's commit, applied at once, answered (old → new) and audited. The same value
/// again changes nothing.
pub(super) fn set_in_room(cx: &AdminCx<'_>, c: RoomChange, old: String, new: String) -> Outcome {
    if new == old {
        return Outcome::say(answer(cx, c.key, SettingOutcome::Unchanged { value: new }));
    }
    let set = cx.setting(&c.neighborhood, c.key.clone(), new.clone());
    let changed = SettingOutcome::Changed {
        old: old.clone(),
        new: new.clone(),
    };
    Outcome {
        changes: vec![OverlayChange::Set(set)],
        decisions: std::iter::once(answer(cx, c.key.clone(), changed))
            .chain(audit(cx, &c, old, new, false))
            .collect(),
        drill: None,
    }
}

/// Takes a room-set value of a neighborhood away: the file's (`file_value` of the file's
/// network) applies again; answered and audited. Nothing set: nothing changes.
pub(super) fn reset_in_room(
    cx: &AdminCx<'_>,
    c: RoomChange,
    old: String,
    file_value: impl Fn(&Network, &RoomChange) -> String,
) -> Outcome {
    if cx.overlay.get(&c.neighborhood, &c.key).is_none() {
        return Outcome::say(answer(cx, c.key, SettingOutcome::Unchanged { value: old }));
    }
    let new = file_value(cx.file_net, &c);
    let reset = SettingOutcome::Reset {
        old: old.clone(),
        new: new.clone(),
    };
    Outcome {
        changes: vec![OverlayChange::Remove(c.neighborhood.clone(), c.key.clone())],
        decisions: std::iter::once(answer(cx, c.key.clone(), reset))
            .chain(audit(cx, &c, old, new, true))
            .collect(),
        drill: None,
    }
}

fn audit(
    cx: &AdminCx<'_>,
    c: &RoomChange,
    old: String,
    new: String,
    reset: bool,
) -> Option<Decision> {
    cx.audit(AuditChange::Setting {
        neighborhood: Arc::from(c.neighborhood.as_str()),
        key: c.key.clone(),
        old,
        new,
        reset,
    })
}
