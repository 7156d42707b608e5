//! `!nw places add NAME geo:LAT,LON [KIND] | remove NAME | list`: places of the
//! neighborhood added from its rooms (stored and audited like a setting, key
//! `place:NAME`), which reports can name from the next one on.

use std::sync::Arc;

use super::{AdminCx, Outcome, OverlayChange};
use crate::command::PlacesCommand;
use crate::config::{
    MAX_PLACE_NAME_CHARS, MAX_PLACE_OUTSIDE_M, MAX_ROOM_PLACES, Neighborhood, PLACE_KEY,
    PLACE_KINDS, Problem, RoomSetting, parse_place, place_key, place_text,
};
use crate::decision::{AuditChange, Decision, PlacesOutcome};
use crate::places::{LatLon, Place, PlaceKind};

pub(super) fn run(cx: &AdminCx<'_>, cmd: PlacesCommand) -> Outcome {
    let Some(nb) = cx.net.neighborhood_of_room(cx.room) else {
        return reply(cx, PlacesOutcome::InCoordination);
    };
    match cmd {
        PlacesCommand::Usage => reply(cx, PlacesOutcome::Usage),
        PlacesCommand::List => {
            let added = nb
                .room_set()
                .iter()
                .filter(|s| s.key.starts_with(PLACE_KEY))
                .filter_map(|s| parse_place(&s.value).map(|p| (p, s.clone())))
                .collect();
            let file = cx.file_net.neighborhood(&nb.id);
            let (in_file, streets) = file.map_or((0, 0), |f| {
                (f.gazetteer.places().len(), f.gazetteer.streets().len())
            });
            reply(
                cx,
                PlacesOutcome::List {
                    added,
                    in_file,
                    streets,
                },
            )
        }
        PlacesCommand::Remove(name) => remove(cx, nb, name),
        PlacesCommand::Add {
            name,
            lat,
            lon,
            kind,
        } => add(cx, nb, name.trim().to_owned(), lat, lon, kind),
    }
}

fn reply(cx: &AdminCx<'_>, outcome: PlacesOutcome) -> Outcome {
    Outcome::say(Decision::PlacesReply {
        room: Arc::clone(cx.room),
        in_reply_to: Arc::clone(cx.event_id),
        outcome,
    })
}

/// Whether the network file names a place so in the neighborhood's gazetteer.
fn in_file(cx: &AdminCx<'_>, nb: &Neighborhood, name: &str) -> bool {
    cx.file_net
        .neighborhood(&nb.id)
        .is_some_and(|f| f.gazetteer.place_named(name).is_some())
}

/// The place a room added under `key`, with its record.
fn added_here(nb: &Neighborhood, key: &str) -> Option<(Place, RoomSetting)> {
    nb.set_in_room(key)
        .and_then(|s| parse_place(&s.value).map(|p| (p, s.clone())))
}

/// The change, answered and audited.
fn changed(
    cx: &AdminCx<'_>,
    nb: &Neighborhood,
    change: Option<OverlayChange>,
    outcome: PlacesOutcome,
    old: Option<&Place>,
    new: Option<&Place>,
) -> Outcome {
    let mut out = reply(cx, outcome);
    out.changes.extend(change);
    out.decisions.extend(cx.audit(AuditChange::Place {
        neighborhood: Arc::from(nb.id.as_str()),
        old: old.map(place_text),
        new: new.map(place_text),
    }));
    out
}

fn remove(cx: &AdminCx<'_>, nb: &Neighborhood, name: String) -> Outcome {
    let Some((place, _)) = place_key(&name).and_then(|k| added_here(nb, &k)) else {
        let in_file = in_file(cx, nb, &name);
        return reply(cx, PlacesOutcome::NotAdded { name, in_file });
    };
    let change = place_key(&place.name).map(|key| OverlayChange::Remove(nb.id.clone(), key));
    let outcome = PlacesOutcome::Removed(place.clone());
    changed(cx, nb, change, outcome, Some(&place), None)
}

fn add(
    cx: &AdminCx<'_>,
    nb: &Neighborhood,
    name: String,
    lat: f64,
    lon: f64,
    kind: Result<PlaceKind, String>,
) -> Outcome {
    let key = match place_key(&name) {
        Some(k) if name.chars().count() <= MAX_PLACE_NAME_CHARS => k,
        _ => {
            let shown = name.chars().take(MAX_PLACE_NAME_CHARS).collect();
            return reply(cx, PlacesOutcome::BadName(shown));
        }
    };
    let kind = match kind {
        Ok(k) if PLACE_KINDS.contains(&k) => k,
        Ok(k) => return reply(cx, PlacesOutcome::BadKind(k.word().to_owned())),
        Err(word) => return reply(cx, PlacesOutcome::BadKind(word)),
    };
    let Some(at) = LatLon::new(lat, lon) else {
        let got = format!("{lat},{lon}");
        return reply(cx, PlacesOutcome::BadPoint(Problem::Center { got }));
    };
    let outside = nb.area.distance_m(at);
    if outside > MAX_PLACE_OUTSIDE_M {
        return reply(cx, PlacesOutcome::TooFar(outside));
    }
    if in_file(cx, nb, &name) {
        return reply(cx, PlacesOutcome::InFile(name));
    }
    let was = added_here(nb, &key).map(|(p, _)| p);
    let count = nb
        .room_set()
        .iter()
        .filter(|s| s.key.starts_with(PLACE_KEY))
        .count();
    if was.is_none() && count >= MAX_ROOM_PLACES {
        return reply(cx, PlacesOutcome::TooMany(MAX_ROOM_PLACES));
    }
    let place = Place {
        name,
        aliases: Vec::new(),
        kind,
        at,
    };
    let value = place_text(&place);
    // What is stored is what is shown: read back from the text.
    let place = parse_place(&value).unwrap_or(place);
    if was.as_ref().is_some_and(|w| place_text(w) == value) {
        return reply(cx, PlacesOutcome::Unchanged(place));
    }
    let change = OverlayChange::Set(cx.setting(&nb.id, key, value));
    let outcome = PlacesOutcome::Added {
        place: place.clone(),
        was: was.clone(),
    };
    changed(cx, nb, Some(change), outcome, was.as_ref(), Some(&place))
}
