//! Loading a network file: the TOML read into the raw structs, then validated section by
//! section ([`Validator::run`]) into a [`Network`]. Every error names the file, the line
//! and the key.
//!
//! Owns: the order of the checks and the errors of each section. The checks of single
//! values are in `values`, the areas in `area`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use regex::Regex;
use rustc_hash::FxHashMap;
use toml::Spanned;

use super::raw::{RawMatrix, RawMetrics, RawNeighborhood, RawNetwork, RawStorage, RawTunables};
use super::{
    ConfigError, MatrixSettings, MetricsSettings, Neighborhood, Network, StorageSettings, Tunables,
};
use crate::catalog::Catalogs;
use crate::places::{Gazetteer, GazetteerBuilder};

static UNKNOWN_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:unknown field|missing field) `([^`]+)`").expect("static regex")
});
static NEIGHBORHOOD_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,62}$").expect("static regex"));

impl Network {
    /// Reads and validates a network file and the files it names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Validates network-file text; `path` locates relative file references.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Validator {
            file: path.to_owned(),
            dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            text,
            catalogs: Catalogs::builtin(),
            files: HashMap::new(),
        }
        .run()
    }
}

/// One network file being validated: where it is, its text (to turn spans into lines),
/// and the files it names, each read once.
pub(super) struct Validator<'a> {
    /// The network file.
    pub(super) file: PathBuf,
    /// Its directory, against which the files it names are read.
    dir: PathBuf,
    /// Its text.
    text: &'a str,
    /// The catalogs a `language` must be one of.
    pub(super) catalogs: &'static Catalogs,
    /// The gazetteer and area files read so far, by path.
    files: HashMap<PathBuf, String>,
}

impl Validator<'_> {
    /// The network, checked section by section, in the order a reader meets the errors.
    fn run(mut self) -> Result<Network, ConfigError> {
        let raw = self.toml()?;
        let defaults = self.defaults(raw.defaults.as_ref())?;
        let matrix = raw.matrix.as_ref().map(|m| self.matrix(m)).transpose()?;
        let storage = raw.storage.as_ref().map(|s| self.storage(s)).transpose()?;
        let metrics = raw.metrics.as_ref().map(|m| self.metrics(m)).transpose()?;
        let (coordination_room, organizers) = self.coordination(&raw)?;
        let neighborhoods = self.neighborhoods(&raw.neighborhoods, &defaults)?;
        Ok(Network::new(Network {
            by_room: FxHashMap::default(),
            by_id: FxHashMap::default(),
            links: Vec::new(),
            path: self.file.clone(),
            coordination_room,
            organizers,
            allow_unencrypted: raw.allow_unencrypted.unwrap_or(false),
            matrix,
            storage,
            metrics,
            defaults,
            neighborhoods,
        }))
    }

    /// The TOML, read into the raw structs: malformed TOML, an unknown key or a missing
    /// one is a syntax error.
    fn toml(&self) -> Result<RawNetwork, ConfigError> {
        toml::from_str(self.text).map_err(|e| {
            let line = e.span().map_or(1, |s| self.line(&s));
            let mut message = e.message().to_owned();
            let mut key = UNKNOWN_FIELD.captures(&message).map(|c| c[1].to_owned());
            // A value of the wrong type: the parser points at the value; the key is
            // what its line assigns (`alert_radius_m = "wide"`), named in the message.
            if key.is_none()
                && let Some(k) = e.span().and_then(|s| self.assigned_key(s.start))
            {
                message = format!("`{k}`: {message}");
                key = Some(k);
            }
            ConfigError::Syntax {
                file: self.file.clone(),
                line,
                key,
                message,
            }
        })
    }

    /// The key a `key = value` line assigns when `at` is the start of its value.
    fn assigned_key(&self, at: usize) -> Option<String> {
        let before = self.text.get(..at)?;
        let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
        let key = line.trim_end().strip_suffix('=')?.trim();
        let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
        (!key.is_empty() && key.chars().all(bare)).then(|| key.to_owned())
    }

    /// `[defaults]`: the tunables over the built-in ones.
    fn defaults(&self, raw: Option<&RawTunables>) -> Result<Tunables, ConfigError> {
        self.tunables(
            raw.unwrap_or(&RawTunables::default()),
            &Tunables::default(),
            "defaults",
        )
    }

    /// `[matrix]`.
    fn matrix(&self, m: &RawMatrix) -> Result<MatrixSettings, ConfigError> {
        let hs = m.homeserver.get_ref();
        if !(hs.starts_with("https://") || hs.starts_with("http://")) {
            return Err(self.invalid(
                &m.homeserver.span(),
                "matrix.homeserver",
                "must start with https:// or http://",
            ));
        }
        self.user_id(&m.user, "matrix.user")?;
        self.env_name(&m.password_env, "matrix.password_env")?;
        self.env_name(&m.store_passphrase_env, "matrix.store_passphrase_env")?;
        let store_path = self.dir.join(m.store_path.get_ref());
        let recovery_key_file = match &m.recovery_key_file {
            None => None,
            Some(f) => {
                let path = self.dir.join(f.get_ref());
                if path.starts_with(&store_path) {
                    return Err(self.invalid(
                        &f.span(),
                        "matrix.recovery_key_file",
                        "must not be inside matrix.store_path: whoever copies the store would have the key to every backed-up room key",
                    ));
                }
                Some(path)
            }
        };
        Ok(MatrixSettings {
            homeserver: hs.clone(),
            user: m.user.get_ref().clone(),
            password_env: m.password_env.get_ref().clone(),
            store_path,
            store_passphrase_env: m.store_passphrase_env.get_ref().clone(),
            device_name: m
                .device_name
                .clone()
                .unwrap_or_else(|| "neighborwatch".into()),
            ask_resend_after_s: self.whole(
                &m.ask_resend_after_s,
                "matrix.ask_resend_after_s",
                60,
                86_400,
            )?,
            key_backup: m.key_backup.unwrap_or(false),
            recovery_key_file,
        })
    }

    /// `[storage]`.
    fn storage(&self, s: &RawStorage) -> Result<StorageSettings, ConfigError> {
        self.env_name(&s.reporter_key_env, "storage.reporter_key_env")?;
        Ok(StorageSettings {
            path: self.dir.join(s.path.get_ref()),
            reporter_key_env: s.reporter_key_env.get_ref().clone(),
        })
    }

    /// `[metrics]`.
    fn metrics(&self, m: &RawMetrics) -> Result<MetricsSettings, ConfigError> {
        Ok(MetricsSettings {
            listen: m.listen.get_ref().trim().parse().map_err(|_| {
                self.invalid(
                    &m.listen.span(),
                    "metrics.listen",
                    format!(
                        "`{}` is not an address and port, like 127.0.0.1:9464",
                        m.listen.get_ref()
                    ),
                )
            })?,
        })
    }

    /// `coordination_room` and `organizers`.
    fn coordination(&self, raw: &RawNetwork) -> Result<(Option<String>, Vec<String>), ConfigError> {
        if let Some(r) = &raw.coordination_room {
            self.room(r, "coordination_room")?;
        }
        let organizers = raw.organizers.as_deref().unwrap_or_default();
        for o in organizers {
            self.user_id(o, "organizers")?;
        }
        Ok((
            raw.coordination_room.as_ref().map(|r| r.get_ref().clone()),
            organizers.iter().map(|o| o.get_ref().clone()).collect(),
        ))
    }

    /// Every `[[neighborhood]]`: at least one, no id and no room used twice.
    fn neighborhoods(
        &mut self,
        raw: &[RawNeighborhood],
        defaults: &Tunables,
    ) -> Result<Vec<Neighborhood>, ConfigError> {
        if raw.is_empty() {
            return Err(ConfigError::Invalid {
                file: self.file.clone(),
                line: 1,
                key: "neighborhood".into(),
                reason: "the network needs at least one [[neighborhood]]".into(),
            });
        }
        let mut seen_ids = HashSet::new();
        let mut seen_rooms = HashMap::new();
        raw.iter()
            .map(|n| self.neighborhood(n, defaults, &mut seen_ids, &mut seen_rooms))
            .collect()
    }

    /// One `[[neighborhood]]`; `seen_ids` and `seen_rooms` (room → neighborhood id) hold
    /// those of the neighborhoods before it.
    fn neighborhood(
        &mut self,
        n: &RawNeighborhood,
        defaults: &Tunables,
        seen_ids: &mut HashSet<String>,
        seen_rooms: &mut HashMap<String, String>,
    ) -> Result<Neighborhood, ConfigError> {
        let id = n.id.get_ref();
        if !NEIGHBORHOOD_ID.is_match(id) {
            return Err(self.invalid(
                &n.id.span(),
                "neighborhood.id",
                "use lowercase letters, digits, `-` and `_`",
            ));
        }
        if !seen_ids.insert(id.clone()) {
            return Err(self.invalid(
                &n.id.span(),
                "neighborhood.id",
                format!("`{id}` is used twice"),
            ));
        }
        if n.name.get_ref().trim().is_empty() {
            return Err(self.invalid(&n.name.span(), "neighborhood.name", "must not be empty"));
        }
        self.rooms(&n.rooms, id, seen_rooms)?;
        let area = self.area(&n.area)?;
        let gazetteer = self.gazetteer(&n.gazetteer)?;
        let settings = self.tunables(&n.tunables(), defaults, "neighborhood")?;
        Ok(Neighborhood {
            id: id.clone(),
            name: n.name.get_ref().trim().to_owned(),
            rooms: n
                .rooms
                .get_ref()
                .iter()
                .map(|r| Arc::from(r.get_ref().as_str()))
                .collect(),
            area,
            gazetteer: Arc::new(gazetteer),
            settings,
            room_set: Vec::new(),
        })
    }

    /// A neighborhood's `rooms`: at least one, each a room, none already another's.
    fn rooms(
        &self,
        rooms: &Spanned<Vec<Spanned<String>>>,
        id: &str,
        seen_rooms: &mut HashMap<String, String>,
    ) -> Result<(), ConfigError> {
        if rooms.get_ref().is_empty() {
            return Err(self.invalid(
                &rooms.span(),
                "neighborhood.rooms",
                "list at least one room",
            ));
        }
        for r in rooms.get_ref() {
            self.room(r, "neighborhood.rooms")?;
            if let Some(other) = seen_rooms.insert(r.get_ref().clone(), id.to_owned()) {
                return Err(self.invalid(
                    &r.span(),
                    "neighborhood.rooms",
                    format!("room is already in neighborhood `{other}`"),
                ));
            }
        }
        Ok(())
    }

    /// A neighborhood's places, from its `gazetteer` files.
    fn gazetteer(&mut self, files: &[Spanned<String>]) -> Result<Gazetteer, ConfigError> {
        let mut builder = GazetteerBuilder::new();
        for g in files {
            let (path, text) = self.read(g, "neighborhood.gazetteer")?;
            builder
                .add_geojson(&text)
                .map_err(|source| ConfigError::Geo {
                    file: self.file.clone(),
                    line: self.line(&g.span()),
                    key: "neighborhood.gazetteer".into(),
                    path,
                    source,
                })?;
        }
        Ok(builder.build())
    }

    /// The 1-based line of a span.
    pub(super) fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }

    /// An invalid value of `key` at `span`.
    pub(super) fn invalid(
        &self,
        span: &Range<usize>,
        key: &str,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line(span),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// A file the network file names (relative to it), read once.
    pub(super) fn read(
        &mut self,
        rel: &Spanned<String>,
        key: &str,
    ) -> Result<(PathBuf, String), ConfigError> {
        let path = self.dir.join(rel.get_ref());
        if let Some(t) = self.files.get(&path) {
            return Ok((path, t.clone()));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid(
                &rel.span(),
                key,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.files.insert(path.clone(), text.clone());
        Ok((path, text))
    }
}
