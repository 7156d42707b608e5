//! A copied data directory reveals nothing: after a real run on Synapse, no file of the
//! stopped bot's state database and Matrix store holds the words of a report, the access
//! token, a text key or the recovery key; the SDK kept no event cache or media database;
//! the same directory starts again with the passphrase, and not with another one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use neighborwatch::devnet::bot::{REPORTER_KEY, bot_joined};
use neighborwatch::devnet::client::wait_for;
use neighborwatch::store::shred::Sealer;

use super::{Bot, PASSWORD, World, bot_session, incident_id, wait_for_log, walk, world};

/// Copies the directory tree `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The 32 key bytes of a Matrix recovery key (base58: 0x8B 0x01, the key, a parity byte).
fn recovery_key_bytes(key: &str) -> Vec<u8> {
    const ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut n: Vec<u8> = Vec::new(); // big-endian
    for c in key.chars().filter(|c| !c.is_whitespace()) {
        let mut carry = ALPHABET.find(c).expect("a base58 character");
        for d in n.iter_mut().rev() {
            carry += usize::from(*d) * 58;
            *d = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            n.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    assert_eq!(&n[..2], &[0x8B, 0x01], "a recovery key's prefix");
    assert_eq!(n.len(), 35);
    let parity = n[..34].iter().fold(0u8, |p, b| p ^ b);
    assert_eq!(parity, n[34], "a recovery key's parity");
    n[2..34].to_vec()
}

/// Every file under `roots` that holds one of `needles` (raw bytes), as (file, needle).
fn found_in(roots: &[PathBuf], needles: &[(String, Vec<u8>)]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut files = 0;
    for root in roots {
        for f in walk(root) {
            files += 1;
            let bytes = std::fs::read(&f).unwrap();
            for (what, needle) in needles {
                if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    found.push((f.clone(), what.clone()));
                }
            }
        }
    }
    assert!(files >= 4, "the data directory was copied: {files} files");
    found
}

/// What no file of the data directory may hold, each with what it is: the report's
/// word, the access token, the text keys (hex and bytes) and the recovery key (as shown,
/// and its bytes).
fn secrets(
    word: &str,
    token: &str,
    text_keys: &[String],
    recovery: &Path,
) -> Vec<(String, Vec<u8>)> {
    assert!(!text_keys.is_empty());
    let recovery = std::fs::read_to_string(recovery).unwrap();
    let recovery = recovery.trim();
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("the report's word".into(), word.as_bytes().to_vec()),
        (
            "the report's word, lower case".into(),
            word.to_lowercase().into_bytes(),
        ),
        ("the access token".into(), token.as_bytes().to_vec()),
        ("the recovery key".into(), recovery.as_bytes().to_vec()),
        (
            "the recovery key without spaces".into(),
            recovery.replace(' ', "").into_bytes(),
        ),
        (
            "the recovery key's bytes".into(),
            recovery_key_bytes(recovery),
        ),
    ];
    for (i, k) in text_keys.iter().enumerate() {
        needles.push((format!("text key {i} (hex)"), k.clone().into_bytes()));
        needles.push((format!("text key {i} (bytes)"), hex::decode(k).unwrap()));
    }
    needles
}

