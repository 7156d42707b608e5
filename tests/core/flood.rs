//! A member who floods a room gets a handful of answers, one "too fast", then silence
//! until their budget refills (issue 24); valid reports are still acknowledged, and room
//! moderators are never budgeted.

use chrono::Duration;
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, IncomingMessage, Member};

use crate::support::{engine, sent_at};

const HOOVER: &str = "!hooverfoster:oakland.example";
const FLOODER: &str = "@flood:oakland.example";

fn text(n: usize, sender: &str, body: &str, power: i64, after_s: i64) -> IncomingMessage {
    IncomingMessage {
        event_id: format!("$flood{n}"),
        room: HOOVER.into(),
        sender: sender.into(),
        ts: sent_at() + Duration::seconds(after_s),
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Member { power, since: None },
    }
}

/// The bodies of the replies in `effects`.
fn replies(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply { message, .. } => Some(message.body.clone()),
            _ => None,
        })
        .collect()
}

/// Junk that is no report (reports have their own limit, `max_reports_per_10min`).
const JUNK: [&str; 4] = ["!nw help", "!nw frobnicate", "!nw status", "!false NOPE-1"];

#[test]
fn fifty_junk_messages_draw_at_most_six_replies_and_a_valid_report_is_still_acknowledged() {
    // The default budget: 5 answers in a row, one more every two minutes; the sixth
    // reply says the sender is going too fast.
    const K: usize = 6;
    let mut e = engine(b"flood-test-key-0123456789");
    let mut got = Vec::new();
    for n in 0..50 {
        let m = text(n, FLOODER, JUNK[n % JUNK.len()], 0, 0);
        got.extend(replies(&e.handle(&m, m.ts).unwrap()));
    }
    assert_eq!(got.len(), K, "{got:#?}");
    assert!(got[K - 1].contains("too fast"), "{}", got[K - 1]);
    assert!(got[..K - 1].iter().all(|b| !b.contains("too fast")));

    // A valid report from the same member is still read and acknowledged.
    let report = text(50, FLOODER, "!r 3 agents at 31st & Market", 0, 1);
    let effects = e.handle(&report, report.ts).unwrap();
    assert!(
        replies(&effects).iter().any(|b| b.contains("31st")),
        "acknowledged: {effects:#?}"
    );

    // Others in the room are answered as ever.
    let other = text(51, "@neighbor:oakland.example", "!nw help", 0, 1);
    assert_eq!(replies(&e.handle(&other, other.ts).unwrap()).len(), 1);

    // Silent until an answer is regained (two minutes), then one answer, then the
    // warning again.
    let m = text(52, FLOODER, "!nw help", 0, 119);
    assert!(replies(&e.handle(&m, m.ts).unwrap()).is_empty());
    let m = text(53, FLOODER, "!nw help", 0, 121);
    let r = replies(&e.handle(&m, m.ts).unwrap());
    assert_eq!(r.len(), 1);
    assert!(!r[0].contains("too fast"));
    let m = text(54, FLOODER, "!nw help", 0, 121);
    assert!(replies(&e.handle(&m, m.ts).unwrap())[0].contains("too fast"));
}

#[test]
fn a_room_moderator_is_never_budgeted() {
    let mut e = engine(b"flood-test-key-0123456789");
    let mut n_replies = 0;
    for n in 0..20 {
        let m = text(n, "@mod:oakland.example", "!nw help", 50, 0);
        n_replies += replies(&e.handle(&m, m.ts).unwrap()).len();
    }
    assert_eq!(n_replies, 20);
}

/// The example network, Hoover-Foster's budget set to 2 answers, one regained every 30 s.
fn tight_hoover() -> neighborwatch::incident::Engine<neighborwatch::store::MemoryStore> {
    use crate::support::example_path;
    let text = std::fs::read_to_string(example_path()).unwrap().replace(
        r#"rooms = ["!hooverfoster:oakland.example"]"#,
        "rooms = [\"!hooverfoster:oakland.example\"]\nreply_burst = 2\nreply_refill_s = 30",
    );
    let net = neighborwatch::config::Network::parse(&text, &example_path()).unwrap();
    neighborwatch::incident::Engine::open(
        std::sync::Arc::new(net),
        neighborwatch::store::MemoryStore::new(),
        neighborwatch::model::ReporterKey::new(b"flood-test-key-0123456789"),
        neighborwatch::render::Catalogs::builtin(),
    )
    .unwrap()
}

/// The replies `sender` draws in `room` with `n` junk messages at `after_s`.
fn flood(
    e: &mut neighborwatch::incident::Engine<neighborwatch::store::MemoryStore>,
    room: &str,
    first: usize,
    n: usize,
    after_s: i64,
) -> Vec<String> {
    let mut got = Vec::new();
    for i in first..first + n {
        let mut m = text(i, FLOODER, JUNK[i % JUNK.len()], 0, after_s);
        m.room = room.into();
        got.extend(replies(&e.handle(&m, m.ts).unwrap()));
    }
    got
}

