//! Facts, not words (PRODUCT.md §4): a reporter's own words never leave the origin
//! room's acknowledgment, and nothing the bot says reads as a report, in any language.

use chrono::Duration;
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
use neighborwatch::report::{ParseContext, parse_report};
use neighborwatch::store::MemoryStore;
use proptest::prelude::*;

use crate::support::{NETWORK, sent_at};

const HOOVER: &str = "!hooverfoster:oakland.example";
const YARDS: &str = "!backoftheyards:chicago.example";

fn text(event: &str, room: &str, sender: &str, body: &str, power: i64) -> IncomingMessage {
    IncomingMessage {
        event_id: event.into(),
        room: room.into(),
        sender: sender.into(),
        ts: sent_at(),
        content: Content::Text {
            body: body.into(),
            notice: false,
            replaces: None,
        },
        member: Member { power, since: None },
    }
}

/// Every message of `effects` with its room and body, and whether it is the reply to
/// `event` (the acknowledgment of that report).
fn bodies<'a>(effects: &'a [Effect], event: &str) -> Vec<(&'a str, &'a str, bool)> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Reply {
                room,
                in_reply_to,
                message,
            } => (room.as_str(), message.body.as_str(), in_reply_to == event),
            Effect::Notice { room, message }
            | Effect::Relay { room, message, .. }
            | Effect::Edit { room, message }
            | Effect::ThreadReply { room, message } => {
                (room.as_str(), message.body.as_str(), false)
            }
            Effect::Location { room, body, .. } => (room.as_str(), body.as_str(), false),
            Effect::Fade { room, .. } => (room.as_str(), "", false),
        })
        .collect()
}

fn engine() -> Engine<MemoryStore> {
    crate::support::engine(b"facts-test-key-0123456789abcdef")
}

#[test]
fn a_reporters_words_stay_in_the_acknowledgment_and_alerts_carry_the_facts() {
    let mut e = engine();
    let t = sent_at();
    let mut all = Vec::new();
    // A word no gazetteer or catalog has, in both reports of a confirmed incident, then
    // a verifier's all clear: alerts, edits, thread replies, coordination notices.
    let first = "!r 2 agents in vests, zephyrine van, plate 7ABC123 at 31st & Market";
    let fx = e
        .handle(&text("$a", HOOVER, "@maria:oakland.example", first, 0), t)
        .unwrap();
    all.push(("$a", fx));
    let second = "!r zephyrine people detaining a man at 31st and Market St";
    let fx = e
        .handle(&text("$b", HOOVER, "@dlee:oakland.example", second, 0), t)
        .unwrap();
    assert!(
        fx.iter().any(|f| matches!(f, Effect::Relay { .. })),
        "confirmed and relayed: {fx:?}"
    );
    let alert = fx
        .iter()
        .find_map(|f| match f {
            Effect::Relay { message, .. } => Some(message.body.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        alert.contains("7ABC123"),
        "the alert carries the extracted facts (the plate): {alert}"
    );
    all.push(("$b", fx));
    let id = e.incidents().next().unwrap().id;
    let clear = format!("!clear {id}");
    let fx = e
        .handle(
            &text("$c", HOOVER, "@moderator:oakland.example", &clear, 50),
            t + Duration::minutes(3),
        )
        .unwrap();
    assert!(fx.iter().any(|f| matches!(f, Effect::Edit { .. })));
    all.push(("$c", fx));
    for (event, fx) in &all {
        for (room, body, is_ack) in bodies(fx, event) {
            if body.to_lowercase().contains("zephyrine") {
                assert!(
                    is_ack && room == HOOVER,
                    "the reporter's word left the acknowledgment: {room}: {body}"
                );
            }
        }
    }
}

/// Reports from a small grammar, in English (Hoover-Foster) and Spanish (Back of the
/// Yards).
fn report_body() -> impl Strategy<Value = (bool, String)> {
    let en = (
        prop::sample::select(vec!["!r", "!report", "!R"]),
        prop::sample::select(vec![
            "2 agents",
            "unmarked SUV",
            "ICE van",
            "4 officers in vests",
        ]),
        prop::sample::select(vec![
            "at 31st & Market",
            "near Hoover Elementary",
            "at 31st and Market St",
        ]),
        prop::sample::select(vec![
            "",
            " plate 7ABC123",
            " 8:05am",
            "\nSize: 3\nActivity: raid\nLocation: 31st & Market",
        ]),
    )
        .prop_map(|(c, w, p, x)| (true, format!("{c} {w} {p}{x}")));
    let es = (
        prop::sample::select(vec!["!aviso", "!r"]),
        prop::sample::select(vec![
            "dos camionetas blancas",
            "agentes deteniendo a un señor",
            "retén",
        ]),
        prop::sample::select(vec!["en 47th y Ashland", "en Ashland y 47th"]),
        prop::sample::select(vec![
            "",
            " hace 5 min",
            "\nTamaño: 3\nActividad: redada\nLugar: 47th y Ashland",
        ]),
    )
        .prop_map(|(c, w, p, x)| (false, format!("{c} {w} {p}{x}")));
    prop_oneof![en, es]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the bot says (acknowledgments, alerts, edits, thread replies, notices,
    /// the answers to commands), in either language, never parses as a report: another
    /// bot, or this one, reading it takes no sighting from it.
    #[test]
    fn nothing_the_bot_says_parses_as_a_report(reports in prop::collection::vec(report_body(), 1..6)) {
        let mut e = engine();
        let t = sent_at();
        let mut effects = Vec::new();
        for (n, (english, body)) in reports.iter().enumerate() {
            let room = if *english { HOOVER } else { YARDS };
            let sender = format!("@neighbor{n}:example.org");
            let msg = text(&format!("$r{n}"), room, &sender, body, 0);
            effects.extend(e.handle(&msg, t + Duration::seconds(n as i64)).unwrap());
        }
        let ids: Vec<String> = e.incidents().map(|i| i.id.to_string()).collect();
        for (n, id) in ids.iter().enumerate() {
            for (room, cmd) in [(HOOVER, format!("!confirm {id}")), (YARDS, format!("!falsa {id}"))] {
                let msg = text(&format!("$v{n}{room}"), room, "@moderator:example.org", &cmd, 50);
                effects.extend(e.handle(&msg, t + Duration::minutes(2)).unwrap());
            }
        }
        for (room, cmd) in [(HOOVER, "!nw status"), (YARDS, "!nw incidentes"), (HOOVER, "!nw help")] {
            effects.extend(e.handle(&text(&format!("$c{cmd}"), room, "@n:x", cmd, 0), t).unwrap());
        }
        effects.extend(e.tick(t + Duration::hours(5)).unwrap());
        let nb = NETWORK.neighborhood("hoover-foster").unwrap();
        let ctx = ParseContext { gazetteer: &nb.gazetteer, tz: nb.settings.timezone, sent_at: t };
        prop_assert!(!effects.is_empty());
        for (room, body, _) in bodies(&effects, "") {
            let parsed = parse_report(body, &ctx);
            prop_assert!(
                matches!(parsed, Ok(None)),
                "a message the bot sent in {} reads as a report ({:?}): {}", room, parsed.map(|p| p.is_some()), body
            );
        }
    }
}
