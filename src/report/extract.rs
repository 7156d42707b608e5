//! Best-effort details from report text: agent and vehicle counts, activity category,
//! vehicle descriptions and plates. Never fails; what it cannot read it leaves out.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What the agents are doing (PRODUCT.md §2), most severe last.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Nothing more specific was said.
    #[default]
    Other,
    /// Watching, parked, circling.
    Surveillance,
    /// A roadblock or checkpoint.
    Checkpoint,
    /// Someone detained or arrested.
    Detention,
    /// Entering homes or workplaces.
    Raid,
    /// People posing as agents.
    Impersonation,
}

impl Category {
    /// The catalog key of the category's name.
    pub fn catalog_key(self) -> &'static str {
        match self {
            Self::Other => "category.other",
            Self::Surveillance => "category.surveillance",
            Self::Checkpoint => "category.checkpoint",
            Self::Detention => "category.detention",
            Self::Raid => "category.raid",
            Self::Impersonation => "category.impersonation",
        }
    }
}

/// Details read from the text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Details {
    /// Number of agents, if said.
    pub agents: Option<u32>,
    /// Number of vehicles, if said.
    pub vehicles: Option<u32>,
    /// Activity category.
    pub category: Category,
    /// Vehicle descriptions, e.g. `unmarked black suv`.
    pub vehicle_descriptions: Vec<String>,
    /// License plates, upper case without spaces.
    pub plates: Vec<String>,
}

const NUMBER: &str = r"(\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|a couple of|several|un|una|uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|varios|varias)";

static AGENTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b{NUMBER}\s+(?:[a-z]+\s+){{0,2}}?(agents?|officers?|men|people|guys|agentes|oficiales|hombres|personas|polic[ií]as)\b"
    ))
    .expect("static regex")
});
static VEHICLES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b{NUMBER}\s+((?:[a-zñáéíóú]+\s+){{0,3}}?)(suvs?|vans?|cars?|trucks?|sedans?|pickups?|vehicles?|camionetas?|carros?|coches?|autos?|veh[ií]culos?|patrullas?|furgonetas?|minivans?)\b"
    ))
    .expect("static regex")
});
static PLATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:plates?|placas?|license|licencia|tag)\s*(?:#|no\.?|number|n[uú]mero|:)?\s*([a-z0-9]{2,4}[- ]?[a-z0-9]{2,4})\b|\b([1-9][A-Z]{3}[0-9]{3})\b")
        .expect("static regex")
});

static CATEGORIES: LazyLock<Vec<(Category, Regex)>> = LazyLock::new(|| {
    let rules: [(Category, &str); 5] = [
        (
            Category::Impersonation,
            r"impersonat|fake (?:agents?|ice|police|officers?)|posing as|pretending to be|falsos? agentes|haci[eé]ndose pasar|se hacen pasar",
        ),
        (
            Category::Raid,
            r"\braid|redada|operativo|entering (?:homes?|houses?|the building|apartments?)|breaking (?:in|down)|kicking (?:in|down)|knocking on (?:every )?doors?|tocando puertas|entrando a (?:casas|la casa|los apartamentos)|allanamiento",
        ),
        (
            Category::Detention,
            r"detain|detention|arrest|handcuff|took (?:someone|a man|a woman|a person|him|her)|taking (?:someone|a man|a woman|people)|grabbed|detuvieron|detenid|arrest[oó]|arrestaron|esposad|se llevaron",
        ),
        (
            Category::Checkpoint,
            r"checkpoint|check point|road ?block|ret[eé]n|punto de control|stopping (?:cars|drivers|everyone|people)|parando (?:carros|coches|a todos)",
        ),
        (
            Category::Surveillance,
            r"watching|surveil|parked|sitting in|circling|idling|observ|staking|vigil|estacionad|dando vueltas|rondando|mirando",
        ),
    ];
    rules
        .into_iter()
        .map(|(c, r)| (c, Regex::new(&format!("(?i){r}")).expect("static regex")))
        .collect()
});

fn number_word(s: &str) -> Option<u32> {
    let s = s.to_ascii_lowercase();
    Some(match s.as_str() {
        "a" | "an" | "one" | "un" | "una" | "uno" => 1,
        "two" | "dos" | "a couple of" => 2,
        "three" | "tres" | "several" | "varios" | "varias" => 3,
        "four" | "cuatro" => 4,
        "five" | "cinco" => 5,
        "six" | "seis" => 6,
        "seven" | "siete" => 7,
        "eight" | "ocho" => 8,
        "nine" | "nueve" => 9,
        "ten" | "diez" => 10,
        _ => return s.parse().ok(),
    })
}

/// Reads what it can from report text.
pub fn extract(text: &str) -> Details {
    let mut d = Details::default();
    for c in AGENTS.captures_iter(text) {
        if let Some(n) = number_word(&c[1]).filter(|n| (1..=500).contains(n)) {
            d.agents = Some(d.agents.unwrap_or(0).saturating_add(n));
        }
    }
    for c in VEHICLES.captures_iter(text) {
        if let Some(n) = number_word(&c[1]).filter(|n| (1..=200).contains(n)) {
            d.vehicles = Some(d.vehicles.unwrap_or(0).saturating_add(n));
            let desc = format!("{}{}", &c[2], &c[3]).to_lowercase();
            if !d.vehicle_descriptions.contains(&desc) {
                d.vehicle_descriptions.push(desc);
            }
        }
    }
    for c in PLATE.captures_iter(text) {
        if let Some(p) = c.get(1).or_else(|| c.get(2)) {
            let plate: String = p
                .as_str()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_uppercase();
            if plate.chars().any(|c| c.is_ascii_digit()) && !d.plates.contains(&plate) {
                d.plates.push(plate);
            }
        }
    }
    d.category = CATEGORIES
        .iter()
        .find(|(_, r)| r.is_match(text))
        .map(|(c, _)| *c)
        .unwrap_or_default();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_category_vehicles_plates() {
        let d = extract(
            "2 unmarked black SUVs and a white van, 5 agents in vests detained a man, plate 7ABC123",
        );
        assert_eq!(d.vehicles, Some(3));
        assert_eq!(d.agents, Some(5));
        assert_eq!(d.category, Category::Detention);
        assert_eq!(d.vehicle_descriptions, ["unmarked black suvs", "white van"]);
        assert_eq!(d.plates, ["7ABC123"]);
        let d = extract("dos camionetas negras, agentes vigilando la escuela");
        assert_eq!((d.vehicles, d.category), (Some(2), Category::Surveillance));
    }
}
