//! Commands people type, parsed once into plain data: the verifier actions
//! `!confirm ID`, `!false ID [reason]`, `!clear ID` (Spanish `!confirmar`, `!falso`,
//! `!despejado`), and the room commands `!nw help | status | incidents | settings | area |
//! verifiers | places | relay | drill | stats` (Spanish `ayuda`, `estado`, `incidentes`,
//! `ajustes`, `zona`, `verificadores`, `lugares`, `enlace`, `simulacro`, `estadisticas`).
//! Who may run them is decided in `incident::lifecycle`; what they do, in the engine.
//!
//! Owns: the command grammar. Must not touch: incidents, permissions, wording.

use std::sync::LazyLock;

use regex::Regex;

use crate::model::{Action, IncidentId};
use crate::places::PlaceKind;

/// Longest reason kept for a false alarm (characters); longer ones are cut.
pub const MAX_REASON_CHARS: usize = 280;

/// A verifier command as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierCommand {
    /// What to do.
    pub action: Action,
    /// The incident, when the word after the command is an incident ID.
    pub id: Option<IncidentId>,
    /// What was typed as the ID (shown back when it is not one).
    pub id_text: String,
    /// Why (false alarms), trimmed and cut to [`MAX_REASON_CHARS`].
    pub reason: Option<String>,
}

static COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?is)^\s*!(confirm|confirmar|false|falso|clear|despejado)(?:\s+(\S+))?(?:\s+(.*))?$",
    )
    .expect("static regex")
});

/// Reads a verifier command; `None` when the message is not one.
pub fn parse_verifier_command(body: &str) -> Option<VerifierCommand> {
    let c = COMMAND.captures(body)?;
    let action = match c[1].to_ascii_lowercase().as_str() {
        "confirm" | "confirmar" => Action::Confirm,
        "false" | "falso" => Action::FalseAlarm,
        _ => Action::Clear,
    };
    let id_text = c.get(2).map_or("", |m| m.as_str()).to_owned();
    let reason = c
        .get(3)
        .map(|m| m.as_str().trim())
        .filter(|r| !r.is_empty() && action == Action::FalseAlarm)
        .map(|r| r.chars().take(MAX_REASON_CHARS).collect());
    Some(VerifierCommand {
        action,
        id: IncidentId::parse(id_text.trim_matches(|c: char| !c.is_ascii_alphanumeric())),
        id_text,
        reason,
    })
}

/// A room command (`!nw …`), for anyone in a room of the network or the coordination
/// room.
#[derive(Clone, Debug, PartialEq)]
pub enum RoomCommand {
    /// `!nw`, `!nw help` (`ayuda`): what the bot understands here.
    Help,
    /// `!nw status` (`estado`): the neighborhood's (or the network's) state and settings.
    Status,
    /// `!nw incidents` (`incidentes`): the open incidents, with ID, place, status, age.
    Incidents,
    /// `!nw settings [KEY [VALUE | reset]]` (`ajustes`, `restablecer`), room admins only:
    /// the neighborhood's effective settings, one of them, or a change of one.
    Settings {
        /// The setting asked about, lowercased.
        key: Option<String>,
        /// What to do with it, if anything.
        change: Option<SettingChange>,
    },
    /// `!nw relay …` (`enlace`), room admins only: relay links with other neighborhoods.
    Relay(RelayCommand),
    /// `!nw verifiers add USER… | remove USER… | list` (`verificadores agregar | quitar |
    /// lista`), room admins only: the neighborhood's verifiers.
    Verifiers(VerifiersCommand),
    /// `!nw area center LAT,LON radius_m N | show | reset` (`zona centro … | ver |
    /// restablecer`), room admins only: the neighborhood's area.
    Area(AreaCommand),
    /// `!nw places add NAME geo:LAT,LON [KIND] | remove NAME | list` (`lugares agregar |
    /// quitar | lista`), room admins only: places of the neighborhood added from its rooms.
    Places(PlacesCommand),
    /// `!nw stats [HOURS]` (`estadisticas`), room admins only: the neighborhood's numbers
    /// (the network's, in the coordination room) over the last HOURS (as typed).
    Stats(Option<String>),
    /// `!nw drill` (`simulacro`), room admins only: a labelled DRILL incident through the
    /// whole chain.
    Drill,
    /// A word after `!nw` that is none of these (as typed, cut to 40 characters).
    Unknown(String),
}

