//! Real Synapse homeservers on loopback: installed from PyPI into a virtualenv if
//! missing, started on 127.0.0.1 with free ports, federating with each other.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The registration shared secret of every devnet homeserver.
pub const SHARED_SECRET: &str = "neighborwatch-test-shared-secret";
const SYNAPSE_VERSION: &str = "1.163.2";

static INSTALL: Mutex<()> = Mutex::new(());

/// Why the local network could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DevnetError(pub String);

fn err(what: impl std::fmt::Display) -> DevnetError {
    DevnetError(what.to_string())
}

/// The virtualenv with Synapse (`<repo>/.venv`, or `$NEIGHBORWATCH_VENV` when it is set
/// and not empty: an empty one would install into the working directory), installed
/// from PyPI on first use.
pub fn venv() -> Result<PathBuf, DevnetError> {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = std::env::var_os("NEIGHBORWATCH_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    if venv.join("bin/synapse_homeserver").exists() {
        return Ok(venv);
    }
    eprintln!(
        "installing Synapse {SYNAPSE_VERSION} into {} (once; about a minute)…",
        venv.display()
    );
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err(err(
            "python3 -m venv failed: install Python 3 with the venv module",
        ));
    }
    let ok = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "-q",
            &format!("matrix-synapse=={SYNAPSE_VERSION}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = std::fs::remove_dir_all(&venv);
        return Err(err("pip install matrix-synapse failed"));
    }
    Ok(venv)
}

/// A port that is free on 127.0.0.1 right now.
pub fn free_port() -> Result<u16, DevnetError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(err)
}

/// Starts Synapse on the config in `dir`, logging (appending) to `dir/synapse.log`.
fn spawn(venv: &Path, dir: &Path) -> Result<Child, DevnetError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("synapse.log"))
        .map_err(err)?;
    Command::new(venv.join("bin/python"))
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(dir.join("homeserver.yaml"))
        .stdout(log.try_clone().map_err(err)?)
        .stderr(log)
        .spawn()
        .map_err(|e| err(format!("synapse does not start: {e}")))
}

/// One running homeserver. Killed when dropped.
#[derive(Debug)]
pub struct Synapse {
    /// `localhost:<federation port>`.
    pub server_name: String,
    /// Client-server API base URL.
    pub url: String,
    /// Where its config, database and log live.
    pub dir: PathBuf,
    child: Child,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `127.0.0.1:port` (HTTP/1.1, connection closed after): the whole
/// response, or `None` if nothing answered within 2 s.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl Synapse {
    /// Starts a homeserver named `localhost:<federation port>` in a temporary folder.
    pub fn start() -> Result<Synapse, DevnetError> {
        let tmp = tempfile::tempdir().map_err(err)?;
        let dir = tmp.path().to_owned();
        Self::start_in(&dir, Some(tmp))
    }

