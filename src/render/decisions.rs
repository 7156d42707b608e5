//! Wording the engine's decisions: each [`Decision`] becomes one or more [`Effect`]s in
//! the receiving room's language.

use crate::config::Network;
use crate::effect::Effect;
use crate::incident::{AckKind, CoordinationKind, Decision, Incident, IncidentId, UpdateKind};
use crate::report::ReportError;

use super::{Catalogs, Renderer};

fn renderer<'a>(net: &'a Network, cat: &'a Catalogs, room: &str) -> Renderer<'a> {
    match net.neighborhood_of_room(room) {
        Some(n) => Renderer::for_neighborhood(cat, n),
        None => coordination(net, cat),
    }
}

fn coordination<'a>(net: &'a Network, cat: &'a Catalogs) -> Renderer<'a> {
    Renderer::new(cat, &net.defaults.language, net.defaults.timezone)
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
            } => {
                let Some(inc) = incident(id) else { continue };
                let r = renderer(net, cat, room);
                let key = match kind {
                    AckKind::New => "ack.new",
                    AckKind::Merged => "ack.merged",
                    AckKind::SameReporter => "ack.same_reporter",
                    AckKind::Confirmed => "ack.confirmed",
                    AckKind::Update => "ack.update",
                };
                let args = [
                    ("id", inc.id.as_str()),
                    ("place", &inc.label),
                    ("count", &inc.reporter_count().to_string()),
                    ("needed", &needed.to_string()),
                    ("rooms", &rooms.to_string()),
                ];
                out.push(Effect::Reply {
                    room: room.to_string(),
                    in_reply_to: in_reply_to.to_string(),
                    message: r.notice(key, &args, Some(inc.tag())),
                });
            }
            Decision::TooOld {
                room,
                in_reply_to,
                place,
                window_min,
            } => {
                let r = renderer(net, cat, room);
                out.push(Effect::Reply {
                    room: room.to_string(),
                    in_reply_to: in_reply_to.to_string(),
                    message: r.notice(
                        "ack.old",
                        &[("place", place), ("window", &window_min.to_string())],
                        None,
                    ),
                });
            }
            Decision::Rejected {
                room,
                in_reply_to,
                error,
            } => {
                let r = renderer(net, cat, room);
                let args = error_args(error, r.example());
                let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
                out.push(Effect::Reply {
                    room: room.to_string(),
                    in_reply_to: in_reply_to.to_string(),
                    message: r.notice(error.catalog_key(), &a, None),
                });
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
                out.push(Effect::Reply {
                    room: room.to_string(),
                    in_reply_to: in_reply_to.to_string(),
                    message,
                });
            }
            Decision::Undecryptable { room, in_reply_to } => {
                let r = renderer(net, cat, room);
                out.push(Effect::Reply {
                    room: room.to_string(),
                    in_reply_to: in_reply_to.to_string(),
                    message: r.notice("room.undecryptable", &[], None),
                });
            }
            Decision::NotInNetwork { room, in_reply_to } => out.push(Effect::Reply {
                room: room.to_string(),
                in_reply_to: in_reply_to.to_string(),
                message: coordination(net, cat).notice("room.not_in_network", &[], None),
            }),
            Decision::Relay { room, incident: id } => {
                let (Some(inc), Some(to)) = (incident(id), net.neighborhood_of_room(room)) else {
                    continue;
                };
                let r = Renderer::for_neighborhood(cat, to);
                let loc = r.alert_location(inc);
                out.push(Effect::Relay {
                    room: room.to_string(),
                    message: r.alert(inc, to, &to.gazetteer),
                });
                out.push(Effect::Location {
                    room: room.to_string(),
                    incident: inc.tag(),
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
                message.mentions_room = false;
                out.push(Effect::Edit {
                    room: room.to_string(),
                    message,
                });
                let (key, hours) = match update {
                    UpdateKind::Reports => ("update.reports", String::new()),
                    UpdateKind::Expired => {
                        let h = net.settings(&inc.neighborhood).expiry_hours;
                        ("update.expired", h.to_string())
                    }
                };
                let args = [
                    ("id", inc.id.as_str()),
                    ("count", &inc.reporter_count().to_string()),
                    ("last", &r.time(inc.last_seen)),
                    ("hours", &hours),
                ];
                out.push(Effect::ThreadReply {
                    room: room.to_string(),
                    message: r.notice(key, &args, Some(inc.tag())),
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
                let status = r.plain(inc.status.catalog_key(), &[]);
                let message = match kind {
                    CoordinationKind::Incident => r.notice(
                        "coord.incident",
                        &[
                            ("id", inc.id.as_str()),
                            ("status", &status),
                            ("neighborhood", hood),
                            ("place", &inc.label),
                            ("count", &inc.reporter_count().to_string()),
                            ("needed", &needed.to_string()),
                        ],
                        Some(inc.tag()),
                    ),
                    CoordinationKind::Relayed { rooms } => r.notice(
                        "coord.relayed",
                        &[("id", inc.id.as_str()), ("rooms", &rooms.to_string())],
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
    out
}
