//! The network file: the example is valid, and every kind of mistake is an error that
//! names the file, the line and the key.

use std::path::Path;

use neighborwatch::config::{Area, ConfigError, Network};

use crate::support::{NETWORK, example_path};

const BASE: &str = r#"[defaults]
confirmations = 2

[[neighborhood]]
id = "hoover-foster"
name = "Hoover-Foster"
rooms = ["!a:example.org"]
area = { center = [37.8240, -122.2760], radius_m = 600 }
gazetteer = ["places/oakland.geojson"]
"#;

/// Parses `text` as if it were a file in `config/`, so relative paths resolve.
fn parse(text: &str) -> Result<Network, ConfigError> {
    Network::parse(text, &example_path().with_file_name("test.toml"))
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn assert_names(e: &ConfigError, line: usize, key: &str) {
    let msg = e.to_string();
    assert!(msg.contains("test.toml"), "names the file: {msg}");
    assert_eq!(e.line(), Some(line), "line of: {msg}");
    assert!(
        e.key().is_some_and(|k| k.ends_with(key)),
        "key {key} in: {msg} (key {:?})",
        e.key()
    );
    assert!(msg.contains(&format!(":{line}:")), "{msg}");
}

#[test]
fn the_example_network_is_realistic() {
    let n = &*NETWORK;
    assert!(n.neighborhoods().len() >= 4);
    let oakland = n
        .neighborhoods()
        .iter()
        .filter(|x| x.settings.timezone == chrono_tz::America::Los_Angeles)
        .count();
    assert!(oakland >= 3);
    let byt = n.neighborhood("back-of-the-yards").unwrap();
    assert_eq!(byt.settings.timezone, chrono_tz::America::Chicago);
    assert!(
        byt.gazetteer
            .places()
            .iter()
            .any(|p| p.name == "Hamline Elementary")
    );
    let hf = n.neighborhood("hoover-foster").unwrap();
    assert!(
        hf.gazetteer
            .places()
            .iter()
            .any(|p| p.name == "Hoover Elementary")
    );
    assert_eq!(n.neighborhood("fruitvale").unwrap().settings.language, "es");
    assert!(matches!(
        n.neighborhood("fruitvale").unwrap().area,
        Area::Polygons(_)
    ));
    assert_eq!(hf.settings.dedupe_radius_m, 250.0);
    assert_eq!(n.matrix.as_ref().unwrap().password_env, "NW_PASSWORD");
}

#[test]
fn minimal_file_gets_the_documented_defaults() {
    let n = parse(BASE).unwrap();
    let s = &n.neighborhoods()[0].settings;
    assert_eq!(
        (s.dedupe_radius_m, s.dedupe_window_min, s.confirmations),
        (250.0, 20, 2)
    );
    assert_eq!(
        (
            s.alert_radius_m,
            s.sensitive_radius_m,
            s.expiry_hours,
            s.retention_hours
        ),
        (1600.0, 300.0, 4, 24)
    );
    assert_eq!(s.language, "en");
}

#[test]
fn unknown_keys_name_file_line_and_key() {
    let e = err(&BASE.replace("confirmations = 2", "confirmations = 2\nconfirmatons = 3"));
    assert_names(&e, 3, "confirmatons");
    let e = err(&format!("{BASE}colour = \"red\"\n"));
    assert_names(&e, 10, "colour");
    let e = err(&BASE.replace(
        "[defaults]",
        "[matrix]\nhomeserver = \"https://x\"\npasword = \"hunter2\"\n[defaults]",
    ));
    assert_names(&e, 3, "pasword");
}

#[test]
fn bad_values_name_file_line_and_key() {
    let e = err(&BASE.replace("radius_m = 600", "radius_m = 0"));
    assert_names(&e, 8, "area.radius_m");
    let e = err(&BASE.replace("[37.8240, -122.2760]", "[137.8, -122.2760]"));
    assert_names(&e, 8, "area.center");
    let e = err(&BASE.replace("confirmations = 2", "dedupe_radius_m = -5"));
    assert_names(&e, 2, "dedupe_radius_m");
    let e = err(&BASE.replace("confirmations = 2", "confirmations = 1.5"));
    assert_names(&e, 2, "confirmations");
    let e = err(&BASE.replace("confirmations = 2", "timezone = \"Mars/Olympus\""));
    assert_names(&e, 2, "timezone");
    let e = err(&BASE.replace("confirmations = 2", "language = \"xx\""));
    assert_names(&e, 2, "language");
    assert!(e.to_string().contains("en, es"), "{e}");
    let e = err(&BASE.replace("!a:example.org", "general chat"));
    assert_names(&e, 7, "rooms");
    let e = err(&BASE.replace("!a:example.org", "#alerts"));
    assert_names(&e, 7, "rooms");
    // Room version 12 IDs have no server part.
    assert!(
        parse(&BASE.replace(
            "!a:example.org",
            "!ZMLINPBuo8bi8s-FTST0VJge34cRzefhdK4nFQIY_XE"
        ))
        .is_ok()
    );
    let e = err(&format!(
        "{BASE}\n[[neighborhood]]\nid = \"hoover-foster\"\nname = \"x\"\nrooms = [\"!b:x.org\"]\narea = {{ center = [1.0, 1.0], radius_m = 5 }}\n"
    ));
    assert_names(&e, 12, "id");
}

#[test]
fn missing_gazetteer_file_names_the_reference() {
    let e = err(&BASE.replace("places/oakland.geojson", "places/nope.geojson"));
    assert_names(&e, 9, "gazetteer");
    assert!(e.to_string().contains("nope.geojson"), "{e}");
}

#[test]
fn broken_gazetteer_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("g.geojson"),
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[-122.2,37.8]},"properties":{"name":"X","kind":"castle"}}]}"#,
    )
    .unwrap();
    let text = BASE.replace("places/oakland.geojson", "g.geojson");
    let e = Network::parse(&text, &dir.path().join("net.toml")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("net.toml:9")
            && msg.contains("g.geojson")
            && msg.contains("feature 0")
            && msg.contains("castle"),
        "{msg}"
    );
}

