//! Wording the engine's decisions: each [`Decision`] becomes one or more [`Effect`]s in
//! the receiving room's language.

use crate::config::Network;
use crate::config::{Neighborhood, Problem};
use crate::decision::{
    AckKind, AckNote, AuditChange, CoordinationKind, Decision, SettingOutcome, UpdateKind,
};
use crate::decision::{LinkOutcome, PlacesOutcome, VerifiersOutcome};
use crate::effect::Effect;
use crate::links::{Link, LinkRefusal, LinkState};
use crate::model::{Incident, IncidentId, Status};
use crate::places::Place;
use crate::report::ReportError;
use crate::stats::Summary;

use super::{Catalogs, Renderer};
use crate::effect::{MsgType, OutgoingMessage};
use crate::model::ConfirmedBy;

fn renderer<'a>(net: &'a Network, cat: &'a Catalogs, room: &str) -> Renderer<'a> {
    match net.neighborhood_of_room(room) {
        Some(n) => Renderer::for_neighborhood(cat, n),
        None => coordination(net, cat),
    }
}

/// A quiet answer to the event `in_reply_to` in `room`.
fn reply(room: &str, in_reply_to: &str, message: OutgoingMessage) -> Effect {
    Effect::Reply {
        room: room.to_owned(),
        in_reply_to: in_reply_to.to_owned(),
        message,
    }
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

/// A neighborhood's name (its id if it is no longer in the network).
/// A place's arguments: name, kind in words, `LAT,LON`.
fn place_args(r: &Renderer<'_>, p: &Place) -> Vec<(&'static str, String)> {
    vec![
        ("place", p.name.clone()),
        ("kind", r.plain(p.kind.catalog_key(), &[])),
        ("at", format!("{:.5},{:.5}", p.at.lat, p.at.lon)),
    ]
}

/// A time span as people say it: `45 s`, `12 min`, `2 h 5 min`.
fn span_words(r: &Renderer<'_>, s: Option<i64>) -> String {
    match s {
        None => r.plain("stats.no_time", &[]),
        Some(s) if s < 60 => r.plain("stats.seconds", &[("n", &s.to_string())]),
        Some(s) if s < 3600 => r.plain("stats.minutes", &[("n", &(s / 60).to_string())]),
        Some(s) => r.plain(
            "stats.hours_minutes",
            &[
                ("h", &(s / 3600).to_string()),
                ("m", &(s % 3600 / 60).to_string()),
            ],
        ),
    }
}

/// One summary's line of `!nw stats`.
fn stats_line(
    r: &Renderer<'_>,
    who: &str,
    s: &Summary,
) -> (&'static str, Vec<(&'static str, String)>) {
    let n = |x: usize| x.to_string();
    (
        "stats.line",
        vec![
            ("who", who.to_owned()),
            ("reports", n(s.reports)),
            ("incidents", n(s.incidents)),
            ("confirmed", n(s.confirmed)),
            ("false_alarms", n(s.false_alarms)),
            ("median", span_words(r, s.median_s)),
            ("p90", span_words(r, s.p90_s)),
            ("rooms", n(s.rooms_alerted)),
            ("refusals", n(s.refusals)),
        ],
    )
}

fn hood_name<'a>(net: &'a Network, id: &'a str) -> &'a str {
    net.neighborhood(id).map_or(id, |n| n.name.as_str())
}

