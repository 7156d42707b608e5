//! Replay fixtures: hand-written scenarios from PRODUCT.md, run through the real
//! `neighborwatch replay` command, with the expected actions asserted field by field.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::example_path;

pub const KEY_VAR: &str = "NW_REPORTER_KEY";
pub const KEY: &str = "fixture-reporter-key-0123456789";
/// The store passphrase of the sled stores the binary opens in these tests.
pub const PASSPHRASE_VAR: &str = "NW_STORE_PASSPHRASE";
pub const PASSPHRASE: &str = "fixture-store-passphrase";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.jsonl"))
}

/// Runs `neighborwatch replay` and returns its actions, stderr and exit code.
pub fn replay_cmd(input: &Path, store: Option<&Path>) -> (Vec<Value>, String, i32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_neighborwatch"));
    cmd.arg("replay")
        .arg("--config")
        .arg(example_path())
        .env(KEY_VAR, KEY)
        .env(PASSPHRASE_VAR, PASSPHRASE);
    if let Some(s) = store {
        cmd.arg("--store").arg(s);
    }
    let out = cmd.arg(input).output().expect("the binary runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let actions = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (
        actions,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Replays fixture `name` into one sled store in two runs, reopening the store after its
/// first `at` lines (a restart); returns the actions of both runs.
pub fn replay_split(name: &str, at: usize) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.sled");
    let all = std::fs::read_to_string(fixture(name)).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let (one, two) = (dir.path().join("one.jsonl"), dir.path().join("two.jsonl"));
    std::fs::write(&one, lines[..at].join("\n")).unwrap();
    std::fs::write(&two, lines[at..].join("\n")).unwrap();
    let (mut a, err, code) = replay_cmd(&one, Some(&store));
    assert_eq!(code, 0, "{err}");
    let (b, err, code) = replay_cmd(&two, Some(&store));
    assert_eq!(code, 0, "{err}");
    a.extend(b);
    a
}

fn replay(name: &str) -> Vec<Value> {
    let (actions, stderr, code) = replay_cmd(&fixture(name), None);
    assert_eq!(code, 0, "replay of {name} failed: {stderr}");
    actions
}

/// (action, room) of every action, in order.
fn shape(actions: &[Value]) -> Vec<(String, String)> {
    actions
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["room"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

const HF: &str = "!hooverfoster:oakland.example";
const CL: &str = "!clawson:eastbay.example";
const PR: &str = "!prescott:oakland.example";
const FV: &str = "!fruitvale:oakland.example";
const BY: &str = "!backoftheyards:chicago.example";
const CO: &str = "!coordination:oakland.example";

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn school_drop_off_sighting_corroborated_by_a_second_neighbor() {
    let a = replay("school_dropoff");
    assert_eq!(
        shape(&a),
        pairs(&[
            // $a1: first report → quiet acknowledgment + coordination note
            ("reply", HF),
            ("notice", CO),
            // $a2: second neighbor → confirmed → alert + location to the two rooms in range
            ("relay", HF),
            ("location", HF),
            ("relay", CL),
            ("location", CL),
            ("reply", HF),
            // one coordination line for the change: confirmed and relayed
            ("notice", CO),
            // $a3: third neighbor, other room → edits + thread replies, no new alert;
            // coordination hears nothing of one more report (issue 24)
            ("edit", HF),
            ("thread_reply", HF),
            ("edit", CL),
            ("thread_reply", CL),
            ("reply", CL),
        ]),
        "the duplicate $a2, the chat line, the bot's own echo and the m.notice produce nothing"
    );
    let id = s(&a[0]["incident"]["id"]).to_owned();
    assert!(
        id.len() == 4 && id.chars().all(|c| c.is_ascii_alphanumeric()),
        "short ID, got {id}"
    );
    assert!(
        a.iter()
            .filter(|x| !x["incident"].is_null())
            .all(|x| x["incident"]["id"] == id.as_str()),
        "one incident"
    );

    // First acknowledgment: quiet, in reply to the report, unconfirmed, says 1 of 2.
    assert_eq!(s(&a[0]["in_reply_to"]), "$a1");
    assert_eq!(s(&a[0]["msgtype"]), "m.notice");
    assert_eq!(s(&a[0]["incident"]["status"]), "unverified");
    assert_eq!(a[0]["incident"]["version"], 1);
    assert!(
        s(&a[0]["body"]).contains("31st & Market") && s(&a[0]["body"]).contains("1 of 2"),
        "{}",
        a[0]["body"]
    );

    // The alert: notifying m.text, mentions the room (near a school), plain and escaped HTML.
    let alert = &a[2];
    assert_eq!(s(&alert["msgtype"]), "m.text");
    assert_eq!(alert["mentions_room"], true);
    assert_eq!(s(&alert["incident"]["status"]), "confirmed");
    assert_eq!(alert["incident"]["version"], 2);
    assert_eq!(alert["incident"]["hops"], 0);
    let body = s(&alert["body"]);
    for needle in [
        "CONFIRMED",
        "31st & Market",
        "Hoover Elementary (school)",
        "first seen 8:05 AM",
        "last seen 8:09 AM",
        "2 independent",
        "4 agents",
        "2 vehicles",
        "7ABC123",
        &id,
    ] {
        assert!(body.contains(needle), "alert lacks {needle:?}:\n{body}");
    }
    assert!(
        body.contains("in Hoover-Foster"),
        "distance from the receiving neighborhood: {body}"
    );
    assert!(
        s(&a[4]["body"]).contains("m from Clawson & McClymonds"),
        "{}",
        a[4]["body"]
    );
    assert!(s(&alert["html"]).contains("31st &amp; Market"));
    // The m.location after each alert.
    assert!(
        s(&a[3]["geo_uri"]).starts_with("geo:37.82"),
        "{}",
        a[3]["geo_uri"]
    );
    assert!(s(&a[3]["geo_uri"]).contains(";u="));
    assert_eq!(a[3]["incident"]["id"], id.as_str());
    // Confirmation acknowledgment to the second neighbor.
    assert_eq!(s(&a[6]["in_reply_to"]), "$a2");
    assert!(s(&a[6]["body"]).contains("confirmed") && s(&a[6]["body"]).contains("2 rooms"));
    // Coordination hears the change once: confirmed and relayed.
    assert!(
        s(&a[7]["body"]).contains("confirmed and relayed to 2 rooms"),
        "{}",
        a[7]["body"]
    );
    // Update: the edit carries the new version and count; the thread reply is quiet.
    assert_eq!(a[8]["incident"]["version"], 3);
    assert!(s(&a[8]["body"]).contains("3 independent"));
    assert_eq!(
        a[8]["mentions_room"], false,
        "an edit never pings the room again"
    );
    assert_eq!(s(&a[9]["msgtype"]), "m.notice");
    assert!(s(&a[9]["body"]).contains("3 independent reports"));
    assert_eq!(s(&a[12]["in_reply_to"]), "$a3");
}

#[test]
fn far_away_sighting_never_reaches_oakland() {
    let a = replay("far_away");
    let oakland = [HF, CL, PR, FV];
    assert!(
        a.iter().all(|x| !oakland.contains(&s(&x["room"]))),
        "{a:#?}"
    );
    let relays: Vec<_> = a.iter().filter(|x| x["action"] == "relay").collect();
    assert_eq!(relays.len(), 1);
    assert_eq!(s(&relays[0]["room"]), BY);
    // Back of the Yards reads Spanish, in Chicago time (10:01 and 10:08 local).
    let body = s(&relays[0]["body"]);
    assert!(
        body.contains("CONFIRMADO") && body.contains("47th & Ashland"),
        "{body}"
    );
    assert!(body.contains("visto primero 10:01"), "{body}");
    assert_eq!(a.iter().filter(|x| x["action"] == "location").count(), 1);
}

#[test]
fn unknown_place_gets_suggestions_and_waits_for_an_edit_or_a_location() {
    let a = replay("unknown_place");
    assert_eq!(
        shape(&a),
        pairs(&[
            ("reply", CL),
            ("reply", CL),
            ("notice", CO),
            ("reply", PR),
            ("reply", PR),
            ("notice", CO),
            ("reply", "!random:elsewhere.example"),
        ])
    );
    // Suggestions, no incident yet.
    assert!(a[0]["incident"].is_null());
    assert!(
        s(&a[0]["body"]).contains("“Mandela & 18th”") && s(&a[0]["body"]).contains("Mandela Pkwy"),
        "{}",
        a[0]["body"]
    );
    // The edit resolves it; the acknowledgment answers the original report.
    assert_eq!(s(&a[1]["in_reply_to"]), "$u1");
    assert!(s(&a[1]["body"]).contains("West Grand & Mandela"));
    // Nothing close to "the old cannery": no suggestions, but a way forward.
    assert!(s(&a[3]["body"]).contains("share a location"));
    // The location share completes the waiting report, named by the nearest corner.
    assert_eq!(s(&a[4]["in_reply_to"]), "$u2");
    assert!(
        s(&a[4]["body"]).contains("7th & Mandela"),
        "{}",
        a[4]["body"]
    );
    // A room outside the network says so.
    assert!(s(&a[6]["body"]).contains("not part of the neighborwatch network"));
}

#[test]
fn html_in_a_report_is_escaped_in_every_html_body() {
    let a = replay("html_report");
    let relays: Vec<_> = a.iter().filter(|x| x["action"] == "relay").collect();
    assert_eq!(relays.len(), 2, "Prescott and the nearby Clawson room");
    for r in &relays {
        let html = s(&r["html"]);
        assert!(
            !html.contains("<img") && !html.contains("<script") && !html.contains("<b>ICE"),
            "{html}"
        );
        // Facts, not words: the reports' own text is not in the alert at all.
        assert!(
            !html.contains("onerror") && !s(&r["body"]).contains("onerror"),
            "{html}"
        );
    }
    // Where the bot does echo what was typed (the place it could not find), it is
    // escaped in the HTML body and shown as typed in the plain one.
    let unplaced = a
        .iter()
        .find(|x| x["in_reply_to"] == "$h3")
        .expect("the unplaced report is answered");
    let html = s(&unplaced["html"]);
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;") && !html.contains("<img"),
        "{html}"
    );
    assert!(html.contains("&quot;vests&quot;"), "{html}");
    assert!(s(&unplaced["body"]).contains("<img src=x onerror=alert(1)>"));
    for x in &a {
        if let Some(h) = x["html"].as_str() {
            assert!(!h.contains("<script"), "{h}");
        }
    }
}

#[test]
fn future_old_and_malformed_reports_each_get_their_own_reply() {
    let a = replay("times");
    assert_eq!(
        shape(&a),
        pairs(&[
            ("reply", HF),
            ("reply", FV),
            ("reply", HF),
            ("reply", HF),
            ("reply", HF)
        ])
    );
    assert!(
        a.iter()
            .all(|x| x["incident"].is_null() && x["msgtype"] == "m.notice")
    );
    let bodies: Vec<&str> = a.iter().map(|x| s(&x["body"])).collect();
    assert!(
        bodies[0].contains("84 minutes in the future")
            && bodies[0].contains("!r 2 unmarked black SUVs"),
        "{}",
        bodies[0]
    );
    assert!(
        bodies[1].contains("84 minutos en el futuro") && bodies[1].contains("!aviso"),
        "{}",
        bodies[1]
    );
    assert!(bodies[2].contains("older than 20 minutes"), "{}", bodies[2]);
    assert!(
        bodies[3].contains("empty") && bodies[3].contains("for example"),
        "{}",
        bodies[3]
    );
    assert!(bodies[4].contains("no Location line"), "{}", bodies[4]);
    let ids: Vec<&str> = a.iter().map(|x| s(&x["in_reply_to"])).collect();
    assert_eq!(ids, ["$t1", "$t2", "$t3", "$t4", "$t5"]);
}

#[test]
fn no_output_names_a_sender() {
    for name in [
        "school_dropoff",
        "far_away",
        "unknown_place",
        "html_report",
        "times",
    ] {
        let input = std::fs::read_to_string(fixture(name)).unwrap();
        let senders: Vec<String> = input
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["sender"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .filter(|s| s != "@neighborwatch:oakland.example")
            .collect();
        for action in replay(name) {
            let text = action.to_string();
            for sender in &senders {
                let local = sender.trim_start_matches('@').split(':').next().unwrap();
                assert!(
                    !text.contains(sender.as_str()) && !text.contains(&format!("@{local}")),
                    "{name}: {text} names {sender}"
                );
            }
        }
    }
}

#[test]
fn bad_input_lines_are_reported_with_their_number_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let good = std::fs::read_to_string(fixture("times")).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(
        &input,
        format!("{first}\nnot json\n{{\"room\":\"!x:y\"}}\n{first}\n"),
    )
    .unwrap();
    let (actions, stderr, code) = replay_cmd(&input, None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("line 2:")
            && stderr.contains("line 3:")
            && stderr.contains("missing field `sender`"),
        "{stderr}"
    );
    assert_eq!(
        actions.len(),
        1,
        "the good line is handled once (line 4 repeats it)"
    );
}

#[test]
fn help_documents_both_formats() {
    let out = Command::new(env!("CARGO_BIN_EXE_neighborwatch"))
        .args(["replay", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("INPUT FORMAT") && help.contains("\"sender\"") && help.contains("\"geo\""),
        "{help}"
    );
    assert!(
        help.contains("OUTPUT FORMAT")
            && help.contains("thread_reply")
            && help.contains("in_reply_to"),
        "{help}"
    );
}

#[test]
fn verifier_lifecycle_through_replay_refusal_false_alarm_undo_withdrawal_all_clear() {
    let a = replay("verifier_lifecycle");
    let ids: Vec<&str> = a.iter().map(|x| s(&x["event_id"])).collect();
    assert_eq!(
        ids[..3],
        ["$v1/1", "$v1/2", "$v2/1"],
        "every action has the event ID it stands for"
    );
    assert_eq!(s(&a[4]["action"]), "relay");
    assert_eq!(s(&a[4]["event_id"]), "$v2/3");
    assert_eq!(
        s(&a[4]["room"]),
        CL,
        "$v2/3 is the alert in Clawson the fixture reacts to"
    );
    let id = s(&a[4]["incident"]["id"]).to_owned();
    assert_eq!(id, "C9TU", "the fixture types the first incident's ID");
    let after_confirm = 8;
    let status_change = |room: &str| {
        vec![
            ("edit".to_owned(), HF.to_owned()),
            ("thread_reply".to_owned(), HF.to_owned()),
            ("edit".to_owned(), CL.to_owned()),
            ("thread_reply".to_owned(), CL.to_owned()),
            ("notice".to_owned(), room.to_owned()),
        ]
    };
    let rest = shape(&a[after_confirm..]);
    let mut want = pairs(&[("reply", HF)]); // $v3: a neighbor's !false is refused
    // $v3r: a neighbor's ❌ does nothing. $v4: Clawson's moderator's ❌: Clawson is not
    // the incident's home, so Clawson's alert only, and the home and coordination asked.
    want.extend(pairs(&[
        ("edit", CL),
        ("thread_reply", CL),
        ("notice", HF),
        ("notice", CO),
    ]));
    // $v4b: Hoover-Foster's moderator's ❌: false alarm everywhere.
    want.extend(status_change(CO));
    // $v5: a verifier's !confirm undoes it.
    want.extend(status_change(CO));
    want.push(("reply".into(), HF.into()));
    // $v6: the report withdrawn was made before the false alarm, which dropped its
    // event ID with the incident's close (PRODUCT.md §6): the reopened incident no
    // longer knows it, so nothing happens (withdrawals from open incidents: lifecycle.rs).
    // $v7: a moderator's !clear.
    want.extend(status_change(CO));
    want.push(("reply".into(), HF.into()));
    assert_eq!(rest, want);
    let refusal = &a[after_confirm];
    assert_eq!(s(&refusal["in_reply_to"]), "$v3");
    assert!(
        s(&refusal["body"]).contains("Only verifiers and room moderators"),
        "{refusal}"
    );

    let mark = &a[after_confirm + 1];
    assert!(
        s(&mark["body"]).starts_with("❌ FALSE ALARM")
            && s(&mark["body"]).contains("Marked false alarm here by a moderator of Clawson"),
        "{mark}"
    );
    assert_eq!(
        s(&mark["incident"]["status"]),
        "confirmed",
        "the incident itself is not changed by Clawson"
    );
    let asked = &a[after_confirm + 3];
    assert!(
        s(&asked["body"]).contains("C9TU") && s(&asked["body"]).contains("!false C9TU"),
        "{asked}"
    );
    for (i, what) in [(2, "a mark"), (6, "a false alarm")] {
        assert_eq!(
            s(&a[after_confirm + i]["msgtype"]),
            "m.text",
            "{what} notifies"
        );
        assert_eq!(
            a[after_confirm + i]["mentions_room"],
            true,
            "{what} mentions the room as the alert did (near a school)"
        );
    }
    let fa_edit = &a[after_confirm + 5];
    assert!(
        s(&fa_edit["body"]).starts_with("❌ FALSE ALARM"),
        "{fa_edit}"
    );
    assert_eq!(s(&fa_edit["incident"]["status"]), "false_alarm");

    let undo = &a[after_confirm + 10];
    assert!(
        s(&undo["body"]).contains("confirmed by a verifier"),
        "{undo}"
    );
    let clear = &a[after_confirm + 16];
    assert!(
        s(&clear["body"]).contains("Reports: 2 independent"),
        "the reporters counted before the false alarm still count, by number: {clear}"
    );
    assert!(s(&clear["body"]).starts_with("🟢 ALL CLEAR"), "{clear}");
    assert_eq!(s(&clear["incident"]["status"]), "resolved");
    let versions: Vec<u64> = a
        .iter()
        .filter(|x| x["action"] == "edit" && x["room"] == CL)
        .map(|x| x["incident"]["version"].as_u64().unwrap())
        .collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "every change bumps the version: {versions:?}"
    );
    for x in &a {
        let text = x.to_string();
        for who in ["maria", "dlee", "kim", "carol", "ana.verifier", "mona"] {
            assert!(!text.contains(who), "{who} named in {text}");
        }
    }
}

#[test]
fn room_commands_answer_anyone_in_the_rooms_language_and_change_nothing() {
    let a = replay("room_commands");
    const ELSEWHERE: &str = "!elsewhere:oakland.example";
    let replies: Vec<(String, String)> = shape(&a).into_iter().take(11).collect();
    assert_eq!(
        replies,
        pairs(&[
            ("reply", HF), // $c0 !nw incidents, nothing open yet
            ("reply", HF), // $c1 the report's acknowledgment
            ("notice", CO),
            ("reply", HF),        // $c2 !nw status
            ("reply", HF),        // $c3 !nw incidents
            ("reply", FV),        // $c4 !nw ayuda
            ("reply", FV),        // $c5 !NW Estado
            ("reply", HF),        // $c6 !nw <b>launch</b>
            ("reply", CO),        // $c7 !nw status, network-wide
            ("reply", CO),        // $c8 !nw incidents, network-wide
            ("reply", ELSEWHERE), // $c9 outside the network
        ]),
        "one quiet reply per command; the repeated $c3 gets none"
    );
    let body = |i: usize| s(&a[i]["body"]).to_owned();
    for (i, event) in [
        (0, "$c0"),
        (3, "$c2"),
        (4, "$c3"),
        (5, "$c4"),
        (6, "$c5"),
        (7, "$c6"),
        (8, "$c7"),
        (9, "$c8"),
        (10, "$c9"),
    ] {
        assert_eq!(s(&a[i]["in_reply_to"]), event);
        assert_eq!(s(&a[i]["msgtype"]), "m.notice", "{}", body(i));
    }
    let id = s(&a[1]["incident"]["id"]).to_owned();
    assert!(body(0).contains("no open incidents"), "{}", body(0));
    // Status: the neighborhood, its open incidents, and its settings from the file.
    for needle in [
        "Hoover-Foster",
        "open incidents 1",
        "confirmed 0",
        ": 2",
        "1.6 km",
    ] {
        assert!(body(3).contains(needle), "{needle:?} in {}", body(3));
    }
    // Incidents: ID, place, status and age.
    for needle in [id.as_str(), "31st & Market", "unverified", "15 min"] {
        assert!(body(4).contains(needle), "{needle:?} in {}", body(4));
    }
    // Spanish rooms get Spanish answers, with the Spanish command words.
    for needle in ["!nw estado", "!nw incidentes", "!aviso"] {
        assert!(body(5).contains(needle), "{needle:?} in {}", body(5));
    }
    assert!(
        body(6).contains("Fruitvale") && body(6).contains("incidentes abiertos 0"),
        "{}",
        body(6)
    );
    // An unknown word: the valid forms, the word escaped in HTML.
    assert!(
        body(7).contains("<b>launch</b>") && body(7).contains("!nw status"),
        "{}",
        body(7)
    );
    let html = s(&a[7]["html"]);
    assert!(
        html.contains("&lt;b&gt;launch") && !html.contains("<b>launch"),
        "{html}"
    );
    // The coordination room: the whole network (five neighborhoods, five rooms).
    for needle in ["neighborhoods 5", "rooms 5", "open incidents 1"] {
        assert!(body(8).contains(needle), "{needle:?} in {}", body(8));
    }
    assert!(body(9).contains(&id), "{}", body(9));
    assert!(body(10).contains("not part of"), "{}", body(10));
    // None of it counted as a report: the next neighbor's report is the second of two,
    // and confirms.
    let rest = &a[11..];
    assert!(
        rest.iter()
            .any(|x| x["action"] == "relay" && x["room"] == HF),
        "{rest:?}"
    );
    let ack = rest
        .iter()
        .find(|x| x["action"] == "reply" && x["in_reply_to"] == "$c10")
        .expect("the confirming report is acknowledged");
    assert!(s(&ack["body"]).contains("confirmed"), "{}", ack["body"]);
    assert!(rest.iter().all(|x| x["incident"]["id"] == id.as_str()));
}

#[test]
fn counts_read_as_written_and_a_sighting_at_the_school_names_it_once() {
    let a = replay("at_the_school");
    let relay = a
        .iter()
        .find(|x| x["action"] == "relay" && x["room"] == HF)
        .expect("a moderator's report confirms at once");
    let body = s(&relay["body"]);
    let headline = body.lines().next().unwrap_or_default();
    assert_eq!(
        headline.matches("Hoover Elementary").count(),
        1,
        "the place once in the headline: {headline}"
    );
    assert!(headline.contains("(school)"), "{headline}");
    assert!(
        !body.contains("near Hoover Elementary"),
        "no landmark line naming the place itself: {body}"
    );
    // One of each, in the singular.
    for needle in ["1 agent ", "1 vehicle"] {
        assert!(body.contains(needle), "{needle:?} in {body}");
    }
    assert!(!body.contains("(s)"), "{body}");
    let coordination: Vec<&str> = a
        .iter()
        .filter(|x| x["room"] == CO)
        .map(|x| s(&x["body"]))
        .collect();
    assert!(
        coordination
            .iter()
            .any(|b| b.contains("1 independent report, 2 needed to confirm")),
        "{coordination:?}"
    );
    for x in &a {
        assert!(!s(&x["body"]).contains("(s)"), "{}", x["body"]);
    }
}

#[test]
fn settings_are_shown_to_room_admins_only_with_their_source() {
    let a = replay("settings_command");
    assert_eq!(
        shape(&a),
        pairs(&[
            ("reply", HF),
            ("reply", HF),
            ("reply", HF),
            ("reply", HF),
            ("notice", CO),
            ("reply", HF),
            ("reply", FV),
            ("reply", CO),
        ]),
        "one quiet reply per command, and the change's audit line"
    );
    let body = |i: usize| s(&a[i]["body"]).to_owned();
    for (i, x) in a.iter().enumerate() {
        assert_eq!(s(&x["msgtype"]), "m.notice", "{}", body(i));
        if i != 4 {
            let n = if i < 4 { i + 1 } else { i };
            assert_eq!(s(&x["in_reply_to"]), format!("$t{n}"));
        }
    }
    // A plain member's change is refused and says who may.
    assert!(
        body(0).contains("Only room admins") && !body(0).contains("alert_radius_m = "),
        "{}",
        body(0)
    );
    // An admin (power 50) sees every setting, with the values of the network file
    // (config/example.toml: [defaults], Hoover-Foster's own verifier added).
    for needle in [
        "Settings of Hoover-Foster",
        "confirmations = 2 (file)",
        "alert_radius_m = 1600 (file)",
        "dedupe_radius_m = 250 (file)",
        "dedupe_window_min = 20 (file)",
        "expiry_hours = 4 (file)",
        "retention_hours = 24 (file)",
        "max_reports_per_10min = 5 (file)",
        "timezone = America/Los_Angeles (file)",
        "verifiers = 2 (file)",
    ] {
        assert!(body(1).contains(needle), "{needle:?} in {}", body(1));
    }
    // One key, in any case.
    assert!(body(2).contains("alert_radius_m = 1600"), "{}", body(2));
    assert!(!body(2).contains("confirmations"), "{}", body(2));
    // An admin's change is applied and said, old and new; the coordination room hears who
    // changed what, where.
    assert!(body(3).contains("now 5000 (was 1600)"), "{}", body(3));
    for needle in [
        "@mona:oakland.example",
        "alert_radius_m",
        "1600 → 5000",
        HF,
        "Hoover-Foster",
    ] {
        assert!(
            body(4).contains(needle),
            "{needle:?} in the audit line {}",
            body(4)
        );
    }
    // An unknown key: the valid ones, escaped in HTML.
    assert!(
        body(5).contains("“radius”") && body(5).contains("alert_radius_m"),
        "{}",
        body(5)
    );
    assert!(!s(&a[5]["html"]).contains("<i>"), "{}", a[5]["html"]);
    // Power 49 is not an admin; the refusal is in the room's language.
    assert!(body(6).contains("Solo los administradores"), "{}", body(6));
    // The coordination room: the network's defaults.
    assert!(
        body(7).contains("the network's defaults") && body(7).contains("confirmations = 2"),
        "{}",
        body(7)
    );
}

/// `neighborwatch check --state`: whether it succeeded, its stdout and stderr.
fn check_state(state: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neighborwatch"))
        .args(["check", "--config"])
        .arg(crate::support::example_path())
        .arg("--state")
        .arg(state)
        .env(PASSPHRASE_VAR, PASSPHRASE)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The relays of incident actions: the rooms alerted.
fn relayed_rooms(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .filter(|a| a["action"] == "relay")
        .map(|a| s(&a["room"]).to_owned())
        .collect()
}

fn reply_to<'a>(actions: &'a [Value], event: &str) -> &'a str {
    let a = actions
        .iter()
        .find(|a| a["in_reply_to"] == event)
        .unwrap_or_else(|| panic!("no reply to {event}: {actions:#?}"));
    s(&a["body"])
}

#[test]
fn a_room_admins_setting_is_validated_like_the_file_steers_routing_and_survives_a_restart() {
    // Without any change, a sighting at 31st & Market (312 m from Clawson's area) is
    // relayed to Clawson: the file's alert_radius_m is 1600.
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.jsonl");
    let lines = std::fs::read_to_string(fixture("settings_change")).unwrap();
    std::fs::write(&control, lines.lines().last().unwrap()).unwrap();
    let (a, err, code) = replay_cmd(&control, None);
    assert_eq!(code, 0, "{err}");
    assert!(relayed_rooms(&a).contains(&CL.to_owned()), "{a:#?}");

    let store = dir.path().join("state.sled");
    let (a, err, code) = replay_cmd(&fixture("settings_change"), Some(&store));
    assert_eq!(code, 0, "{err}");
    // Clawson's admin sets 200 m: said in the room, audited in the coordination room.
    assert!(
        reply_to(&a, "$s1")
            .contains("alert_radius_m of Clawson & McClymonds is now 200 (was 1600)"),
        "{}",
        reply_to(&a, "$s1")
    );
    let audits: Vec<&str> = a
        .iter()
        .filter(|x| x["action"] == "notice" && x["room"] == CO && s(&x["body"]).contains("⚙️"))
        .map(|x| s(&x["body"]))
        .collect();
    assert_eq!(audits.len(), 1, "one audit line per change: {audits:#?}");
    for needle in ["@carol:eastbay.example", "alert_radius_m", "1600 → 200", CL] {
        assert!(audits[0].contains(needle), "{needle:?} in {}", audits[0]);
    }
    // Bad values get the network file's rule, in the room's language; nothing changes.
    assert!(
        reply_to(&a, "$s2").contains(
            "Nothing changed: alert_radius_m must be a distance above 0 and at most 100000 metres, not 0"
        ),
        "{}",
        reply_to(&a, "$s2")
    );
    assert!(
        reply_to(&a, "$s3").contains("debe ser un número entero de 1 a 100, no 1000"),
        "{}",
        reply_to(&a, "$s3")
    );
    assert!(
        reply_to(&a, "$s4").contains("verifiers is a list")
            && reply_to(&a, "$s4").contains("!nw verifiers add"),
        "{}",
        reply_to(&a, "$s4")
    );
    assert!(
        reply_to(&a, "$s5").contains("defaults are changed in the network file"),
        "{}",
        reply_to(&a, "$s5")
    );
    // A plain member is refused.
    assert!(
        reply_to(&a, "$s6").contains("Only room admins"),
        "{}",
        reply_to(&a, "$s6")
    );
    // The same value again changes nothing and is not audited.
    assert!(
        reply_to(&a, "$s7").contains("already 200"),
        "{}",
        reply_to(&a, "$s7")
    );
    // The setting shows its source: the room, who, when (8:05 AM in Oakland).
    assert!(
        reply_to(&a, "$s8").contains(
            "alert_radius_m = 200 (room, set by @carol:eastbay.example at Mar 2, 8:05 AM)"
        ),
        "{}",
        reply_to(&a, "$s8")
    );
    // The next incident's routing follows it: Clawson is no longer alerted.
    assert_eq!(relayed_rooms(&a), vec![HF.to_owned()], "{a:#?}");

    // `neighborwatch check --state` shows the effective settings, the room-set one marked.
    let check = check_state;
    let (ok, out, err) = check(&store);
    assert!(ok, "{err}");
    let clawson: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("clawson (Clawson"))
        .take(3)
        .collect();
    assert!(clawson[1].contains("alert_radius_m = 200 *"), "{out}");
    assert!(
        clawson[2]
            .contains("set from a room by @carol:eastbay.example in !clawson:eastbay.example")
            && clawson[2].contains("the network file says 1600"),
        "{out}"
    );
    assert!(
        out.contains("alert_radius_m = 1600, "),
        "other neighborhoods keep the file's: {out}"
    );
    let (ok, _, err) = check(&dir.path().join("no-such-state"));
    assert!(!ok && err.contains("is not a state database"), "{err}");

    // The store reopened (a restart): the value is still in force, with its source.
    let (a, err, code) = replay_cmd(&fixture("settings_after_restart"), Some(&store));
    assert_eq!(code, 0, "{err}");
    assert!(
        reply_to(&a, "$u1").contains("alert_radius_m = 200 (room, set by @carol:eastbay.example"),
        "{}",
        reply_to(&a, "$u1")
    );
    let first: Vec<&Value> = a.iter().take_while(|x| x["in_reply_to"] != "$u2").collect();
    assert!(
        first
            .iter()
            .any(|x| x["action"] == "relay" && x["room"] == HF)
            && !first
                .iter()
                .any(|x| x["action"] == "relay" && x["room"] == CL),
        "after the restart, 32nd & San Pablo (655 m away) is not relayed to Clawson: {a:#?}"
    );
    // Reset: the file's value again, audited; a second reset changes nothing.
    assert!(
        reply_to(&a, "$u3").contains("back to the network file's value, 1600 (was 200)"),
        "{}",
        reply_to(&a, "$u3")
    );
    assert!(
        a.iter()
            .any(|x| x["room"] == CO && s(&x["body"]).contains("200 → 1600")),
        "{a:#?}"
    );
    assert!(
        reply_to(&a, "$u4").contains("already 1600"),
        "{}",
        reply_to(&a, "$u4")
    );
    let after: Vec<String> = relayed_rooms(
        &a.iter()
            .skip_while(|x| x["in_reply_to"] != "$u4")
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert!(
        after.contains(&CL.to_owned()),
        "Clawson is alerted again: {a:#?}"
    );
}

#[test]
fn a_drill_reaches_every_room_a_real_alert_would_quietly_never_merges_and_clears_in_a_minute() {
    let a = replay("drill");
    let of = |e: &str| -> Vec<&Value> {
        a.iter()
            .filter(|x| s(&x["event_id"]).starts_with(&format!("{e}/")))
            .collect()
    };
    // A plain member cannot start one; the coordination room is told where drills run.
    assert!(s(&of("$d1")[0]["body"]).contains("Only room admins"));
    assert_eq!(of("$d1").len(), 1);
    assert!(s(&of("$d3")[0]["body"]).contains("Drills run in a neighborhood's room"));
    // The drill: relayed to the same rooms as the real report at the same place after it.
    let rooms = |v: &[&Value]| -> Vec<String> {
        v.iter()
            .filter(|x| x["action"] == "relay")
            .map(|x| s(&x["room"]).to_owned())
            .collect()
    };
    let drill = of("$d2");
    let real = of("$d4");
    assert_eq!(rooms(&drill), vec![HF.to_owned(), CL.to_owned()]);
    assert_eq!(
        rooms(&drill),
        rooms(&real),
        "a drill reaches every room a real alert would"
    );
    // Every message of the drill says DRILL first, is quiet, mentions no one; the real
    // alert near a school does notify and mention.
    // (The audit line is about the drill, not part of it.)
    for x in drill
        .iter()
        .chain(of("$d5").iter().filter(|x| x["action"] != "reply"))
        .filter(|x| x["action"] == "location" || x["incident"].is_object())
    {
        assert!(s(&x["body"]).starts_with("🧪 DRILL — "), "{x}");
        if x["action"] != "location" {
            assert_eq!(x["msgtype"], "m.notice", "{x}");
            assert_eq!(x["mentions_room"], false, "{x}");
            assert!(s(&x["html"]).starts_with("🧪 DRILL — "), "{x}");
        }
    }
    let real_alert = real.iter().find(|x| x["action"] == "relay").unwrap();
    assert_eq!(real_alert["msgtype"], "m.text");
    assert_eq!(real_alert["mentions_room"], true);
    assert!(!s(&real_alert["body"]).contains("DRILL"));
    // Audited, with who ran it.
    assert!(
        drill.iter().any(|x| x["room"] == CO
            && s(&x["body"]).contains("@mona:oakland.example started a drill in Hoover-Foster")),
        "{drill:#?}"
    );
    // The real report at the drill's place opened its own incident.
    let drill_id = &drill[0]["incident"]["id"];
    let real_id = &real[0]["incident"]["id"];
    assert_ne!(drill_id, real_id, "a real report never merges with a drill");
    // A minute later: the drill's all clear edits every alert and tells each thread; the
    // real incident stays open.
    let clear = of("$d5");
    let edits: Vec<&str> = clear
        .iter()
        .filter(|x| x["action"] == "edit")
        .map(|x| s(&x["room"]))
        .collect();
    assert_eq!(edits, vec![HF, CL]);
    assert!(
        clear
            .iter()
            .all(|x| x["action"] == "reply" || x["incident"]["id"] == *drill_id)
    );
    assert!(
        clear
            .iter()
            .any(|x| x["action"] == "thread_reply" && s(&x["body"]).contains("ALL CLEAR"))
    );
    let listed = clear.iter().find(|x| x["action"] == "reply").unwrap();
    assert!(
        s(&listed["body"]).contains(real_id.as_str().unwrap())
            && !s(&listed["body"]).contains(drill_id.as_str().unwrap()),
        "{}",
        listed["body"]
    );
}

#[test]
fn room_admins_add_and_remove_their_neighborhoods_verifiers_and_it_survives_a_restart() {
    // The store is reopened after line 4 (a restart): later lines read it back.
    let a = replay_split("verifiers_command", 4);
    let audit: Vec<&str> = a
        .iter()
        .filter(|x| x["room"] == CO && s(&x["body"]).starts_with("👤"))
        .map(|x| s(&x["body"]))
        .collect();
    assert_eq!(
        audit.len(),
        4,
        "one audit line per verifier changed: {audit:#?}"
    );
    assert!(
        audit[0]
            .contains("@mona:oakland.example added verifier @zoe:oakland.example to Hoover-Foster")
    );
    // A plain member is refused.
    assert!(reply_to(&a, "$v1").contains("Only room admins"));
    // Added, unchanged and invalid are each said.
    let r = reply_to(&a, "$v2");
    assert!(
        r.contains("Now verifiers of Hoover-Foster: @zoe:oakland.example")
            && r.contains("Nothing to change for @ana.verifier:oakland.example")
            && r.contains("not-a-user"),
        "{r}"
    );
    // The new verifier's report confirms at once.
    assert!(
        reply_to(&a, "$v3").contains("confirmed by a verifier"),
        "{}",
        reply_to(&a, "$v3")
    );
    // The network-wide verifier removed for Hoover-Foster: after the restart, their report
    // there is an ordinary one.
    assert!(reply_to(&a, "$v4").contains("No longer verifiers of Hoover-Foster: @lupe.verifier"));
    assert!(
        reply_to(&a, "$v5").contains("1 of 2 independent reports"),
        "{}",
        reply_to(&a, "$v5")
    );
    // The list, in Spanish words for the command but the room's language (English).
    let list = reply_to(&a, "$v6");
    assert!(
        list.contains("@ana.verifier:oakland.example (file)")
            && list.contains("@zoe:oakland.example (room, added by @mona:oakland.example")
            && !list.contains("lupe"),
        "{list}"
    );
    // Removing the room-added one and adding back the file's: the file's list again.
    let list = reply_to(&a, "$v9");
    assert!(
        list.contains("@lupe.verifier:oakland.example (file)")
            && list.contains("@ana.verifier:oakland.example (file)")
            && !list.contains("zoe"),
        "{list}"
    );
    assert!(reply_to(&a, "$v10").contains("Verifiers belong to a neighborhood"));
}

#[test]
fn a_room_admin_moves_the_neighborhoods_area_routing_follows_and_reset_restores_it() {
    // The store is reopened after line 6 (a restart): later lines read it back.
    let a = replay_split("area_command", 6);
    assert!(
        reply_to(&a, "$a1").contains("37.81750,-122.28300 600 (file)"),
        "{}",
        reply_to(&a, "$a1")
    );
    assert!(reply_to(&a, "$a2").contains("Only room admins"));
    assert!(reply_to(&a, "$a3").contains("`95,10` is not a latitude, longitude in range"));
    assert!(reply_to(&a, "$a4").contains("must be a distance above 0"));
    assert!(reply_to(&a, "$a5").contains("!nw area center LAT,LON radius_m N"));
    assert!(
        reply_to(&a, "$a6").contains("now 41.80800,-87.66500 500 (was 37.81750,-122.28300 600)"),
        "{}",
        reply_to(&a, "$a6")
    );
    assert!(
        a.iter().any(|x| x["room"] == CO
            && s(&x["body"]).contains("@carol:eastbay.example changed area of Clawson")),
        "audited"
    );
    assert!(
        reply_to(&a, "$a7").contains("41.80800,-87.66500 500 (room, set by @carol:eastbay.example"),
        "{}",
        reply_to(&a, "$a7")
    );
    let relayed = |e: &str| -> Vec<String> {
        a.iter()
            .filter(|x| x["action"] == "relay" && s(&x["event_id"]).starts_with(&format!("{e}/")))
            .map(|x| s(&x["room"]).to_owned())
            .collect()
    };
    // Clawson's area moved away: 31st & Market no longer reaches it (it did with the
    // file's area: see the settings test's control run).
    assert_eq!(relayed("$a8"), vec![HF.to_owned()]);
    assert!(
        reply_to(&a, "$a9").contains("back to the network file's value, 37.81750,-122.28300 600")
    );
    assert!(relayed("$a10").contains(&CL.to_owned()));
}

#[test]
fn a_room_admin_adds_a_place_reports_name_it_after_a_restart_and_removing_it_forgets_it() {
    // The store is reopened after line 6 (the place was just added): later lines read it back.
    let a = replay_split("places_command", 6);
    assert!(reply_to(&a, "$p1").contains("the network file gives 20 places and 3 streets"));
    assert!(reply_to(&a, "$p2").contains("Only room admins"));
    assert!(
        a.iter()
            .all(|x| x["in_reply_to"] != "$p2" || x["room"] == HF),
        "a refusal is answered in the room only"
    );
    assert!(reply_to(&a, "$p3").contains("already has a place “Hoover Elementary”"));
    assert!(reply_to(&a, "$p4").contains("2968.1 km outside the area of Hoover-Foster"));
    assert!(reply_to(&a, "$p5").contains("“corner” is not a kind of place a room can add"));
    assert!(
        reply_to(&a, "$p6").contains("Taquería El Farolito (landmark, geo:37.82450,-122.27500)")
    );
    let audit: Vec<&str> = a
        .iter()
        .filter(|x| x["room"] == CO && s(&x["body"]).starts_with("📍"))
        .map(|x| s(&x["body"]))
        .collect();
    assert_eq!(audit.len(), 3, "added, changed, removed: {audit:#?}");
    assert!(audit[0].contains("@hana:oakland.example added place Taquería El Farolito"));
    assert!(
        audit[1].contains("(landmark, geo:37.82450,-122.27500) → TAQUERIA el farolito (shelter")
    );
    assert!(audit[2].contains("removed place TAQUERIA el farolito"));
    // After the restart a report typed without the accent names the added place.
    let r = reply_to(&a, "$p7");
    assert!(
        r.contains("incident") && r.contains("at Taquería El Farolito"),
        "{r}"
    );
    assert!(reply_to(&a, "$p8").contains(
        "Taquería El Farolito (landmark, geo:37.82450,-122.27500, added by @hana:oakland.example at"
    ));
    assert!(
        reply_to(&a, "$p9").contains("is now a shelter at geo:37.82500,-122.27550 (was a landmark")
    );
    assert!(reply_to(&a, "$p10").contains("no longer a place of Hoover-Foster"));
    // Removed: the same words no longer place a report.
    assert!(reply_to(&a, "$p11").contains("I couldn't place"));
    assert!(reply_to(&a, "$p12").contains("one of the network file's places"));
    assert!(reply_to(&a, "$p13").starts_with("Ninguna sala de Fruitvale agregó lugares"));
    assert!(reply_to(&a, "$p14").contains("Places belong to a neighborhood"));
    let html = a
        .iter()
        .find(|x| x["in_reply_to"] == "$p15")
        .and_then(|x| x["html"].as_str())
        .expect("an html reply");
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>"),
        "{html}"
    );
}

