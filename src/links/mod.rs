//! Relay links (PRODUCT.md §4, §5): two neighborhoods that agreed to hear each other's
//! confirmed alerts whatever the distance. Consent takes both sides: an admin of one
//! side requests, only an admin of the room asked accepts (or declines; not an admin of
//! another room of that neighborhood), and an admin of either side removes. A link carries an incident one hop from where it was first
//! reported, never further.
//!
//! Owns: the link records and their state machine, as pure functions over plain data.
//! Must not touch: rooms and power levels (the engine says which neighborhood and room
//! an admin acts from, and checked that they are an admin there), storage, wording.

use serde::{Deserialize, Serialize};

/// How far a link carries an incident: one hop from the neighborhood it was first
/// reported in (an incident that already crossed a link, `hops` ≥ 1, goes no further).
pub const MAX_LINK_HOPS: u32 = 1;

/// Where a link stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Asked by one side, not answered by the other yet: carries nothing.
    Requested,
    /// Both sides agreed: carries confirmed incidents both ways.
    Accepted,
    /// The other side said no.
    Declined,
    /// Ended by either side (or a request withdrawn).
    Removed,
}

impl LinkState {
    /// The catalog key of the state's name.
    pub fn catalog_key(self) -> &'static str {
        match self {
            Self::Requested => "link_state.requested",
            Self::Accepted => "link_state.accepted",
            Self::Declined => "link_state.declined",
            Self::Removed => "link_state.removed",
        }
    }

    /// Whether the link is still in force or waiting for an answer.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Requested | Self::Accepted)
    }
}

/// A relay link between two neighborhoods, as stored (kept after it ends, for the
/// record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Its ID (`L` and four characters), typed in `accept`, `decline` and `remove`.
    pub id: String,
    /// The neighborhood that asked.
    pub from: String,
    /// The room it was asked from.
    pub from_room: String,
    /// The neighborhood asked.
    pub to: String,
    /// The room the request was posted in (only its admins answer it).
    pub to_room: String,
    /// Where it stands.
    pub state: LinkState,
    /// The admin who asked.
    pub requested_by: String,
    /// When (ms since 1970).
    pub requested_at_ms: i64,
    /// The admin who last changed its state, and when.
    pub changed_by: Option<String>,
    /// When (ms since 1970).
    pub changed_at_ms: Option<i64>,
}

impl Link {
    /// Whether `neighborhood` is one of its two sides.
    pub fn joins(&self, neighborhood: &str) -> bool {
        self.from == neighborhood || self.to == neighborhood
    }

    /// The side that is not `neighborhood`.
    pub fn other_side(&self, neighborhood: &str) -> &str {
        if self.from == neighborhood {
            &self.to
        } else {
            &self.from
        }
    }

    /// Whether it joins these two neighborhoods, either way round.
    pub fn between(&self, a: &str, b: &str) -> bool {
        (self.from == a && self.to == b) || (self.from == b && self.to == a)
    }
}

/// A link's ID from a short code (the engine gives each link the code of a counter that
/// never repeats, as incident IDs are made).
pub fn link_id(code: &str) -> String {
    format!("L{code}")
}

/// Reads a typed link ID (`lc9tu`, `#LC9TU.`) into its stored form: `L` and four or six
/// letters and digits.
pub fn parse_link_id(s: &str) -> Option<String> {
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let rest = s.strip_prefix(['L', 'l'])?;
    (matches!(rest.len(), 4 | 6) && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| format!("L{}", rest.to_ascii_uppercase()))
}

/// What an admin asks of an existing link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkAction {
    /// Agree to a request.
    Accept,
    /// Refuse a request.
    Decline,
    /// End a link, or withdraw a request.
    Remove,
}

/// Why a link request or action was refused. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// A neighborhood cannot link with itself.
    SameNeighborhood,
    /// These two are already linked or asked (the link's ID and state).
    AlreadyLinked {
        /// The existing link.
        id: String,
        /// Its state.
        state: LinkState,
    },
    /// Only the other side may accept or decline (the side that must).
    OtherSide {
        /// The neighborhood whose admin must answer.
        to: String,
        /// The room asked, where they answer.
        room: String,
    },
    /// The right neighborhood, but only an admin of the room asked may accept or
    /// decline, in that room.
    OtherRoom {
        /// The room asked.
        room: String,
    },
    /// Only an admin of one of its two sides may remove it.
    NotASide,
    /// The link is no longer open to that (its state).
    Closed {
        /// Its state.
        state: LinkState,
    },
}

/// Asks for a link from `from` to `to`, unless it cannot be.
pub fn check_request(links: &[&Link], from: &str, to: &str) -> Result<(), LinkRefusal> {
    if from == to {
        return Err(LinkRefusal::SameNeighborhood);
    }
    match links
        .iter()
        .find(|l| l.state.is_live() && l.between(from, to))
    {
        Some(l) => Err(LinkRefusal::AlreadyLinked {
            id: l.id.clone(),
            state: l.state,
        }),
        None => Ok(()),
    }
}

