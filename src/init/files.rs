//! The two files `neighborwatch init` writes, as text: a commented network file and the
//! env file with the secrets. Pure: the caller supplies the rooms and the random bytes.

use std::fmt::Write;

/// The names of the secrets' variables the written files use.
pub const PASSWORD_ENV: &str = "NW_PASSWORD";
/// See [`PASSWORD_ENV`].
pub const STORE_PASSPHRASE_ENV: &str = "NW_STORE_PASSPHRASE";
/// See [`PASSWORD_ENV`].
pub const REPORTER_KEY_ENV: &str = "NW_REPORTER_KEY";

/// Everything the network file says.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkText<'a> {
    /// Homeserver URL.
    pub homeserver: &'a str,
    /// The bot's user ID.
    pub user: &'a str,
    /// The organizer's user ID.
    pub organizer: &'a str,
    /// The coordination room's ID.
    pub coordination_room: &'a str,
    /// Where the bot keeps its state, relative to the network file or absolute.
    pub state_dir: &'a str,
    /// The network's language (`en`, `es`).
    pub language: &'a str,
    /// Its IANA time zone.
    pub timezone: &'a str,
    /// The first neighborhood.
    pub neighborhood: &'a FirstNeighborhood,
    /// When it was written (for the header).
    pub written: &'a str,
}

/// The first neighborhood of a new network.
#[derive(Clone, Debug, PartialEq)]
pub struct FirstNeighborhood {
    /// Its name.
    pub name: String,
    /// Its room's ID.
    pub room: String,
    /// The center of its area.
    pub center: (f64, f64),
    /// The radius of its area, in metres.
    pub radius_m: f64,
}

/// A TOML string literal of `s` (quoted and escaped).
fn lit(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A neighborhood id from its name: lowercase ASCII letters and digits, words joined by
/// hyphens (`Clawson & McClymonds` → `clawson-mcclymonds`); `neighborhood` if nothing
/// is left.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "neighborhood".into()
    } else {
        out
    }
}

/// The network file, commented for an organizer who reads it for the first time.
pub fn network_file(t: &NetworkText<'_>) -> String {
    let n = t.neighborhood;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"# The neighborwatch network file, written by `neighborwatch init` on {written}.
# Every key is described in PRODUCT.md §5; config/example.toml is a fuller example.
# After a change: `neighborwatch check --config network.toml`, then
# `neighborwatch reload --config network.toml` (or SIGHUP, or `systemctl reload`):
# the running bot applies it with no restart.
#
# No secrets here: the bot reads them from the environment variables named below
# (neighborwatch.env, mode 0600, holds them).

# Every incident of the network is announced here, and every change room admins make.
coordination_room = {coord}
# Users whose invites the bot accepts, besides the network's own rooms.
organizers = [{organizer}]

[matrix]
homeserver = {homeserver}
user = {user}
password_env = "{PASSWORD_ENV}"
# The bot's device and its encryption keys, sealed under the store passphrase. Keep
# this directory and back it up: losing it means a new device, and messages sent to
# the old one cannot be read.
store_path = {matrix_dir}
store_passphrase_env = "{STORE_PASSPHRASE_ENV}"

[storage]
# Incidents, the outbox of messages to send, settings changed from rooms.
path = {state_path}
reporter_key_env = "{REPORTER_KEY_ENV}"

# /metrics (Prometheus) and /health, on this machine only.
[metrics]
listen = "127.0.0.1:9464"

[defaults]
language = {language}
timezone = {timezone}
# dedupe_radius_m = 250      # reports this close (and within dedupe_window_min) merge
# confirmations = 2          # independent reporters needed to confirm an incident
# alert_radius_m = 1600      # rooms whose area is this close to an incident are alerted

# One table per neighborhood: its rooms, its area (a circle, or a GeoJSON file of
# polygons: area = {{ geojson = "areas/name.geojson" }}) and, optionally, its places
# (gazetteer: GeoJSON points and streets; see config/places/). Add a neighborhood by
# copying this table; invite the bot to its rooms; then reload.
[[neighborhood]]
id = {id}
name = {name}
rooms = [{room}]
area = {{ center = [{lat}, {lon}], radius_m = {radius} }}
# gazetteer = ["places.geojson"]
"#,
        written = t.written,
        coord = lit(t.coordination_room),
        organizer = lit(t.organizer),
        homeserver = lit(t.homeserver),
        user = lit(t.user),
        matrix_dir = lit(&format!("{}/matrix", t.state_dir.trim_end_matches('/'))),
        state_path = lit(&format!("{}/state.sled", t.state_dir.trim_end_matches('/'))),
        language = lit(t.language),
        timezone = lit(t.timezone),
        id = lit(&slug(&n.name)),
        name = lit(&n.name),
        room = lit(&n.room),
        lat = n.center.0,
        lon = n.center.1,
        radius = n.radius_m,
    );
    s
}

