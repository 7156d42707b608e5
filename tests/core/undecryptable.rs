//! A message whose keys never reached the bot: its sender is asked, once, in the room's
//! language, to send it again; the message itself is still handled if its keys arrive.

use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage};
use neighborwatch::store::MemoryStore;

use crate::support::sent_at;

fn engine() -> Engine<MemoryStore> {
    crate::support::engine(b"undecryptable-test-key-0123456789")
}

fn undecryptable(room: &str, event: &str) -> IncomingMessage {
    IncomingMessage {
        event_id: format!("{event}#undecryptable"),
        room: room.into(),
        sender: "@maria:oakland.example".into(),
        ts: sent_at(),
        content: Content::Undecryptable {
            event_id: event.into(),
        },
        member: Default::default(),
    }
}

fn reply(effects: &[Effect]) -> (&str, &str) {
    match effects {
        [
            Effect::Reply {
                in_reply_to,
                message,
                ..
            },
        ] => (in_reply_to.as_str(), message.body.as_str()),
        other => panic!("expected one reply, got {other:#?}"),
    }
}

#[test]
fn the_sender_is_asked_once_to_send_it_again_and_a_late_key_still_counts() {
    let mut e = engine();
    let room = "!hooverfoster:oakland.example";
    let first = e
        .handle(&undecryptable(room, "$locked"), sent_at())
        .unwrap();
    let (to, body) = reply(&first);
    assert_eq!(to, "$locked");
    assert!(body.contains("please send it again"), "{body}");
    assert!(!body.contains("maria"), "names nobody: {body}");
    assert!(
        e.handle(&undecryptable(room, "$locked"), sent_at())
            .unwrap()
            .is_empty(),
        "asked once"
    );
    // The keys arrive after all: the report is handled like any other.
    let late = IncomingMessage {
        event_id: "$locked".into(),
        room: room.into(),
        sender: "@maria:oakland.example".into(),
        ts: sent_at(),
        content: Content::Text {
            body: "!r agents at 31st & Market".into(),
            notice: false,
            replaces: None,
        },
        member: Default::default(),
    };
    let acks = e.handle(&late, sent_at()).unwrap();
    assert!(
        acks.iter()
            .any(|a| matches!(a, Effect::Reply { in_reply_to, .. } if in_reply_to == "$locked")),
        "{acks:#?}"
    );
}

#[test]
fn the_request_is_in_the_rooms_language_and_only_for_network_rooms() {
    let mut e = engine();
    let es = e
        .handle(
            &undecryptable("!fruitvale:oakland.example", "$cerrado"),
            sent_at(),
        )
        .unwrap();
    let (_, body) = reply(&es);
    assert!(body.contains("envíelo de nuevo"), "{body}");
    assert!(
        e.handle(&undecryptable("!elsewhere:example.org", "$x"), sent_at())
            .unwrap()
            .is_empty(),
        "rooms outside the network are not answered"
    );
}