/// The answer to `!nw relay …` in a room of neighborhood `here`.
fn link_reply(
    net: &Network,
    r: &Renderer<'_>,
    here: &str,
    outcome: &LinkOutcome,
) -> OutgoingMessage {
    let item = |l: &Link| {
        r.plain(
            "link.list_item",
            &[
                ("id", &l.id),
                ("other", hood_name(net, l.other_side(here))),
                ("state", &r.plain(l.state.catalog_key(), &[])),
            ],
        )
    };
    let name = hood_name(net, here);
    match outcome {
        LinkOutcome::Changed(l) => {
            let key = match l.state {
                LinkState::Requested => "link.requested",
                LinkState::Accepted => "link.accepted",
                LinkState::Declined => "link.declined",
                LinkState::Removed => "link.removed",
            };
            r.notice(
                key,
                &[
                    ("id", &l.id),
                    ("here", name),
                    ("other", hood_name(net, l.other_side(here))),
                    ("room", &l.to_room),
                ],
                None,
            )
        }
        LinkOutcome::List(links) if links.is_empty() => {
            r.notice("link.list_none", &[("here", name)], None)
        }
        LinkOutcome::List(links) => {
            let items: Vec<String> = links.iter().map(item).collect();
            r.notice(
                "link.list",
                &[("here", name), ("list", &r.list(&items))],
                None,
            )
        }
        LinkOutcome::Refused(LinkRefusal::SameNeighborhood) => r.notice("link.same", &[], None),
        LinkOutcome::Refused(LinkRefusal::AlreadyLinked { id, state }) => r.notice(
            "link.already",
            &[
                ("id", id),
                ("here", name),
                ("state", &r.plain(state.catalog_key(), &[])),
            ],
            None,
        ),
        LinkOutcome::Refused(LinkRefusal::OtherSide { to }) => {
            r.notice("link.other_side", &[("to", hood_name(net, to))], None)
        }
        LinkOutcome::Refused(LinkRefusal::NotASide) => r.notice("link.not_a_side", &[], None),
        LinkOutcome::Refused(LinkRefusal::Closed { state }) => r.notice(
            "link.closed",
            &[("state", &r.plain(state.catalog_key(), &[]))],
            None,
        ),
        LinkOutcome::UnknownRoom(given) => r.notice("link.unknown_room", &[("given", given)], None),
        LinkOutcome::UnknownLink(given) => r.notice("link.unknown_link", &[("given", given)], None),
        LinkOutcome::Usage => r.notice("link.usage", &[], None),
        LinkOutcome::InCoordination => r.notice("link.coordination", &[], None),
    }
}

/// What is wrong with a value, in the room's language (the network file says the same in
/// English).
fn problem_words(r: &Renderer<'_>, p: &Problem) -> String {
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
    }
}

fn coordination<'a>(net: &'a Network, cat: &'a Catalogs) -> Renderer<'a> {
    Renderer::new(cat, &net.defaults.language, net.defaults.timezone)
}

/// Why the shell could not deliver an alert, for the coordination room.
#[derive(Clone, Copy, Debug)]
pub enum Undelivered<'a> {
    /// The room is not end-to-end encrypted: alerts are not posted there.
    Unencrypted,
    /// The homeserver refused the alert for good, saying `reason`.
    Refused {
        /// What the server said.
        reason: &'a str,
    },
}

/// The coordination room's notice that the alert for `incident` did not reach `room`, in
/// the network's language (the shell's only words of its own).
pub fn undelivered_notice(
    net: &Network,
    cat: &Catalogs,
    incident: &str,
    room: &str,
    why: Undelivered<'_>,
) -> OutgoingMessage {
    let r = coordination(net, cat);
    match why {
        Undelivered::Unencrypted => r.notice("coord.unencrypted_room", &[("room", room)], None),
        Undelivered::Refused { reason } => r.notice(
            "coord.refused_room",
            &[("id", incident), ("room", room), ("reason", reason)],
            None,
        ),
    }
}

fn error_args(e: &ReportError, example: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![("example", example.to_owned())];
    match e {
        ReportError::TooLong { chars, max } => {
            v.push(("chars", chars.to_string()));
            v.push(("max", max.to_string()));
        }
        ReportError::FutureTime { minutes } => v.push(("minutes", minutes.to_string())),
        ReportError::SaluteTooShort { found } => v.push(("found", found.to_string())),
        ReportError::Empty | ReportError::SaluteNoLocation => {}
    }
    v
}

