//! Routing: which rooms a confirmed incident is relayed to (PRODUCT.md §4).
//!
//! Owns: the relay decision. A pure function of the (effective) network, the incident's
//! location and where it was first reported: rooms in range, and the rooms of
//! neighborhoods linked to it (PRODUCT.md §4: links admins of both sides accepted, one
//! hop). Must not touch: rendering, Matrix, storage.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::config::Network;
use crate::places::LatLon;

/// A room to alert (borrowed from the network).
#[derive(Clone, Debug, PartialEq)]
pub struct RelayTarget<'a> {
    /// The room.
    pub room: &'a Arc<str>,
    /// The relay link it is alerted over, when it is out of range.
    pub via_link: Option<&'a str>,
}

/// Where an incident is, and where it comes from.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// Its location.
    pub at: LatLon,
    /// The neighborhood it was first reported in.
    pub neighborhood: &'a str,
    /// Relay links it already crossed (0: reported here).
    pub hops: u32,
}

/// Rooms whose neighborhood area lies within that neighborhood's `alert_radius_m` of the
/// incident, nearest neighborhood first; then the rooms of neighborhoods linked to the
/// one it was reported in (accepted links, one hop, whatever the distance). Leaves out
/// `already` and never names a room twice.
pub fn plan_relays<'n, R: AsRef<str>>(
    net: &'n Network,
    origin: Origin<'_>,
    already: &[R],
) -> Vec<RelayTarget<'n>> {
    let at = origin.at;
    let relayed = |room: &Arc<str>| already.iter().any(|a| a.as_ref() == &**room);
    // This runs on every report of a confirmed incident: neighborhoods already alerted
    // in full are passed over before any distance is measured.
    let mut hoods: SmallVec<[(f64, &crate::config::Neighborhood); 8]> = net
        .neighborhoods()
        .iter()
        .filter(|n| !n.rooms.iter().all(relayed))
        .map(|n| (n.area.distance_m(at), n))
        .filter(|(d, n)| *d <= n.settings.alert_radius_m)
        .collect();
    hoods.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let mut out: Vec<RelayTarget> = Vec::new();
    // Each room of `n` not alerted yet; linear checks: a network has tens of rooms, and
    // this runs on every report.
    let mut add = |n: &'n crate::config::Neighborhood, via_link: Option<&'n str>| {
        for room in &n.rooms {
            if !(relayed(room) || out.iter().any(|t| t.room == room)) {
                out.push(RelayTarget { room, via_link });
            }
        }
    };
    for (_, n) in hoods {
        add(n, None);
    }
    for link in crate::links::carrying(net.links(), origin.neighborhood, origin.hops) {
        if let Some(n) = net.neighborhood(link.other_side(origin.neighborhood)) {
            add(n, Some(&link.id));
        }
    }
    out
}
