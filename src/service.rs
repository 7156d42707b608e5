//! Running the bot as a service: the pid and outcome files `neighborwatch reload` finds
//! the running bot by, the signal it sends, the health probe of a container's
//! `HEALTHCHECK`, and readiness for systemd (`Type=notify`).
//!
//! Owns: files in the state database's directory that are not the database
//! ([`PID_FILE`], [`RESULT_FILE`]), SIGHUP to the bot, `sd_notify`. Must not touch:
//! Matrix, the engine, the store's contents.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The pid file, in the state database's directory (`[storage] path`): the bot's pid and
/// the network file it runs with, one per line; written when the bot starts, removed when
/// it stops.
pub const PID_FILE: &str = "neighborwatch.pid";
/// The outcome of the last reload, one line (`<ms> ok|refused <what>`, the time the
/// reload began), in the same directory: `neighborwatch reload` waits for one that began
/// after it asked.
pub const RESULT_FILE: &str = "last-reload";

/// Why a service command failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No pid file: the bot is not running on this state database.
    #[error(
        "no running bot found: {0} does not exist (is `neighborwatch run` running with this network file?)"
    )]
    NotRunning(PathBuf),
    /// The pid file names a process that is not the bot (a stale file).
    #[error(
        "{path} names process {pid}, which is not a running neighborwatch (a stale file from a crash?); start the bot, or remove the file"
    )]
    Stale {
        /// The pid file.
        path: PathBuf,
        /// The pid it holds.
        pid: u32,
    },
    /// The bot runs with another network file than the one given.
    #[error(
        "the bot on this state database runs with {running}, not {given}: give that file (the bot reads its own file again)"
    )]
    OtherFile {
        /// The file the bot runs with.
        running: PathBuf,
        /// The file given.
        given: PathBuf,
    },
    /// The signal could not be sent.
    #[error("cannot signal process {pid}: {source}")]
    Signal {
        /// The process.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Writes this process's pid and its network file `config` into `state_dir`; the
/// returned guard removes the file when dropped (when the bot stops).
pub fn write_pid(state_dir: &Path, config: &Path) -> Result<PidFile, ServiceError> {
    let path = state_dir.join(PID_FILE);
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_owned());
    let text = format!("{}\n{}\n", std::process::id(), config.display());
    std::fs::write(&path, text).map_err(|source| ServiceError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(PidFile(path))
}

/// The pid file, removed when dropped.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The last reload's outcome line, if any.
pub fn last_result(state_dir: &Path) -> Option<String> {
    std::fs::read_to_string(state_dir.join(RESULT_FILE))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// Writes a reload's outcome for [`last_result`]: when it began, `ok` or `refused`, the
/// line.
pub fn write_result(state_dir: &Path, at_ms: i64, outcome: &Result<String, String>) {
    let (word, line) = match outcome {
        Ok(l) => ("ok", l),
        Err(e) => ("refused", e),
    };
    let text = format!("{at_ms} {word} {}\n", line.replace('\n', " "));
    let path = state_dir.join(RESULT_FILE);
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
        tracing::warn!(error = %e, "cannot write the reload's outcome for `neighborwatch reload`");
    }
}

/// Sends SIGHUP to the bot running on `state_dir` (named by its pid file, and checked
/// to be a neighborwatch process running with `config`); returns its pid.
pub fn signal_reload(state_dir: &Path, config: &Path) -> Result<u32, ServiceError> {
    let path = state_dir.join(PID_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ServiceError::NotRunning(path));
        }
        Err(source) => return Err(ServiceError::Io { path, source }),
    };
    let mut lines = text.lines();
    let pid: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or(ServiceError::Stale {
            path: path.clone(),
            pid: 0,
        })?;
    if let Some(running) = lines.next().map(PathBuf::from) {
        let given = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_owned());
        if running != given {
            return Err(ServiceError::OtherFile { running, given });
        }
    }
    if !is_neighborwatch(pid) {
        return Err(ServiceError::Stale { path, pid });
    }
    let target = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or(ServiceError::Stale {
            path: path.clone(),
            pid,
        })?;
    rustix::process::kill_process(target, rustix::process::Signal::HUP).map_err(|e| {
        ServiceError::Signal {
            pid,
            source: e.into(),
        }
    })?;
    Ok(pid)
}

/// Whether process `pid` runs the neighborwatch executable (by its command name; where
/// `/proc` is missing, trusted).
fn is_neighborwatch(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end() == "neighborwatch")
}

