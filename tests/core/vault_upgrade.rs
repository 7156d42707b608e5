//! A data directory as the previous release wrote it (text keys and session in the
//! clear) opens with the store passphrase, its plain files are sealed in place, and the
//! bot goes on with the same incidents; without the passphrase, or with another one, the
//! state database does not open and the error says why.

use std::path::Path;
use std::process::Command;

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::{SessionMeta, SessionTokens};
use neighborwatch::store::{SledStore, Store, StoreError, Vault, shred::KEY_FILE, vault::MAGIC};

use crate::replay_fixtures::{PASSPHRASE, PASSPHRASE_VAR, fixture, replay_cmd, replay_split};

fn vault() -> Vault {
    Vault::new(PASSPHRASE, PASSPHRASE_VAR)
}

/// Rewrites the sealed key file of the database at `db` as the previous release wrote
/// it: the same JSON, in the clear. Returns the keys (hex).
fn write_key_file_in_the_clear(db: &Path) -> Vec<String> {
    let path = db.join(KEY_FILE);
    let opened = vault().read(&path, KEY_FILE).unwrap().expect("a key file");
    assert!(!opened.was_plain, "this release wrote it sealed");
    std::fs::write(&path, &opened.bytes[..]).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&opened.bytes).unwrap();
    let keys: Vec<String> = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(!keys.is_empty());
    let plain = std::fs::read_to_string(&path).unwrap();
    assert!(
        keys.iter().all(|k| plain.contains(k.as_str())),
        "in the clear now"
    );
    keys
}

