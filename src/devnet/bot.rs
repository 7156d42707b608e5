//! The bot as a process, for the end-to-end tests and benchmark: `neighborwatch run` on
//! a network file, its log in a file, killed with SIGKILL when dropped (as a crash would).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use matrix_sdk::{RoomMemberships, ruma::OwnedRoomId};

use super::client::{Neighbor, wait_for};
use super::synapse::DevnetError;

/// The secrets a test bot reads from its environment (the names the test network files
/// use), all but the password.
pub const STORE_PASSPHRASE: &str = "store-passphrase-for-tests";
/// The vault of [`STORE_PASSPHRASE`], to open a test bot's sealed files.
pub fn vault() -> crate::store::Vault {
    crate::store::Vault::new(STORE_PASSPHRASE, "NW_STORE_PASSPHRASE")
}

/// The reporter key of a test bot.
pub const REPORTER_KEY: &str = "reporter-key-for-tests-0123456789";

/// How to start the bot.
#[derive(Clone, Debug)]
pub struct BotOptions<'a> {
    /// The `neighborwatch` executable (`env!("CARGO_BIN_EXE_neighborwatch")`), or a
    /// launcher for it, such as `podman` (see [`BotProcess::start_via`]).
    pub exe: &'a Path,
    /// The bot account's password (`NW_PASSWORD`).
    pub password: &'a str,
    /// `RUST_LOG`, or `None` for the bot's own default filter.
    pub log_filter: Option<&'a str>,
    /// `NEIGHBORWATCH_FAULT` (fault injection), if any.
    pub fault: Option<&'a str>,
}

/// A running bot process.
#[derive(Debug)]
pub struct BotProcess {
    child: Child,
    log: PathBuf,
}

/// A test's hold on a bot's clock (see [`crate::matrix::Clock::offset_file`]): the bot
/// started with it sees the time moved ahead by what [`TestClock::advance`] adds, and
/// runs its timers every second.
#[derive(Debug)]
pub struct TestClock {
    file: PathBuf,
    ahead: std::sync::Mutex<chrono::Duration>,
}

impl TestClock {
    /// A clock at the real time, its offset kept in `file`.
    pub fn new(file: PathBuf) -> Self {
        Self {
            file,
            ahead: std::sync::Mutex::new(chrono::Duration::zero()),
        }
    }

    /// Moves the bot's clock ahead by `by`.
    pub fn advance(&self, by: chrono::Duration) -> Result<(), DevnetError> {
        let mut ahead = self
            .ahead
            .lock()
            .map_err(|_| DevnetError("test clock poisoned".into()))?;
        *ahead += by;
        // Written whole, then renamed: the bot never reads half a number.
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, ahead.num_milliseconds().to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.file))
            .map_err(|e| DevnetError(format!("test clock: {e}")))
    }
}

impl BotProcess {
    /// Starts `neighborwatch run --config config`, appending its output to `log`.
    pub fn start(opts: &BotOptions<'_>, config: &Path, log: &Path) -> Result<Self, DevnetError> {
        Self::start_clocked(opts, &[], config, log, None)
    }

    /// Starts the bot through a launcher: `opts.exe` is the launcher (`podman`), `launcher`
    /// its arguments up to the bot's own (`run --rm … IMAGE`, whose entrypoint is
    /// `neighborwatch`), then `run --config config` as [`BotProcess::start`] gives them,
    /// with the same environment (a container takes what it needs of it with `--env`).
    /// `config` is the path the bot sees (inside the container). The process is the
    /// launcher's: killing it need not stop the bot, which the caller stops its own way.
    pub fn start_via(
        opts: &BotOptions<'_>,
        launcher: &[String],
        config: &Path,
        log: &Path,
    ) -> Result<Self, DevnetError> {
        Self::start_clocked(opts, launcher, config, log, None)
    }

    /// Like [`BotProcess::start`], with the bot's clock in the test's hands.
    pub fn start_with_clock(
        opts: &BotOptions<'_>,
        config: &Path,
        log: &Path,
        clock: &TestClock,
    ) -> Result<Self, DevnetError> {
        Self::start_clocked(opts, &[], config, log, Some(clock))
    }