/// The state an admin of room `room` of neighborhood `actor` moves `link` to with
/// `action`, or why not. Permission to act at all (power level) is checked before: the
/// actor is an admin of `room`.
pub fn transition(
    link: &Link,
    action: LinkAction,
    actor: &str,
    room: &str,
) -> Result<LinkState, LinkRefusal> {
    match action {
        LinkAction::Accept | LinkAction::Decline => {
            if link.state != LinkState::Requested {
                return Err(LinkRefusal::Closed { state: link.state });
            }
            if actor != link.to {
                return Err(LinkRefusal::OtherSide {
                    to: link.to.clone(),
                    room: link.to_room.clone(),
                });
            }
            if room != link.to_room {
                return Err(LinkRefusal::OtherRoom {
                    room: link.to_room.clone(),
                });
            }
            Ok(if action == LinkAction::Accept {
                LinkState::Accepted
            } else {
                LinkState::Declined
            })
        }
        LinkAction::Remove => {
            if !link.state.is_live() {
                return Err(LinkRefusal::Closed { state: link.state });
            }
            if !link.joins(actor) {
                return Err(LinkRefusal::NotASide);
            }
            Ok(LinkState::Removed)
        }
    }
}

/// The accepted links that carry an incident first reported in `origin`, `hops` links
/// away from there: none once it crossed one.
pub fn carrying<'a, 'o>(
    links: impl IntoIterator<Item = &'a Link>,
    origin: &'o str,
    hops: u32,
) -> impl Iterator<Item = &'a Link> {
    links
        .into_iter()
        .filter(move |l| hops < MAX_LINK_HOPS && l.state == LinkState::Accepted && l.joins(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(from: &str, to: &str, state: LinkState) -> Link {
        Link {
            id: link_id("C9TU"),
            from: from.into(),
            from_room: format!("!{from}"),
            to: to.into(),
            to_room: format!("!{to}"),
            state,
            requested_by: "@a:x".into(),
            requested_at_ms: 0,
            changed_by: None,
            changed_at_ms: None,
        }
    }

    #[test]
    fn only_the_asked_room_answers_and_either_side_removes() {
        let l = link("a", "b", LinkState::Requested);
        let other_side = Err(LinkRefusal::OtherSide {
            to: "b".into(),
            room: "!b".into(),
        });
        assert_eq!(transition(&l, LinkAction::Accept, "a", "!a"), other_side);
        assert_eq!(transition(&l, LinkAction::Accept, "c", "!c"), other_side);
        for action in [LinkAction::Accept, LinkAction::Decline] {
            assert_eq!(
                transition(&l, action, "b", "!b-other"),
                Err(LinkRefusal::OtherRoom { room: "!b".into() }),
                "another room of the asked neighborhood"
            );
        }
        assert_eq!(
            transition(&l, LinkAction::Accept, "b", "!b"),
            Ok(LinkState::Accepted)
        );
        assert_eq!(
            transition(&l, LinkAction::Decline, "b", "!b"),
            Ok(LinkState::Declined)
        );
        assert_eq!(
            transition(&l, LinkAction::Remove, "a", "!a"),
            Ok(LinkState::Removed)
        );
        let on = link("a", "b", LinkState::Accepted);
        assert_eq!(
            transition(&on, LinkAction::Accept, "b", "!b"),
            Err(LinkRefusal::Closed {
                state: LinkState::Accepted
            })
        );
        assert_eq!(
            transition(&on, LinkAction::Remove, "b", "!b"),
            Ok(LinkState::Removed)
        );
        assert_eq!(
            transition(&on, LinkAction::Remove, "c", "!c"),
            Err(LinkRefusal::NotASide)
        );
        let off = link("a", "b", LinkState::Removed);
        assert!(transition(&off, LinkAction::Remove, "a", "!a").is_err());
        assert!(transition(&off, LinkAction::Accept, "b", "!b").is_err());
    }

    #[test]
    fn one_live_link_per_pair_and_none_with_itself() {
        let l = link("a", "b", LinkState::Requested);
        assert_eq!(
            check_request(&[&l], "b", "a"),
            Err(LinkRefusal::AlreadyLinked {
                id: l.id.clone(),
                state: LinkState::Requested
            })
        );
        assert_eq!(
            check_request(&[], "a", "a"),
            Err(LinkRefusal::SameNeighborhood)
        );
        let old = link("a", "b", LinkState::Declined);
        assert_eq!(check_request(&[&old], "a", "b"), Ok(()));
    }

    #[test]
    fn accepted_links_carry_one_hop_both_ways() {
        let ab = link("a", "b", LinkState::Accepted);
        let bc = link("b", "c", LinkState::Accepted);
        let ad = link("a", "d", LinkState::Requested);
        let all = [ab, bc, ad];
        let to = |from: &str, hops| -> Vec<String> {
            carrying(&all, from, hops)
                .map(|l| l.other_side(from).to_owned())
                .collect()
        };
        assert_eq!(
            to("a", 0),
            vec!["b"],
            "not c (two links away), not d (not accepted)"
        );
        assert_eq!(to("b", 0), vec!["a", "c"]);
        assert!(to("b", 1).is_empty(), "a relayed incident goes no further");
    }

    #[test]
    fn link_ids_read_back_in_any_case() {
        let id = link_id("K7Q2");
        assert!(id.starts_with('L') && id.len() == 5, "{id}");
        assert_eq!(parse_link_id(&id.to_lowercase()), Some(id.clone()));
        assert_eq!(parse_link_id(&format!("#{id}.")), Some(id.clone()));
        assert_eq!(parse_link_id("K7Q2"), None);
        assert_eq!(parse_link_id("L"), None);
    }
}
