//! Effect → Matrix event content, as JSON. Pure: the shell sends what this returns.
//!
//! Every message about an incident carries `org.neighborwatch.incident`; alerts are
//! `m.text`, everything quieter `m.notice`; `m.mentions` is always explicit, so a reply
//! never pings the reporter it answers.

use serde_json::{Value, json};

use crate::effect::Effect;
use crate::effect::OutgoingMessage;

/// The event type of every message the bot sends.
pub const ROOM_MESSAGE: &str = "m.room.message";

/// The custom field that lets clients, tools and other instances follow an incident.
pub const INCIDENT_FIELD: &str = "org.neighborwatch.incident";

/// Why an effect cannot be turned into content yet.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// An edit or thread reply whose alert has not been sent (or was refused).
    #[error("the alert this update refers to has no event ID yet")]
    NoAlertEvent,
    /// An effect that is not a message (a redaction).
    #[error("not a message")]
    NotAMessage,
}

fn base(m: &OutgoingMessage) -> serde_json::Map<String, Value> {
    let mut c = serde_json::Map::new();
    c.insert(
        "msgtype".into(),
        serde_json::to_value(m.msgtype).unwrap_or(Value::Null),
    );
    c.insert("body".into(), Value::String(m.body.clone()));
    c.insert("format".into(), "org.matrix.custom.html".into());
    c.insert("formatted_body".into(), Value::String(m.html.clone()));
    c.insert(
        "m.mentions".into(),
        if m.mentions_room {
            json!({ "room": true })
        } else {
            json!({})
        },
    );
    if let Some(tag) = &m.incident {
        c.insert(
            INCIDENT_FIELD.into(),
            serde_json::to_value(tag).unwrap_or(Value::Null),
        );
    }
    c
}

/// The `m.room.message` content for `effect`. `alert_event` is the event ID of the alert
/// previously relayed to the effect's room for its incident (needed by edits and thread
/// replies).
pub fn message_content(effect: &Effect, alert_event: Option<&str>) -> Result<Value, ContentError> {
    Ok(match effect {
        Effect::Reply {
            in_reply_to,
            message,
            ..
        } => {
            let mut c = base(message);
            c.insert(
                "m.relates_to".into(),
                json!({ "m.in_reply_to": { "event_id": in_reply_to } }),
            );
            Value::Object(c)
        }
        Effect::Notice { message, .. } | Effect::Relay { message, .. } => {
            Value::Object(base(message))
        }
        Effect::Location {
            incident,
            geo_uri,
            body,
            ..
        } => json!({
            "msgtype": "m.location",
            "body": body,
            "geo_uri": geo_uri,
            "org.matrix.msc1767.text": body,
            "org.matrix.msc3488.location": { "uri": geo_uri, "description": body },
            "org.matrix.msc3488.asset": { "type": "m.pin" },
            "m.mentions": {},
            INCIDENT_FIELD: incident,
        }),
        Effect::Edit { message, .. } => {
            let target = alert_event.ok_or(ContentError::NoAlertEvent)?;
            let new_content = Value::Object(base(message));
            let mut c = base(message);
            c.insert("body".into(), Value::String(format!("* {}", message.body)));
            c.insert(
                "formatted_body".into(),
                Value::String(format!("* {}", message.html)),
            );
            c.insert("m.new_content".into(), new_content);
            c.insert(
                "m.relates_to".into(),
                json!({ "rel_type": "m.replace", "event_id": target }),
            );
            Value::Object(c)
        }
        Effect::ThreadReply { message, .. } => {
            let target = alert_event.ok_or(ContentError::NoAlertEvent)?;
            let mut c = base(message);
            c.insert(
                "m.relates_to".into(),
                json!({
                    "rel_type": "m.thread",
                    "event_id": target,
                    "is_falling_back": true,
                    "m.in_reply_to": { "event_id": target },
                }),
            );
            Value::Object(c)
        }
        Effect::Fade { .. } => return Err(ContentError::NotAMessage),
    })
}

/// True for effects that carry an alert into a room (refused in unencrypted rooms).
pub fn is_alert(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::Relay { .. }
            | Effect::Location { .. }
            | Effect::Edit { .. }
            | Effect::ThreadReply { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effect::MsgType;
    use crate::model::{IncidentId, IncidentTag, Status};

    fn msg(mentions: bool) -> OutgoingMessage {
        OutgoingMessage {
            msgtype: MsgType::Text,
            body: "alert <b>".into(),
            html: "alert &lt;b&gt;".into(),
            mentions_room: mentions,
            incident: Some(IncidentTag {
                id: IncidentId::from_seq(0),
                status: Status::Confirmed,
                version: 2,
                origin: "@bot:x".into(),
                hops: 0,
            }),
        }
    }

    #[test]
    fn relay_is_text_with_room_mention_and_incident_tag() {
        let c = message_content(
            &Effect::Relay {
                room: "!r:x".into(),
                message: msg(true),
                home: false,
            },
            None,
        )
        .unwrap();
        assert_eq!(c["msgtype"], "m.text");
        assert_eq!(c["m.mentions"], json!({"room": true}));
        assert_eq!(c[INCIDENT_FIELD]["status"], "confirmed");
        assert_eq!(c[INCIDENT_FIELD]["version"], 2);
        assert_eq!(c["formatted_body"], "alert &lt;b&gt;");
    }

    #[test]
    fn edit_replaces_the_alert_and_needs_its_event_id() {
        let e = Effect::Edit {
            room: "!r:x".into(),
            message: msg(false),
        };
        assert_eq!(message_content(&e, None), Err(ContentError::NoAlertEvent));
        let c = message_content(&e, Some("$alert")).unwrap();
        assert_eq!(
            c["m.relates_to"],
            json!({"rel_type": "m.replace", "event_id": "$alert"})
        );
        assert_eq!(c["m.new_content"]["body"], "alert <b>");
        assert_eq!(c["body"], "* alert <b>");
        assert_eq!(c["m.mentions"], json!({}));
    }

    #[test]
    fn thread_reply_and_reply_relations() {
        let t = message_content(
            &Effect::ThreadReply {
                room: "!r:x".into(),
                message: msg(false),
            },
            Some("$a"),
        )
        .unwrap();
        assert_eq!(t["m.relates_to"]["rel_type"], "m.thread");
        assert_eq!(t["m.relates_to"]["event_id"], "$a");
        let r = message_content(
            &Effect::Reply {
                room: "!r:x".into(),
                in_reply_to: "$rep".into(),
                message: msg(false),
            },
            None,
        )
        .unwrap();
        assert_eq!(r["m.relates_to"]["m.in_reply_to"]["event_id"], "$rep");
    }

    #[test]
    fn location_has_msc3488_fields() {
        let tag = msg(false).incident.unwrap();
        let c = message_content(
            &Effect::Location {
                room: "!r:x".into(),
                incident: tag,
                geo_uri: "geo:1,2;u=30".into(),
                body: "here".into(),
            },
            None,
        )
        .unwrap();
        assert_eq!(c["msgtype"], "m.location");
        assert_eq!(c["geo_uri"], "geo:1,2;u=30");
        assert_eq!(c["org.matrix.msc3488.location"]["uri"], "geo:1,2;u=30");
        assert!(c[INCIDENT_FIELD].is_object());
    }
}