/// `!nw relay request ROOM | accept ID | decline ID | remove ID | list` (Spanish `enlace
/// pedir | aceptar | rechazar | quitar | lista`). Arguments as typed (cut to 255
/// characters); the engine reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayCommand {
    /// Ask the neighborhood of room `ROOM` (an ID or alias) for a link.
    Request(String),
    /// Agree to request `ID`.
    Accept(String),
    /// Refuse request `ID`.
    Decline(String),
    /// End link `ID` (or withdraw the request).
    Remove(String),
    /// The neighborhood's links.
    List,
    /// Something else: show the valid forms.
    Usage,
}

/// `!nw area …`.
#[derive(Clone, Debug, PartialEq)]
pub enum AreaCommand {
    /// The area now, and where it comes from.
    Show,
    /// A circle: center and radius as typed (checked by the engine).
    Circle {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// Radius in metres, as typed.
        radius: String,
    },
    /// Back to the network file's area.
    Reset,
    /// Something else: show the valid form.
    Usage,
}

static AREA_CIRCLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?[0-9]+(?:\.[0-9]+)?)\s+radius(?:_m)?\s+(\S+)\s*$")
        .expect("static regex")
});

/// `!nw verifiers …`: user IDs as typed (at most 20).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifiersCommand {
    /// Add these.
    Add(Vec<String>),
    /// Remove these.
    Remove(Vec<String>),
    /// The neighborhood's verifiers, with where each comes from.
    List,
    /// Something else: show the valid forms.
    Usage,
}

/// `!nw places …`: names as typed (cut to 255 characters).
#[derive(Clone, Debug, PartialEq)]
pub enum PlacesCommand {
    /// Add (or move) a place.
    Add {
        /// Its name.
        name: String,
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// What it is (a landmark when not said); `Err` with the word when it is none.
        kind: Result<PlaceKind, String>,
    },
    /// Remove a place added from a room.
    Remove(String),
    /// The places added from rooms, and how many the network file has.
    List,
    /// Something else: show the valid forms.
    Usage,
}

static PLACE_ADD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*(.+?)\s+geo:\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?[0-9]+(?:\.[0-9]+)?)(?:[;,]\S*)?(?:\s+(\S+))?\s*$")
        .expect("static regex")
});

/// The kind of place a word names, in English or Spanish.
pub fn place_kind_word(w: &str) -> Option<PlaceKind> {
    PlaceKind::from_word(w).or(match w.to_lowercase().as_str() {
        "escuela" | "colegio" => Some(PlaceKind::School),
        "iglesia" | "templo" => Some(PlaceKind::Church),
        "clínica" | "clinica" | "clinic" => Some(PlaceKind::Hospital),
        "refugio" | "albergue" => Some(PlaceKind::Shelter),
        "lugar" | "punto" => Some(PlaceKind::Landmark),
        _ => None,
    })
}

/// A change of one setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingChange {
    /// Set it to this value (as typed, trimmed, cut to [`MAX_VALUE_CHARS`]).
    Set(String),
    /// `reset` (`restablecer`): back to the network file's value.
    Reset,
}

/// Longest setting value read (characters); longer ones are cut (and then refused).
pub const MAX_VALUE_CHARS: usize = 100;

static ROOM_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*!nw(?:\s+(\S+))?(?:\s+(\S+))?(?:\s+(\S.*))?\s*$").expect("static regex")
});

