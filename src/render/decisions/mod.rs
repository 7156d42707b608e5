//! Wording the engine's decisions: each [`Decision`] becomes one or more [`Effect`]s in
//! the receiving room's language.
//!
//! This file only dispatches, one arm per decision, into the file of its family of
//! wording (`reports`, `verify`, `alerts`, `coordination`, `room`, `settings`, `audit`,
//! `links`, `verifiers`, `places`, `stats`); each function is named for its decision.
//! A drill is marked here, once, after its messages are worded.

mod alerts;
mod audit;
mod coordination;
mod links;
mod places;
mod reports;
mod room;
mod settings;
mod stats;
mod undelivered;
mod verifiers;
mod verify;

use crate::config::Network;
use crate::decision::Decision;
use crate::effect::{Effect, MsgType, OutgoingMessage};
use crate::model::{Incident, IncidentId};

use super::{Catalogs, Renderer};

pub use undelivered::{Undelivered, undelivered_notice};

/// What every family of wording reads (the network, the catalogs, each incident in its
/// current state) and the effects it writes, in order.
struct Cx<'a, 'i> {
    net: &'a Network,
    cat: &'a Catalogs,
    incident: &'a dyn Fn(&IncidentId) -> Option<&'i Incident>,
    out: Vec<Effect>,
}

impl<'a, 'i> Cx<'a, 'i> {
    /// The incident `id` in its current state; `None` when it is not found.
    fn incident(&self, id: &IncidentId) -> Option<&'i Incident> {
        (self.incident)(id)
    }

    /// A renderer in the language and zone of `room`'s neighborhood (the network's for
    /// any other room).
    fn renderer(&self, room: &str) -> Renderer<'a> {
        match self.net.neighborhood_of_room(room) {
            Some(n) => Renderer::for_neighborhood(self.cat, n),
            None => self.coordination(),
        }
    }

    /// A renderer in the network's language and zone, the coordination room's.
    fn coordination(&self) -> Renderer<'a> {
        coordination_renderer(self.net, self.cat)
    }

    /// A neighborhood's name (its id if it is no longer in the network).
    fn hood_name<'s>(&self, id: &'s str) -> &'s str
    where
        'a: 's,
    {
        self.net.neighborhood(id).map_or(id, |n| n.name.as_str())
    }

    /// Writes an effect.
    fn push(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    /// Writes a quiet answer to the event `in_reply_to` in `room`.
    fn reply(&mut self, room: &str, in_reply_to: &str, message: OutgoingMessage) {
        self.push(Effect::Reply {
            room: room.to_owned(),
            in_reply_to: in_reply_to.to_owned(),
            message,
        });
    }

    /// Writes a notice in `room`, answering nothing.
    fn notice(&mut self, room: &str, message: OutgoingMessage) {
        self.push(Effect::Notice {
            room: room.to_string(),
            message,
        });
    }
}

/// A renderer in the network's language and zone, the coordination room's.
fn coordination_renderer<'a>(net: &'a Network, cat: &'a Catalogs) -> Renderer<'a> {
    Renderer::new(cat, &net.defaults.language, net.defaults.timezone)
}

/// Words `decisions`. `incident` looks incidents up in their current state; a decision
/// about an incident that is not found is skipped.
pub fn render_decisions<'i>(
    net: &Network,
    cat: &Catalogs,
    incident: impl Fn(&IncidentId) -> Option<&'i Incident>,
    decisions: &[Decision],
) -> Vec<Effect> {
    let mut cx = Cx {
        net,
        cat,
        incident: &incident,
        out: Vec::with_capacity(decisions.len() + 2),
    };
    for d in decisions {
        word(&mut cx, d);
    }
    // A drill says so first in every message about it, and nothing about it notifies.
    let mut out = std::mem::take(&mut cx.out);
    for e in &mut out {
        let drill = e.incident().and_then(&incident).is_some_and(|i| i.drill);
        if drill {
            let prefix = cx.renderer(e.room()).plain("alert.drill_prefix", &[]);
            mark_drill(e, &prefix);
        }
    }
    out
}

/// Words an answer to a report (or to a message taken for one).
fn word_answer_to_report(cx: &mut Cx<'_, '_>, d: &Decision) {
    match d {
        Decision::Ack {
            room,
            in_reply_to,
            incident,
            kind,
            rooms,
            needed,
            note,
        } => reports::ack(
            cx,
            room,
            in_reply_to,
            incident,
            *kind,
            *rooms,
            *needed,
            *note,
        ),
        Decision::Rejected {
            room,
            in_reply_to,
            error,
        } => reports::rejected(cx, room, in_reply_to, error),
        Decision::Unresolved {
            room,
            in_reply_to,
            query,
            suggestions,
        } => reports::unresolved(cx, room, in_reply_to, query, suggestions),
        Decision::TooOld {
            room,
            in_reply_to,
            place,
            window_min,
        } => reports::too_old(cx, room, in_reply_to, place, *window_min),
        Decision::Undecryptable { room, in_reply_to } => {
            reports::undecryptable(cx, room, in_reply_to)
        }
        Decision::NotInNetwork { room, in_reply_to } => {
            reports::not_in_network(cx, room, in_reply_to)
        }
        Decision::SlowDown { room, in_reply_to } => reports::slow_down(cx, room, in_reply_to),
        _ => {}
    }
}

