//! `!nw area show | center LAT,LON radius_m N | reset`: the neighborhood's area, set from
//! the room as a circle (stored and audited like a setting, key [`AREA_KEY`]).

use std::sync::Arc;

use super::settings::{RoomChange, answer, reset_in_room, set_in_room};
use super::{AdminCx, Outcome};
use crate::command::AreaCommand;
use crate::config::{AREA_KEY, area_text, parse_area};
use crate::decision::{Decision, SettingOutcome};

pub(super) fn run(cx: &AdminCx<'_>, cmd: AreaCommand) -> Outcome {
    let say = |outcome| Outcome::say(answer(cx, AREA_KEY.to_owned(), outcome));
    let Some(nb) = cx.net.neighborhood_of_room(cx.room) else {
        return say(SettingOutcome::DefaultsInFile);
    };
    let c = RoomChange {
        neighborhood: nb.id.clone(),
        key: AREA_KEY.to_owned(),
    };
    let old = area_text(&nb.area);
    let value = match cmd {
        AreaCommand::Show => {
            return Outcome::say(Decision::AreaShow {
                room: Arc::clone(cx.room),
                in_reply_to: Arc::clone(cx.event_id),
            });
        }
        AreaCommand::Usage => return say(SettingOutcome::AreaUsage),
        AreaCommand::Reset => {
            return reset_in_room(cx, c, old, |n, c| {
                n.neighborhood(&c.neighborhood)
                    .map(|n| area_text(&n.area))
                    .unwrap_or_default()
            });
        }
        AreaCommand::Circle { lat, lon, radius } => format!("{lat},{lon} {radius}"),
    };
    match parse_area(&value) {
        Ok(area) => set_in_room(cx, c, old, area_text(&area)),
        Err(p) => say(SettingOutcome::Bad(p)),
    }
}
