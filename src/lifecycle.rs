//! The incident lifecycle as pure functions: who may act on an incident, and what a
//! verifier action does to its status (PRODUCT.md §3). The engine turns a [`Transition`]
//! into decisions; this module only decides.
//!
//! Owns: the role of a user for an incident (from plain data the shell hands over: the
//! user's power level in the room, the verifier lists) and the status table. Must not
//! touch: incidents' other fields, storage, wording.

use crate::model::{Action, Status};

/// Power level from which a room member is a moderator (PRODUCT.md §1).
pub const MODERATOR_POWER: i64 = 50;

/// What a user is, for one incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everybody else: reports count, actions do not.
    Neighbor,
    /// Listed as a verifier of the incident's neighborhood, of the whole network, or of
    /// the neighborhood whose room they act in (how far that reaches:
    /// [`crate::authority::reach`]).
    Verifier,
    /// Power level ≥ 50 in the room the action was taken in (room creators of room
    /// version 12 included: the shell hands their power as the highest).
    Moderator,
}

impl Role {
    /// Whether the role may confirm, mark false alarm or clear.
    pub fn may_act(self) -> bool {
        self >= Self::Verifier
    }
}

/// Whether someone with power level `power` in a room administers it (its settings and
/// the commands for room admins): the same rule that makes them a moderator for the
/// verifier actions.
pub fn is_room_admin(power: i64) -> bool {
    power >= MODERATOR_POWER
}

/// The role of `user`, whose power level in the room where they act is `power`, given
/// the verifier lists of every neighborhood the incident concerns.
pub fn role<'a>(
    user: &str,
    power: i64,
    verifier_lists: impl IntoIterator<Item = &'a [String]>,
) -> Role {
    if is_room_admin(power) {
        Role::Moderator
    } else if verifier_lists
        .into_iter()
        .any(|l| l.iter().any(|v| v == user))
    {
        Role::Verifier
    } else {
        Role::Neighbor
    }
}

/// What an action does to an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The user may not do that; nothing changes.
    Refused,
    /// The incident already is in the state the action asks for, or is closed for it;
    /// nothing changes.
    Unchanged,
    /// The status becomes this.
    To(Status),
}

/// The status table: `(status, action, role) → transition`.
///
/// - Confirm: unverified → confirmed; a false alarm marked by mistake → confirmed again.
///   A resolved or expired incident stays closed (a new report opens a new one).
/// - False alarm: from any state but itself.
/// - All clear: unverified, confirmed or expired → resolved.
pub fn transition(status: Status, action: Action, role: Role) -> Transition {
    use Status::*;
    if !role.may_act() {
        return Transition::Refused;
    }
    let to = match (action, status) {
        (Action::Confirm, Unverified | FalseAlarm) => Confirmed,
        (Action::Confirm, Confirmed | Resolved | Expired) => return Transition::Unchanged,
        (Action::FalseAlarm, FalseAlarm) => return Transition::Unchanged,
        (Action::FalseAlarm, _) => FalseAlarm,
        (Action::Clear, Unverified | Confirmed | Expired) => Resolved,
        (Action::Clear, Resolved | FalseAlarm) => return Transition::Unchanged,
    };
    Transition::To(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moderators_and_listed_verifiers_act_and_neighbors_do_not() {
        let lists = [vec!["@v:x".to_owned()]];
        let l = || lists.iter().map(Vec::as_slice);
        assert_eq!(role("@v:x", 0, l()), Role::Verifier);
        assert_eq!(role("@n:x", 0, l()), Role::Neighbor);
        assert_eq!(role("@n:x", 49, l()), Role::Neighbor);
        assert_eq!(role("@n:x", 50, l()), Role::Moderator);
        assert_eq!(role("@creator:x", i64::MAX, l()), Role::Moderator);
    }

    #[test]
    fn reaction_keys_with_and_without_variation_selectors() {
        assert_eq!(Action::of_reaction("✅"), Some(Action::Confirm));
        assert_eq!(Action::of_reaction("✔️"), Some(Action::Confirm));
        assert_eq!(Action::of_reaction("❌"), Some(Action::FalseAlarm));
        assert_eq!(Action::of_reaction("🟢"), Some(Action::Clear));
        assert_eq!(Action::of_reaction("👍"), None);
    }
}
