//! Routing: which rooms a confirmed incident is relayed to (PRODUCT.md §4).
//!
//! Owns: the relay decision. A pure function of the network and the incident's
//! location. Must not touch: rendering, Matrix, storage.

use std::collections::HashSet;

use crate::config::Network;
use crate::places::LatLon;

/// A room to alert.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayTarget {
    /// The room.
    pub room: String,
    /// Its neighborhood's id.
    pub neighborhood: String,
    /// Distance from the incident to the neighborhood's area, in metres.
    pub distance_m: f64,
}

/// Rooms whose neighborhood area lies within that neighborhood's `alert_radius_m` of
/// `at`, nearest neighborhood first, leaving out `already` and never naming a room twice.
pub fn plan_relays(net: &Network, at: LatLon, already: &[String]) -> Vec<RelayTarget> {
    let mut seen: HashSet<&str> = already.iter().map(String::as_str).collect();
    let mut hoods: Vec<(f64, &crate::config::Neighborhood)> = net
        .neighborhoods
        .iter()
        .map(|n| (n.area.distance_m(at), n))
        .filter(|(d, n)| *d <= n.settings.alert_radius_m)
        .collect();
    hoods.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let mut out = Vec::new();
    for (d, n) in hoods {
        for room in &n.rooms {
            if seen.insert(room.as_str()) {
                out.push(RelayTarget {
                    room: room.clone(),
                    neighborhood: n.id.clone(),
                    distance_m: d,
                });
            }
        }
    }
    out
}