    fn start_clocked(
        opts: &BotOptions<'_>,
        launcher: &[String],
        config: &Path,
        log: &Path,
        clock: Option<&TestClock>,
    ) -> Result<Self, DevnetError> {
        let e = |x: std::io::Error| DevnetError(format!("bot: {x}"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(e)?;
        let child = Command::new(opts.exe)
            .args(launcher)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("NW_PASSWORD", opts.password)
            .env("NW_STORE_PASSPHRASE", STORE_PASSPHRASE)
            .env("NW_REPORTER_KEY", REPORTER_KEY)
            .env_remove("RUST_LOG")
            .envs(opts.log_filter.map(|f| ("RUST_LOG", f)))
            .env_remove("RUST_BACKTRACE")
            .env("NEIGHBORWATCH_FAULT", opts.fault.unwrap_or(""))
            .env_remove(crate::matrix::TEST_CLOCK_ENV)
            .envs(clock.map(|c| (crate::matrix::TEST_CLOCK_ENV, &c.file)))
            .stdout(Stdio::from(out.try_clone().map_err(e)?))
            .stderr(Stdio::from(out))
            .spawn()
            .map_err(e)?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its exit status, once it has exited (without waiting).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its resident memory now, in MB (NaN if unknown).
    pub fn rss_mb(&self) -> f64 {
        self.status_mb("VmRSS:")
    }

    /// A memory line of `/proc/<pid>/status` (`VmRSS:`, `RssAnon:`, `RssFile:`), in MB.
    pub fn status_mb(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many threads it runs now.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id())).map_or(0, |d| d.count())
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- bot log ----\n{}\n---- end of bot log ----",
                self.log()
            );
        }
    }
}

/// Waits until `who` sees `bot_user` joined to `room` (across federation, too).
pub async fn bot_joined(who: &Neighbor, room: &OwnedRoomId, bot_user: &str) {
    who.room(room).await;
    wait_for("the bot to join the room", 180, || async {
        let r = who.client.get_room(room)?;
        let m = r.members(RoomMemberships::JOIN).await.ok()?;
        m.iter()
            .any(|x| x.user_id().as_str() == bot_user)
            .then_some(())
    })
    .await;
}

/// The benchmarks' network file in `dir`: the bot's account on `url`, reports counted
/// freely (`max_reports_per_10min = 1000`, a 100 m merge radius), and one neighborhood
/// per `(id, room, centre)`, each a 2 km circle named "Room <id>". Returns its path.
pub fn bench_network(
    dir: &Path,
    url: &str,
    bot: &str,
    hoods: &[(String, String, (f64, f64))],
) -> PathBuf {
    let mut text = format!(
        r#"[matrix]
homeserver = "{url}"
user = "{bot}"
password_env = "NW_PASSWORD"
store_path = "matrix"
store_passphrase_env = "NW_STORE_PASSPHRASE"

[storage]
path = "state.sled"
reporter_key_env = "NW_REPORTER_KEY"

[defaults]
max_reports_per_10min = 1000
dedupe_radius_m = 100
"#
    );
    for (id, room, (lat, lon)) in hoods {
        text.push_str(&format!(
            "\n[[neighborhood]]\nid = \"{id}\"\nname = \"Room {}\"\nrooms = [\"{room}\"]\narea = {{ center = [{lat}, {lon}], radius_m = 2000 }}\n",
            id.to_uppercase()
        ));
    }
    let path = dir.join("network.toml");
    std::fs::write(&path, text).expect("network file");
    path
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bench_network_file_loads_with_every_neighborhood() {
        let dir = tempfile::tempdir().unwrap();
        let hoods = [
            ("a".to_owned(), "!a:localhost".to_owned(), (37.82, -122.27)),
            ("c".to_owned(), "!c:localhost".to_owned(), (38.27, -122.27)),
        ];
        let path = super::bench_network(dir.path(), "http://127.0.0.1:1", "@nw:localhost", &hoods);
        let net = crate::config::Network::load(&path).expect("a valid network file");
        let names: Vec<&str> = net
            .neighborhoods()
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(names, ["Room A", "Room C"]);
        assert_eq!(net.settings("a").max_reports_per_10min, 1000);
    }
}