    /// Starts a homeserver whose files live in `dir`.
    pub fn start_in(dir: &Path, tmp: Option<tempfile::TempDir>) -> Result<Synapse, DevnetError> {
        let venv = venv()?;
        let dir = dir.to_owned();
        std::fs::create_dir_all(&dir).map_err(err)?;
        let (cp, fp) = (free_port()?, free_port()?);
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
            ])
            .arg("-keyout")
            .arg(dir.join("tls.key"))
            .arg("-out")
            .arg(dir.join("tls.crt"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| err(format!("openssl: {e}")))?;
        if !status.success() {
            return Err(err("openssl could not make a TLS certificate"));
        }
        let d = dir.display();
        let server_name = format!("localhost:{fp}");
        let rc = "{per_second: 1000, burst_count: 1000}";
        let yaml = format!(
            r#"server_name: "{server_name}"
public_baseurl: "http://127.0.0.1:{cp}/"
pid_file: {d}/homeserver.pid
signing_key_path: {d}/signing.key
media_store_path: {d}/media
report_stats: false
database: {{name: sqlite3, args: {{database: {d}/homeserver.db}}}}
listeners:
  - {{port: {cp}, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{{names: [client], compress: false}}]}}
  - {{port: {fp}, bind_addresses: ['127.0.0.1'], type: http, tls: true, resources: [{{names: [federation]}}]}}
tls_certificate_path: {d}/tls.crt
tls_private_key_path: {d}/tls.key
federation_verify_certificates: false
trusted_key_servers: []
suppress_key_server_warning: true
ip_range_whitelist: ['127.0.0.0/8', '::1/128']
enable_registration: false
registration_shared_secret: "{SHARED_SECRET}"
macaroon_secret_key: "macaroon-{fp}"
form_secret: "form-{fp}"
presence: {{enabled: false}}
url_preview_enabled: false
bcrypt_rounds: 4
federation:
  destination_min_retry_interval: 1s
  destination_retry_multiplier: 1
  destination_max_retry_interval: 2s
rc_message: {rc}
rc_registration: {rc}
rc_login: {{address: {rc}, account: {rc}, failed_attempts: {rc}}}
rc_joins: {{local: {rc}, remote: {rc}}}
rc_joins_per_room: {rc}
rc_invites: {{per_room: {rc}, per_user: {rc}, per_issuer: {rc}}}
rc_room_creation: {rc}
rc_federation: {{window_size: 1000, sleep_limit: 1000, sleep_delay: 1, reject_limit: 1000, concurrent: 100}}
rc_key_requests: {rc}
"#
        );
        let cfg = dir.join("homeserver.yaml");
        std::fs::write(&cfg, yaml).map_err(err)?;
        let child = spawn(&venv, &dir)?;
        let s = Synapse {
            server_name,
            url: format!("http://127.0.0.1:{cp}"),
            dir,
            child,
            _tmp: tmp,
        };
        s.wait_ready()?;
        Ok(s)
    }

    /// Kills the homeserver (SIGKILL, as a crash would) and starts it again on the same
    /// ports and database; returns once it answers.
    pub fn restart(&mut self) -> Result<(), DevnetError> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.join("homeserver.pid"));
        self.child = spawn(&venv()?, &self.dir)?;
        self.wait_ready()
    }

    /// The port of the client-server API.
    fn client_port(&self) -> Result<u16, DevnetError> {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| err("bad homeserver URL"))
    }

    fn wait_ready(&self) -> Result<(), DevnetError> {
        let port = self.client_port()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(port, "/_matrix/client/versions")
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("synapse.log")).unwrap_or_default();
        Err(err(format!("synapse did not start:\n{log}")))
    }

    /// Registers `name` with password `password`; returns the full user ID.
    pub fn register(&self, name: &str, password: &str) -> Result<String, DevnetError> {
        self.register_as(name, password, false)
    }

    /// Limits how fast `user` may send messages, through the admin API (as a busy
    /// homeserver would): `per_second` messages a second, in bursts of `burst`.
    pub fn limit_messages(
        &self,
        user: &str,
        per_second: u32,
        burst: u32,
    ) -> Result<(), DevnetError> {
        let password = "admin-password-for-tests";
        let admin = self.register_as("devnet-admin", password, true).ok();
        let login = self.http_post(
            "/_matrix/client/v3/login",
            None,
            &serde_json::json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": admin.as_deref().unwrap_or("devnet-admin")},
                "password": password,
            }),
        )?;
        let token = login["access_token"]
            .as_str()
            .ok_or_else(|| err(format!("admin login failed: {login}")))?
            .to_owned();
        let path = format!("/_synapse/admin/v1/users/{user}/override_ratelimit");
        self.http_post(
            &path,
            Some(&token),
            &serde_json::json!({"messages_per_second": per_second, "burst_count": burst}),
        )?;
        Ok(())
    }

    /// A JSON POST to the client-server port; the response body as JSON.
    fn http_post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, DevnetError> {
        let port = self.client_port()?;
        let body = body.to_string();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(err)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(err)?;
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .map_err(err)?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(err)?;
        let (head, json) = out
            .split_once("\r\n\r\n")
            .ok_or_else(|| err("no HTTP response"))?;
        // HTTP/1.0: the answer is never chunked.
        if !head.lines().next().is_some_and(|l| l.contains(" 200 ")) {
            return Err(err(format!("POST {path}: {head}\n{json}")));
        }
        serde_json::from_str(json).map_err(|e| err(format!("POST {path}: {e}: {json}")))
    }

    fn register_as(&self, name: &str, password: &str, admin: bool) -> Result<String, DevnetError> {
        let out = Command::new(venv()?.join("bin/register_new_matrix_user"))
            .args([
                "-u",
                name,
                "-p",
                password,
                if admin { "--admin" } else { "--no-admin" },
                "-k",
                SHARED_SECRET,
                &self.url,
            ])
            .output()
            .map_err(err)?;
        if !out.status.success() {
            return Err(err(format!(
                "registering {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(format!("@{name}:{}", self.server_name))
    }
}
