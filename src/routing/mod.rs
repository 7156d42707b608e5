//! Routing: which rooms a confirmed incident is relayed to (PRODUCT.md §4).
//!
//! Owns: the relay decision. A pure function of the network and the incident's
//! location. Must not touch: rendering, Matrix, storage.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::config::Network;
use crate::places::LatLon;

/// A room to alert (borrowed from the network).
#[derive(Clone, Debug, PartialEq)]
pub struct RelayTarget<'a> {
    /// The room.
    pub room: &'a Arc<str>,
    /// Its neighborhood's id.
    pub neighborhood: &'a str,
    /// Distance from the incident to the neighborhood's area, in metres.
    pub distance_m: f64,
}

/// Rooms whose neighborhood area lies within that neighborhood's `alert_radius_m` of
/// `at`, nearest neighborhood first, leaving out `already` and never naming a room twice.
pub fn plan_relays<'n, R: AsRef<str>>(
    net: &'n Network,
    at: LatLon,
    already: &[R],
) -> Vec<RelayTarget<'n>> {
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
    for (d, n) in hoods {
        for room in &n.rooms {
            // Linear checks: a network has tens of rooms, and this runs on every report.
            let taken = relayed(room) || out.iter().any(|t| t.room == room);
            if !taken {
                out.push(RelayTarget {
                    room,
                    neighborhood: &n.id,
                    distance_m: d,
                });
            }
        }
    }
    out
}
