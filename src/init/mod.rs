//! `neighborwatch init`: from a homeserver and an account for the bot to a network that
//! runs. Checks the homeserver and the login, creates (or adopts) the coordination room
//! and the first neighborhood's room, writes a commented network file and an env file
//! with fresh random secrets (mode 0600), and says what to run next.
//!
//! Owns: the set-up's answers ([`InitOptions`], asked or given: `ask`), the files' text
//! (`files`), the homeserver steps (`homeserver`). Must not touch: a running bot's state (init never
//! creates the bot's device or its stores; `run` does), files it was not asked to
//! overwrite.

pub mod ask;
pub mod files;
mod homeserver;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use files::FirstNeighborhood;

/// Why `init` stopped. Nothing was written when it did.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// An answer is not usable.
    #[error("{0}")]
    Input(String),
    /// The homeserver is unreachable, or refused a step.
    #[error("{0}")]
    Homeserver(String),
    /// The login failed.
    #[error("{0}")]
    Login(String),
    /// A file exists and `--force` was not given.
    #[error("{0} exists; give --force to overwrite it")]
    Exists(PathBuf),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The answers `init` needs (from flags, or asked one by one).
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The homeserver's client-server URL.
    pub homeserver: String,
    /// The bot's user ID (the account exists).
    pub user: String,
    /// The bot's password.
    pub password: zeroize::Zeroizing<String>,
    /// The organizer's user ID: invited to the rooms init creates, as an admin.
    pub organizer: String,
    /// An existing coordination room to adopt (ID or alias); `None`: create one.
    pub coordination: Option<String>,
    /// The first neighborhood (its `room` empty: create one).
    pub neighborhood: FirstNeighborhood,
    /// Language and time zone of the network.
    pub language: String,
    /// See `language`.
    pub timezone: String,
    /// Where the two files go.
    pub dir: PathBuf,
    /// Where the bot's state goes, relative to `dir` or absolute.
    pub state_dir: String,
    /// Overwrite existing files.
    pub force: bool,
}

/// What `init` wrote.
#[derive(Debug)]
pub struct Written {
    /// The network file.
    pub network: PathBuf,
    /// The env file.
    pub env: PathBuf,
    /// The coordination room's ID.
    pub coordination: String,
    /// The first neighborhood's room ID.
    pub room: String,
}

/// The files init writes in `dir`.
pub fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("network.toml"), dir.join("neighborwatch.env"))
}

/// Runs the set-up: files are checked first (nothing is done on the homeserver if one
/// exists without `force`), written last (after the homeserver steps succeeded, and
/// after the network file is checked as `neighborwatch check` would).
pub async fn run(mut o: InitOptions) -> Result<Written, InitError> {
    let (network, env) = paths(&o.dir);
    for p in [&network, &env] {
        if p.exists() && !o.force {
            return Err(InitError::Exists(p.clone()));
        }
    }
    if o.language != "en" && o.language != "es" {
        return Err(InitError::Input(format!(
            "language {:?}: neighborwatch speaks en and es",
            o.language
        )));
    }
    // Every answer is checked as `neighborwatch check` would (with stand-in room IDs)
    // before anything is made on the homeserver.
    let placeholder = FirstNeighborhood {
        room: "!placeholder:example.org".into(),
        ..o.neighborhood.clone()
    };
    let text = network_text(&o, "!placeholder:example.org", &placeholder);
    crate::config::Network::parse(&text, &network)
        .map_err(|e| InitError::Input(format!("the network file would not be valid: {e}")))?;
    let setup = homeserver::Setup::login(&o.homeserver, &o.user, &o.password, &o.organizer).await?;
    let rooms = async {
        let coord = setup
            .room(
                o.coordination.as_deref(),
                "Coordination (neighborwatch)",
                "coordination room",
            )
            .await?;
        let existing = (!o.neighborhood.room.is_empty()).then(|| o.neighborhood.room.clone());
        let room = setup
            .room(
                existing.as_deref(),
                &format!("{} alerts", o.neighborhood.name),
                "neighborhood room",
            )
            .await?;
        Ok::<_, InitError>((coord, room))
    }
    .await;
    setup.logout().await;
    let (coord, room) = rooms?;
    o.neighborhood.room = room.clone();
    let text = network_text(&o, &coord, &o.neighborhood);
    // The file must pass `neighborwatch check` before it is written.
    crate::config::Network::parse(&text, &network)
        .map_err(|e| InitError::Input(format!("the network file would not be valid: {e}")))?;
    let mut secrets = [[0u8; 32]; 2];
    for s in &mut secrets {
        getrandom::fill(s).map_err(|e| InitError::Io {
            path: env.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    let env_text = zeroize::Zeroizing::new(files::env_file(&o.password, &secrets[0], &secrets[1]));
    write_file(&network, text.as_bytes(), 0o644)?;
    write_file(&env, env_text.as_bytes(), 0o600)?;
    Ok(Written {
        network,
        env,
        coordination: coord,
        room,
    })
}

/// The network file of the answers `o`, with these rooms.
fn network_text(o: &InitOptions, coordination: &str, first: &FirstNeighborhood) -> String {
    files::network_file(&files::NetworkText {
        homeserver: &o.homeserver,
        user: &o.user,
        organizer: &o.organizer,
        coordination_room: coordination,
        state_dir: &o.state_dir,
        language: &o.language,
        timezone: &o.timezone,
        neighborhood: first,
        written: &chrono::Utc::now().format("%Y-%m-%d").to_string(),
    })
}

/// Writes `bytes` to `path` with `mode` (also when the file existed).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), InitError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| InitError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}
