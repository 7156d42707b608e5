//! Relay links: the replay fixture of PRODUCT.md §4/§5 (request, refusals, accept, relays
//! both ways, one hop, remove), and a property: no relay ever crosses a link that admins
//! of both sides did not accept.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use neighborwatch::effect::Effect;
use neighborwatch::incident::{Content, Engine, IncomingMessage, Member};
use neighborwatch::model::{IncidentId, ReporterKey};
use neighborwatch::render::Catalogs;
use neighborwatch::routing::{Origin, plan_relays};
use neighborwatch::store::MemoryStore;
use proptest::prelude::*;
use serde_json::Value;

use crate::replay_fixtures::{fixture, replay_cmd};
use crate::support::{NETWORK, sent_at};

const HF: &str = "!hooverfoster:oakland.example";
const CL: &str = "!clawson:eastbay.example";
const PR: &str = "!prescott:oakland.example";
const BY: &str = "!backoftheyards:chicago.example";
const CO: &str = "!coordination:oakland.example";

fn body(a: &Value) -> &str {
    a["body"].as_str().unwrap()
}

/// The actions caused by input event `event` (their IDs are `<event>/<n>`).
fn of<'a>(actions: &'a [Value], event: &str) -> Vec<&'a Value> {
    let prefix = format!("{event}/");
    actions
        .iter()
        .filter(|a| {
            a["event_id"]
                .as_str()
                .is_some_and(|e| e.starts_with(&prefix))
        })
        .collect()
}

