//! The coordination room's audit trail: who changed a setting, a verifier, a place, a
//! link, or started a drill, and in which room.

use crate::decision::AuditChange;
use crate::links::LinkState;
use crate::render::Renderer;

use super::Cx;
use super::places::place_args;

/// The coordination room's notice that `by` made `change` in `in_room`.
pub(super) fn audit(
    cx: &mut Cx<'_, '_>,
    room: &str,
    by: &str,
    in_room: &str,
    change: &AuditChange,
) {
    let r = cx.coordination();
    let message = match change {
        AuditChange::Setting {
            neighborhood,
            key,
            old,
            new,
            reset,
        } => r.notice(
            if *reset {
                "audit.setting_reset"
            } else {
                "audit.setting"
            },
            &[
                ("by", by),
                ("key", key),
                ("neighborhood", cx.hood_name(neighborhood)),
                ("old", old),
                ("new", new),
                ("room", in_room),
            ],
            None,
        ),
        AuditChange::Verifier {
            neighborhood,
            user,
            added,
        } => r.notice(
            if *added {
                "audit.verifier_added"
            } else {
                "audit.verifier_removed"
            },
            &[
                ("by", by),
                ("user", user),
                ("neighborhood", cx.hood_name(neighborhood)),
                ("room", in_room),
            ],
            None,
        ),
        AuditChange::Place {
            neighborhood,
            old,
            new,
        } => {
            let key = match (old, new) {
                (None, _) => "audit.place_added",
                (Some(_), Some(_)) => "audit.place_changed",
                (Some(_), None) => "audit.place_removed",
            };
            r.notice(
                key,
                &[
                    ("by", by),
                    ("neighborhood", cx.hood_name(neighborhood)),
                    ("old", &place_words(&r, old)),
                    ("new", &place_words(&r, new)),
                    ("room", in_room),
                ],
                None,
            )
        }
        AuditChange::Drill { neighborhood } => r.notice(
            "audit.drill",
            &[
                ("by", by),
                ("neighborhood", cx.hood_name(neighborhood)),
                ("room", in_room),
            ],
            None,
        ),
        AuditChange::Link { link, old } => {
            let key = match link.state {
                LinkState::Requested => "audit.link_requested",
                LinkState::Accepted => "audit.link_accepted",
                LinkState::Declined => "audit.link_declined",
                LinkState::Removed => "audit.link_removed",
            };
            let old = old.map_or_else(
                || r.plain("link_state.none", &[]),
                |o| r.plain(o.catalog_key(), &[]),
            );
            r.notice(
                key,
                &[
                    ("by", by),
                    ("id", &link.id),
                    ("from", cx.hood_name(&link.from)),
                    ("to", cx.hood_name(&link.to)),
                    ("old", &old),
                    ("new", &r.plain(link.state.catalog_key(), &[])),
                    ("room", in_room),
                ],
                None,
            )
        }
    };
    cx.notice(room, message);
}

/// A place setting's value as the audit shows it: the place in words when it reads as
/// one, the text as it is otherwise (empty for none).
fn place_words(r: &Renderer<'_>, value: &Option<String>) -> String {
    let t = value.as_deref().unwrap_or_default();
    crate::config::parse_place(t).map_or_else(
        || t.to_owned(),
        |p| {
            let a = place_args(r, &p);
            let a: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
            r.plain("places.short", &a)
        },
    )
}
