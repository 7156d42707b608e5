//! Answers to `!nw verifiers …`: who was added or removed, the list with each verifier's
//! source, usage.

use crate::decision::VerifiersOutcome;

use super::Cx;

/// The answer to `!nw verifiers …` in `room`.
pub(super) fn verifiers_reply(
    cx: &mut Cx<'_, '_>,
    room: &str,
    in_reply_to: &str,
    outcome: &VerifiersOutcome,
) {
    let r = cx.renderer(room);
    let name = cx
        .net
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
                        vec![("users", r.list(users)), ("neighborhood", name.to_owned())],
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
        VerifiersOutcome::InCoordination => r.notice("verifiers.coordination", &[], None),
    };
    cx.reply(room, in_reply_to, message);
}