#[test]
fn secrets_are_env_var_names_never_values() {
    let text = BASE.replace(
        "[defaults]",
        "[matrix]\nhomeserver = \"https://m.example\"\nuser = \"@bot:m.example\"\npassword_env = \"correct horse battery\"\nstore_path = \"s\"\nstore_passphrase_env = \"NW_PASS\"\n[defaults]",
    );
    let e = err(&text);
    assert_names(&e, 4, "password_env");
}

#[test]
fn key_backup_is_off_by_default_and_the_recovery_key_is_never_kept_in_the_store() {
    let matrix = |extra: &str| {
        BASE.replace(
            "[defaults]",
            &format!("[matrix]\nhomeserver = \"https://m.example\"\nuser = \"@bot:m.example\"\npassword_env = \"NW_PASSWORD\"\nstore_path = \"data/matrix\"\nstore_passphrase_env = \"NW_PASS\"\n{extra}[defaults]"),
        )
    };
    let net = parse(&matrix("")).unwrap();
    let m = net.matrix.as_ref().unwrap();
    assert!(!m.key_backup, "off unless the organizer turns it on");
    assert_eq!(m.recovery_key_file, None);
    let net = parse(&matrix(
        "key_backup = true\nrecovery_key_file = \"../keys/recovery.txt\"\n",
    ))
    .unwrap();
    let m = net.matrix.as_ref().unwrap();
    assert!(m.key_backup);
    assert!(
        m.recovery_key_file
            .as_ref()
            .unwrap()
            .ends_with("keys/recovery.txt")
    );
    let e = err(&matrix(
        "key_backup = true\nrecovery_key_file = \"data/matrix/recovery.txt\"\n",
    ));
    assert_names(&e, 8, "recovery_key_file");
    assert!(
        e.to_string()
            .contains("must not be inside matrix.store_path"),
        "{e}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let e = err(&BASE.replace("name = \"Hoover-Foster\"", "name = \"Hoover-Foster"));
    assert!(matches!(e, ConfigError::Syntax { .. }));
    assert_eq!(e.line(), Some(6));
}

