//! Verifier actions: what `!confirm`, `!false`, `!clear` and their reactions ask for.

/// A verifier action (`!confirm`, `!false`, `!clear`, or the reactions ✅ ❌ 🟢).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// It is real.
    Confirm,
    /// It is not real.
    FalseAlarm,
    /// It is over.
    Clear,
}

impl Action {
    /// The action of a reaction key, if it is one (variation selectors ignored).
    pub fn of_reaction(key: &str) -> Option<Self> {
        match key.trim_end_matches('\u{fe0f}') {
            "✅" | "✔" | "☑" => Some(Self::Confirm),
            "❌" | "✖" | "❎" => Some(Self::FalseAlarm),
            "🟢" => Some(Self::Clear),
            _ => None,
        }
    }

    /// Every action, for tables and tests.
    pub const ALL: [Action; 3] = [Self::Confirm, Self::FalseAlarm, Self::Clear];

    /// The catalog key of the action's name.
    pub fn catalog_key(self) -> &'static str {
        match self {
            Self::Confirm => "action.confirm",
            Self::FalseAlarm => "action.false_alarm",
            Self::Clear => "action.clear",
        }
    }
}