fn relays<'a>(actions: &[&'a Value]) -> Vec<(&'a str, u64)> {
    actions
        .iter()
        .filter(|a| a["action"] == "relay")
        .map(|a| {
            (
                a["room"].as_str().unwrap(),
                a["incident"]["hops"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn reply<'a>(actions: &[&'a Value]) -> &'a str {
    body(
        actions
            .iter()
            .find(|a| a["action"] == "reply")
            .unwrap_or_else(|| panic!("no reply in {actions:#?}")),
    )
}

#[test]
fn a_link_between_far_neighborhoods_carries_alerts_only_once_both_admins_agreed_and_until_removed()
{
    let (a, err, code) = replay_cmd(&fixture("relay_links"), None);
    assert_eq!(code, 0, "{err}");
    // Before any link, Chicago's alert stays in Chicago.
    assert_eq!(relays(&of(&a, "$l1")), vec![(BY, 0)]);
    // The request: answered in Spanish with its ID, posted in Clawson's room (English)
    // for its admins to answer, and audited with who asked.
    let req = of(&a, "$l2");
    let id = reply(&req)
        .split_whitespace()
        .find(|w| w.starts_with('L') && w.len() == 5)
        .expect("the request names its ID")
        .to_owned();
    assert_eq!(id, "LC9TU", "the fixture's later lines type this ID");
    assert!(
        reply(&req).starts_with("Solicitud LC9TU enviada a Clawson"),
        "{}",
        reply(&req)
    );
    let asked = req
        .iter()
        .find(|x| x["action"] == "notice" && x["room"] == CL)
        .expect("the request is posted in Clawson's room");
    for needle in [
        "Back of the Yards asks",
        "@rosa:chicago.example",
        "!nw relay accept LC9TU",
    ] {
        assert!(
            body(asked).contains(needle),
            "{needle:?} in {}",
            body(asked)
        );
    }
    let audit = req.iter().find(|x| x["room"] == CO).expect("audit line");
    assert!(
        body(audit).contains("@rosa:chicago.example")
            && body(audit).contains("none → waiting for an answer"),
        "{}",
        body(audit)
    );
    // The asking side cannot accept its own request; a plain member of the other side
    // cannot either; while only asked, nothing crosses.
    assert!(reply(&of(&a, "$l3")).contains("Solo un administrador de Clawson"));
    assert!(reply(&of(&a, "$l4")).contains("Only room admins"));
    assert_eq!(relays(&of(&a, "$l5")), vec![(BY, 0)]);
    // Clawson's admin accepts (the ID in any case): both sides hear it; it is audited.
    let acc = of(&a, "$l6");
    assert!(
        reply(&acc).contains("Link LC9TU with Back of the Yards is active"),
        "{}",
        reply(&acc)
    );
    assert!(
        acc.iter()
            .any(|x| x["room"] == BY && body(x).contains("aceptó el enlace LC9TU")),
        "{acc:#?}"
    );
    assert!(
        acc.iter()
            .any(|x| x["room"] == CO && body(x).contains("waiting for an answer → active")),
        "{acc:#?}"
    );
    // Now Chicago's next alert reaches Clawson, 2968 km away, one hop from its origin, in
    // Clawson's language.
    let r = of(&a, "$l7");
    assert_eq!(relays(&r), vec![(BY, 0), (CL, 1)]);
    let to_cl = r
        .iter()
        .find(|x| x["action"] == "relay" && x["room"] == CL)
        .unwrap();
    assert!(body(to_cl).starts_with("🚨 CONFIRMED"), "{}", body(to_cl));
    assert!(reply(&of(&a, "$l8")).contains("LC9TU with Back of the Yards (active)"));
    // Hoover-Foster's incident reaches Clawson by distance, and goes no further: the link
    // joins Clawson and Chicago, not Hoover-Foster.
    let hf = relays(&of(&a, "$l9"));
    assert!(
        hf.contains(&(CL, 0)) && !hf.iter().any(|(r, _)| *r == BY),
        "{hf:?}"
    );
    // The link works both ways: Clawson's own incident reaches Chicago.
    let cl = relays(&of(&a, "$l10"));
    assert!(
        cl.contains(&(BY, 1)) && cl.contains(&(HF, 0)) && cl.contains(&(PR, 0)),
        "{cl:?}"
    );
    // Removed by Chicago's admin: Clawson hears it, it is audited, and it stops at once.
    let rm = of(&a, "$l11");
    assert!(
        reply(&rm).contains("LC9TU con Clawson & McClymonds se quitó"),
        "{}",
        reply(&rm)
    );
    assert!(
        rm.iter()
            .any(|x| x["room"] == CL && body(x).contains("removed link LC9TU"))
    );
    assert!(
        rm.iter()
            .any(|x| x["room"] == CO && body(x).contains("active → removed"))
    );
    assert_eq!(relays(&of(&a, "$l12")), vec![(BY, 0)]);
    // Refusals say what is wrong and change nothing.
    assert!(reply(&of(&a, "$l13")).contains("already removed"));
    assert!(
        reply(&of(&a, "$l14")).contains("“!nowhere:example.org” is not a room of this network")
    );
    assert!(reply(&of(&a, "$l15")).contains("I don't know the link “LZZZZ”"));
    assert!(reply(&of(&a, "$l16")).contains("cannot link with itself"));
    assert!(reply(&of(&a, "$l17")).contains("!nw relay request ROOM"));
    for e in ["$l13", "$l14", "$l15", "$l16", "$l17"] {
        assert_eq!(
            of(&a, e).len(),
            1,
            "a refusal is one reply and no audit: {e}"
        );
    }
}

#[test]
fn links_survive_a_restart_and_removed_ones_stay_removed() {
    // Up to the acceptance, then the rest after reopening the store.
    let a = crate::replay_fixtures::replay_split("relay_links", 6);
    assert_eq!(
        relays(&of(&a, "$l7")),
        vec![(BY, 0), (CL, 1)],
        "the accepted link is kept"
    );
    assert_eq!(relays(&of(&a, "$l12")), vec![(BY, 0)]);
}

/// What a test neighbor does.
#[derive(Clone, Debug)]
enum Op {
    /// An admin (or not) of a room of `from` asks for a link with `to`'s room.
    Request { from: usize, to: usize, admin: bool },
    /// Someone in a room of `by` answers the `k`-th link ID seen so far.
    Answer {
        k: usize,
        by: usize,
        admin: bool,
        accept: bool,
    },
    /// Someone in a room of `by` removes the `k`-th link ID seen so far.
    Remove { k: usize, by: usize, admin: bool },
    /// A moderator of a room of `hood` reports at its `place`-th place (confirmed at once).
    Report { hood: usize, place: usize },
}

/// Neighborhoods of config/example.toml with their room and places in their gazetteer.
const HOODS: &[(&str, &str, &[&str])] = &[
    ("hoover-foster", HF, &["31st & Market", "32nd & San Pablo"]),
    ("clawson", CL, &["West Grand & Market"]),
    ("prescott", PR, &["7th & Mandela"]),
    (
        "fruitvale",
        "!fruitvale:oakland.example",
        &["International & Fruitvale", "Fruitvale BART"],
    ),
    ("back-of-the-yards", BY, &["47th & Ashland", "Davis Square"]),
];

fn op() -> impl Strategy<Value = Op> {
    let n = HOODS.len();
    prop_oneof![
        (0..n, 0..n, prop::bool::weighted(0.8)).prop_map(|(from, to, admin)| Op::Request {
            from,
            to,
            admin
        }),
        (0..8usize, 0..n, prop::bool::weighted(0.7), any::<bool>()).prop_map(
            |(k, by, admin, accept)| Op::Answer {
                k,
                by,
                admin,
                accept
            }
        ),
        (0..8usize, 0..n, prop::bool::weighted(0.7)).prop_map(|(k, by, admin)| Op::Remove {
            k,
            by,
            admin
        }),
        (0..n, 0..2usize).prop_map(|(hood, place)| Op::Report { hood, place }),
    ]
}

/// The test's own record of consent, from what people typed: a link counts once an admin
/// of one side asked for it and an admin of the other side accepted it, until an admin of
/// either side removed it.
#[derive(Default)]
struct Consent {
    /// Link ID → (asking side, asked side, accepted, ended).
    links: HashMap<String, (usize, usize, bool, bool)>,
}

impl Consent {
    fn linked(&self, a: usize, b: usize) -> bool {
        self.links
            .values()
            .any(|&(f, t, acc, ended)| acc && !ended && ((f, t) == (a, b) || (f, t) == (b, a)))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_relay_crosses_a_link_both_sides_did_not_accept(ops in prop::collection::vec(op(), 1..40)) {
        let net = Arc::clone(&NETWORK);
        let mut e = Engine::open(Arc::clone(&net), MemoryStore::new(), ReporterKey::new(b"links-property-key-0123"), Catalogs::builtin()).unwrap();
        let mut consent = Consent::default();
        let mut ids: Vec<String> = Vec::new();
        let hood_of = |room: &str| HOODS.iter().position(|(_, r, _)| *r == room);
        for (i, op) in ops.iter().enumerate() {
            let (room, body, power) = match op {
                Op::Request { from, to, admin } => (HOODS[*from].1, format!("!nw relay request {}", HOODS[*to].1), *admin),
                Op::Answer { k, by, admin, accept } => {
                    let id = ids.get(k % ids.len().max(1)).cloned().unwrap_or_else(|| "LAAAA".into());
                    let verb = if *accept { "accept" } else { "decline" };
                    (HOODS[*by].1, format!("!nw relay {verb} {id}"), *admin)
                }
                Op::Remove { k, by, admin } => {
                    let id = ids.get(k % ids.len().max(1)).cloned().unwrap_or_else(|| "LAAAA".into());
                    (HOODS[*by].1, format!("!nw relay remove {id}"), *admin)
                }
                Op::Report { hood, place } => {
                    let places = HOODS[*hood].2;
                    (HOODS[*hood].1, format!("!r agents at {}", places[place % places.len()]), true)
                }
            };
            let msg = IncomingMessage {
                event_id: format!("$p{i}"),
                room: room.into(),
                sender: format!("@admin{i}:example.org"),
                ts: sent_at() + Duration::minutes(i as i64),
                content: Content::Text { body, notice: false, replaces: None },
                member: Member { power: if power { 100 } else { 0 }, since: None },
            };
            let effects = e.handle(&msg, msg.ts).unwrap();
            // The model follows what was typed, and learns IDs from the replies.
            let said: Vec<&str> = effects.iter().filter_map(|x| match x {
                Effect::Reply { message, .. } => Some(message.body.as_str()),
                _ => None,
            }).collect();
            match op {
                Op::Request { from, to, admin } => {
                    if let Some(id) = said.iter().flat_map(|b| b.split_whitespace()).find(|w| w.len() == 5 && w.starts_with('L') && !ids.iter().any(|k| k == w)) {
                        ids.push(id.to_owned());
                        if *admin && from != to && !consent.links.values().any(|&(f, t, _, ended)| !ended && ((f, t) == (*from, *to) || (f, t) == (*to, *from))) {
                            consent.links.insert(id.to_owned(), (*from, *to, false, false));
                        }
                    }
                }
                Op::Answer { k, by, admin, accept } => {
                    if let Some(l) = ids.get(k % ids.len().max(1)).and_then(|id| consent.links.get_mut(id))
                        && *admin && l.1 == *by && !l.2 && !l.3 {
                        if *accept { l.2 = true } else { l.3 = true }
                    }
                }
                Op::Remove { k, by, admin } => {
                    if let Some(l) = ids.get(k % ids.len().max(1)).and_then(|id| consent.links.get_mut(id))
                        && *admin && (l.0 == *by || l.1 == *by) {
                        l.3 = true;
                    }
                }
                Op::Report { .. } => {}
            }
            // Every relay is in range, or over a link both sides accepted, from the
            // neighborhood the incident was reported in (one hop).
            for x in &effects {
                let Effect::Relay { room, message, .. } = x else { continue };
                let tag = message.incident.as_ref().unwrap();
                let inc = e.incident(&tag.id).unwrap();
                let origin = Origin { at: inc.location, neighborhood: &inc.neighborhood, hops: u32::MAX };
                let in_range = plan_relays(&net, origin, &[] as &[&str]).iter().any(|t| **t.room == **room);
                let (Some(to), Some(from)) = (hood_of(room), HOODS.iter().position(|(h, _, _)| **h == *inc.neighborhood)) else {
                    continue;
                };
                prop_assert!(in_range || consent.linked(from, to),
                    "{} (from {}) relayed to {room} with no accepted link, after {:?}", tag.id, inc.neighborhood, &ops[..=i]);
                prop_assert_eq!(tag.hops, u32::from(!in_range), "a link relay counts one hop");
            }
            // And a link both sides accepted does carry the incident just reported.
            if let Op::Report { hood, .. } = op {
                let id: Option<IncidentId> = effects.iter().find_map(|x| x.incident().copied());
                if let Some(inc) = id.and_then(|id| e.incident(&id)) {
                    for (n, (_, r, _)) in HOODS.iter().enumerate() {
                        if n != *hood && consent.linked(*hood, n) {
                            prop_assert!(inc.relayed_to.iter().any(|x| &**x == *r),
                                "{} not relayed to linked {r} after {:?}", inc.id, &ops[..=i]);
                        }
                    }
                }
            }
        }
    }
}