#[test]
fn a_missing_network_file_is_a_clear_error() {
    let e = Network::load(Path::new("/nonexistent/net.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/net.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn verifiers_add_up_from_defaults_and_fake_report_limits_are_checked() {
    let text = BASE.replace(
        "confirmations = 2",
        "confirmations = 2\nverifiers = [\"@net:example.org\"]\nmin_member_hours = 0",
    ) + "verifiers = [\"@hood:example.org\", \"@net:example.org\"]\nmax_reports_per_10min = 3\n";
    let n = parse(&text).unwrap();
    let s = &n.neighborhoods()[0].settings;
    assert_eq!(s.verifiers, ["@net:example.org", "@hood:example.org"]);
    assert_eq!((s.min_member_hours, s.max_reports_per_10min), (0, 3));
    assert_eq!(n.defaults.max_reports_per_10min, 5, "default");
    // A verifier that is not a user ID, and limits out of range, name line and key.
    let e = err(&(BASE.to_owned() + "verifiers = [\"maria\"]\n"));
    assert_names(&e, 10, "verifiers");
    assert!(e.to_string().contains("not a user ID"), "{e}");
    let e = err(&BASE.replace("confirmations = 2", "max_reports_per_10min = 0"));
    assert_names(&e, 2, "max_reports_per_10min");
    let e = err(&BASE.replace("confirmations = 2", "min_member_hours = -1"));
    assert_names(&e, 2, "min_member_hours");
}

#[test]
fn the_reply_budget_is_set_in_defaults_and_per_neighborhood_within_its_range() {
    let n = parse(BASE).unwrap();
    assert_eq!(
        (n.defaults.reply_burst, n.defaults.reply_refill_s),
        (5, 120)
    );
    let text = BASE.replace("confirmations = 2", "confirmations = 2\nreply_burst = 3")
        + "reply_refill_s = 600\n";
    let n = parse(&text).unwrap();
    let s = &n.neighborhoods()[0].settings;
    assert_eq!(
        (s.reply_burst, s.reply_refill_s),
        (3, 600),
        "own over defaults"
    );
    assert_eq!(n.defaults.reply_burst, 3);
    for (line, key) in [
        ("reply_burst = 0", "reply_burst"),
        ("reply_burst = 51", "reply_burst"),
        ("reply_refill_s = 9", "reply_refill_s"),
        ("reply_refill_s = 3601", "reply_refill_s"),
    ] {
        let e = err(&BASE.replace("confirmations = 2", line));
        assert_names(&e, 2, key);
        assert!(e.to_string().contains("whole number from"), "{e}");
    }
    let e = err(&(BASE.to_owned() + "reply_burst = 500\n"));
    assert_names(&e, 10, "reply_burst");
}

/// A value typed in a room (`!nw settings KEY VALUE`) is checked by the same rules as the
/// network file: whatever the file refuses, a room is refused, with the file's words (the
/// English catalog says the same), and the other way round.
#[test]
fn a_value_typed_in_a_room_meets_the_network_files_rules_and_words() {
    use neighborwatch::config::{Problem, SETTABLE, SettingError, Tunables};
    use neighborwatch::render::{Catalogs, fill};
    let base = Tunables::default();
    for (key, values) in [
        ("confirmations", &["0", "101", "2.5", "1", "100"][..]),
        ("alert_radius_m", &["0", "-5", "100001", "250.5", "100000"]),
        ("dedupe_window_min", &["0", "1441", "1440"]),
        ("expiry_hours", &["337", "336"]),
        ("retention_hours", &["2161", "2160"]),
        (
            "alert_retention_hours",
            &["23", "24", "672", "673", "-1", "2.5"],
        ),
        ("min_member_hours", &["-1", "0", "2160", "2161"]),
        ("max_reports_per_10min", &["0", "1000", "1001"]),
        ("reply_burst", &["0", "1", "50", "51", "2.5"]),
        ("reply_refill_s", &["9", "10", "3600", "3601"]),
        ("language", &["\"xx\"", "\"es\""]),
        ("timezone", &["\"Mars/Olympus\"", "\"America/Chicago\""]),
    ] {
        assert!(SETTABLE.iter().any(|(k, _)| *k == key), "{key} is settable");
        for v in values {
            let line = format!("{key} = {v}");
            let file = parse(&if key == "confirmations" {
                BASE.replace("confirmations = 2", &line)
            } else {
                BASE.replace("confirmations = 2", &format!("confirmations = 2\n{line}"))
            });
            let room = base.with_setting(key, v.trim_matches('"'));
            match (&file, &room) {
                (Ok(_), Ok(_)) => {}
                (Err(ConfigError::Invalid { reason, .. }), Err(SettingError::Bad(p))) => {
                    // The number the file read is written as it parsed (2.5, -5); the room
                    // shows what was typed. The rule's words are the same.
                    let rule = |s: &str| {
                        s.rsplit_once(" not ")
                            .map_or(s.to_owned(), |(r, _)| r.to_owned())
                    };
                    assert_eq!(rule(reason), rule(&p.to_string()), "{key} = {v}");
                    let (tpl, args): (&str, Vec<(&str, String)>) = match p {
                        Problem::Distance { got } => {
                            ("problem.distance", vec![("got", got.clone())])
                        }
                        Problem::Whole { min, max, got } => (
                            "problem.whole",
                            vec![
                                ("min", min.to_string()),
                                ("max", max.to_string()),
                                ("got", got.clone()),
                            ],
                        ),
                        Problem::Language { got, have } => (
                            "problem.language",
                            vec![("got", got.clone()), ("have", have.clone())],
                        ),
                        Problem::Timezone { got } => {
                            ("problem.timezone", vec![("got", got.clone())])
                        }
                        Problem::Center { got } => ("problem.center", vec![("got", got.clone())]),
                        Problem::AlertRetention { min, max, got } => (
                            "problem.alert_retention",
                            vec![
                                ("min", min.to_string()),
                                ("max", max.to_string()),
                                ("got", got.clone()),
                            ],
                        ),
                    };
                    let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    assert_eq!(
                        fill(Catalogs::builtin().template("en", tpl), &a, false),
                        p.to_string(),
                        "the English catalog words {key} = {v} as the file does"
                    );
                }
                _ => panic!(
                    "{key} = {v}: the file says {file:?}, a room {room:?}",
                    file = file.as_ref().map(|_| ()).map_err(|e| e.to_string())
                ),
            }
        }
    }
}

#[test]
fn the_shells_notices_of_an_undelivered_alert_come_from_the_catalogs_escaped() {
    use neighborwatch::render::{Catalogs, Undelivered, undelivered_notice};
    let net = crate::support::NETWORK.clone();
    let cat = Catalogs::builtin();
    let refused = undelivered_notice(
        &net,
        cat,
        "C9TU",
        "!b:hs2",
        Undelivered::Refused {
            reason: "M_FORBIDDEN <script>",
        },
    );
    assert!(
        refused
            .body
            .starts_with("Could not post the alert for incident C9TU into !b:hs2")
            && refused.body.contains("M_FORBIDDEN <script>"),
        "{}",
        refused.body
    );
    assert!(refused.html.contains("&lt;script&gt;") && !refused.html.contains("<script>"));
    let unencrypted = undelivered_notice(&net, cat, "C9TU", "!u:hs1", Undelivered::Unencrypted);
    assert!(unencrypted.body.contains("!u:hs1 is not") || unencrypted.body.contains("into !u:hs1"));
    // Every language has both, in its own words.
    for key in ["coord.unencrypted_room", "coord.refused_room"] {
        for lang in cat.languages() {
            let t = cat
                .get(lang, key)
                .unwrap_or_else(|| panic!("{lang} lacks {key}"));
            assert!(t.contains("{room}"), "{lang} {key}");
        }
    }
    assert_ne!(
        cat.get("es", "coord.refused_room"),
        cat.get("en", "coord.refused_room")
    );
}

#[test]
fn the_shells_warnings_to_coordination_carry_no_incident_and_exist_in_every_language() {
    use neighborwatch::render::{Catalogs, Undelivered, undelivered_notice};
    let net = crate::support::NETWORK.clone();
    let cat = Catalogs::builtin();
    let limited = undelivered_notice(&net, cat, "", "", Undelivered::RateLimited);
    assert!(
        limited.body.contains("rate-limiting") && limited.body.contains("override_ratelimit"),
        "{}",
        limited.body
    );
    let plain = undelivered_notice(&net, cat, "", "", Undelivered::CoordinationUnencrypted);
    assert!(
        plain.body.contains("not end-to-end encrypted"),
        "{}",
        plain.body
    );
    assert!(limited.incident.is_none() && plain.incident.is_none());
    for key in ["coord.rate_limited", "coord.coordination_unencrypted"] {
        for lang in cat.languages() {
            assert!(cat.get(lang, key).is_some(), "{lang} lacks {key}");
        }
        assert_ne!(cat.get("es", key), cat.get("en", key), "{key} in Spanish");
    }
}

#[test]
fn a_value_of_the_wrong_type_names_its_key_and_what_is_expected() {
    let e = err(&BASE.replace("confirmations = 2", "confirmations = \"two\""));
    assert_names(&e, 2, "confirmations");
    let text = e.to_string();
    assert!(
        text.contains("`confirmations`: expected a number") && !text.contains("untagged"),
        "{text}"
    );
}
