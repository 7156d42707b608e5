//! Answers to `!nw settings`, `!nw set`/`reset` and `!nw area`: the settings with their
//! source, each change's outcome, and what is wrong with a value.

use crate::config::{Neighborhood, Problem};
use crate::decision::SettingOutcome;
use crate::render::Renderer;

use super::Cx;

/// `!nw settings [key]`: every setting, or the one asked for, of the room's neighborhood
/// (the network's defaults in the coordination room).
pub(super) fn settings(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str, key: Option<&str>) {
    let net = cx.net;
    let r = cx.renderer(room);
    let hood = net.neighborhood_of_room(room);
    let (name, settings) = match hood {
        Some(n) => (n.name.clone(), &n.settings),
        None => (r.plain("nw.defaults_name", &[]), &net.defaults),
    };
    let shown = settings.shown();
    let item = |(k, v): &(&str, String)| setting_item(&r, hood, k, v);
    let one = key.map(|k| shown.iter().find(|(name, _)| *name == k).ok_or(k));
    let message = match one {
        Some(Err(given)) => {
            let keys: Vec<String> = shown.iter().map(|(k, _)| (*k).to_owned()).collect();
            r.notice(
                "nw.settings_unknown",
                &[("given", given), ("keys", &r.list(&keys))],
                None,
            )
        }
        Some(Ok(setting)) => r.notice(
            "nw.settings",
            &[("neighborhood", &name), ("list", &item(setting))],
            None,
        ),
        None => {
            let all: Vec<String> = shown.iter().map(item).collect();
            r.notice(
                "nw.settings",
                &[("neighborhood", &name), ("list", &r.list(&all))],
                None,
            )
        }
    };
    cx.reply(room, in_reply_to, message);
}

/// What became of `!nw set`, `!nw reset` or `!nw area` for `key`.
pub(super) fn setting(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    key: &str,
    outcome: &SettingOutcome,
) {
    let r = cx.renderer(room);
    let name = cx
        .net
        .neighborhood_of_room(room)
        .map_or_else(String::new, |n| n.name.clone());
    let message = match outcome {
        SettingOutcome::Changed { old, new } => r.notice(
            if key == crate::config::AREA_KEY {
                "nw.area_changed"
            } else {
                "nw.setting_changed"
            },
            &[
                ("key", key),
                ("neighborhood", &name),
                ("old", old),
                ("new", new),
            ],
            None,
        ),
        SettingOutcome::Reset { old, new } => r.notice(
            "nw.setting_reset",
            &[
                ("key", key),
                ("neighborhood", &name),
                ("old", old),
                ("new", new),
            ],
            None,
        ),
        SettingOutcome::Unchanged { value } => r.notice(
            "nw.setting_unchanged",
            &[("key", key), ("value", value)],
            None,
        ),
        SettingOutcome::Bad(problem) => r.notice(
            if key == crate::config::AREA_KEY {
                "nw.area_bad"
            } else {
                "nw.setting_bad"
            },
            &[("key", key), ("problem", &problem_words(&r, problem))],
            None,
        ),
        SettingOutcome::OwnCommand => r.notice("nw.setting_own_command", &[("key", key)], None),
        SettingOutcome::DefaultsInFile => r.notice("nw.setting_defaults", &[], None),
        SettingOutcome::AreaUsage => r.notice("nw.area_usage", &[], None),
    };
    cx.reply(room, in_reply_to, message);
}

/// `!nw area`: the neighborhood's area with its source; none in a room of no
/// neighborhood.
pub(super) fn area_show(cx: &mut Cx<'_, '_>, room: &str, in_reply_to: &str) {
    let r = cx.renderer(room);
    let Some(n) = cx.net.neighborhood_of_room(room) else {
        return;
    };
    let item = setting_item(&r, Some(n), "area", &crate::config::area_text(&n.area));
    cx.reply(
        room,
        in_reply_to,
        r.notice(
            "nw.area",
            &[("neighborhood", &n.name), ("item", &item)],
            None,
        ),
    );
}

/// One setting as `!nw settings` lists it, with its source: the network file, or the
/// room admin who set it and when.
fn setting_item(r: &Renderer<'_>, hood: Option<&Neighborhood>, key: &str, value: &str) -> String {
    match hood.and_then(|n| n.set_in_room(key)) {
        Some(set) => r.plain(
            "nw.settings_item_room",
            &[
                ("key", key),
                ("value", value),
                ("by", &set.by),
                (
                    "time",
                    &chrono::DateTime::from_timestamp_millis(set.at_ms)
                        .map(|t| r.date_time(t))
                        .unwrap_or_default(),
                ),
            ],
        ),
        None => r.plain("nw.settings_item", &[("key", key), ("value", value)]),
    }
}

/// What is wrong with a value, in the room's language (the network file says the same in
/// English).
pub(super) fn problem_words(r: &Renderer<'_>, p: &Problem) -> String {
    match p {
        Problem::Distance { got } => r.plain("problem.distance", &[("got", got)]),
        Problem::Whole { min, max, got } => r.plain(
            "problem.whole",
            &[
                ("min", &min.to_string()),
                ("max", &max.to_string()),
                ("got", got),
            ],
        ),
        Problem::Language { got, have } => {
            r.plain("problem.language", &[("got", got), ("have", have)])
        }
        Problem::Timezone { got } => r.plain("problem.timezone", &[("got", got)]),
        Problem::Center { got } => r.plain("problem.center", &[("got", got)]),
        Problem::AlertRetention { min, max, got } => r.plain(
            "problem.alert_retention",
            &[
                ("min", &min.to_string()),
                ("max", &max.to_string()),
                ("got", got),
            ],
        ),
    }
}