#[test]
fn a_neighborhood_with_a_burst_of_two_gives_two_answers_and_one_too_fast() {
    // Hoover-Foster: `reply_burst = 2`, `reply_refill_s = 30`.
    const K: usize = 3;
    let mut e = tight_hoover();
    let got = flood(&mut e, HOOVER, 0, 20, 0);
    assert_eq!(got.len(), K, "{got:#?}");
    assert!(got[K - 1].contains("too fast"), "{}", got[K - 1]);
    assert!(got[..K - 1].iter().all(|b| !b.contains("too fast")));

    // One answer is regained after 30 s, not before.
    assert!(flood(&mut e, HOOVER, 100, 1, 29).is_empty());
    let r = flood(&mut e, HOOVER, 101, 1, 31);
    assert_eq!(r.len(), 1);
    assert!(!r[0].contains("too fast"), "{}", r[0]);

    // Another neighborhood keeps the defaults: 5 answers and one "too fast".
    let other = flood(&mut e, "!clawson:eastbay.example", 200, 20, 0);
    assert_eq!(other.len(), 6, "{other:#?}");
}

#[test]
fn a_room_admin_raising_the_burst_gives_more_answers_at_once() {
    let mut e = tight_hoover();
    let mut set = text(
        0,
        "@admin:oakland.example",
        "!nw settings reply_burst 4",
        100,
        0,
    );
    set.event_id = "$set".into();
    let r = replies(&e.handle(&set, set.ts).unwrap());
    assert_eq!(r.len(), 1, "{r:#?}");
    let got = flood(&mut e, HOOVER, 1, 20, 0);
    assert_eq!(got.len(), 5, "4 answers and one too fast: {got:#?}");
    assert!(got[4].contains("too fast"));
}

const COORD: &str = "!coordination:oakland.example";

/// (kind, room) of each effect.
fn shape(effects: &[Effect]) -> Vec<(&'static str, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply { room, .. } => Some(("reply", room.clone())),
            Effect::Notice { room, .. } => Some(("notice", room.clone())),
            Effect::Relay { room, .. } => Some(("relay", room.clone())),
            Effect::Location { room, .. } => Some(("location", room.clone())),
            Effect::Edit { room, .. } => Some(("edit", room.clone())),
            Effect::ThreadReply { room, .. } => Some(("thread_reply", room.clone())),
            Effect::Fade { .. } => None,
        })
        .collect()
}

#[test]
fn a_flooders_reports_past_the_limit_are_echoed_nowhere_and_coordination_hears_each_change_once() {
    let mut e = engine(b"flood-test-key-0123456789");
    let told = std::cell::Cell::new(0);
    let handle = |e: &mut neighborwatch::incident::Engine<_>, m: IncomingMessage| {
        let fx = e.handle(&m, m.ts).unwrap();
        let s = shape(&fx);
        told.set(told.get() + s.iter().filter(|(_, r)| r == COORD).count());
        (fx, s)
    };
    let coordination = || told.get();
    const REPORT: &str = "!r 3 agents at 31st & Market";
    // Two neighbors confirm: the alert goes out; coordination hears "opened", then
    // "confirmed and relayed", one line each.
    let (_, s) = handle(&mut e, text(1, "@ana:oakland.example", REPORT, 0, 0));
    assert!(s.contains(&("notice", COORD.into())), "{s:?}");
    let (_, s) = handle(&mut e, text(2, "@ben:oakland.example", REPORT, 0, 10));
    assert_eq!(s.iter().filter(|(k, _)| *k == "relay").count(), 2, "{s:?}");
    assert_eq!(coordination(), 2);

    // The flooder's reports within `max_reports_per_10min` (5) update the alert and are
    // acknowledged, but coordination hears nothing of one more report.
    for n in 0..5 {
        let (_, s) = handle(&mut e, text(10 + n, FLOODER, REPORT, 0, 20));
        assert!(s.iter().any(|(k, _)| *k == "edit"), "{s:?}");
    }
    assert_eq!(coordination(), 2, "no line per report");

    // Past the limit: 50 more reports draw exactly one message in all, the note to the
    // flooder that they are rate limited; no edit, thread reply, relay or notice.
    let mut past = Vec::new();
    for n in 0..50 {
        let (fx, _) = handle(&mut e, text(100 + n, FLOODER, REPORT, 0, 30));
        past.extend(fx);
    }
    assert_eq!(shape(&past), [("reply", HOOVER.to_owned())], "{past:#?}");
    assert!(
        replies(&past)[0].contains("more than 5 reports"),
        "{past:#?}"
    );
    assert_eq!(coordination(), 2);
}
