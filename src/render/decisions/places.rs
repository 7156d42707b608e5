//! Answers to `!nw places …`: a room's own place added, moved, removed or refused, and
//! the list beside the network file's.

use crate::decision::PlacesOutcome;
use crate::places::Place;
use crate::render::{Renderer, distance_words};

use super::Cx;
use super::settings::problem_words;

/// The answer to `!nw places …` in `room`.
pub(super) fn places_reply(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    outcome: &PlacesOutcome,
) {
    let r = cx.renderer(room);
    let hood = cx
        .net
        .neighborhood_of_room(room)
        .map_or("", |n| n.name.as_str())
        .to_owned();
    let with = |key: &'static str, mut args: Vec<(&'static str, String)>| {
        args.push(("neighborhood", hood.clone()));
        r.notice_parts(&[(key, args)], None)
    };
    let message = match outcome {
        PlacesOutcome::Added { place, was: None } => with("places.added", place_args(&r, place)),
        PlacesOutcome::Added {
            place,
            was: Some(was),
        } => {
            let mut a = place_args(&r, place);
            a.push(("old_kind", r.plain(was.kind.catalog_key(), &[])));
            a.push(("old_at", format!("{:.5},{:.5}", was.at.lat, was.at.lon)));
            with("places.moved", a)
        }
        PlacesOutcome::Unchanged(p) => with("places.unchanged", place_args(&r, p)),
        PlacesOutcome::Removed(p) => with("places.removed", place_args(&r, p)),
        PlacesOutcome::NotAdded { name, in_file } => with(
            if *in_file {
                "places.not_added_file"
            } else {
                "places.not_added"
            },
            vec![("given", name.clone())],
        ),
        PlacesOutcome::InFile(name) => with("places.in_file", vec![("given", name.clone())]),
        PlacesOutcome::BadName(name) => with("places.bad_name", vec![("given", name.clone())]),
        PlacesOutcome::BadKind(word) => with("places.bad_kind", vec![("given", word.clone())]),
        PlacesOutcome::BadPoint(p) => {
            with("places.bad_point", vec![("problem", problem_words(&r, p))])
        }
        PlacesOutcome::TooFar(m) => {
            with("places.too_far", vec![("distance", distance_words(&r, *m))])
        }
        PlacesOutcome::TooMany(n) => with("places.too_many", vec![("n", n.to_string())]),
        PlacesOutcome::List {
            added,
            in_file,
            streets,
        } => {
            let file = r.plain(
                "places.file",
                &[
                    ("places", &r.count("count.places", *in_file as u64)),
                    ("streets", &r.count("count.streets", *streets as u64)),
                ],
            );
            if added.is_empty() {
                with("places.list_none", vec![("file", file)])
            } else {
                let items: Vec<String> = added
                    .iter()
                    .map(|(p, set)| {
                        let mut a = place_args(&r, p);
                        a.push(("by", set.by.clone()));
                        a.push((
                            "time",
                            chrono::DateTime::from_timestamp_millis(set.at_ms)
                                .map(|t| r.date_time(t))
                                .unwrap_or_default(),
                        ));
                        let a: Vec<(&str, &str)> =
                            a.iter().map(|(k, v)| (*k, v.as_str())).collect();
                        r.plain("places.item", &a)
                    })
                    .collect();
                with(
                    "places.list",
                    vec![("list", r.list(&items)), ("file", file)],
                )
            }
        }
        PlacesOutcome::Usage => r.notice("places.usage", &[], None),
        PlacesOutcome::InCoordination => r.notice("places.coordination", &[], None),
    };
    cx.reply(room, in_reply_to, message);
}

/// A place's arguments: name, kind in words, `LAT,LON`.
pub(super) fn place_args(r: &Renderer<'_>, p: &Place) -> Vec<(&'static str, String)> {
    vec![
        ("place", p.name.clone()),
        ("kind", r.plain(p.kind.catalog_key(), &[])),
        ("at", format!("{:.5},{:.5}", p.at.lat, p.at.lon)),
    ]
}
