//! The network file read again while the engine runs (issue 26): the new file applies to
//! the next incident, with the values set from rooms kept over it and every incident
//! kept; a refused file changes nothing. The coordination room is told either way.

use std::sync::Arc;

use chrono::Duration;
use neighborwatch::config::Network;
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
use neighborwatch::model::Status;
use neighborwatch::store::MemoryStore;

use crate::support::{NETWORK, engine, example_path, sent_at};

const HF: &str = "!hooverfoster:oakland.example";
const CL: &str = "!clawson:eastbay.example";
const PR: &str = "!prescott:oakland.example";
const CO: &str = "!coordination:oakland.example";

fn say(
    e: &mut Engine<MemoryStore>,
    n: u32,
    room: &str,
    sender: &str,
    power: i64,
    body: &str,
) -> Vec<Effect> {
    let msg = IncomingMessage {
        event_id: format!("$reload{n}"),
        room: room.into(),
        sender: sender.into(),
        ts: sent_at() + Duration::minutes(i64::from(n)),
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Member { power, since: None },
    };
    e.handle(&msg, sent_at() + Duration::minutes(i64::from(n)))
        .unwrap()
}

/// Two neighbors of Hoover-Foster report agents at `place` (inputs `n` and `n + 1`):
/// the effects of the second, which confirms.
fn confirm(e: &mut Engine<MemoryStore>, n: u32, place: &str) -> Vec<Effect> {
    let body = format!("!r agents at {place}");
    say(e, n, HF, "@a:oakland.example", 0, &body);
    say(e, n + 1, HF, "@b:oakland.example", 0, &body)
}

fn relayed_to(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Relay { room, .. } => Some(room.as_str()),
            _ => None,
        })
        .collect()
}

fn notice_in<'a>(effects: &'a [Effect], room: &str) -> &'a str {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Notice { room: r, message } if r == room => Some(message.body.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a notice in {room}: {effects:?}"))
}

/// The example network with `line` added to Clawson's table.
fn with_clawson(line: &str) -> Network {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let text = text.replacen(
        "id = \"clawson\"\n",
        &format!("id = \"clawson\"\n{line}\n"),
        1,
    );
    Network::parse(&text, &example_path()).unwrap()
}

#[test]
fn a_reloaded_radius_applies_to_the_next_incident_and_keeps_room_values_and_incidents() {
    let mut e = engine(b"reload-test-key-0123456789abcdef");
    // A room admin of Prescott narrows its radius from the room: a value over the file.
    say(
        &mut e,
        1,
        PR,
        "@pat:oakland.example",
        100,
        "!nw settings alert_radius_m 100",
    );
    // Two neighbors confirm a sighting 312 m from Clawson's area: with the file's
    // 1600 m, Clawson is alerted.
    let first = confirm(&mut e, 2, "31st & Market");
    assert!(relayed_to(&first).contains(&CL), "{first:?}");
    let open = e.open_count();

    // Against the file the engine runs on (the shell keeps it, not the overlaid one).
    let (file, changes) = with_clawson("alert_radius_m = 200").for_reload(&NETWORK);
    assert_eq!(changes.changed, vec!["Clawson & McClymonds".to_owned()]);
    assert!(changes.added.is_empty() && changes.removed.is_empty());
    assert!(changes.restart_needed.is_empty(), "{changes:?}");
    let told = e
        .reload_network(Arc::new(file), changes, sent_at() + Duration::minutes(4))
        .unwrap();
    let notice = notice_in(&told, CO);
    assert!(
        notice.contains("applies now") && notice.contains("Changed: Clawson & McClymonds."),
        "{notice}"
    );
    assert_eq!(told.len(), 1, "the notice, nothing else: {told:?}");

    // The next incident, 243 m from Clawson's area, follows the file's new 200 m.
    let second = confirm(&mut e, 5, "West Grand & Market");
    let rooms = relayed_to(&second);
    assert!(rooms.contains(&HF) && !rooms.contains(&CL), "{rooms:?}");
    // Kept: Prescott's value set from its room, and the incident from before.
    assert_eq!(e.network().settings("prescott").alert_radius_m, 100.0);
    assert_eq!(e.network().settings("clawson").alert_radius_m, 200.0);
    assert_eq!(e.open_count(), open + 1);
    assert!(
        e.incidents()
            .any(|i| i.status == Status::Confirmed && i.label.contains("31st")),
        "the first incident is still confirmed"
    );
}

#[test]
fn a_refused_file_changes_nothing_and_coordination_is_told_why() {
    let mut e = engine(b"reload-test-key-0123456789abcdef");
    let before = Arc::clone(e.network());
    let told = e
        .reload_refused(
            "network.toml:40: `alert_radius_m`: expected a number".into(),
            sent_at(),
        )
        .unwrap();
    let notice = notice_in(&told, CO);
    assert!(
        notice.contains("was not reloaded") && notice.contains("expected a number"),
        "{notice}"
    );
    assert!(Arc::ptr_eq(&before, e.network()), "the same network");
    // Still the file's 1600 m: Clawson hears of a sighting 312 m away.
    let first = confirm(&mut e, 2, "31st & Market");
    assert!(relayed_to(&first).contains(&CL), "{first:?}");
}

#[test]
fn sections_read_once_at_start_are_kept_and_named() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let moved = text.replace("127.0.0.1:9464", "127.0.0.1:9999");
    let file = Network::parse(&moved, &example_path()).unwrap();
    let (file, changes) = file.for_reload(&NETWORK);
    assert_eq!(changes.restart_needed, vec!["[metrics]"]);
    assert!(changes.is_empty(), "no neighborhood changed: {changes:?}");
    assert_eq!(
        file.metrics, NETWORK.metrics,
        "the running listener is kept"
    );
}

#[test]
fn network_wide_keys_that_change_are_named() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let open = text.replace("allow_unencrypted = false", "allow_unencrypted = true");
    let (_, changes) = Network::parse(&open, &example_path())
        .unwrap()
        .for_reload(&NETWORK);
    assert_eq!(changes.network, vec!["allow_unencrypted"]);
    assert!(!changes.is_empty(), "a change the bot uses: {changes:?}");
}