/// Waits up to `within` for the outcome of a reload that began at `since_ms` or later
/// (one asked for before may end meanwhile); that line.
pub fn wait_result(state_dir: &Path, since_ms: i64, within: Duration) -> Option<String> {
    let until = Instant::now() + within;
    loop {
        let now = last_result(state_dir);
        let began = now
            .as_deref()
            .and_then(|l| l.split(' ').next())
            .and_then(|t| t.parse::<i64>().ok());
        if began.is_some_and(|b| b >= since_ms) {
            return now;
        }
        if Instant::now() >= until {
            return None;
        }
        // A command waiting for another process's file: polled, a tenth of a second.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asks the bot's `/health` on `addr` (a wildcard address is asked on loopback):
/// `Ok` with the body when it answers 200, the reason otherwise.
pub fn probe_health(addr: SocketAddr) -> Result<String, String> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let timeout = Duration::from_secs(5);
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    let _ = conn.set_read_timeout(Some(timeout));
    write!(
        conn,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut reply = String::new();
    conn.take(64 * 1024)
        .read_to_string(&mut reply)
        .map_err(|e| format!("{addr}: {e}"))?;
    let status = reply.split_whitespace().nth(1).unwrap_or("");
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .trim()
        .to_owned();
    if status == "200" {
        Ok(body)
    } else {
        Err(format!("unhealthy ({status}): {body}"))
    }
}

/// Tells systemd (`Type=notify`) the bot's state, when it runs under systemd
/// (`NOTIFY_SOCKET` set); nothing otherwise.
pub fn notify(state: Readiness) {
    use sd_notify::NotifyState;
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut states = vec![match state {
        Readiness::Ready => NotifyState::Ready,
        Readiness::Reloading => NotifyState::Reloading,
        Readiness::Stopping => NotifyState::Stopping,
    }];
    // systemd (`Type=notify-reload`) wants the time with a reload's start.
    if state == Readiness::Reloading
        && let Ok(t) = NotifyState::monotonic_usec_now()
    {
        states.push(t);
    }
    if let Err(e) = sd_notify::notify(&states) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

/// What systemd is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Logged in and synced: serving.
    Ready,
    /// Reading the network file again.
    Reloading,
    /// Stopping in order.
    Stopping,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_without_a_running_bot_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = signal_reload(dir.path(), Path::new("network.toml")).unwrap_err();
        assert!(matches!(e, ServiceError::NotRunning(_)), "{e}");
        assert!(e.to_string().contains("no running bot"), "{e}");
    }

    #[test]
    fn a_stale_pid_file_is_refused_and_nothing_is_signalled() {
        let dir = tempfile::tempdir().unwrap();
        // This test process (`neighborwatch-<hash>`) is no neighborwatch: its pid must
        // not get SIGHUP.
        std::fs::write(
            dir.path().join(PID_FILE),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let e = signal_reload(dir.path(), Path::new("network.toml")).unwrap_err();
        assert!(matches!(e, ServiceError::Stale { .. }), "{e}");
        std::fs::write(dir.path().join(PID_FILE), "garbage").unwrap();
        assert!(matches!(
            signal_reload(dir.path(), Path::new("network.toml")),
            Err(ServiceError::Stale { .. })
        ));
        // Another network file than the bot's: refused before anything else.
        std::fs::write(
            dir.path().join(PID_FILE),
            "1\n/etc/neighborwatch/network.toml\n",
        )
        .unwrap();
        let e = signal_reload(dir.path(), &dir.path().join("other.toml")).unwrap_err();
        assert!(matches!(e, ServiceError::OtherFile { .. }), "{e}");
    }

    #[test]
    fn the_pid_file_goes_when_its_guard_does() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("network.toml");
        std::fs::write(&config, "").unwrap();
        let guard = write_pid(dir.path(), &config).unwrap();
        let pid = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        let mut lines = pid.lines();
        assert_eq!(lines.next(), Some(std::process::id().to_string().as_str()));
        assert_eq!(
            lines.next().map(PathBuf::from),
            Some(std::fs::canonicalize(&config).unwrap())
        );
        drop(guard);
        assert!(!dir.path().join(PID_FILE).exists());
    }

    #[test]
    fn a_result_is_waited_for_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        write_result(dir.path(), 1, &Ok("2 neighborhoods".into()));
        assert_eq!(
            last_result(dir.path()).as_deref(),
            Some("1 ok 2 neighborhoods")
        );
        // A reload that began before the one asked for is not its answer.
        assert_eq!(wait_result(dir.path(), 2, Duration::from_millis(200)), None);
        write_result(dir.path(), 2, &Err("bad\nfile".into()));
        assert_eq!(
            wait_result(dir.path(), 2, Duration::from_secs(1)).as_deref(),
            Some("2 refused bad file")
        );
    }

    #[test]
    fn health_answers_200_or_says_why_not() {
        use std::net::TcpListener;
        let serve = |reply: &'static str| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            std::thread::spawn(move || {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                c.write_all(reply.as_bytes()).unwrap();
            });
            addr
        };
        let ok = serve("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
        assert_eq!(probe_health(ok).as_deref(), Ok("ok"));
        let bad =
            serve("HTTP/1.1 503 Service Unavailable\r\n\r\nnot syncing with the homeserver\n");
        let e = probe_health(bad).unwrap_err();
        assert!(e.contains("503") && e.contains("not syncing"), "{e}");
        // Nobody listening: a clear answer, not a hang.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(probe_health(closed).unwrap_err().contains("cannot reach"));
    }
}