/// Words `decisions`. `incident` looks incidents up in their current state; a decision
/// about an incident that is not found is skipped.
pub fn render_decisions<'i>(
    net: &Network,
    cat: &Catalogs,
    incident: impl Fn(&IncidentId) -> Option<&'i Incident>,
    decisions: &[Decision],
) -> Vec<Effect> {
    let mut out = Vec::with_capacity(decisions.len() + 2);
    for d in decisions {
        match d {
            Decision::Ack {
                room,
                in_reply_to,
                incident: id,
                kind,
                rooms,
                needed,
                note,
            } => {
                let Some(inc) = incident(id) else { continue };
                let r = renderer(net, cat, room);
                let key = match kind {
                    AckKind::Confirmed if inc.confirmed_by == Some(ConfirmedBy::Verifier) => {
                        "ack.confirmed_by_verifier"
                    }
                    AckKind::New => "ack.new",
                    AckKind::Merged => "ack.merged",
                    AckKind::SameReporter => "ack.same_reporter",
                    AckKind::Confirmed => "ack.confirmed",
                    AckKind::Update => "ack.update",
                };
                let args = vec![
                    ("id", inc.id.to_string()),
                    ("place", inc.label.to_string()),
                    ("count", inc.reporter_count().to_string()),
                    (
                        "reports",
                        r.count("count.reports", inc.reporter_count() as u64),
                    ),
                    ("needed", needed.to_string()),
                    ("room_count", r.count("count.rooms", *rooms as u64)),
                ];
                let mut parts = vec![(key, args)];
                match note {
                    Some(AckNote::NewMember { hours }) => {
                        parts.push(("ack.note_new_member", vec![("hours", hours.to_string())]));
                    }
                    Some(AckNote::RateLimited { max }) => {
                        parts.push(("ack.note_rate_limited", vec![("max", max.to_string())]));
                    }
                    None => {}
                }
                if let (AckKind::New | AckKind::Confirmed, Some(t)) = (kind, inc.after_false_alarm)
                {
                    parts.push(("ack.after_false_alarm", vec![("time", r.time(t))]));
                }
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice_parts(&parts, Some(inc.tag())),
                ));
            }
            Decision::ActionDone {
                room,
                in_reply_to,
                incident: id,
                rooms,
            } => {
                let Some(inc) = incident(id) else { continue };
                let r = renderer(net, cat, room);
                let status = r.status_words(inc);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(
                        "action.done",
                        &[
                            ("id", inc.id.as_str()),
                            ("status", &status),
                            ("rooms", &rooms.to_string()),
                        ],
                        Some(inc.tag()),
                    ),
                ));
            }
            Decision::ActionRefused {
                room,
                in_reply_to,
                action,
            } => {
                let r = renderer(net, cat, room);
                let what = r.plain(action.catalog_key(), &[]);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(
                        "action.refused",
                        &[("action", &what), ("example", r.example())],
                        None,
                    ),
                ));
            }
            Decision::ActionUnchanged {
                room,
                in_reply_to,
                incident: id,
            } => {
                let Some(inc) = incident(id) else { continue };
                let r = renderer(net, cat, room);
                let status = r.status_words(inc);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(
                        "action.unchanged",
                        &[("id", inc.id.as_str()), ("status", &status)],
                        Some(inc.tag()),
                    ),
                ));
            }
            Decision::UnknownIncident {
                room,
                in_reply_to,
                given,
                open,
            } => {
                let r = renderer(net, cat, room);
                let message = if open.is_empty() {
                    r.notice("action.unknown_none", &[("given", given)], None)
                } else {
                    let items: Vec<String> = open
                        .iter()
                        .map(|(id, place)| {
                            r.plain("action.open_item", &[("id", id.as_str()), ("place", place)])
                        })
                        .collect();
                    r.notice(
                        "action.unknown",
                        &[("given", given), ("open", &r.list(&items))],
                        None,
                    )
                };
                out.push(reply(room, in_reply_to, message));
            }
            Decision::Help { room, in_reply_to } => {
                let r = renderer(net, cat, room);
                let key = if net.neighborhood_of_room(room).is_some() {
                    "nw.help"
                } else {
                    "nw.help_coordination"
                };
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(key, &[("example", r.example())], None),
                ));
            }
            Decision::Status {
                room,
                in_reply_to,
                open,
                confirmed,
            } => {
                let r = renderer(net, cat, room);
                let (open, confirmed) = (open.to_string(), confirmed.to_string());
                let message = match net.neighborhood_of_room(room) {
                    Some(n) => r.notice(
                        "nw.status",
                        &[
                            ("neighborhood", &n.name),
                            ("open", &open),
                            ("confirmed", &confirmed),
                            ("needed", &n.settings.confirmations.to_string()),
                            (
                                "radius",
                                &super::distance_words(&r, n.settings.alert_radius_m),
                            ),
                        ],
                        None,
                    ),
                    None => r.notice(
                        "nw.status_network",
                        &[
                            ("neighborhoods", &net.neighborhoods().len().to_string()),
                            (
                                "rooms",
                                &net.neighborhoods()
                                    .iter()
                                    .map(|n| n.rooms.len())
                                    .sum::<usize>()
                                    .to_string(),
                            ),
                            ("open", &open),
                            ("confirmed", &confirmed),
                        ],
                        None,
                    ),
                };
                out.push(reply(room, in_reply_to, message));
            }
            Decision::Incidents {
                room,
                in_reply_to,
                open,
                more,
            } => {
                let r = renderer(net, cat, room);
                let items: Vec<String> = open
                    .iter()
                    .filter_map(|(id, age_min)| {
                        let inc = incident(id)?;
                        let age = if *age_min < 120 {
                            r.plain("nw.age_min", &[("n", &age_min.to_string())])
                        } else {
                            r.plain("nw.age_h", &[("n", &(age_min / 60).to_string())])
                        };
                        Some(r.plain(
                            "nw.incident_item",
                            &[
                                ("id", id.as_str()),
                                ("place", &inc.label),
                                ("status", &r.status_words(inc)),
                                ("age", &age),
                            ],
                        ))
                    })
                    .collect();
                let message = if items.is_empty() {
                    r.notice("nw.incidents_none", &[], None)
                } else if *more > 0 {
                    r.notice(
                        "nw.incidents_more",
                        &[("list", &r.list(&items)), ("more", &more.to_string())],
                        None,
                    )
                } else {
                    r.notice("nw.incidents", &[("list", &r.list(&items))], None)
                };
                out.push(reply(room, in_reply_to, message));
            }
            Decision::Settings {
                room,
                in_reply_to,
                key,
            } => {
                let r = renderer(net, cat, room);
                let hood = net.neighborhood_of_room(room);
                let (name, settings) = match hood {
                    Some(n) => (n.name.clone(), &n.settings),
                    None => (r.plain("nw.defaults_name", &[]), &net.defaults),
                };
                let shown = settings.shown();
                let item = |(k, v): &(&str, String)| setting_item(&r, hood, k, v);
                let one = key
                    .as_deref()
                    .map(|k| shown.iter().find(|(name, _)| *name == k).ok_or(k));
                let message = match one {
                    Some(Err(given)) => {
                        let keys: Vec<String> =
                            shown.iter().map(|(k, _)| (*k).to_owned()).collect();
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
                out.push(reply(room, in_reply_to, message));
            }
            Decision::Setting {
                room,
                in_reply_to,
                key,
                outcome,
            } => {
                let r = renderer(net, cat, room);
                let name = net
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
                    SettingOutcome::OwnCommand => {
                        r.notice("nw.setting_own_command", &[("key", key)], None)
                    }
                    SettingOutcome::DefaultsInFile => r.notice("nw.setting_defaults", &[], None),
                    SettingOutcome::AreaUsage => r.notice("nw.area_usage", &[], None),
                };
                out.push(reply(room, in_reply_to, message));
            }
            Decision::Audit {
                room,
                by,
                in_room,
                change,
            } => {
                let r = coordination(net, cat);
                let message = match change {
                    AuditChange::Setting {
                        neighborhood,
                        key,
                        old,
                        new,
                        reset,
                    } => {
                        let hood = net
                            .neighborhood(neighborhood)
                            .map_or(&**neighborhood, |n| n.name.as_str());
                        r.notice(
                            if *reset {
                                "audit.setting_reset"
                            } else {
                                "audit.setting"
                            },
                            &[
                                ("by", by),
                                ("key", key),
                                ("neighborhood", hood),
                                ("old", old),
                                ("new", new),
                                ("room", in_room),
                            ],
                            None,
                        )
                    }
                    AuditChange::Verifier {
                        neighborhood,
                        user,
                        added,
                    } => r.notice(
                        if *added {
                            "audit.verifier_added"
                        } else {
                            "audit.verifier_removed"
                        },
                        &[
                            ("by", by),
                            ("user", user),
                            ("neighborhood", hood_name(net, neighborhood)),
                            ("room", in_room),
                        ],
                        None,
                    ),
                    AuditChange::Place {
                        neighborhood,
                        old,
                        new,
                    } => {
                        let key = match (old, new) {
                            (None, _) => "audit.place_added",
                            (Some(_), Some(_)) => "audit.place_changed",
                            (Some(_), None) => "audit.place_removed",
                        };
                        let shown = |t: &Option<String>| {
                            let t = t.as_deref().unwrap_or_default();
                            crate::config::parse_place(t).map_or_else(
                                || t.to_owned(),
                                |p| {
                                    let a = place_args(&r, &p);
                                    let a: Vec<(&str, &str)> =
                                        a.iter().map(|(k, v)| (*k, v.as_str())).collect();
                                    r.plain("places.short", &a)
                                },
                            )
                        };
                        r.notice(
                            key,
                            &[
                                ("by", by),
                                ("neighborhood", hood_name(net, neighborhood)),
                                ("old", &shown(old)),
                                ("new", &shown(new)),
                                ("room", in_room),
                            ],
                            None,
                        )
                    }
                    AuditChange::Drill { neighborhood } => r.notice(
                        "audit.drill",
                        &[
                            ("by", by),
                            ("neighborhood", hood_name(net, neighborhood)),
                            ("room", in_room),
                        ],
                        None,
                    ),
                    AuditChange::Link { link, old } => {
                        let key = match link.state {
                            LinkState::Requested => "audit.link_requested",
                            LinkState::Accepted => "audit.link_accepted",
                            LinkState::Declined => "audit.link_declined",
                            LinkState::Removed => "audit.link_removed",
                        };
                        let old = old.map_or_else(
                            || r.plain("link_state.none", &[]),
                            |o| r.plain(o.catalog_key(), &[]),
                        );
                        r.notice(
                            key,
                            &[
                                ("by", by),
                                ("id", &link.id),
                                ("from", hood_name(net, &link.from)),
                                ("to", hood_name(net, &link.to)),
                                ("old", &old),
                                ("new", &r.plain(link.state.catalog_key(), &[])),
                                ("room", in_room),
                            ],
                            None,
                        )
                    }
                };
                out.push(Effect::Notice {
                    room: room.to_string(),
                    message,
                });
            }
            Decision::LinkReply {
                room,
                in_reply_to,
                outcome,
            } => {
                let r = renderer(net, cat, room);
                let here = net.neighborhood_of_room(room).map_or("", |n| n.id.as_str());
                out.push(reply(room, in_reply_to, link_reply(net, &r, here, outcome)));
            }
            Decision::LinkNotice { room, link } => {
                let r = renderer(net, cat, room);
                let here = net
                    .neighborhood_of_room(room)
                    .map_or(&*link.to, |n| n.id.as_str());
                let key = match link.state {
                    LinkState::Requested => "link.notice_requested",
                    LinkState::Accepted => "link.notice_accepted",
                    LinkState::Declined => "link.notice_declined",
                    LinkState::Removed => "link.notice_removed",
                };
                let by = if link.state == LinkState::Requested {
                    link.requested_by.as_str()
                } else {
                    link.changed_by.as_deref().unwrap_or_default()
                };
                out.push(Effect::Notice {
                    room: room.to_string(),
                    message: r.notice(
                        key,
                        &[
                            ("id", &link.id),
                            ("here", hood_name(net, here)),
                            ("other", hood_name(net, link.other_side(here))),
                            ("by", by),
                        ],
                        None,
                    ),
                });
            }
            Decision::VerifiersReply {
                room,
                in_reply_to,
                outcome,
            } => {
                let r = renderer(net, cat, room);
                let name = net
                    .neighborhood_of_room(room)
                    .map_or("", |n| n.name.as_str());
                let message = match outcome {
                    VerifiersOutcome::Changed {
                        added,
                        removed,
                        unchanged,
                        invalid,
                    } => {
                        let mut parts: Vec<(&str, Vec<(&str, String)>)> = Vec::new();
                        for (key, users) in [
                            ("verifiers.added", added),
                            ("verifiers.removed", removed),
                            ("verifiers.unchanged", unchanged),
                            ("verifiers.invalid", invalid),
                        ] {
                            if !users.is_empty() {
                                parts.push((
                                    key,
                                    vec![
                                        ("users", r.list(users)),
                                        ("neighborhood", name.to_owned()),
                                    ],
                                ));
                            }
                        }
                        r.notice_parts(&parts, None)
                    }
                    VerifiersOutcome::List(list) if list.is_empty() => {
                        r.notice("verifiers.none", &[("neighborhood", name)], None)
                    }
                    VerifiersOutcome::List(list) => {
                        let items: Vec<String> = list
                            .iter()
                            .map(|(u, set)| match set {
                                None => r.plain("verifiers.item_file", &[("user", u)]),
                                Some(s) => r.plain(
                                    "verifiers.item_room",
                                    &[
                                        ("user", u),
                                        ("by", &s.by),
                                        (
                                            "time",
                                            &chrono::DateTime::from_timestamp_millis(s.at_ms)
                                                .map(|t| r.date_time(t))
                                                .unwrap_or_default(),
                                        ),
                                    ],
                                ),
                            })
                            .collect();
                        r.notice(
                            "verifiers.list",
                            &[("neighborhood", name), ("list", &r.list(&items))],
                            None,
                        )
                    }
                    VerifiersOutcome::Usage => r.notice("verifiers.usage", &[], None),
                    VerifiersOutcome::InCoordination => {
                        r.notice("verifiers.coordination", &[], None)
                    }
                };
                out.push(reply(room, in_reply_to, message));
            }
            Decision::AreaShow { room, in_reply_to } => {
                let r = renderer(net, cat, room);
                let Some(n) = net.neighborhood_of_room(room) else {
                    continue;
                };
                let item = setting_item(&r, Some(n), "area", &crate::config::area_text(&n.area));
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(
                        "nw.area",
                        &[("neighborhood", &n.name), ("item", &item)],
                        None,
                    ),
                ));
            }
            Decision::PlacesReply {
                room,
                in_reply_to,
                outcome,
            } => {
                let r = renderer(net, cat, room);
                let hood = net
                    .neighborhood_of_room(room)
                    .map_or("", |n| n.name.as_str())
                    .to_owned();
                let with = |key: &'static str, mut args: Vec<(&'static str, String)>| {
                    args.push(("neighborhood", hood.clone()));
                    r.notice_parts(&[(key, args)], None)
                };
                let message = match outcome {
                    PlacesOutcome::Added { place, was: None } => {
                        with("places.added", place_args(&r, place))
                    }
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
                    PlacesOutcome::InFile(name) => {
                        with("places.in_file", vec![("given", name.clone())])
                    }
                    PlacesOutcome::BadName(name) => {
                        with("places.bad_name", vec![("given", name.clone())])
                    }
                    PlacesOutcome::BadKind(word) => {
                        with("places.bad_kind", vec![("given", word.clone())])
                    }
                    PlacesOutcome::BadPoint(p) => {
                        with("places.bad_point", vec![("problem", problem_words(&r, p))])
                    }
                    PlacesOutcome::TooFar(m) => with(
                        "places.too_far",
                        vec![("distance", super::distance_words(&r, *m))],
                    ),
                    PlacesOutcome::TooMany(n) => {
                        with("places.too_many", vec![("n", n.to_string())])
                    }
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
                out.push(reply(room, in_reply_to, message));
            }
            Decision::Stats {
                room,
                in_reply_to,
                hours,
                summaries,
            } => {
                let r = renderer(net, cat, room);
                let mut lines = vec![(
                    "stats.header",
                    vec![("hours", r.count("count.hours", u64::from(*hours)))],
                )];
                for (who, s) in summaries {
                    let who = match who {
                        Some(id) => hood_name(net, id).to_owned(),
                        None => r.plain("stats.network", &[]),
                    };
                    lines.push(stats_line(&r, &who, s));
                }
                lines.push(("stats.footer", vec![]));
                out.push(reply(room, in_reply_to, r.notice_lines(&lines)));
            }
            Decision::StatsUsage {
                room,
                in_reply_to,
                given,
            } => {
                let r = renderer(net, cat, room);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(
                        "stats.usage",
                        &[
                            ("given", given),
                            ("max", &crate::stats::MAX_STATS_HOURS.to_string()),
                        ],
                        None,
                    ),
                ));
            }
            Decision::DrillInCoordination { room, in_reply_to } => {
                let r = renderer(net, cat, room);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice("nw.drill_coordination", &[], None),
                ));
            }
            Decision::AdminOnly { room, in_reply_to } => {
                let r = renderer(net, cat, room);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice("nw.admin_only", &[], None),
                ));
            }
            Decision::UnknownCommand {
                room,
                in_reply_to,
                given,
            } => {
                let r = renderer(net, cat, room);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice("nw.unknown", &[("given", given)], None),
                ));
            }
            Decision::TooOld {
                room,
                in_reply_to,
                place,
                window_min,
            } => {
                let r = renderer(net, cat, room);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(
                        "ack.old",
                        &[("place", place), ("window", &window_min.to_string())],
                        None,
                    ),
                ));
            }
            Decision::Rejected {
                room,
                in_reply_to,
                error,
            } => {
                let r = renderer(net, cat, room);
                let args = error_args(error, r.example());
                let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice(error.catalog_key(), &a, None),
                ));
            }
            Decision::Unresolved {
                room,
                in_reply_to,
                query,
                suggestions,
            } => {
                let r = renderer(net, cat, room);
                let message = if suggestions.is_empty() {
                    r.notice("location.unresolved_none", &[("query", query)], None)
                } else {
                    let list = r.list(suggestions);
                    r.notice(
                        "location.unresolved",
                        &[("query", query), ("suggestions", &list)],
                        None,
                    )
                };
                out.push(reply(room, in_reply_to, message));
            }
            Decision::Undecryptable { room, in_reply_to } => {
                let r = renderer(net, cat, room);
                out.push(reply(
                    room,
                    in_reply_to,
                    r.notice("room.undecryptable", &[], None),
                ));
            }
            Decision::NotInNetwork { room, in_reply_to } => out.push(reply(
                room,
                in_reply_to,
                coordination(net, cat).notice("room.not_in_network", &[], None),
            )),
            Decision::Relay { room, incident: id } => {
                let (Some(inc), Some(to)) = (incident(id), net.neighborhood_of_room(room)) else {
                    continue;
                };
                let r = Renderer::for_neighborhood(cat, to);
                let loc = r.alert_location(inc);
                let mut message = r.alert(inc, to, &to.gazetteer);
                message.incident = Some(inc.tag_in(room));
                out.push(Effect::Relay {
                    room: room.to_string(),
                    message,
                });
                out.push(Effect::Location {
                    room: room.to_string(),
                    incident: inc.tag_in(room),
                    geo_uri: loc.geo_uri,
                    body: loc.description,
                });
            }
            Decision::UpdateAlert {
                room,
                incident: id,
                update,
            } => {
                let (Some(inc), Some(to)) = (incident(id), net.neighborhood_of_room(room)) else {
                    continue;
                };
                let r = Renderer::for_neighborhood(cat, to);
                let mut message = r.alert(inc, to, &to.gazetteer);
                // Edits never notify (MSC3958): a change people must hear about is also a
                // notifying thread reply, with the mentions the alert had.
                message.mentions_room = false;
                message.incident = Some(inc.tag_in(room));
                out.push(Effect::Edit {
                    room: room.to_string(),
                    message,
                });
                let hours = net.settings(&inc.neighborhood).expiry_hours.to_string();
                let mut args = vec![
                    ("id", inc.id.to_string()),
                    (
                        "reports",
                        r.count("count.reports", inc.reporter_count() as u64),
                    ),
                    ("last", r.time(inc.last_seen)),
                    ("hours", hours),
                ];
                let message = match update {
                    UpdateKind::Reports => {
                        r.notice_parts(&[("update.reports", args)], Some(inc.tag_in(room)))
                    }
                    UpdateKind::Retracted => {
                        r.notice_parts(&[("update.retracted", args)], Some(inc.tag_in(room)))
                    }
                    UpdateKind::Expired => {
                        r.notice_parts(&[("update.expired", args)], Some(inc.tag_in(room)))
                    }
                    UpdateKind::Status { reason } => {
                        let key = match (inc.status, inc.confirmed_by) {
                            (Status::FalseAlarm, _) => "update.false_alarm",
                            (Status::Resolved, _) => "update.resolved",
                            (Status::Expired, _) => "update.expired",
                            (_, Some(ConfirmedBy::Verifier)) => "update.confirmed_by_verifier",
                            _ => "update.confirmed",
                        };
                        args.push(("place", inc.label.to_string()));
                        let mut parts = vec![(key, args)];
                        if let Some(reason) = reason {
                            parts.push(("update.reason", vec![("reason", reason.to_string())]));
                        }
                        let mut m = r.notice_parts(&parts, Some(inc.tag_in(room)));
                        m.msgtype = MsgType::Text;
                        m.mentions_room = r.alert_mentions_room(inc);
                        m
                    }
                };
                out.push(Effect::ThreadReply {
                    room: room.to_string(),
                    message,
                });
            }
            Decision::Coordination {
                room,
                incident: id,
                kind,
                needed,
            } => {
                let Some(inc) = incident(id) else { continue };
                let r = coordination(net, cat);
                let hood = net
                    .neighborhood(&inc.neighborhood)
                    .map_or(&*inc.neighborhood, |n| n.name.as_str());
                let status = r.status_words(inc);
                let message = match kind {
                    CoordinationKind::Incident => r.notice(
                        "coord.incident",
                        &[
                            ("id", inc.id.as_str()),
                            ("status", &status),
                            ("neighborhood", hood),
                            ("place", &inc.label),
                            (
                                "reports",
                                &r.count("count.reports", inc.reporter_count() as u64),
                            ),
                            ("needed", &needed.to_string()),
                        ],
                        Some(inc.tag()),
                    ),
                    CoordinationKind::Relayed { rooms } => r.notice(
                        "coord.relayed",
                        &[
                            ("id", inc.id.as_str()),
                            ("room_count", &r.count("count.rooms", *rooms as u64)),
                        ],
                        Some(inc.tag()),
                    ),
                    CoordinationKind::Status { reason } => {
                        let mut parts = vec![(
                            "coord.status",
                            vec![
                                ("id", inc.id.to_string()),
                                ("status", status.clone()),
                                ("neighborhood", hood.to_owned()),
                                ("place", inc.label.to_string()),
                                (
                                    "room_count",
                                    r.count("count.rooms", inc.relayed_to.len() as u64),
                                ),
                            ],
                        )];
                        if let Some(reason) = reason {
                            parts.push(("update.reason", vec![("reason", reason.to_string())]));
                        }
                        r.notice_parts(&parts, Some(inc.tag()))
                    }
                    CoordinationKind::Retracted => r.notice(
                        "coord.retracted",
                        &[
                            ("id", inc.id.as_str()),
                            ("neighborhood", hood),
                            (
                                "reports",
                                &r.count("count.reports", inc.reporter_count() as u64),
                            ),
                        ],
                        Some(inc.tag()),
                    ),
                    CoordinationKind::Expired => {
                        let h = net.settings(&inc.neighborhood).expiry_hours;
                        r.notice(
                            "update.expired",
                            &[("id", inc.id.as_str()), ("hours", &h.to_string())],
                            Some(inc.tag()),
                        )
                    }
                };
                out.push(Effect::Notice {
                    room: room.to_string(),
                    message,
                });
            }
        }
    }
    // A drill says so first in every message about it, and nothing about it notifies.
    for e in &mut out {
        let drill = e.incident().and_then(&incident).is_some_and(|i| i.drill);
        if drill {
            let prefix = renderer(net, cat, e.room()).plain("alert.drill_prefix", &[]);
            mark_drill(e, &prefix);
        }
    }
    out
}

/// Puts `prefix` before a drill message's text and makes it quiet.
fn mark_drill(e: &mut Effect, prefix: &str) {
    let escaped = html_escape::encode_safe(prefix);
    match e {
        Effect::Location { body, .. } => *body = format!("{prefix}{body}"),
        Effect::Relay { message, .. }
        | Effect::Reply { message, .. }
        | Effect::Notice { message, .. }
        | Effect::Edit { message, .. }
        | Effect::ThreadReply { message, .. } => {
            message.body = format!("{prefix}{}", message.body);
            message.html = format!("{escaped}{}", message.html);
            message.msgtype = MsgType::Notice;
            message.mentions_room = false;
        }
    }
}