/// Reads a room command; `None` when the message is not one.
pub fn parse_room_command(body: &str) -> Option<RoomCommand> {
    let c = ROOM_COMMAND.captures(body)?;
    let Some(word) = c.get(1) else {
        return Some(RoomCommand::Help);
    };
    Some(match word.as_str().to_lowercase().as_str() {
        "help" | "ayuda" => RoomCommand::Help,
        "status" | "estado" => RoomCommand::Status,
        "incidents" | "incidentes" => RoomCommand::Incidents,
        "settings" | "ajustes" => RoomCommand::Settings {
            key: c.get(2).map(|k| {
                k.as_str()
                    .chars()
                    .take(40)
                    .collect::<String>()
                    .to_lowercase()
            }),
            change: c.get(3).map(|v| {
                let v = v.as_str().trim();
                if v.eq_ignore_ascii_case("reset") || v.eq_ignore_ascii_case("restablecer") {
                    SettingChange::Reset
                } else {
                    SettingChange::Set(v.chars().take(MAX_VALUE_CHARS).collect())
                }
            }),
        },
        "drill" | "simulacro" => RoomCommand::Drill,
        "stats" | "estadisticas" | "estadísticas" => {
            RoomCommand::Stats(c.get(2).map(|h| h.as_str().chars().take(20).collect()))
        }
        "places" | "lugares" => {
            let rest = c.get(3).map_or("", |a| a.as_str());
            let sub = c.get(2).map(|w| w.as_str().to_lowercase());
            RoomCommand::Places(match sub.as_deref() {
                None | Some("list" | "lista") => PlacesCommand::List,
                Some("add" | "agregar" | "añadir") => match PLACE_ADD.captures(rest) {
                    Some(a) => match (a[2].parse(), a[3].parse()) {
                        (Ok(lat), Ok(lon)) => PlacesCommand::Add {
                            name: a[1].trim().chars().take(255).collect(),
                            lat,
                            lon,
                            kind: a.get(4).map_or(Ok(PlaceKind::Landmark), |k| {
                                place_kind_word(k.as_str())
                                    .ok_or_else(|| k.as_str().chars().take(40).collect())
                            }),
                        },
                        _ => PlacesCommand::Usage,
                    },
                    None => PlacesCommand::Usage,
                },
                Some("remove" | "quitar") if !rest.trim().is_empty() => {
                    PlacesCommand::Remove(rest.trim().chars().take(255).collect())
                }
                _ => PlacesCommand::Usage,
            })
        }
        "area" | "zona" => {
            let sub = c.get(2).map(|w| w.as_str().to_lowercase());
            let rest = c.get(3).map_or("", |a| a.as_str());
            RoomCommand::Area(match sub.as_deref() {
                None | Some("show" | "ver") => AreaCommand::Show,
                Some("reset" | "restablecer") => AreaCommand::Reset,
                Some("center" | "centro") => match AREA_CIRCLE.captures(rest) {
                    Some(a) => match (a[1].parse(), a[2].parse()) {
                        (Ok(lat), Ok(lon)) => AreaCommand::Circle {
                            lat,
                            lon,
                            radius: a[3].chars().take(40).collect(),
                        },
                        _ => AreaCommand::Usage,
                    },
                    None => AreaCommand::Usage,
                },
                _ => AreaCommand::Usage,
            })
        }
        "verifiers" | "verificadores" => {
            let users = || -> Vec<String> {
                c.get(3)
                    .map_or("", |a| a.as_str())
                    .split(|ch: char| ch.is_whitespace() || ch == ',')
                    .filter(|u| !u.is_empty())
                    .take(20)
                    .map(|u| u.chars().take(255).collect())
                    .collect()
            };
            let sub = c.get(2).map(|w| w.as_str().to_lowercase());
            RoomCommand::Verifiers(match sub.as_deref() {
                None | Some("list" | "lista") => VerifiersCommand::List,
                Some("add" | "agregar" | "añadir") if !users().is_empty() => {
                    VerifiersCommand::Add(users())
                }
                Some("remove" | "quitar") if !users().is_empty() => {
                    VerifiersCommand::Remove(users())
                }
                _ => VerifiersCommand::Usage,
            })
        }
        "relay" | "enlace" => {
            let arg = || {
                c.get(3)
                    .map(|a| a.as_str().trim().chars().take(255).collect::<String>())
                    .filter(|a| !a.is_empty())
            };
            let sub = c.get(2).map(|w| w.as_str().to_lowercase());
            RoomCommand::Relay(match (sub.as_deref(), arg()) {
                (Some("request" | "pedir" | "solicitar"), Some(a)) => RelayCommand::Request(a),
                (Some("accept" | "aceptar"), Some(a)) => RelayCommand::Accept(a),
                (Some("decline" | "rechazar"), Some(a)) => RelayCommand::Decline(a),
                (Some("remove" | "quitar"), Some(a)) => RelayCommand::Remove(a),
                (Some("list" | "lista") | None, _) => RelayCommand::List,
                _ => RelayCommand::Usage,
            })
        }
        _ => RoomCommand::Unknown(word.as_str().chars().take(40).collect()),
    })
}

