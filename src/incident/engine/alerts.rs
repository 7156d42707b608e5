//! What every change of an incident shares: the rooms it is relayed to, its alerts
//! edited, and a status change told everywhere it must be (`announce_status`, the one
//! path for a verifier's action, a drill's end and expiry).

use std::sync::Arc;

use crate::config::{Neighborhood, Network};
use crate::decision::{CoordinationKind, Decision, UpdateKind};
use crate::model::{Incident, NearPlace, Status};
use crate::places::LatLon;
use crate::routing::{Origin, plan_relays};

/// The closest sensitive place within the neighborhood's sensitive radius.
pub(super) fn near_of(nb: &Neighborhood, at: LatLon) -> Option<NearPlace> {
    nb.gazetteer
        .nearest_sensitive_within(at, nb.settings.sensitive_radius_m)
        .map(|(p, d)| NearPlace {
            name: p.name.as_str().into(),
            kind: p.kind,
            distance_m: d,
        })
}

/// Relays `inc` to every room in range not alerted yet; returns how many.
pub(super) fn relay_to_new_rooms(
    net: &Network,
    inc: &mut Incident,
    decisions: &mut Vec<Decision>,
) -> usize {
    let id = inc.id;
    let before = inc.relayed_to.len();
    let origin = Origin {
        at: inc.location,
        neighborhood: &inc.neighborhood,
        hops: inc.hops,
    };
    for t in plan_relays(net, origin, &inc.relayed_to) {
        let room = Arc::clone(t.room);
        decisions.push(Decision::Relay {
            room: Arc::clone(&room),
            incident: id,
        });
        if t.via_link.is_some() {
            inc.linked_rooms.push(Arc::clone(&room));
        }
        inc.relayed_to.push(room);
    }
    inc.relayed_to.len() - before
}

/// Edits the alert of `inc` in every room it was relayed to.
pub(super) fn update_alerts(inc: &Incident, update: &UpdateKind, decisions: &mut Vec<Decision>) {
    for room in &inc.relayed_to {
        decisions.push(Decision::UpdateAlert {
            room: room.clone(),
            incident: inc.id,
            update: update.clone(),
        });
    }
}

/// Who hears of a status change besides the alerted rooms.
pub(super) struct Told<'a> {
    /// The coordination room, if the network has one.
    pub(super) coordination: Option<&'a Arc<str>>,
    /// What it is told.
    pub(super) kind: CoordinationKind,
    /// The incident's neighborhood's `confirmations`.
    pub(super) needed: u32,
}

/// Tells every room about `inc`'s new status: each alert edited (with one thread reply),
/// rooms newly in range alerted when it is confirmed and `relay` gives the network, the
/// coordination room told (and told of new rooms). Returns how many rooms were newly
/// alerted.
pub(super) fn announce_status(
    inc: &mut Incident,
    update: &UpdateKind,
    told: Told<'_>,
    relay: Option<&Network>,
    decisions: &mut Vec<Decision>,
) -> usize {
    update_alerts(inc, update, decisions);
    let relayed = match relay {
        Some(net) if inc.status == Status::Confirmed => relay_to_new_rooms(net, inc, decisions),
        _ => 0,
    };
    if let Some(coord) = told.coordination {
        decisions.push(Decision::Coordination {
            room: Arc::clone(coord),
            incident: inc.id,
            kind: told.kind,
            needed: told.needed,
        });
        if relayed > 0 {
            decisions.push(Decision::Coordination {
                room: Arc::clone(coord),
                incident: inc.id,
                kind: CoordinationKind::Relayed {
                    rooms: inc.relayed_to.len(),
                },
                needed: told.needed,
            });
        }
    }
    relayed
}