/// The numbers of one line of a `!nw stats` reply, by name: "reports 3 · incidents 2 …".
fn stats_line(reply: &str, who: &str) -> Vec<(String, String)> {
    let line = reply
        .lines()
        .find(|l| l.starts_with(&format!("{who}:")))
        .unwrap_or_else(|| panic!("no line for {who}: {reply}"));
    line[who.len() + 1..]
        .split(" · ")
        .flat_map(|part| part.split(", "))
        .map(|part| {
            let part = part.trim();
            // The value is the first word after a space that is a number or "none".
            let at = part
                .match_indices(' ')
                .map(|(i, _)| i + 1)
                .find(|&i| {
                    part[i..].starts_with(|c: char| c.is_ascii_digit())
                        || part[i..].starts_with("none")
                })
                .unwrap_or_else(|| panic!("no number in {part}"));
            (part[..at].trim().to_owned(), part[at..].to_owned())
        })
        .collect()
}

#[test]
fn stats_count_what_happened_in_the_window_leave_drills_out_and_survive_a_restart() {
    // The store is reopened after the drill (line 7): the numbers are read back.
    let a = replay_split("stats_command", 7);
    let lines: Vec<Value> = std::fs::read_to_string(fixture("stats_command"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // What the fixture holds, counted here from its lines and the bot's other answers.
    let reports = lines
        .iter()
        .filter(|l| l["room"] == HF && s(&l["body"]).starts_with("!r "))
        .count();
    let ids = |e: &str| reply_to(&a, e).split("incident ").nth(1).unwrap()[..4].to_owned();
    let (first, false_alarm) = (ids("$s1"), ids("$s5"));
    let drill_relays = a
        .iter()
        .filter(|x| x["action"] == "relay" && s(&x["body"]).starts_with("🧪"))
        .count();
    let rooms_alerted = relayed_rooms(&a).len() - drill_relays;
    let refusals = ["$s3", "$s4"]
        .iter()
        .filter(|e| reply_to(&a, e).starts_with("Only"))
        .count();
    let minutes = (lines[1]["ts"].as_i64().unwrap() - lines[0]["ts"].as_i64().unwrap()) / 60_000;
    assert!(
        drill_relays > 0 && first != false_alarm,
        "the fixture has a drill and two incidents"
    );
    let want = |reports: usize,
                incidents: usize,
                confirmed: usize,
                fa: usize,
                median: &str,
                rooms: usize,
                refused: usize| {
        pairs(&[
            ("reports", &reports.to_string()),
            ("incidents", &incidents.to_string()),
            ("confirmed", &confirmed.to_string()),
            ("false alarms", &fa.to_string()),
            ("first report to confirmation: median", median),
            ("90th percentile", median),
            ("rooms alerted", &rooms.to_string()),
            ("refusals", &refused.to_string()),
        ])
    };
    let minutes = format!("{minutes} min");
    // Hidden from a plain member, counted as a refusal.
    assert!(reply_to(&a, "$s3").contains("Only room admins"));
    let day = reply_to(&a, "$s8");
    assert!(day.starts_with("Numbers for the last 24 hours"), "{day}");
    assert_eq!(
        stats_line(day, "Hoover-Foster"),
        want(reports, 2, 1, 1, &minutes, rooms_alerted, refusals),
        "{day}"
    );
    // The coordination room has the whole network and each neighborhood with activity.
    let network = reply_to(&a, "$s9");
    assert!(
        network.starts_with("Numbers for the last 1 hour "),
        "{network}"
    );
    assert_eq!(
        stats_line(network, "Whole network"),
        stats_line(day, "Hoover-Foster")
    );
    assert!(
        !network.contains("Clawson:"),
        "quiet neighborhoods are left out: {network}"
    );
    assert!(reply_to(&a, "$s10").contains("The form is !nw stats [HOURS], from 1 to 720"));
    // Two days later the last 24 hours are empty; the last 72 still hold it all.
    assert_eq!(
        stats_line(reply_to(&a, "$s11"), "Hoover-Foster"),
        want(0, 0, 0, 0, "none yet", 0, 0)
    );
    let three_days = reply_to(&a, "$s12");
    assert!(
        three_days.starts_with("Numbers for the last 72 hours"),
        "{three_days}"
    );
    assert_eq!(
        stats_line(three_days, "Hoover-Foster"),
        stats_line(day, "Hoover-Foster")
    );
}

#[test]
fn check_with_the_state_lists_the_places_added_from_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let (input, store) = (dir.path().join("in.jsonl"), dir.path().join("state.sled"));
    let all = std::fs::read_to_string(fixture("places_command")).unwrap();
    let lines: Vec<&str> = all.lines().take(6).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let (_, err, code) = replay_cmd(&input, Some(&store));
    assert_eq!(code, 0, "{err}");
    let (ok, out, err) = check_state(&store);
    assert!(ok, "{err}");
    let (_, before, _) = check_state(&dir.path().join("none.sled"));
    assert!(before.is_empty(), "no state database there: refused");
    assert!(
        out.contains("hoover-foster (Hoover-Foster): 1 room, 21 places"),
        "{out}"
    );
    assert!(
        out.contains("* place landmark 37.82450,-122.27500 Taquería El Farolito (kind, point, name): added from a room by @hana:oakland.example in !hooverfoster:oakland.example"),
        "{out}"
    );
    assert!(
        out.contains("clawson (Clawson & McClymonds): 1 room, 20 places"),
        "{out}"
    );
}