/// `neighborwatch run` on `cfg` with `passphrase`: it must stop by itself; its stderr.
fn run_to_failure(cfg: &Path, passphrase: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_neighborwatch"))
        .args(["run", "--config"])
        .arg(cfg)
        .env("NW_PASSWORD", PASSWORD)
        .env("NW_STORE_PASSPHRASE", passphrase)
        .env("NW_REPORTER_KEY", REPORTER_KEY)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "it refuses to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copied_data_directory_holds_no_report_words_token_or_key_and_opens_only_with_the_passphrase()
 {
    let World {
        _hs1,
        bot_user,
        alice,
        bob,
        a,
        dir,
        cfg,
        ..
    } = world().await;
    let log = dir.path().join("bot.log");
    let (db, store) = (dir.path().join("state.sled"), dir.path().join("matrix"));
    let mut bot = Bot::start(&cfg, &log);
    bot_joined(&alice, &a, &bot_user).await;

    // A report with a word found nowhere else, confirmed by a second neighbor.
    let word = format!("Quokkaplume{}", std::process::id());
    let r1 = alice
        .say(
            &a,
            &[&bot_user, &bob.user],
            &format!("!r 2 unmarked vans, {word} agents in vests at 31st & Market"),
        )
        .await;
    let ack = wait_for("the acknowledgment", 60, || async {
        alice.replies(&a, &bot_user, r1.as_str()).into_iter().next()
    })
    .await;
    let id = incident_id(&ack);
    let r2 = bob
        .say(
            &a,
            &[&bot_user, &alice.user],
            &format!("!r {word} agents near Hoover Elementary"),
        )
        .await;
    let confirmed = wait_for("the confirmation", 60, || async {
        bob.replies(&a, &bot_user, r2.as_str()).into_iter().next()
    })
    .await;
    assert_eq!(
        confirmed["content"]["org.neighborwatch.incident"]["status"],
        "confirmed"
    );
    bot.kill();

    // The data directory, copied as someone who took the disk would.
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&db, &copy.path().join("state.sled"));
    copy_tree(&store, &copy.path().join("matrix"));
    // What must not be in it, read with the passphrase from the bot's own files.
    let vault = neighborwatch::devnet::bot::vault();
    let token = bot_session(&store).tokens.access_token;
    let text_keys = Sealer::open(&db, &vault).unwrap().epoch_keys_hex();
    let needles = secrets(
        &word,
        &token,
        &text_keys,
        &dir.path().join("recovery-key.txt"),
    );
    let roots = [copy.path().join("state.sled"), copy.path().join("matrix")];
    let found = found_in(&roots, &needles);
    assert!(
        found.is_empty(),
        "found in the copied data directory: {found:#?}"
    );
    // The SDK kept decrypted events in memory only: no event cache or media database.
    let sdk_files: Vec<String> = walk(&copy.path().join("matrix"))
        .iter()
        .filter_map(|f| f.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert!(
        sdk_files.iter().any(|f| f.starts_with("matrix-sdk-crypto")),
        "{sdk_files:?}"
    );
    assert!(
        !sdk_files
            .iter()
            .any(|f| f.contains("event-cache") || f.contains("media")),
        "{sdk_files:?}"
    );

    // An older release's event cache and media databases are removed at the next start.
    let old_cache = store.join("sqlite/matrix-sdk-event-cache.sqlite3");
    let old_media_wal = store.join("sqlite/matrix-sdk-media.sqlite3-wal");
    std::fs::write(&old_cache, format!("old decrypted events: {word}")).unwrap();
    std::fs::write(&old_media_wal, "old media").unwrap();
    // The same directory starts again with the passphrase: same session, same incidents.
    let mut bot = Bot::start(&cfg, &log);
    wait_for_log(&bot, "session restored", 1, 60).await;
    wait_for_log(&bot, "caught up", 2, 60).await;
    assert!(!old_cache.exists() && !old_media_wal.exists());
    assert_eq!(
        bot.log()
            .matches("removed the SDK's on-disk event cache or media store")
            .count(),
        2,
        "{}",
        bot.log()
    );
    let ask = alice
        .say(&a, &[&bot_user, &bob.user], "!nw incidents")
        .await;
    let list = wait_for("the list of open incidents", 60, || async {
        alice
            .replies(&a, &bot_user, ask.as_str())
            .into_iter()
            .next()
    })
    .await;
    assert!(
        list["content"]["body"].as_str().unwrap().contains(&id),
        "{list}"
    );
    bot.kill();
    assert_eq!(
        bot_session(&store).tokens.access_token,
        token,
        "same session"
    );

    // Another passphrase: a clear error at start, naming the variable and the file.
    let err = run_to_failure(&cfg, "not the store passphrase");
    assert!(
        err.contains("NW_STORE_PASSPHRASE does not open")
            && err.contains("text-keys")
            && err.contains("wrong passphrase?"),
        "{err}"
    );
    // Trying changed nothing: the passphrase still opens the directory.
    assert!(Sealer::open(&db, &vault).is_ok());
    assert_eq!(bot_session(&store).tokens.access_token, token);
}
