//! The answers of `neighborwatch init`: given as flags (scripts), or asked at a terminal
//! one by one for those missing (a person).

use std::path::PathBuf;

use super::{FirstNeighborhood, InitError, InitOptions};

/// What the flags gave; `None` is asked (at a terminal) or an error (in a script).
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// `--homeserver`.
    pub homeserver: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--organizer`.
    pub organizer: Option<String>,
    /// `--coordination` (none given and none typed: a new room).
    pub coordination: Option<String>,
    /// `--neighborhood`.
    pub neighborhood: Option<String>,
    /// `--room` (none: a new room).
    pub room: Option<String>,
    /// `--center LAT,LON`.
    pub center: Option<String>,
    /// `--radius-m`.
    pub radius_m: Option<f64>,
    /// `--language`.
    pub language: String,
    /// `--timezone`.
    pub timezone: String,
    /// `--dir`.
    pub dir: PathBuf,
    /// `--state-dir`.
    pub state_dir: String,
    /// `--force`.
    pub force: bool,
    /// The password, from the environment (`NW_PASSWORD`) if set there.
    pub password: Option<zeroize::Zeroizing<String>>,
}

/// Parses `LAT,LON`.
pub fn parse_center(s: &str) -> Result<(f64, f64), InitError> {
    let bad = || {
        InitError::Input(format!(
            "center {s:?}: give LAT,LON, e.g. 37.8240,-122.2760"
        ))
    };
    let (lat, lon) = s.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(bad());
    }
    Ok((lat, lon))
}

/// The options, asking at the terminal for what the flags left out when `interactive`;
/// otherwise each missing one is an error naming its flag.
pub fn complete(a: Answers, interactive: bool) -> Result<InitOptions, InitError> {
    let ask = |flag: &str, prompt: &str, given: Option<String>| -> Result<String, InitError> {
        match given {
            Some(v) => Ok(v),
            None if interactive => dialoguer::Input::<String>::new()
                .with_prompt(prompt)
                .interact_text()
                .map_err(|e| InitError::Input(format!("{flag}: {e}"))),
            None => Err(InitError::Input(format!(
                "missing {flag} (run init at a terminal to be asked)"
            ))),
        }
    };
    let homeserver = ask(
        "--homeserver",
        "Homeserver URL (e.g. https://matrix.example.org)",
        a.homeserver,
    )?;
    let user = ask(
        "--user",
        "The bot's user ID (e.g. @neighborwatch:example.org)",
        a.user,
    )?;
    let password = match a.password {
        Some(p) => p,
        None if interactive => zeroize::Zeroizing::new(
            dialoguer::Password::new()
                .with_prompt(format!("{user}'s password"))
                .interact()
                .map_err(|e| InitError::Input(format!("password: {e}")))?,
        ),
        None => {
            return Err(InitError::Input(format!(
                "set {} to the bot's password (or run init at a terminal to be asked)",
                super::files::PASSWORD_ENV
            )));
        }
    };
    let organizer = ask(
        "--organizer",
        "Your user ID, the organizer (e.g. @you:example.org)",
        a.organizer,
    )?;
    // Asked with an empty answer allowed: Enter means "create one".
    let optional = |prompt: &str| -> Result<String, InitError> {
        dialoguer::Input::<String>::new()
            .with_prompt(prompt)
            .allow_empty(true)
            .interact_text()
            .map_err(|e| InitError::Input(format!("{prompt}: {e}")))
    };
    let coordination = match a.coordination {
        Some(c) => Some(c),
        None if interactive => Some(optional(
            "Coordination room to use (ID or alias; Enter: create one)",
        )?)
        .filter(|c| !c.trim().is_empty()),
        None => None,
    };
    let name = ask(
        "--neighborhood",
        "The first neighborhood's name",
        a.neighborhood,
    )?;
    let room = match a.room {
        Some(r) => r,
        None if interactive => optional("Its alert room (ID or alias; Enter: create one)")?,
        None => String::new(),
    };
    let center = parse_center(&ask("--center", "Its center, LAT,LON", a.center)?)?;
    let radius_m = match a.radius_m {
        Some(r) if r > 0.0 && r.is_finite() => r,
        Some(r) => {
            return Err(InitError::Input(format!(
                "--radius-m {r}: must be more than 0"
            )));
        }
        None => 800.0,
    };
    Ok(InitOptions {
        homeserver,
        user,
        password,
        organizer,
        coordination,
        neighborhood: FirstNeighborhood {
            name,
            room: room.trim().to_owned(),
            center,
            radius_m,
        },
        language: a.language,
        timezone: a.timezone,
        dir: a.dir,
        state_dir: a.state_dir,
        force: a.force,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_is_told_each_missing_flag() {
        let e = complete(Answers::default(), false).unwrap_err();
        assert!(e.to_string().contains("missing --homeserver"), "{e}");
        let a = Answers {
            homeserver: Some("http://127.0.0.1:8008".into()),
            user: Some("@nw:x".into()),
            ..Answers::default()
        };
        let e = complete(a, false).unwrap_err();
        assert!(e.to_string().contains("NW_PASSWORD"), "{e}");
    }

    #[test]
    fn centers_are_checked() {
        assert_eq!(parse_center("37.8, -122.2").unwrap(), (37.8, -122.2));
        for bad in ["37.8", "x,y", "91,0", "0,181"] {
            assert!(parse_center(bad).is_err(), "{bad}");
        }
    }
}
