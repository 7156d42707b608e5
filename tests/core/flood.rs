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
