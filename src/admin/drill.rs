//! `!nw drill`: a synthetic report at the middle of the neighborhood's area, which the
//! engine ingests as a drill (confirmed at once, relayed wherever a real one would be,
//! all clear a minute later); audited.

use std::sync::Arc;

use super::{AdminCx, Outcome};
use crate::decision::{AuditChange, Decision};
use crate::places::{ResolveMethod, Resolved};

/// A drill's place is named after the gazetteer's nearest place this close.
const LABEL_WITHIN_M: f64 = 300.0;
/// How uncertain a drill's place is said to be.
const DRILL_UNCERTAINTY_M: f64 = 50.0;

pub(super) fn run(cx: &AdminCx<'_>) -> Outcome {
    let Some(nb) = cx.net.neighborhood_of_room(cx.room) else {
        return Outcome::say(Decision::DrillInCoordination {
            room: Arc::clone(cx.room),
            in_reply_to: Arc::clone(cx.event_id),
        });
    };
    let at = nb.area.center();
    let label = nb
        .gazetteer
        .nearest_place(at)
        .filter(|(_, d)| *d <= LABEL_WITHIN_M)
        .map_or_else(|| nb.name.clone(), |(p, _)| p.name.clone());
    Outcome {
        changes: Vec::new(),
        decisions: cx
            .audit(AuditChange::Drill {
                neighborhood: Arc::from(nb.id.as_str()),
            })
            .into_iter()
            .collect(),
        drill: Some(Resolved {
            at,
            label,
            method: ResolveMethod::Coordinates,
            uncertainty_m: DRILL_UNCERTAINTY_M,
        }),
    }
}