/// The env file: the bot's password, and two fresh secrets (`store_passphrase`,
/// `reporter_key`, each 32 random bytes as hex).
pub fn env_file(password: &str, store_passphrase: &[u8; 32], reporter_key: &[u8; 32]) -> String {
    format!(
        "# The secrets of neighborwatch, written by `neighborwatch init`. Keep this file\n\
         # mode 0600 and never commit or share it. Losing the store passphrase means the\n\
         # bot's device and state cannot be opened; changing the reporter key makes every\n\
         # reporter count as new.\n\
         # Load it with: set -a; . ./neighborwatch.env; set +a\n\
         # (systemd: EnvironmentFile=; Docker/Podman: --env-file).\n\
         {PASSWORD_ENV}={}\n\
         {STORE_PASSPHRASE_ENV}={}\n\
         {REPORTER_KEY_ENV}={}\n",
        env_value(password),
        hex::encode(store_passphrase),
        hex::encode(reporter_key),
    )
}

/// A value as an env file line takes it: as is when it holds only characters no reader
/// treats specially; else quoted, as both a POSIX shell (`. file`) and systemd's
/// `EnvironmentFile=` read quotes (Docker's `--env-file` does not: give it such a
/// password as is).
fn env_value(v: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-+=@:/,%^".contains(c);
    if !v.is_empty() && v.chars().all(plain) {
        v.to_owned()
    } else if !v.contains('\'') {
        format!("'{v}'")
    } else {
        let mut out = String::from("\"");
        for c in v.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Network;

    fn first() -> FirstNeighborhood {
        FirstNeighborhood {
            name: "Clawson & \"McClymonds\"".into(),
            room: "!room:example.org".into(),
            center: (37.8175, -122.283),
            radius_m: 800.0,
        }
    }

    #[test]
    fn the_written_network_file_is_valid_and_says_what_was_given() {
        let n = first();
        let text = network_file(&NetworkText {
            homeserver: "https://matrix.example.org",
            user: "@nw:example.org",
            organizer: "@org:example.org",
            coordination_room: "!coord:example.org",
            state_dir: "data",
            language: "es",
            timezone: "America/Chicago",
            neighborhood: &n,
            written: "2026-12-08",
        });
        let dir = tempfile::tempdir().unwrap();
        let net = Network::parse(&text, &dir.path().join("network.toml")).unwrap();
        assert_eq!(net.coordination_room.as_deref(), Some("!coord:example.org"));
        assert_eq!(net.organizers, vec!["@org:example.org".to_owned()]);
        let hood = &net.neighborhoods()[0];
        assert_eq!(hood.id, "clawson-mcclymonds");
        assert_eq!(hood.name, "Clawson & \"McClymonds\"");
        assert_eq!(hood.settings.language, "es");
        let m = net.matrix.as_ref().unwrap();
        assert_eq!(m.store_path, dir.path().join("data/matrix"));
        assert_eq!(
            net.storage.as_ref().unwrap().path,
            dir.path().join("data/state.sled")
        );
    }

    #[test]
    fn the_env_file_holds_the_secrets_in_hex() {
        let text = env_file("pass word", &[1; 32], &[2; 32]);
        assert!(text.contains("NW_PASSWORD='pass word'\n"), "{text}");
        assert!(
            env_file("plain-Pass.1", &[1; 32], &[2; 32]).contains("NW_PASSWORD=plain-Pass.1\n")
        );
        assert!(env_file("it's $x", &[1; 32], &[2; 32]).contains("NW_PASSWORD=\"it's \\$x\"\n"));
        assert!(text.contains(&format!("NW_STORE_PASSPHRASE={}\n", "01".repeat(32))));
        assert!(text.contains(&format!("NW_REPORTER_KEY={}\n", "02".repeat(32))));
    }

    #[test]
    fn ids_are_slugs_of_names() {
        assert_eq!(slug("Hoover-Foster"), "hoover-foster");
        assert_eq!(slug("  Back of the Yards! "), "back-of-the-yards");
        assert_eq!(slug("Ñuñoa"), "u-oa");
        assert_eq!(slug("***"), "neighborhood");
    }
}
