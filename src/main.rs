//! The `neighborwatch` command: the binary's edge, where errors become `anyhow`.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use neighborwatch::config::{Network, Overlay};
use neighborwatch::incident::Engine;
use neighborwatch::model::ReporterKey;
use neighborwatch::render::Catalogs;
use neighborwatch::replay;
use neighborwatch::store::{MemoryStore, SledStore, Store};

/// mimalloc: the engine and matrix-sdk make many small, short-lived allocations, which it
/// serves faster than the system allocator (see README "Performance"; the benchmark uses
/// it too). Built without transparent huge pages (`no_thp`): with them, each 2 MiB page
/// the allocator touched counted whole in the bot's resident memory (155 of 178 MB of
/// heap, measured in the end-to-end benchmark). Version 3 (the default): version 2, which
/// gives freed pages back after 10 ms instead of 1 s, left the bot with 85 MB of heap
/// after issue 25's catch-up where version 3 left 53 MB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REPLAY_HELP: &str = "\
INPUT FORMAT (one JSON object per line):
  {\"room\": \"!id:server\", \"sender\": \"@u:server\", \"ts\": 1767283500000, \"body\": \"!r 2 SUVs at 31st & Market\"}
  Optional keys:
    \"geo\": \"geo:37.82,-122.27\"     the line is a location share (m.location)
    \"event_id\": \"$abc\"             the event ID (default: derived from the line's content)
    \"replaces\": \"$abc\"             the line edits (m.replace) that earlier report
    \"reply_to\": \"$abc\"             the event it replies to
    \"msgtype\": \"m.notice\"          notices are ignored, as on Matrix
    \"reaction\": \"✅\", \"relates_to\": \"$r2/3\"  a reaction (✅ confirm, ❌ false alarm,
                                      🟢 all clear) to one of the bot's messages
    \"redacts\": \"$abc\"              the line deletes that event (a withdrawn report)
    \"power\": 50                     the sender's power level in the room (default 0;
                                      50 or more is a moderator, who may act as a verifier)
    \"member_since\": 1767280000000   when the sender joined the room (unix ms; default:
                                      long ago); see min_member_hours
  Lines are handled in file order; each line's ts is the current time.

OUTPUT FORMAT (one JSON object per action):
  {\"action\": \"reply\"|\"notice\"|\"relay\"|\"location\"|\"edit\"|\"thread_reply\",
   \"room\": \"!id:server\", \"msgtype\": \"m.text\"|\"m.notice\", \"body\": \"plain text\",
   \"html\": \"escaped HTML\", \"mentions_room\": false,
   \"incident\": {\"id\": \"K7Q2\", \"status\": \"confirmed\", \"version\": 2, \"origin\": \"…\", \"hops\": 0} | null}
  reply also has \"in_reply_to\"; location has \"geo_uri\" and \"body\" (its description).
  Every action also has \"event_id\": \"<input event ID>/<N>\" (the N-th action of that
  input line, from 1), the event ID the message stands for, so that later lines can
  react to it.
  relay = a new alert; edit = replace the alert previously relayed to that room for that
  incident; thread_reply = a reply in that alert's thread. Reporter IDs never appear.

Lines that are not valid input are reported on stderr with their line number and
skipped; the exit status is then 2.";