/// The room alias a `!nw relay request #alias:server` names, if the message is one: the
/// Matrix shell resolves it to a room ID before the engine reads the command (the core
/// knows rooms by ID).
pub fn alias_in_relay_request(body: &str) -> Option<&str> {
    // Every message passes here: most are ruled out without the grammar.
    if !body.contains('#') || !body.trim_start().starts_with('!') {
        return None;
    }
    match parse_room_command(body)? {
        RoomCommand::Relay(RelayCommand::Request(target)) if target.starts_with('#') => {
            let at = body.find(target.as_str())?;
            Some(&body[at..at + target.len()])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_in_both_languages_with_ids_in_any_case() {
        let c = parse_verifier_command("!false k7q2 it was a utility crew").unwrap();
        assert_eq!(c.action, Action::FalseAlarm);
        assert_eq!(c.id.unwrap().as_str(), "K7Q2");
        assert_eq!(c.reason.as_deref(), Some("it was a utility crew"));
        let c = parse_verifier_command("!Confirmar K7Q2").unwrap();
        assert_eq!(c.action, Action::Confirm);
        assert_eq!(c.reason, None);
        let c = parse_verifier_command("!despejado #K7Q2.").unwrap();
        assert_eq!((c.action, c.id.unwrap().as_str()), (Action::Clear, "K7Q2"));
        let c = parse_verifier_command("!clear").unwrap();
        assert_eq!(c.id, None);
        let c = parse_verifier_command("!falso OOOO").unwrap();
        assert_eq!((c.id, c.id_text.as_str()), (None, "OOOO"));
        assert_eq!(parse_verifier_command("!r agents at 31st & Market"), None);
        assert_eq!(parse_verifier_command("is it false?"), None);
        assert_eq!(parse_verifier_command("!falsehood K7Q2"), None);
    }

    #[test]
    fn room_commands_in_both_languages() {
        assert_eq!(parse_room_command("!nw"), Some(RoomCommand::Help));
        assert_eq!(parse_room_command("  !NW Ayuda"), Some(RoomCommand::Help));
        assert_eq!(parse_room_command("!nw status"), Some(RoomCommand::Status));
        assert_eq!(parse_room_command("!nw ESTADO"), Some(RoomCommand::Status));
        assert_eq!(
            parse_room_command("!nw incidentes"),
            Some(RoomCommand::Incidents)
        );
        assert_eq!(
            parse_room_command("!nw incidents please"),
            Some(RoomCommand::Incidents)
        );
        assert_eq!(
            parse_room_command("!nw launch now"),
            Some(RoomCommand::Unknown("launch".into()))
        );
        let long = format!("!nw {}", "x".repeat(500));
        assert_eq!(
            parse_room_command(&long),
            Some(RoomCommand::Unknown("x".repeat(40)))
        );
        assert_eq!(
            parse_room_command("!nw settings"),
            Some(RoomCommand::Settings {
                key: None,
                change: None
            })
        );
        assert_eq!(
            parse_room_command("!nw ajustes Alert_Radius_M"),
            Some(RoomCommand::Settings {
                key: Some("alert_radius_m".into()),
                change: None
            })
        );
        assert_eq!(
            parse_room_command("!nw settings alert_radius_m 5000"),
            Some(RoomCommand::Settings {
                key: Some("alert_radius_m".into()),
                change: Some(SettingChange::Set("5000".into()))
            })
        );
        assert_eq!(
            parse_room_command("!nw ajustes timezone  America/Chicago "),
            Some(RoomCommand::Settings {
                key: Some("timezone".into()),
                change: Some(SettingChange::Set("America/Chicago".into()))
            })
        );
        for reset in ["reset", "RESET", "restablecer"] {
            assert_eq!(
                parse_room_command(&format!("!nw settings confirmations {reset}")),
                Some(RoomCommand::Settings {
                    key: Some("confirmations".into()),
                    change: Some(SettingChange::Reset)
                })
            );
        }
        assert_eq!(
            parse_room_command("!nw relay request #clawson:eastbay.example"),
            Some(RoomCommand::Relay(RelayCommand::Request(
                "#clawson:eastbay.example".into()
            )))
        );
        assert_eq!(
            parse_room_command("!NW Enlace Aceptar lc9tu"),
            Some(RoomCommand::Relay(RelayCommand::Accept("lc9tu".into())))
        );
    }

    #[test]
    fn admin_commands_in_both_languages_and_what_is_not_one() {
        assert_eq!(
            parse_room_command("!nw relay"),
            Some(RoomCommand::Relay(RelayCommand::List))
        );
        assert_eq!(
            parse_room_command("!nw relay accept"),
            Some(RoomCommand::Relay(RelayCommand::Usage))
        );
        assert_eq!(
            parse_room_command("!nw relay launch x"),
            Some(RoomCommand::Relay(RelayCommand::Usage))
        );
        assert_eq!(
            alias_in_relay_request("!nw enlace pedir  #clawson:eastbay.example "),
            Some("#clawson:eastbay.example")
        );
        assert_eq!(alias_in_relay_request("!nw relay request !abc:x"), None);
        assert_eq!(alias_in_relay_request("!r agents at #3 & Market"), None);
        assert_eq!(
            parse_room_command("!nw Simulacro"),
            Some(RoomCommand::Drill)
        );
        assert_eq!(parse_room_command("!nw drill"), Some(RoomCommand::Drill));
        assert_eq!(
            parse_room_command("!nw area center 37.8240,-122.2760 radius_m 900"),
            Some(RoomCommand::Area(AreaCommand::Circle {
                lat: 37.824,
                lon: -122.276,
                radius: "900".into()
            }))
        );
        assert_eq!(
            parse_room_command("!nw zona centro 37.8, -122.2 radius 5km"),
            Some(RoomCommand::Area(AreaCommand::Circle {
                lat: 37.8,
                lon: -122.2,
                radius: "5km".into()
            }))
        );
        assert_eq!(
            parse_room_command("!nw area"),
            Some(RoomCommand::Area(AreaCommand::Show))
        );
        assert_eq!(
            parse_room_command("!nw area center here"),
            Some(RoomCommand::Area(AreaCommand::Usage))
        );
        assert_eq!(
            parse_room_command("!nw verificadores agregar @a:x, @b:y"),
            Some(RoomCommand::Verifiers(VerifiersCommand::Add(vec![
                "@a:x".into(),
                "@b:y".into()
            ])))
        );
        assert_eq!(
            parse_room_command("!nw verifiers"),
            Some(RoomCommand::Verifiers(VerifiersCommand::List))
        );
        assert_eq!(
            parse_room_command("!nw verifiers remove"),
            Some(RoomCommand::Verifiers(VerifiersCommand::Usage))
        );
        assert_eq!(
            parse_room_command("!nw places add Hoover Elementary geo:37.8105,-122.2790 school"),
            Some(RoomCommand::Places(PlacesCommand::Add {
                name: "Hoover Elementary".into(),
                lat: 37.8105,
                lon: -122.279,
                kind: Ok(PlaceKind::School)
            }))
        );
        assert_eq!(
            parse_room_command("!nw lugares agregar La Placita geo:37.81,-122.27;u=10"),
            Some(RoomCommand::Places(PlacesCommand::Add {
                name: "La Placita".into(),
                lat: 37.81,
                lon: -122.27,
                kind: Ok(PlaceKind::Landmark)
            }))
        );
        assert_eq!(
            parse_room_command("!nw lugares agregar Santa Ana geo:37.81,-122.27 Iglesia"),
            Some(RoomCommand::Places(PlacesCommand::Add {
                name: "Santa Ana".into(),
                lat: 37.81,
                lon: -122.27,
                kind: Ok(PlaceKind::Church)
            }))
        );
        assert!(matches!(
            parse_room_command("!nw places add Corner geo:37.81,-122.27 corner"),
            Some(RoomCommand::Places(PlacesCommand::Add { kind: Err(w), .. })) if w == "corner"
        ));
        assert_eq!(
            parse_room_command("!nw places add Hoover Elementary"),
            Some(RoomCommand::Places(PlacesCommand::Usage))
        );
        assert_eq!(
            parse_room_command("!nw places"),
            Some(RoomCommand::Places(PlacesCommand::List))
        );
        assert_eq!(
            parse_room_command("!nw places remove  La Placita "),
            Some(RoomCommand::Places(PlacesCommand::Remove(
                "La Placita".into()
            )))
        );
        assert_eq!(
            parse_room_command("!nw stats"),
            Some(RoomCommand::Stats(None))
        );
        assert_eq!(
            parse_room_command("!nw estadísticas 48"),
            Some(RoomCommand::Stats(Some("48".into())))
        );
        assert_eq!(parse_room_command("!nwx help"), None);
        assert_eq!(parse_room_command("what does !nw do?"), None);
        assert_eq!(parse_room_command("!r agents at 31st & Market"), None);
    }
}
