//! Authority follows the incident's home (PRODUCT.md §3, issue 24): how far a verifier
//! action reaches, from who takes it and where.
//!
//! A false alarm or all clear from the incident's own neighborhood (its verifiers and
//! room moderators), from a network-wide verifier, or from the coordination room applies
//! everywhere. From anyone else with standing in another alerted neighborhood it applies
//! to that neighborhood's rooms only, and the origin is asked to decide; a remote
//! verifier's confirmation is support shown to the origin, never the origin's own
//! verification. So one infiltrated moderator of a linked neighborhood cannot silence a
//! real alert in every room of the network.
//!
//! Owns: the table `(role, seat, incident's home, action) → reach`. Must not touch: who
//! has which role (see [`crate::lifecycle::role`]), the status table
//! ([`crate::lifecycle::transition`]), how a reach is carried out or worded.

use crate::lifecycle::Role;
use crate::model::Action;

/// Where the actor acts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seat<'a> {
    /// The network's coordination room.
    Coordination,
    /// Anywhere, as a verifier of the whole network (the network file's `[defaults]`
    /// verifiers).
    Network,
    /// A room of this neighborhood (its ID).
    Neighborhood(&'a str),
}

/// How far an action reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach<'a> {
    /// The actor has no standing: nothing changes.
    None,
    /// The incident's status changes in every room.
    Everywhere,
    /// The status changes in this neighborhood's rooms only ("marked false alarm here by
    /// a moderator of …"), and the incident's home is asked to decide.
    Here(&'a str),
    /// Recorded as support from this neighborhood and shown to the incident's home; the
    /// status does not change.
    Support(&'a str),
}

/// The authority table: how far `action` by someone with `role`, acting from `seat`,
/// reaches for an incident whose home neighborhood is `home`.
pub fn reach<'a>(role: Role, seat: Seat<'a>, home: &str, action: Action) -> Reach<'a> {
    if !role.may_act() {
        return Reach::None;
    }
    match seat {
        Seat::Coordination | Seat::Network => Reach::Everywhere,
        Seat::Neighborhood(h) if h == home => Reach::Everywhere,
        Seat::Neighborhood(h) => match action {
            Action::Confirm => Reach::Support(h),
            Action::FalseAlarm | Action::Clear => Reach::Here(h),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_table() {
        use Action::*;
        use Role::*;
        const HOME: &str = "hoover-foster";
        const LINKED: &str = "back-of-the-yards";
        let home = Seat::Neighborhood(HOME);
        let linked = Seat::Neighborhood(LINKED);
        // (role, seat, action) → reach, for an incident of Hoover-Foster.
        let table: &[(Role, Seat, Action, Reach)] = &[
            // No standing, anywhere: nothing.
            (Neighbor, home, Confirm, Reach::None),
            (Neighbor, home, FalseAlarm, Reach::None),
            (Neighbor, linked, Clear, Reach::None),
            (Neighbor, Seat::Coordination, FalseAlarm, Reach::None),
            // The incident's home: everywhere.
            (Verifier, home, Confirm, Reach::Everywhere),
            (Verifier, home, FalseAlarm, Reach::Everywhere),
            (Moderator, home, Clear, Reach::Everywhere),
            (Moderator, home, FalseAlarm, Reach::Everywhere),
            // Coordination and network-wide verifiers: everywhere.
            (Moderator, Seat::Coordination, FalseAlarm, Reach::Everywhere),
            (Verifier, Seat::Coordination, Confirm, Reach::Everywhere),
            (Verifier, Seat::Network, FalseAlarm, Reach::Everywhere),
            (Verifier, Seat::Network, Clear, Reach::Everywhere),
            // Another alerted neighborhood: its own rooms only, and a confirmation is
            // support, never the home's verification.
            (Moderator, linked, FalseAlarm, Reach::Here(LINKED)),
            (Verifier, linked, FalseAlarm, Reach::Here(LINKED)),
            (Moderator, linked, Clear, Reach::Here(LINKED)),
            (Verifier, linked, Confirm, Reach::Support(LINKED)),
            (Moderator, linked, Confirm, Reach::Support(LINKED)),
        ];
        for (role, seat, action, want) in table {
            assert_eq!(
                reach(*role, *seat, HOME, *action),
                *want,
                "{role:?} from {seat:?}: {action:?}"
            );
        }
    }
}
