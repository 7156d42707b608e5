//! Single values of the network file, each checked where it stands so that its error names
//! its line and key: room IDs, user IDs, env var names, numbers in range, and the tunables
//! of `[defaults]` and of each `[[neighborhood]]` (with the rules a room's change meets
//! too, from `settable`).

use std::sync::LazyLock;

use regex::Regex;
use toml::Spanned;

use super::load::Validator;
use super::raw::{Num, RawTunables};
use super::settable::{self, Problem};
use super::{ConfigError, MAX_ALERT_RETENTION_HOURS, Tunables};

static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z_][A-Z0-9_]*$").expect("static regex"));

/// Whether `s` looks like a Matrix user ID (`@name:server`), as the network file requires
/// of verifiers and organizers (and a room admin's `!nw verifiers add`).
pub fn is_user_id(s: &str) -> bool {
    s.starts_with('@') && s.len() > 3 && s[1..].contains(':') && !s.contains(char::is_whitespace)
}

impl Validator<'_> {
    /// A room ID or alias.
    pub(super) fn room(&self, r: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        let s = r.get_ref();
        let clean = !s.contains(char::is_whitespace);
        // Room IDs are `!opaque:server`, or just `!opaque` from room version 12 on.
        let id = s.starts_with('!') && s.len() > 2 && clean;
        let alias = s.starts_with('#') && s.len() > 3 && s[1..].contains(':') && clean;
        if id || alias {
            Ok(())
        } else {
            Err(self.invalid(
                &r.span(),
                key,
                format!("`{s}` is not a room ID (!id or !id:server) or alias (#name:server)"),
            ))
        }
    }

    /// A user ID.
    pub(super) fn user_id(&self, u: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        let s = u.get_ref();
        if is_user_id(s) {
            Ok(())
        } else {
            Err(self.invalid(
                &u.span(),
                key,
                format!("`{s}` is not a user ID (@name:server)"),
            ))
        }
    }

    /// The name of an environment variable (never a secret itself).
    pub(super) fn env_name(&self, v: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        if ENV_NAME.is_match(v.get_ref()) {
            Ok(())
        } else {
            Err(self.invalid(
                &v.span(),
                key,
                "must be the NAME of an environment variable (A-Z, 0-9, _); secrets never go in this file",
            ))
        }
    }

    /// A distance, or `base` when not given.
    fn positive(&self, v: &Option<Spanned<Num>>, key: &str, base: f64) -> Result<f64, ConfigError> {
        let Some(v) = v else { return Ok(base) };
        settable::check_distance(v.get_ref().as_f64())
            .map_err(|p| self.invalid(&v.span(), key, p.to_string()))
    }

    /// A whole number from 1 to `max`, or `base` when not given.
    pub(super) fn whole(
        &self,
        v: &Option<Spanned<Num>>,
        key: &str,
        base: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        self.whole_from(v, key, base, 1, max)
    }

    /// A whole number from `min` to `max`, or `base` when not given.
    fn whole_from(
        &self,
        v: &Option<Spanned<Num>>,
        key: &str,
        base: u32,
        min: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        let Some(v) = v else { return Ok(base) };
        let problem = |got: String| Problem::Whole { min, max, got };
        match *v.get_ref() {
            Num::Int(i) if i >= i64::from(min) && i <= i64::from(max) => {
                u32::try_from(i).map_err(|_| problem(i.to_string()))
            }
            other => Err(problem(other.as_f64().to_string())),
        }
        .map_err(|p| self.invalid(&v.span(), key, p.to_string()))
    }

    /// A tunable whole number, with the range every room's change is checked against
    /// too ([`settable::SETTABLE`]).
    fn tunable_whole(
        &self,
        v: &Option<Spanned<Num>>,
        table: &str,
        name: &str,
        base: u32,
    ) -> Result<u32, ConfigError> {
        let (min, max) = settable::whole_range(name);
        self.whole_from(v, &format!("{table}.{name}"), base, min, max)
    }

    /// The tunables of `table` (`defaults` or `neighborhood`) over `base`: the defaults'
    /// verifiers add up with a neighborhood's own.
    pub(super) fn tunables(
        &self,
        raw: &RawTunables,
        base: &Tunables,
        table: &str,
    ) -> Result<Tunables, ConfigError> {
        let k = |name: &str| format!("{table}.{name}");
        let language = match &raw.language {
            Some(l) => settable::check_language(self.catalogs, l.get_ref())
                .map_err(|p| self.invalid(&l.span(), &k("language"), p.to_string()))?,
            None => base.language.clone(),
        };
        let timezone = match &raw.timezone {
            Some(t) => settable::check_timezone(t.get_ref())
                .map_err(|p| self.invalid(&t.span(), &k("timezone"), p.to_string()))?,
            None => base.timezone,
        };
        let retention_hours = self.tunable_whole(
            &raw.retention_hours,
            table,
            "retention_hours",
            base.retention_hours,
        )?;
        let alert_retention_hours = match &raw.alert_retention_hours {
            None => base.alert_retention_hours,
            Some(v) => {
                let key = k("alert_retention_hours");
                let problem = |got: String| Problem::AlertRetention {
                    min: retention_hours,
                    max: MAX_ALERT_RETENTION_HOURS,
                    got,
                };
                let n = match *v.get_ref() {
                    Num::Int(i) => u32::try_from(i).map_err(|_| problem(i.to_string())),
                    other => Err(problem(other.as_f64().to_string())),
                }
                .and_then(|n| settable::check_alert_retention(n, retention_hours))
                .map_err(|p| self.invalid(&v.span(), &key, p.to_string()))?;
                Some(n)
            }
        };
        Ok(Tunables {
            dedupe_radius_m: self.positive(
                &raw.dedupe_radius_m,
                &k("dedupe_radius_m"),
                base.dedupe_radius_m,
            )?,
            dedupe_window_min: self.tunable_whole(
                &raw.dedupe_window_min,
                table,
                "dedupe_window_min",
                base.dedupe_window_min,
            )?,
            confirmations: self.tunable_whole(
                &raw.confirmations,
                table,
                "confirmations",
                base.confirmations,
            )?,
            alert_radius_m: self.positive(
                &raw.alert_radius_m,
                &k("alert_radius_m"),
                base.alert_radius_m,
            )?,
            sensitive_radius_m: self.positive(
                &raw.sensitive_radius_m,
                &k("sensitive_radius_m"),
                base.sensitive_radius_m,
            )?,
            expiry_hours: self.tunable_whole(
                &raw.expiry_hours,
                table,
                "expiry_hours",
                base.expiry_hours,
            )?,
            retention_hours,
            alert_retention_hours,
            min_member_hours: self.tunable_whole(
                &raw.min_member_hours,
                table,
                "min_member_hours",
                base.min_member_hours,
            )?,
            max_reports_per_10min: self.tunable_whole(
                &raw.max_reports_per_10min,
                table,
                "max_reports_per_10min",
                base.max_reports_per_10min,
            )?,
            reply_burst: self.tunable_whole(
                &raw.reply_burst,
                table,
                "reply_burst",
                base.reply_burst,
            )?,
            reply_refill_s: self.tunable_whole(
                &raw.reply_refill_s,
                table,
                "reply_refill_s",
                base.reply_refill_s,
            )?,
            verifiers: {
                // The defaults' verifiers serve every neighborhood; a neighborhood adds its own.
                let mut v = base.verifiers.clone();
                for u in raw.verifiers.iter().flatten() {
                    self.user_id(u, &k("verifiers"))?;
                    if !v.contains(u.get_ref()) {
                        v.push(u.get_ref().clone());
                    }
                }
                v
            },
            language,
            timezone,
        })
    }
}