/// Words one decision, through the file of its family.
fn word(cx: &mut Cx<'_, '_>, d: &Decision) {
    match d {
        Decision::Ack { .. }
        | Decision::Rejected { .. }
        | Decision::Unresolved { .. }
        | Decision::TooOld { .. }
        | Decision::Undecryptable { .. }
        | Decision::NotInNetwork { .. }
        | Decision::SlowDown { .. } => word_answer_to_report(cx, d),
        Decision::ActionDone {
            room,
            in_reply_to,
            incident,
            rooms,
        } => verify::action_done(cx, room, in_reply_to, incident, *rooms),
        Decision::ActionHere {
            room,
            in_reply_to,
            incident,
            action,
            rooms,
        } => verify::action_here(cx, room, in_reply_to, incident, *action, *rooms),
        Decision::OriginAsked { room, incident, .. } => verify::origin_asked(cx, room, incident, d),
        Decision::ActionRefused {
            room,
            in_reply_to,
            action,
        } => verify::action_refused(cx, room, in_reply_to, *action),
        Decision::ActionUnchanged {
            room,
            in_reply_to,
            incident,
        } => verify::action_unchanged(cx, room, in_reply_to, incident),
        Decision::UnknownIncident {
            room,
            in_reply_to,
            given,
            open,
        } => verify::unknown_incident(cx, room, in_reply_to, given, open),
        Decision::Relay { room, incident } => alerts::relay(cx, room, incident),
        Decision::UpdateAlert {
            room,
            incident,
            update,
        } => alerts::update_alert(cx, room, incident, update),
        Decision::Coordination {
            room,
            incident,
            kind,
            needed,
        } => coordination::coordination(cx, room, incident, kind, *needed),
        Decision::Help { room, in_reply_to } => room::help(cx, room, in_reply_to),
        Decision::Status {
            room,
            in_reply_to,
            open,
            confirmed,
        } => room::status(cx, room, in_reply_to, *open, *confirmed),
        Decision::Incidents {
            room,
            in_reply_to,
            open,
            more,
        } => room::incidents(cx, room, in_reply_to, open, *more),
        Decision::DrillInCoordination { room, in_reply_to } => {
            room::drill_in_coordination(cx, room, in_reply_to)
        }
        Decision::AdminOnly { room, in_reply_to } => room::admin_only(cx, room, in_reply_to),
        Decision::UnknownCommand {
            room,
            in_reply_to,
            given,
        } => room::unknown_command(cx, room, in_reply_to, given),
        Decision::Settings {
            room,
            in_reply_to,
            key,
        } => settings::settings(cx, room, in_reply_to, key.as_deref()),
        Decision::Setting {
            room,
            in_reply_to,
            key,
            outcome,
        } => settings::setting(cx, room, in_reply_to, key, outcome),
        Decision::AreaShow { room, in_reply_to } => settings::area_show(cx, room, in_reply_to),
        Decision::Audit {
            room,
            by,
            in_room,
            change,
        } => audit::audit(cx, room, by, in_room, change),
        Decision::LinkReply {
            room,
            in_reply_to,
            outcome,
        } => links::link_reply(cx, room, in_reply_to, outcome),
        Decision::LinkNotice { room, link } => links::link_notice(cx, room, link),
        Decision::NetworkReload { room, outcome } => {
            coordination::network_reload(cx, room, outcome)
        }
        Decision::VerifiersReply {
            room,
            in_reply_to,
            outcome,
        } => verifiers::verifiers_reply(cx, room, in_reply_to, outcome),
        Decision::PlacesReply {
            room,
            in_reply_to,
            outcome,
        } => places::places_reply(cx, room, in_reply_to, outcome),
        Decision::Stats {
            room,
            in_reply_to,
            hours,
            summaries,
        } => stats::stats(cx, room, in_reply_to, *hours, summaries),
        Decision::StatsUsage {
            room,
            in_reply_to,
            given,
        } => stats::stats_usage(cx, room, in_reply_to, given),
        Decision::Fade { room, incident } => cx.out.push(Effect::Fade {
            room: room.to_string(),
            incident: *incident,
        }),
    }
}

/// Puts `prefix` before a drill message's text and makes it quiet.
fn mark_drill(e: &mut Effect, prefix: &str) {
    let escaped = html_escape::encode_safe(prefix);
    match e {
        Effect::Location { body, .. } => *body = format!("{prefix}{body}"),
        Effect::Fade { .. } => {}
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
