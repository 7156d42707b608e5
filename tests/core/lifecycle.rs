//! The verifier loop (PRODUCT.md §3, §4): every status × every action × every role, the
//! wording of the alert edits in English and Spanish, reactions, retractions, fake-report
//! resistance, and properties over random sequences.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use neighborwatch::effect::Effect;
use neighborwatch::effect::MsgType;
use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
use neighborwatch::model::{IncidentId, ReporterKey, Status};
use neighborwatch::render::Catalogs;
use neighborwatch::store::{MemoryStore, Store};
use proptest::prelude::*;

use crate::support::{NETWORK, sent_at};

const HOOVER: &str = "!hooverfoster:oakland.example";
const CLAWSON: &str = "!clawson:eastbay.example";
const YARDS: &str = "!backoftheyards:chicago.example";
const COORD: &str = "!coordination:oakland.example";
/// Listed for Hoover-Foster only.
const HOOD_VERIFIER: &str = "@ana.verifier:oakland.example";
/// Listed in `[defaults]`: a verifier everywhere.
const NET_VERIFIER: &str = "@lupe.verifier:oakland.example";

fn engine() -> Engine<MemoryStore> {
    crate::support::engine(b"lifecycle-test-key-0123456789")
}

fn text(
    event: &str,
    room: &str,
    sender: &str,
    power: i64,
    ts: DateTime<Utc>,
    body: &str,
) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: room.into(),
        sender: sender.into(),
        ts,
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Member { power, since: None },
    }
}

fn reaction(
    event: &str,
    room: &str,
    sender: &str,
    power: i64,
    to: &str,
    key: &str,
) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: room.into(),
        sender: sender.into(),
        ts: sent_at() + Duration::minutes(5),
        content: Content::Reaction {
            key: key.into(),
            relates_to: to.into(),
        },
        member: Member { power, since: None },
    }
}

/// One language's case: a room, two reports of the same sighting there, and the words
/// a reader must see.
struct Case {
    room: &'static str,
    reports: [&'static str; 2],
    false_alarm: &'static str,
    all_clear: &'static str,
    by_verifier: &'static str,
    refused: &'static str,
    unchanged: &'static str,
}

const ENGLISH: Case = Case {
    room: HOOVER,
    reports: [
        "!r 2 unmarked black SUVs, agents in vests at 31st & Market",
        "!r agents at 31st and Market St",
    ],
    false_alarm: "FALSE ALARM",
    all_clear: "ALL CLEAR",
    by_verifier: "confirmed by a verifier",
    refused: "Only verifiers and room moderators",
    unchanged: "already",
};

const SPANISH: Case = Case {
    room: YARDS,
    reports: [
        "!aviso dos camionetas blancas en 47th y Ashland",
        "!aviso agentes en 47th & Ashland",
    ],
    false_alarm: "FALSA ALARMA",
    all_clear: "TODO DESPEJADO",
    by_verifier: "confirmado por un verificador",
    refused: "Solo los verificadores y moderadores",
    unchanged: "ya está",
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Neighbor,
    Verifier,
    Moderator,
}

impl Who {
    fn sender(self) -> (&'static str, i64) {
        match self {
            Who::Neighbor => ("@neighbor:oakland.example", 0),
            Who::Verifier => (NET_VERIFIER, 0),
            Who::Moderator => ("@moderator:oakland.example", 50),
        }
    }
}

/// An engine with one incident of `case` in `status`, and its ID.
fn incident_in(case: &Case, status: Status) -> (Engine<MemoryStore>, IncidentId) {
    let mut e = engine();
    let t = sent_at();
    let first = e
        .decide(
            &text("$r1", case.room, "@maria:x", 0, t, case.reports[0]),
            t,
        )
        .unwrap();
    let id = first
        .iter()
        .find_map(|d| match d {
            neighborwatch::decision::Decision::Ack { incident, .. } => Some(*incident),
            _ => None,
        })
        .expect("an acknowledgment");
    if status == Status::Unverified {
        return (e, id);
    }
    let t2 = t + Duration::minutes(1);
    e.handle(
        &text("$r2", case.room, "@dlee:x", 0, t2, case.reports[1]),
        t2,
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    let t3 = t + Duration::minutes(2);
    match status {
        Status::Confirmed => {}
        Status::FalseAlarm | Status::Resolved => {
            let cmd = if status == Status::FalseAlarm {
                "!false"
            } else {
                "!clear"
            };
            e.handle(
                &text(
                    "$setup",
                    case.room,
                    "@moderator:oakland.example",
                    50,
                    t3,
                    &format!("{cmd} {id}"),
                ),
                t3,
            )
            .unwrap();
        }
        Status::Expired => {
            e.tick(t + Duration::hours(5)).unwrap();
        }
        Status::Unverified => unreachable!(),
    }
    assert_eq!(e.incident(&id).unwrap().status, status);
    (e, id)
}

/// What the table expects, written out by hand from PRODUCT.md §3 and the issue.
fn expected(status: Status, command: &str, who: Who) -> Option<Status> {
    use Status::*;
    if who == Who::Neighbor {
        return None;
    }
    match (command, status) {
        ("!confirm", Unverified | FalseAlarm) => Some(Confirmed),
        ("!false", Unverified | Confirmed | Resolved | Expired) => Some(FalseAlarm),
        ("!clear", Unverified | Confirmed | Expired) => Some(Resolved),
        _ => None,
    }
}

fn edits(effects: &[Effect]) -> Vec<(&str, &str)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Edit { room, message } => Some((room.as_str(), message.body.as_str())),
            _ => None,
        })
        .collect()
}