#[derive(Parser)]
#[command(
    name = "neighborwatch",
    version,
    about = "A Matrix bot for neighborhood rapid-response alert networks"
)]
struct Cli {
    /// How log lines are written to standard error: `text` for people, `json` (one
    /// object per line) for a log collector (journald, Loki, a container platform).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "NEIGHBORWATCH_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The log lines' format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Plain text, coloured on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the core on recorded messages and print every action the bot would take.
    #[command(after_long_help = REPLAY_HELP)]
    Replay {
        /// The network file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Keep state in this sled database, so a replay can resume where one stopped.
        /// Needs the reporter key variable named in [storage] to be set.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Messages, one JSON object per line (`-` for standard input).
        input: PathBuf,
    },
    /// Run the bot: connect to the homeserver, handle reports in the network's rooms,
    /// relay alerts. Secrets come from the environment variables the file names.
    Run {
        /// The network file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// A whole local network in one command: Synapse on loopback, the bot, neighbors and
    /// the rooms of config/example.toml; plays the example scenario, then keeps running.
    Demo,
    /// Set up a new network: check the homeserver and the bot's login, create (or adopt)
    /// the coordination room and the first neighborhood's room, and write a commented
    /// network file and an env file with fresh secrets. Asks for what the flags leave
    /// out when run at a terminal; the bot's password comes from NW_PASSWORD or the
    /// prompt. Never overwrites a file without --force.
    Init(Box<InitArgs>),
    /// Make the running bot read its network file again (as SIGHUP does): neighborhoods,
    /// areas, places and settings apply at once, with no restart. The file is checked
    /// first; an invalid one is not sent, and the bot goes on with what it had.
    Reload {
        /// The network file the bot runs with (its [storage] path finds the bot).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Ask the running bot's /health (the file's [metrics] listen address): exit 0 when
    /// it is healthy, 1 with the reason otherwise (a container's HEALTHCHECK).
    Health {
        /// The network file the bot runs with.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a network file and print each neighborhood's effective settings.
    Check {
        /// The network file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// The bot's state database (the file's [storage] path): also show the settings
        /// room admins changed with `!nw settings` (stop the bot first: sled allows one
        /// process at a time).
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

/// `neighborwatch init`'s flags.
#[derive(clap::Args)]
struct InitArgs {
    /// The homeserver's client-server URL (e.g. https://matrix.example.org).
    #[arg(long)]
    homeserver: Option<String>,
    /// The bot's user ID; the account must exist (e.g. @neighborwatch:example.org).
    #[arg(long)]
    user: Option<String>,
    /// Your user ID: invited to the rooms init creates, as their admin, and listed as
    /// an organizer.
    #[arg(long)]
    organizer: Option<String>,
    /// Use this coordination room (ID or alias; the bot must be invited) instead of
    /// creating one.
    #[arg(long)]
    coordination: Option<String>,
    /// The first neighborhood's name.
    #[arg(long)]
    neighborhood: Option<String>,
    /// Use this room (ID or alias; the bot must be invited) as the first neighborhood's
    /// room instead of creating one.
    #[arg(long)]
    room: Option<String>,
    /// The center of the first neighborhood's area: LAT,LON.
    #[arg(long, allow_hyphen_values = true)]
    center: Option<String>,
    /// The radius of its area, in metres.
    #[arg(long)]
    radius_m: Option<f64>,
    /// The network's language: en or es.
    #[arg(long, default_value = "en")]
    language: String,
    /// The network's time zone (IANA, e.g. America/Los_Angeles).
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// Where to write network.toml and neighborwatch.env.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Where the bot keeps its state (relative to --dir, or absolute).
    #[arg(long, default_value = "data")]
    state_dir: String,
    /// Overwrite network.toml and neighborwatch.env if they exist.
    #[arg(long)]
    force: bool,
    /// Never ask: every answer comes from the flags (as when not at a terminal).
    #[arg(long)]
    no_input: bool,
}

/// `neighborwatch init`: the answers, the set-up, and the two next commands.
fn init(args: InitArgs) -> Result<ExitCode> {
    use neighborwatch::init::{self, ask::Answers, files::PASSWORD_ENV};
    use std::io::IsTerminal;
    let answers = Answers {
        homeserver: args.homeserver,
        user: args.user,
        organizer: args.organizer,
        coordination: args.coordination,
        neighborhood: args.neighborhood,
        room: args.room,
        center: args.center,
        radius_m: args.radius_m,
        language: args.language,
        timezone: args.timezone,
        dir: args.dir,
        state_dir: args.state_dir,
        force: args.force,
        password: std::env::var(PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .map(zeroize::Zeroizing::new),
    };
    let interactive = !args.no_input && io::stdin().is_terminal();
    let options = init::ask::complete(answers, interactive)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let w = rt.block_on(init::run(options))?;
    let cfg = w.network.display();
    let env = w.env.display();
    println!("Created the network:");
    println!("  coordination room  {}", w.coordination);
    println!("  neighborhood room  {}", w.room);
    println!("  {cfg} (the network file; add neighborhoods here)");
    println!("  {env} (the secrets, mode 0600; keep it private)");
    println!();
    println!("Next:");
    println!("  neighborwatch check --config {cfg}");
    println!("  set -a; . {env}; set +a; neighborwatch run --config {cfg}");
    Ok(ExitCode::SUCCESS)
}

fn reporter_key(net: &Network, required: bool) -> Result<ReporterKey> {
    let var = net.storage.as_ref().map(|s| s.reporter_key_env.as_str());
    match var.map(|v| (v, std::env::var(v))) {
        Some((_, Ok(secret))) if secret.len() >= 16 => Ok(ReporterKey::new(secret.as_bytes())),
        Some((v, Ok(_))) => bail!("{v} must hold at least 16 characters"),
        _ if required => bail!(
            "set the environment variable {} to a secret of 16 characters or more (it keys the reporter hashes)",
            var.unwrap_or("named by storage.reporter_key_env")
        ),
        _ => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            eprintln!("note: no reporter key set; using a one-off random key for this replay");
            Ok(ReporterKey::new(&secret))
        }
    }
}

fn replay_with<S: Store>(
    net: Arc<Network>,
    store: S,
    key: ReporterKey,
    input: &PathBuf,
) -> Result<replay::Summary> {
    let mut engine = Engine::open(net, store, key, Catalogs::builtin())
        .context("cannot load the replay state")?;
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    let summary = if input.as_os_str() == "-" {
        replay::run(&mut engine, io::stdin().lock(), stdout, stderr)?
    } else {
        let f = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
        replay::run(&mut engine, BufReader::new(f), stdout, stderr)?
    };
    Ok(summary)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `run` logs unless `RUST_LOG` says otherwise: neighborwatch's own lines at info,
/// dependencies' warnings. Two SDK sources are quieter: its HTTP client logs an ERROR for
/// every failed request, including the 404s that are expected on a first start (no key
/// backup, no account data yet) — the bot says itself when a sync or a send fails — and
/// the crypto identity manager warns, with the device's keys, while the first device
/// keys are not uploaded yet.
/// The bot's clock: the real one, or (in builds for the end-to-end tests) a test's
/// clock whose offset file `NEIGHBORWATCH_TEST_CLOCK` names.
fn run_clock() -> neighborwatch::matrix::Clock {
    #[cfg(feature = "devnet")]
    if let Some(file) = std::env::var_os(neighborwatch::matrix::TEST_CLOCK_ENV)
        && !file.is_empty()
    {
        return neighborwatch::matrix::Clock::offset_file(PathBuf::from(file));
    }
    neighborwatch::matrix::Clock::real()
}

/// The log filter unless `RUST_LOG` says otherwise. matrix-sdk 0.18 asks its room-key
/// backup task to run after every sync, backups on or not, and without a backup key it
/// warns each time: that one is kept to errors.
const DEFAULT_LOG: &str = "neighborwatch=info,warn,matrix_sdk::http_client=off,matrix_sdk_crypto::identities::manager=error,matrix_sdk_crypto::backups=error";

fn run() -> Result<ExitCode> {
    use std::io::IsTerminal;
    let cli = Cli::parse();
    // The demo prints its own story; dependencies' warnings would drown it.
    let default_filter = match cli.command {
        Command::Demo => "off,neighborwatch=warn",
        _ => DEFAULT_LOG,
    };
    // `NEIGHBORWATCH_LOG_SPANS=1`: every span the filter lets through logs its time when
    // it closes (`time.busy`, `time.idle`): the per-stage trace of ARCHITECTURE.md.
    let span_times = std::env::var("NEIGHBORWATCH_LOG_SPANS").is_ok_and(|v| v == "1");
    let logs = tracing_subscriber::fmt()
        .with_span_events(if span_times {
            tracing_subscriber::fmt::format::FmtSpan::CLOSE
        } else {
            tracing_subscriber::fmt::format::FmtSpan::NONE
        })
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(|| neighborwatch::logging::Redacting(io::stderr()));
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    neighborwatch::logging::install_panic_hook();
    match cli.command {
        Command::Replay {
            config,
            store,
            input,
        } => {
            let net = Arc::new(Network::load(&config)?);
            let summary = match store {
                Some(path) => {
                    let key = reporter_key(&net, true)?;
                    let s = SledStore::open(&path, &store_vault(&net)?)
                        .with_context(|| format!("cannot open the store {}", path.display()))?
                        .with_flush_on_commit(false);
                    let summary = replay_with(net, s.clone(), key, &input)?;
                    s.flush()?;
                    summary
                }
                None => replay_with(
                    Arc::clone(&net),
                    MemoryStore::new(),
                    reporter_key(&net, false)?,
                    &input,
                )?,
            };
            if summary.bad_lines > 0 {
                eprintln!("{} line(s) skipped", summary.bad_lines);
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => {
            let net = Network::load(&config)?;
            let secrets = neighborwatch::matrix::Secrets::from_env(&net)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let options = neighborwatch::matrix::RunOptions { clock: run_clock() };
            rt.block_on(neighborwatch::matrix::run_with(
                net,
                secrets,
                options,
                shutdown_signal(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "devnet")]
        Command::Demo => {
            let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(neighborwatch::devnet::demo::run(&repo, shutdown_signal()))
                .context("the local demo network failed")?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(not(feature = "devnet"))]
        Command::Demo => bail!(
            "this build carries only the product, not the local demo network; run the demo \
             from a checkout with scripts/demo (cargo run --features devnet -- demo)"
        ),
        Command::Reload { config } => reload(&config),
        Command::Init(args) => init(*args),
        Command::Health { config } => {
            let net = Network::load(&config)?;
            let Some(m) = &net.metrics else {
                bail!(
                    "{} has no [metrics] section: the health check asks its listen address",
                    config.display()
                );
            };
            match neighborwatch::service::probe_health(m.listen) {
                Ok(body) => {
                    println!("healthy: {body}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    println!("{why}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Check { config, state } => {
            let file = Network::load(&config)?;
            let mut warnings = Vec::new();
            let overlay = match &state {
                Some(path) => {
                    if !path.join("conf").exists() {
                        bail!(
                            "{} is not a state database (no sled `conf` file in it); give the [storage] path of the network file",
                            path.display()
                        );
                    }
                    let store = SledStore::open(path, &store_vault(&file)?).with_context(|| {
                        format!(
                            "cannot open the state database {} (is the bot running? stop it first)",
                            path.display()
                        )
                    })?;
                    warnings.extend(coordination_warning(&file, &store));
                    Overlay::new(store.load()?.settings)
                }
                None => Overlay::default(),
            };
            print!("{}", check_summary(&config, &file, &overlay));
            for w in &warnings {
                println!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `neighborwatch reload`: checks the file as `check` does, signals the bot running on
/// its state database, and prints what the bot made of it.
fn reload(config: &std::path::Path) -> Result<ExitCode> {
    use neighborwatch::service;
    let net = Network::load(config)
        .context("the file is not valid; the running bot was not asked to reload")?;
    let Some(storage) = &net.storage else {
        bail!(
            "{} has no [storage] section: it is not the file of a running bot",
            config.display()
        );
    };
    let asked = chrono::Utc::now().timestamp_millis();
    let pid = service::signal_reload(&storage.path, config)?;
    eprintln!(
        "asked the bot (process {pid}) to read {} again",
        config.display()
    );
    match service::wait_result(&storage.path, asked, Duration::from_secs(30)) {
        Some(line) => {
            // `<ms> ok|refused <what>`
            let mut parts = line.splitn(3, ' ');
            let (_, word, what) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
            if word == Some("ok") {
                println!("reloaded: {what}");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("refused: {what}");
                Ok(ExitCode::FAILURE)
            }
        }
        None => bail!(
            "the bot did not say within 30 s whether it reloaded; see its log (it may be catching up)"
        ),
    }
}

/// The store passphrase's vault, for the commands that open the state database without
/// the bot: from the variable the network file names (`[matrix] store_passphrase_env`),
/// or `NW_STORE_PASSPHRASE` when it has no `[matrix]` section.
fn store_vault(net: &Network) -> Result<neighborwatch::store::Vault> {
    use neighborwatch::store::{StoreError, Vault, vault::DEFAULT_PASSPHRASE_ENV};
    let var = net
        .matrix
        .as_ref()
        .map_or(DEFAULT_PASSPHRASE_ENV, |m| m.store_passphrase_env.as_str());
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Ok(Vault::new(&p, var)),
        _ => Err(StoreError::NoPassphrase(var.to_owned()).into()),
    }
}

/// The coordination room, if the bot found it unencrypted when it last started (and the
/// network file does not allow that): it gets no incident details.
fn coordination_warning(file: &Network, store: &SledStore) -> Option<String> {
    let (room, at) = neighborwatch::matrix::coordination_seen_unencrypted(store)?;
    if file.allow_unencrypted || file.coordination_room.as_deref() != Some(room.as_str()) {
        return None;
    }
    let when = chrono::DateTime::from_timestamp_millis(at).map_or_else(String::new, |t| {
        t.format(" (%Y-%m-%d %H:%M UTC)").to_string()
    });
    Some(format!(
        "the coordination room {room} was not end-to-end encrypted when the bot last started{when}: \
         it gets no incident details until encryption is turned on in its settings"
    ))
}

/// What `check` prints: each neighborhood with its effective settings; the values set
/// from a room are marked with who set them, where and when.
fn check_summary(path: &std::path::Path, file: &Network, overlay: &Overlay) -> String {
    use std::fmt::Write;
    let net = file.with_overlay(overlay);
    let counted =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = format!("{}: ok\n", path.display());
    for n in net.neighborhoods() {
        let _ = writeln!(
            out,
            "  {} ({}): {}, {}, {}",
            n.id,
            n.name,
            counted(n.rooms.len(), "room", "rooms"),
            counted(n.gazetteer.places().len(), "place", "places"),
            counted(n.gazetteer.streets().len(), "street", "streets"),
        );
        let file_settings = file.settings(&n.id);
        let shown: Vec<String> = n
            .settings
            .shown()
            .into_iter()
            .map(|(key, value)| {
                let mark = if n.set_in_room(key).is_some() {
                    " *"
                } else {
                    ""
                };
                format!("{key} = {value}{mark}")
            })
            .collect();
        let _ = writeln!(out, "    {}", shown.join(", "));
        for s in n.room_set() {
            if s.key == neighborwatch::config::AREA_KEY {
                let file_area = file
                    .neighborhood(&n.id)
                    .map(|f| neighborwatch::config::area_text(&f.area))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    * area = {} (center, radius in metres): set from a room by {} in {}; the network file says {file_area}",
                    s.value, s.by, s.room
                );
            }
            if s.key.starts_with(neighborwatch::config::PLACE_KEY) {
                let _ = writeln!(
                    out,
                    "    * place {} (kind, point, name): added from a room by {} in {}",
                    s.value, s.by, s.room
                );
            }
            if let Some(user) = s.key.strip_prefix(neighborwatch::config::VERIFIER_KEY) {
                let _ = writeln!(
                    out,
                    "    * verifier {user} {} from a room by {} in {}",
                    s.value, s.by, s.room
                );
            }
        }
        for (key, _) in n.settings.shown() {
            if let Some(s) = n.set_in_room(key) {
                let _ = writeln!(
                    out,
                    "    * {key}: set from a room by {} in {} at {}; the network file says {}",
                    s.by,
                    s.room,
                    chrono::DateTime::from_timestamp_millis(s.at_ms)
                        .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
                    file_settings.value_of(key).unwrap_or_default()
                );
            }
        }
    }
    out
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