/// `neighborwatch check --state db` with `passphrase` (or none): success and stderr.
fn check_state(db: &Path, passphrase: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_neighborwatch"));
    cmd.args(["check", "--config"])
        .arg(crate::support::example_path())
        .arg("--state")
        .arg(db)
        .env_remove(PASSPHRASE_VAR);
    if let Some(p) = passphrase {
        cmd.env(PASSPHRASE_VAR, p);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_state_database_with_its_text_keys_in_the_clear_is_sealed_and_goes_on_with_the_same_incidents()
{
    let name = "school_dropoff";
    let all = std::fs::read_to_string(fixture(name)).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let at = lines.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sled");
    let (one, two) = (dir.path().join("one.jsonl"), dir.path().join("two.jsonl"));
    std::fs::write(&one, lines[..at].join("\n")).unwrap();
    std::fs::write(&two, lines[at..].join("\n")).unwrap();

    // The first half, then the directory as the previous release would have left it.
    let (mut actions, err, code) = replay_cmd(&one, Some(&db));
    assert_eq!(code, 0, "{err}");
    let before = SledStore::open(&db, &vault()).unwrap().load().unwrap();
    assert!(!before.incidents.is_empty());
    let keys = write_key_file_in_the_clear(&db);

    // Opened with the passphrase: the same incidents, the key file sealed in place.
    let store = SledStore::open(&db, &vault()).unwrap();
    assert_eq!(store.load().unwrap(), before);
    assert_eq!(store.sealer().epoch_keys_hex(), keys);
    drop(store);
    let raw = std::fs::read(db.join(KEY_FILE)).unwrap();
    assert!(raw.starts_with(MAGIC), "sealed");
    let text = String::from_utf8_lossy(&raw);
    for k in &keys {
        assert!(
            !text.contains(k.as_str()),
            "a text key is left in the clear"
        );
        assert!(
            !raw.windows(32).any(|w| hex::encode(w) == *k),
            "nor as bytes"
        );
    }
    assert!(!text.contains("epoch"));

    // Without the passphrase, or with another, it does not open, and says why.
    let wrong = Vault::new("not the passphrase", PASSPHRASE_VAR);
    let e = SledStore::open(&db, &wrong).unwrap_err();
    assert!(matches!(e, StoreError::Passphrase { .. }), "{e}");
    let (ok, err) = check_state(&db, Some("not the passphrase"));
    assert!(!ok);
    assert!(
        err.contains("NW_STORE_PASSPHRASE does not open")
            && err.contains("text-keys")
            && err.contains("wrong passphrase?"),
        "{err}"
    );
    let (ok, err) = check_state(&db, None);
    assert!(!ok);
    assert!(err.contains("NW_STORE_PASSPHRASE is not set"), "{err}");
    let (ok, err) = check_state(&db, Some(PASSPHRASE));
    assert!(ok, "{err}");

    // The bot goes on: the second half does what it would have done without the upgrade.
    let (rest, err, code) = replay_cmd(&two, Some(&db));
    assert_eq!(code, 0, "{err}");
    actions.extend(rest);
    assert_eq!(actions, replay_split(name, at));
}

#[test]
fn a_session_file_in_the_clear_is_sealed_in_place_and_still_restores() {
    let dir = tempfile::tempdir().unwrap();
    let token = "syt_bmVpZ2hib3J3YXRjaA_previousReleaseToken_0a1b2c";
    let session = MatrixSession {
        meta: SessionMeta {
            user_id: "@neighborwatch:example.org".try_into().unwrap(),
            device_id: "OLDDEVICE".into(),
        },
        tokens: SessionTokens {
            access_token: token.to_owned(),
            refresh_token: None,
        },
    };
    let path = dir.path().join(neighborwatch::matrix::SESSION_FILE);
    std::fs::write(&path, serde_json::to_string(&session).unwrap()).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains(token));

    let read = neighborwatch::matrix::read_session(dir.path(), &vault()).unwrap();
    assert_eq!(read.as_ref(), Some(&session));
    let raw = std::fs::read(&path).unwrap();
    assert!(raw.starts_with(MAGIC), "sealed in place");
    assert!(!String::from_utf8_lossy(&raw).contains("previousReleaseToken"));
    assert!(!String::from_utf8_lossy(&raw).contains("OLDDEVICE"));
    // Read again (sealed now), from a fresh vault of the same passphrase: the same session.
    let again = neighborwatch::matrix::read_session(dir.path(), &vault()).unwrap();
    assert_eq!(again, Some(session));
    // Another passphrase: the clear error, naming the file.
    let e = neighborwatch::matrix::read_session(
        dir.path(),
        &Vault::new("not the passphrase", PASSPHRASE_VAR),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("NW_STORE_PASSPHRASE does not open") && e.contains("session.json"),
        "{e}"
    );
    // No session yet: none.
    let empty = tempfile::tempdir().unwrap();
    assert!(
        neighborwatch::matrix::read_session(empty.path(), &vault())
            .unwrap()
            .is_none()
    );
}

/// The example network file, written into `dir` with its paths made absolute and
/// `edit` applied.
fn example_variant(dir: &Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let example = crate::support::example_path();
    let base = example.parent().unwrap().display().to_string();
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("\"places/", &format!("\"{base}/places/"))
        .replace("\"areas/", &format!("\"{base}/areas/"));
    let path = dir.join("network.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// `neighborwatch check --config cfg --state db` with the environment `env`: success
/// and stderr.
fn check_with(cfg: &Path, db: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neighborwatch"))
        .args(["check", "--config"])
        .arg(cfg)
        .arg("--state")
        .arg(db)
        .env_remove(PASSPHRASE_VAR)
        .env_remove("NW_OTHER_PASSPHRASE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_state_database_opens_with_the_passphrase_the_network_file_names_or_the_default_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sled");
    let (_, err, code) = replay_cmd(&fixture("school_dropoff"), Some(&db));
    assert_eq!(code, 0, "{err}");

    // `[matrix] store_passphrase_env` names another variable: that one is read.
    let other = example_variant(dir.path(), |t| {
        t.replace(
            "store_passphrase_env = \"NW_STORE_PASSPHRASE\"",
            "store_passphrase_env = \"NW_OTHER_PASSPHRASE\"",
        )
    });
    let (ok, err) = check_with(&other, &db, &[(PASSPHRASE_VAR, PASSPHRASE)]);
    assert!(!ok);
    assert!(err.contains("NW_OTHER_PASSPHRASE is not set"), "{err}");
    let (ok, err) = check_with(&other, &db, &[("NW_OTHER_PASSPHRASE", "not it")]);
    assert!(!ok);
    assert!(err.contains("NW_OTHER_PASSPHRASE does not open"), "{err}");
    let (ok, err) = check_with(&other, &db, &[("NW_OTHER_PASSPHRASE", PASSPHRASE)]);
    assert!(ok, "{err}");

    // No `[matrix]` section (an offline network file): NW_STORE_PASSPHRASE.
    let offline = example_variant(dir.path(), |t| {
        let start = t.find("[matrix]").unwrap();
        let end = t.find("[storage]").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    });
    assert!(
        !std::fs::read_to_string(&offline)
            .unwrap()
            .contains("[matrix]")
    );
    let (ok, err) = check_with(&offline, &db, &[]);
    assert!(!ok);
    assert!(err.contains("NW_STORE_PASSPHRASE is not set"), "{err}");
    let (ok, err) = check_with(&offline, &db, &[(PASSPHRASE_VAR, PASSPHRASE)]);
    assert!(ok, "{err}");
}