fn check_table(case: &Case) {
    let statuses = [
        Status::Unverified,
        Status::Confirmed,
        Status::FalseAlarm,
        Status::Resolved,
        Status::Expired,
    ];
    for status in statuses {
        for command in ["!confirm", "!false", "!clear"] {
            for who in [Who::Neighbor, Who::Verifier, Who::Moderator] {
                let ctx = format!("{status:?} × {command} × {who:?} in {}", case.room);
                let (mut e, id) = incident_in(case, status);
                let before = e.incident(&id).unwrap().clone();
                let (sender, power) = who.sender();
                let t = sent_at() + Duration::minutes(3);
                // IDs are case-insensitive.
                let body = format!(
                    "{command} {} because of testing",
                    id.as_str().to_lowercase()
                );
                let effects = e
                    .handle(&text("$act", case.room, sender, power, t, &body), t)
                    .unwrap();
                let after = e.incident(&id).unwrap();
                let replies: Vec<&str> = effects
                    .iter()
                    .filter_map(|x| match x {
                        Effect::Reply {
                            in_reply_to,
                            message,
                            ..
                        } if in_reply_to == "$act" => {
                            assert_eq!(
                                message.msgtype,
                                MsgType::Notice,
                                "{ctx}: replies are quiet"
                            );
                            Some(message.body.as_str())
                        }
                        _ => None,
                    })
                    .collect();
                assert_eq!(
                    replies.len(),
                    1,
                    "{ctx}: one reply to the command: {effects:#?}"
                );
                match expected(status, command, who) {
                    None => {
                        assert_eq!(after, &before, "{ctx}: nothing changes");
                        assert_eq!(effects.len(), 1, "{ctx}: only the reply: {effects:#?}");
                        let want = if who == Who::Neighbor {
                            case.refused
                        } else {
                            case.unchanged
                        };
                        assert!(replies[0].contains(want), "{ctx}: {}", replies[0]);
                    }
                    Some(to) => {
                        assert_eq!(after.status, to, "{ctx}");
                        assert_eq!(after.version, before.version + 1, "{ctx}: version bumped");
                        // Every room alerted before is edited, with one notifying reply in
                        // its thread.
                        let edited = edits(&effects);
                        let rooms: Vec<&str> = before.relayed_to.iter().map(|r| &**r).collect();
                        assert_eq!(
                            edited.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
                            rooms,
                            "{ctx}: every alert edited"
                        );
                        for (_, body) in &edited {
                            let headline = body.lines().next().unwrap();
                            match to {
                                Status::FalseAlarm => {
                                    assert!(headline.contains(case.false_alarm), "{ctx}: {body}");
                                    assert!(
                                        !body.to_lowercase().contains("suv")
                                            && !body.contains("camionetas"),
                                        "{ctx}: the old report is no longer shown as current: {body}"
                                    );
                                }
                                Status::Resolved => {
                                    assert!(headline.contains(case.all_clear), "{ctx}: {body}")
                                }
                                Status::Confirmed => {
                                    assert!(body.contains(case.by_verifier), "{ctx}: {body}")
                                }
                                _ => unreachable!(),
                            }
                            assert!(
                                !body.contains("maria")
                                    && !body.contains("moderator")
                                    && !body.contains("verifier:"),
                                "{ctx}: names nobody: {body}"
                            );
                        }
                        let thread: Vec<_> = effects
                            .iter()
                            .filter_map(|x| match x {
                                Effect::ThreadReply { room, message } => {
                                    Some((room.as_str(), message))
                                }
                                _ => None,
                            })
                            .collect();
                        assert_eq!(
                            thread.len(),
                            rooms.len(),
                            "{ctx}: one thread reply per alert"
                        );
                        for (_, m) in &thread {
                            assert_eq!(m.msgtype, MsgType::Text, "{ctx}: a status change notifies");
                            if to == Status::FalseAlarm {
                                assert!(
                                    m.body.contains("because of testing"),
                                    "{ctx}: the reason: {}",
                                    m.body
                                );
                            }
                        }
                        if to == Status::Confirmed && before.relayed_to.is_empty() {
                            assert!(
                                effects.iter().any(
                                    |x| matches!(x, Effect::Relay { room, .. } if room == case.room)
                                ),
                                "{ctx}: a newly confirmed incident is relayed"
                            );
                        }
                        assert!(
                            effects
                                .iter()
                                .any(|x| matches!(x, Effect::Notice { room, .. } if room == COORD)),
                            "{ctx}: the coordination room is told"
                        );
                        // No alert is ever relayed twice to one room.
                        let relays: Vec<&str> = effects
                            .iter()
                            .filter_map(|x| match x {
                                Effect::Relay { room, .. } => Some(room.as_str()),
                                _ => None,
                            })
                            .collect();
                        assert!(
                            relays.iter().all(|r| !rooms.contains(r)),
                            "{ctx}: {relays:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_status_action_and_role_in_english() {
    check_table(&ENGLISH);
}

#[test]
fn every_status_action_and_role_in_spanish() {
    check_table(&SPANISH);
}

#[test]
fn a_verifier_of_another_neighborhood_may_not_act_until_its_room_got_the_alert() {
    // Ana verifies Hoover-Foster only: an incident of Back of the Yards is not hers.
    let (mut e, id) = incident_in(&SPANISH, Status::Unverified);
    let t = sent_at() + Duration::minutes(3);
    let out = e
        .handle(
            &text(
                "$c",
                YARDS,
                HOOD_VERIFIER,
                0,
                t,
                &format!("!confirmar {id}"),
            ),
            t,
        )
        .unwrap();
    assert_eq!(
        e.incident(&id).unwrap().status,
        Status::Unverified,
        "{out:#?}"
    );
    // In her own neighborhood she confirms, alone, at once.
    let (mut e, id) = incident_in(&ENGLISH, Status::Unverified);
    let out = e
        .handle(
            &text("$c", HOOVER, HOOD_VERIFIER, 0, t, &format!("!confirm {id}")),
            t,
        )
        .unwrap();
    let inc = e.incident(&id).unwrap();
    assert_eq!(inc.status, Status::Confirmed);
    assert_eq!(
        inc.reporter_count(),
        1,
        "one reporter, confirmed by a verifier"
    );
    assert!(
        out.iter()
            .any(|x| matches!(x, Effect::Relay { room, .. } if room == CLAWSON)),
        "relayed to the room nearby: {out:#?}"
    );
    // Now Clawson received the alert: a Clawson moderator's false alarm holds in Clawson
    // only (tests/core/authority.rs); Hoover-Foster's verifier decides for everyone.
    let t = t + Duration::minutes(1);
    e.handle(
        &text(
            "$f",
            CLAWSON,
            "@carol:eastbay.example",
            100,
            t,
            &format!("!false {id}"),
        ),
        t,
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    e.handle(
        &text("$f2", HOOVER, HOOD_VERIFIER, 0, t, &format!("!false {id}")),
        t,
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::FalseAlarm);
}

#[test]
fn a_verifiers_own_report_confirms_at_once_and_says_so() {
    let mut e = engine();
    let t = sent_at();
    let out = e
        .handle(
            &text(
                "$v",
                HOOVER,
                HOOD_VERIFIER,
                0,
                t,
                "!r agents at 31st & Market",
            ),
            t,
        )
        .unwrap();
    let inc = e.incidents().next().unwrap();
    assert_eq!(inc.status, Status::Confirmed);
    assert_eq!(
        inc.confirmed_by,
        Some(neighborwatch::model::ConfirmedBy::Verifier)
    );
    assert_eq!(
        inc.confirmed_at,
        Some(t),
        "time to confirmation is recorded"
    );
    let alert = out
        .iter()
        .find_map(|x| match x {
            Effect::Relay { room, message, .. } if room == HOOVER => Some(message),
            _ => None,
        })
        .expect("relayed");
    assert!(
        alert.body.contains("confirmed by a verifier"),
        "{}",
        alert.body
    );
    assert!(!alert.body.contains("ana"), "{}", alert.body);
}

#[test]
fn reactions_on_any_bot_message_act_for_verifiers_and_do_nothing_for_neighbors() {
    let (mut e, id) = incident_in(&ENGLISH, Status::Unverified);
    let t = sent_at() + Duration::minutes(1);
    let out = e
        .handle(&text("$r2", HOOVER, "@dlee:x", 0, t, ENGLISH.reports[1]), t)
        .unwrap();
    // The shell records the event ID of every message it sends.
    for (i, effect) in out.iter().enumerate() {
        e.mark_sent(effect, &format!("$bot{i}")).unwrap();
    }
    let (alert_i, _) = out
        .iter()
        .enumerate()
        .find(|(_, x)| matches!(x, Effect::Relay { room, .. } if room == CLAWSON))
        .expect("alert in Clawson");
    let (ack_i, _) = out
        .iter()
        .enumerate()
        .find(|(_, x)| matches!(x, Effect::Reply { in_reply_to, .. } if in_reply_to == "$r2"))
        .expect("acknowledgment");
    let alert = format!("$bot{alert_i}");
    let ack = format!("$bot{ack_i}");
    // A neighbor's ❌: nothing at all, not even a reply.
    let n = e
        .handle(
            &reaction("$x1", CLAWSON, "@carol:eastbay.example", 0, &alert, "❌"),
            t,
        )
        .unwrap();
    assert!(n.is_empty(), "{n:#?}");
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    // Other emoji mean nothing.
    let m = e
        .handle(
            &reaction("$x2", CLAWSON, "@carol:eastbay.example", 100, &alert, "👍"),
            t,
        )
        .unwrap();
    assert!(m.is_empty());
    // A moderator of the remote room reacts ❌ to the alert there: Clawson is not the
    // incident's home, so only Clawson's alert shows it (issue 24, tests/core/authority.rs).
    let f = e
        .handle(
            &reaction(
                "$x3",
                CLAWSON,
                "@carol:eastbay.example",
                100,
                &alert,
                "❌\u{fe0f}",
            ),
            t,
        )
        .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    let edited = edits(&f);
    assert_eq!(edited.len(), 1, "{edited:?}");
    assert_eq!(edited[0].0, CLAWSON);
    assert!(
        edited[0]
            .1
            .contains("Marked false alarm here by a moderator of Clawson"),
        "{}",
        edited[0].1
    );
    assert!(
        !f.iter().any(|x| matches!(x, Effect::Reply { .. })),
        "reactions get no reply"
    );
    // The same reaction event again changes nothing (exactly once).
    assert!(
        e.handle(
            &reaction("$x3", CLAWSON, "@carol:eastbay.example", 100, &alert, "❌"),
            t
        )
        .unwrap()
        .is_empty()
    );
    // A verifier's ✅ on the acknowledgment keeps it confirmed everywhere: Clawson's
    // alert is confirmed again.
    let c = e
        .handle(&reaction("$x4", HOOVER, NET_VERIFIER, 0, &ack, "✅"), t)
        .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    let edited = edits(&c);
    assert!(
        edited.len() == 1 && edited[0].0 == CLAWSON && edited[0].1.contains("CONFIRMED"),
        "{edited:?}"
    );
    assert!(
        !c.iter().any(|x| matches!(x, Effect::Relay { .. })),
        "no second top-level alert: {c:#?}"
    );
    // 🟢 on the alert of the room it is made in: all clear. (The same 🟢 made in
    // Hoover-Foster on Clawson's alert does nothing: issue 24, tests/core/scoped.rs.)
    let (hoover_i, _) = out
        .iter()
        .enumerate()
        .find(|(_, x)| matches!(x, Effect::Relay { room, .. } if room == HOOVER))
        .expect("alert in Hoover-Foster");
    let hoover_alert = format!("$bot{hoover_i}");
    e.handle(&reaction("$x5", HOOVER, "@alice:x", 50, &alert, "🟢"), t)
        .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    e.handle(
        &reaction("$x6", HOOVER, "@alice:x", 50, &hoover_alert, "🟢"),
        t,
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Resolved);
}

#[test]
fn an_unknown_id_gets_the_rooms_open_incidents_and_a_neighbors_false_is_refused() {
    let (mut e, id) = incident_in(&ENGLISH, Status::Confirmed);
    let t = sent_at() + Duration::minutes(4);
    let out = e
        .handle(&text("$u", HOOVER, "@x:y", 50, t, "!false ZZZZ"), t)
        .unwrap();
    let [Effect::Reply { message, .. }] = &out[..] else {
        panic!("{out:#?}")
    };
    assert!(
        message.body.contains("ZZZZ") && message.body.contains(id.as_str()),
        "{}",
        message.body
    );
    assert!(message.body.contains("31st & Market"), "{}", message.body);
    // In a room the incident never reached, its ID is unknown too.
    let out = e
        .handle(
            &text("$u2", YARDS, "@x:y", 50, t, &format!("!falso {id}")),
            t,
        )
        .unwrap();
    let [Effect::Reply { message, .. }] = &out[..] else {
        panic!("{out:#?}")
    };
    assert!(
        message.body.contains("no tiene incidentes abiertos"),
        "{}",
        message.body
    );
    assert_eq!(e.incident(&id).unwrap().status, Status::Confirmed);
    // The coordination room sees every incident.
    e.handle(
        &text(
            "$c",
            COORD,
            "@organizer:oakland.example",
            100,
            t,
            &format!("!clear {id}"),
        ),
        t,
    )
    .unwrap();
    assert_eq!(e.incident(&id).unwrap().status, Status::Resolved);
}

#[test]
fn later_reports_at_a_false_alarm_open_a_new_incident_that_says_so() {
    let (mut e, id) = incident_in(&ENGLISH, Status::FalseAlarm);
    let t = sent_at() + Duration::minutes(6);
    let out = e
        .handle(
            &text(
                "$late1",
                HOOVER,
                "@kim:x",
                0,
                t,
                "!r agents at 31st & Market",
            ),
            t,
        )
        .unwrap();
    let new = e.incidents().find(|i| i.id != id).expect("a new incident");
    assert_eq!(
        e.incident(&id).unwrap().status,
        Status::FalseAlarm,
        "not reopened"
    );
    assert!(new.after_false_alarm.is_some());
    let [Effect::Reply { message, .. }, ..] = &out[..] else {
        panic!("{out:#?}")
    };
    // The false alarm was marked at 08:08 Oakland time (incident_in, 2 minutes in).
    assert!(
        message.body.contains("marked a false alarm at 8:08 AM"),
        "{}",
        message.body
    );
    let t = t + Duration::minutes(1);
    let out = e
        .handle(
            &text(
                "$late2",
                HOOVER,
                "@lee:x",
                0,
                t,
                "!r still agents at 31st & Market",
            ),
            t,
        )
        .unwrap();
    let alert = out
        .iter()
        .find_map(|x| match x {
            Effect::Relay { room, message, .. } if room == HOOVER => Some(message),
            _ => None,
        })
        .expect("the new incident is confirmed by two new reporters");
    assert!(
        alert.body.contains("marked a false alarm at 8:08 AM"),
        "{}",
        alert.body
    );
}

fn redaction(event: &str, room: &str, redacts: &str) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: room.into(),
        sender: "@maria:x".into(),
        ts: sent_at() + Duration::minutes(5),
        content: Content::Redaction {
            redacts: redacts.into(),
            may_redact_others: false,
        },
        member: Member::default(),
    }
}

#[test]
fn a_withdrawn_report_leaves_its_incident_and_its_text_is_purged_from_sled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sled");
    let key = || ReporterKey::new(b"lifecycle-test-key-0123456789");
    let t = sent_at();
    let mut e = Engine::open(
        NETWORK.clone(),
        crate::support::open_sled(&path),
        key(),
        Catalogs::builtin(),
    )
    .unwrap();
    e.handle(
        &text(
            "$a",
            HOOVER,
            "@maria:x",
            0,
            t,
            "!r SECRETWORD agents at 31st & Market",
        ),
        t,
    )
    .unwrap();
    e.handle(
        &text("$b", HOOVER, "@dlee:x", 0, t, "!r agents at 31st & Market"),
        t,
    )
    .unwrap();
    e.handle(
        &text("$c", HOOVER, "@kim:x", 0, t, "!r agents at 31st & Market"),
        t,
    )
    .unwrap();
    let id = e.incidents().next().unwrap().id;
    assert_eq!(e.incident(&id).unwrap().reporter_count(), 3);
    let out = e
        .handle(&redaction("$red", HOOVER, "$a"), t + Duration::minutes(5))
        .unwrap();
    let inc = e.incident(&id).unwrap();
    assert_eq!(inc.reporter_count(), 2);
    assert_eq!(
        inc.status,
        Status::Confirmed,
        "a confirmed incident keeps its status"
    );
    assert!(
        inc.reports
            .iter()
            .all(|r| r.event_id.as_deref() != Some("$a"))
    );
    let edited = edits(&out);
    assert!(
        !edited.is_empty() && edited.iter().all(|(_, b)| !b.contains("SECRETWORD")),
        "{out:#?}"
    );
    assert!(
        edited
            .iter()
            .all(|(_, b)| b.contains("Reports: 2 independent")),
        "{edited:?}"
    );
    // Gone from the store, after reopening too.
    drop(e);
    let store = crate::support::open_sled(&path);
    let snap = store.load().unwrap();
    let stored = snap.incidents.iter().find(|i| i.id == id).unwrap();
    assert_eq!(stored.reports.len(), 2);
    assert!(
        stored
            .reports
            .iter()
            .all(|r| r.text.as_deref().is_none_or(|t| !t.contains("SECRETWORD")))
    );
    assert!(!format!("{snap:?}").contains("SECRETWORD"));
}

#[test]
fn an_unconfirmed_incident_whose_only_report_is_withdrawn_closes_quietly() {
    let (mut e, id) = incident_in(&ENGLISH, Status::Unverified);
    let out = e
        .handle(
            &redaction("$red", HOOVER, "$r1"),
            sent_at() + Duration::minutes(1),
        )
        .unwrap();
    assert!(out.is_empty(), "quiet: {out:#?}");
    assert!(e.incident(&id).is_none());
    assert!(
        e.store().load().unwrap().incidents.is_empty(),
        "deleted from the store"
    );
    // A redaction of anything else is ignored.
    assert!(
        e.handle(&redaction("$red2", HOOVER, "$chat"), sent_at())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn fresh_accounts_and_floods_do_not_confirm_but_a_verifier_still_can() {
    // Hoover-Foster wants a day of membership before a report counts.
    let text_cfg = std::fs::read_to_string(crate::support::example_path())
        .unwrap()
        .replace("min_member_hours = 0 ", "min_member_hours = 24 ");
    let net = std::sync::Arc::new(
        neighborwatch::config::Network::parse(&text_cfg, &crate::support::example_path()).unwrap(),
    );
    let mut e = Engine::open(
        net,
        MemoryStore::new(),
        ReporterKey::new(b"k-0123456789abcdef"),
        Catalogs::builtin(),
    )
    .unwrap();
    let t = sent_at();
    let young = |ev: &str, who: &str| {
        let mut m = text(ev, HOOVER, who, 0, t, "!r agents at 31st & Market");
        m.member.since = Some(t - Duration::hours(2));
        m
    };
    let a = e.handle(&young("$t1", "@throwaway1:x"), t).unwrap();
    e.handle(&young("$t2", "@throwaway2:x"), t).unwrap();
    let inc = e.incidents().next().unwrap().clone();
    assert_eq!(
        inc.status,
        Status::Unverified,
        "two throwaway accounts raise no alert"
    );
    assert_eq!(inc.reports.len(), 2, "both recorded");
    let [Effect::Reply { message, .. }, ..] = &a[..] else {
        panic!("{a:#?}")
    };
    assert!(
        message.body.contains("less than 24 hours"),
        "{}",
        message.body
    );
    // An old member's report counts.
    let mut old = text(
        "$o1",
        HOOVER,
        "@maria:x",
        0,
        t,
        "!r agents at 31st & Market",
    );
    old.member.since = Some(t - Duration::days(30));
    e.handle(&old, t).unwrap();
    assert_eq!(e.incident(&inc.id).unwrap().reporter_count(), 1);
    // A verifier confirms.
    e.handle(
        &text(
            "$v",
            HOOVER,
            HOOD_VERIFIER,
            0,
            t,
            &format!("!confirm {}", inc.id),
        ),
        t,
    )
    .unwrap();
    assert_eq!(e.incident(&inc.id).unwrap().status, Status::Confirmed);

    // Floods: the sixth report in ten minutes is answered once, then quietly recorded.
    let mut e = engine();
    let mut replies = Vec::new();
    for i in 0..8 {
        let ti = t + Duration::seconds(i * 30);
        let out = e
            .handle(
                &text(
                    &format!("$f{i}"),
                    HOOVER,
                    "@flood:x",
                    0,
                    ti,
                    "!r agents at 31st & Market",
                ),
                ti,
            )
            .unwrap();
        replies.push(
            out.iter()
                .filter(|x| matches!(x, Effect::Reply { .. }))
                .count(),
        );
    }
    assert_eq!(replies, [1, 1, 1, 1, 1, 1, 0, 0], "told once when limited");
    let inc = e.incidents().next().unwrap();
    assert_eq!(inc.reports.len(), 8);
    assert_eq!(inc.reporter_count(), 1);
    let limited = e
        .handle(
            &text("$g", HOOVER, "@other:x", 0, t, "!r agents at 31st & Market"),
            t,
        )
        .unwrap();
    assert!(
        limited.iter().any(|x| matches!(x, Effect::Relay { .. })),
        "a second real reporter confirms"
    );
}

/// What one step of a random sequence does.
#[derive(Clone, Debug)]
enum Op {
    /// A neighbor reports near 31st & Market.
    Report { who: u8, north_m: f64 },
    /// A neighbor (power 0, not listed) acts by command on the n-th incident.
    NeighborCommand { cmd: u8, n: usize },
    /// A neighbor reacts to the n-th bot message.
    NeighborReaction { key: u8, n: usize },
    /// A neighbor withdraws the n-th report.
    Withdraw { n: usize },
    /// A moderator marks the n-th incident a false alarm or all clear (never confirms).
    Close { clear: bool, n: usize },
    /// A moderator confirms the n-th incident (only in the second property).
    Confirm { n: usize },
    /// Time passes.
    Wait { minutes: i64 },
}

fn op(with_confirm: bool) -> impl Strategy<Value = Op> {
    let confirm = if with_confirm { 1 } else { 0 };
    prop_oneof![
        6 => (0u8..5, -300.0f64..300.0).prop_map(|(who, north_m)| Op::Report { who, north_m }),
        2 => (0u8..3, 0usize..4).prop_map(|(cmd, n)| Op::NeighborCommand { cmd, n }),
        2 => (0u8..3, 0usize..30).prop_map(|(key, n)| Op::NeighborReaction { key, n }),
        1 => (0usize..10).prop_map(|n| Op::Withdraw { n }),
        2 => (any::<bool>(), 0usize..4).prop_map(|(clear, n)| Op::Close { clear, n }),
        confirm => (0usize..4).prop_map(|n| Op::Confirm { n }),
        1 => (1i64..30).prop_map(|minutes| Op::Wait { minutes }),
    ]
}

/// Runs `ops`; returns every effect with the incidents' statuses after each step.
fn play(ops: &[Op]) -> Vec<(Vec<Effect>, HashMap<IncidentId, Status>)> {
    let mut e = engine();
    let mut t = sent_at();
    let mut sent = 0usize;
    let mut reports = Vec::new();
    let mut steps = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        t += Duration::seconds(20);
        let ids: Vec<IncidentId> = {
            let mut v: Vec<_> = e.incidents().map(|x| x.id).collect();
            v.sort();
            v
        };
        let nth = |n: usize| {
            ids.get(n % ids.len().max(1))
                .map(|x| x.as_str().to_owned())
                .unwrap_or("K7Q2".into())
        };
        let ev = format!("$p{i}");
        let msg = match op {
            Op::Report { who, north_m } => {
                reports.push((ev.clone(), *who));
                let lat = 37.8262 + north_m / 111_320.0;
                text(
                    &ev,
                    HOOVER,
                    &format!("@n{who}:x"),
                    0,
                    t,
                    &format!("!r agents at {lat:.6}, -122.2720"),
                )
            }
            Op::NeighborCommand { cmd, n } => {
                let c = ["!confirm", "!false", "!clear"][*cmd as usize];
                text(&ev, HOOVER, "@n0:x", 0, t, &format!("{c} {}", nth(*n)))
            }
            Op::NeighborReaction { key, n } => {
                let k = ["✅", "❌", "🟢"][*key as usize];
                let mut m = reaction(
                    &ev,
                    HOOVER,
                    "@n1:x",
                    0,
                    &format!("$s{}", n % sent.max(1)),
                    k,
                );
                m.ts = t;
                m
            }
            Op::Withdraw { n } => {
                let Some((r, who)) = reports.get(n % reports.len().max(1)) else {
                    continue;
                };
                // By its reporter: only they (or a moderator) withdraw a report.
                let mut m = redaction(&ev, HOOVER, r);
                m.sender = format!("@n{who}:x");
                m.ts = t;
                m
            }
            Op::Close { clear, n } => {
                let c = if *clear { "!clear" } else { "!false" };
                text(&ev, HOOVER, "@mod:x", 50, t, &format!("{c} {}", nth(*n)))
            }
            Op::Confirm { n } => text(
                &ev,
                HOOVER,
                "@mod:x",
                50,
                t,
                &format!("!confirm {}", nth(*n)),
            ),
            Op::Wait { minutes } => {
                t += Duration::minutes(*minutes);
                let out = e.tick(t).unwrap();
                steps.push((out, e.incidents().map(|x| (x.id, x.status)).collect()));
                continue;
            }
        };
        let mut out = e.tick(msg.ts).unwrap();
        out.extend(e.handle(&msg, msg.ts).unwrap());
        for effect in &out {
            e.mark_sent(effect, &format!("$s{sent}")).unwrap();
            sent += 1;
        }
        steps.push((out, e.incidents().map(|x| (x.id, x.status)).collect()));
    }
    steps
}

fn relays(out: &[Effect]) -> impl Iterator<Item = (IncidentId, &str)> {
    out.iter().filter_map(|x| match x {
        Effect::Relay { room, message, .. } => Some((message.incident.as_ref()?.id, room.as_str())),
        _ => None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Neighbors alone never bring a false alarm or an all-clear back as an alert.
    #[test]
    fn neighbors_alone_never_reopen_a_false_alarm_or_all_clear(ops in prop::collection::vec(op(false), 1..40)) {
        let mut closed: HashMap<IncidentId, Status> = HashMap::new();
        // (Status values are kept for the failure message.)
        for (out, statuses) in play(&ops) {
            for (id, _) in relays(&out) {
                prop_assert!(!closed.contains_key(&id), "{id} relayed again after it was closed");
            }
            for (id, st) in &statuses {
                if closed.contains_key(id) {
                    // A moderator may re-close it (all clear ↔ false alarm), never reopen it.
                    prop_assert!(!st.is_open(), "{} is open again: {:?}", id, st);
                }
                if matches!(st, Status::FalseAlarm | Status::Resolved) {
                    closed.insert(*id, *st);
                }
            }
        }
    }

    /// No sequence, verifiers' confirmations included, relays one incident as two
    /// top-level alerts in one room.
    #[test]
    fn no_incident_is_ever_relayed_twice_to_one_room(ops in prop::collection::vec(op(true), 1..40)) {
        let mut seen = std::collections::HashSet::new();
        for (out, _) in play(&ops) {
            for (id, room) in relays(&out) {
                prop_assert!(seen.insert((id, room.to_owned())), "{id} relayed twice to {room}");
            }
        }
    }
}
