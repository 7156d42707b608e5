//! Table-driven parser tests: real-looking messages in English and Spanish, good and
//! bad, each with the exact outcome it must give.

use chrono::Duration;
use neighborwatch::places::ResolveMethod;
use neighborwatch::report::{
    Category, LocationOutcome, ParseContext, ReportError, ReportForm, parse_report,
};

use crate::support::{NETWORK, sent_at};

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Ordinary chat: no reply.
    NotReport,
    /// Refused with this error.
    Error(ReportError),
    /// A report located at this gazetteer label by this method.
    At(&'static str, ResolveMethod),
    /// A report whose location did not resolve; first suggestion given.
    Unresolved(Option<&'static str>),
}

use Expect::*;
use ResolveMethod::*;

struct Row {
    hood: &'static str,
    body: &'static str,
    expect: Expect,
    form: Option<ReportForm>,
    /// Minutes between the sighting and the message.
    ago_min: Option<i64>,
    category: Option<Category>,
    agents: Option<u32>,
    vehicles: Option<u32>,
    plates: &'static [&'static str],
}

const R: Row = Row {
    hood: "hoover-foster",
    body: "",
    expect: NotReport,
    form: None,
    ago_min: None,
    category: None,
    agents: None,
    vehicles: None,
    plates: &[],
};

fn rows() -> Vec<Row> {
    let salute_en = "Size: 4 agents\nActivity: detaining a man\nLocation: 31st & Market\nUniform: vests marked POLICE\nTime: 8:00am\nEquipment: 2 black SUVs";
    let salute_es = "Tamaño: 5 agentes\nActividad: redada en apartamentos\nLugar: 14th y Peralta\nUniforme: chalecos\nHora: 7:45\nEquipo: 2 camionetas";
    vec![
        // --- quick reports, English, intersections in every spelling
        Row {
            body: "!r 2 unmarked black SUVs, agents in vests at 31st & Market 8:05am",
            expect: At("31st & Market", Intersection),
            form: Some(ReportForm::Quick),
            ago_min: Some(1),
            vehicles: Some(2),
            category: Some(Category::Other),
            ..R
        },
        Row {
            body: "!report ICE at Market/31st",
            expect: At("31st & Market", Intersection),
            ago_min: Some(0),
            ..R
        },
        Row {
            body: "!r agents at 31st y Market",
            expect: At("31st & Market", Intersection),
            ..R
        },
        Row {
            body: "!R Corner of 31st and Market St, 3 agents",
            expect: At("31st & Market", Intersection),
            agents: Some(3),
            ..R
        },
        Row {
            body: "!r 31st street & market street",
            expect: At("31st & Market", Intersection),
            ..R
        },
        Row {
            body: "!r agents at thirty-first & market",
            expect: At("31st & Market", Intersection),
            ..R
        },
        Row {
            body: "!r MARKET ST. & 31ST ST.",
            expect: At("31st & Market", Intersection),
            ..R
        },
        Row {
            body: "!r agents at 31 and Market",
            expect: At("31st & Market", Intersection),
            ..R
        },
        Row {
            body: "!r agents at West Grand & Market",
            expect: At("West Grand & Market", Intersection),
            ..R
        },
        Row {
            body: "!r agents at Grand and Market",
            expect: At("West Grand & Market", Intersection),
            ..R
        },
        Row {
            body: "!r at W Grand Ave / Mandela Pkwy",
            expect: At("West Grand & Mandela", Intersection),
            ..R
        },
        Row {
            body: "!r Mandela and 7th",
            expect: At("7th & Mandela", Intersection),
            ..R
        },
        Row {
            body: "!r 14th & Peralta, agents knocking on doors",
            expect: At("14th & Peralta", Intersection),
            category: Some(Category::Raid),
            ..R
        },
        Row {
            body: "!r raid at 32nd and San Pablo 10 min ago",
            expect: At("32nd & San Pablo", Intersection),
            ago_min: Some(10),
            category: Some(Category::Raid),
            ..R
        },
        // --- named places and aliases
        Row {
            body: "!r agents near Hoover Elementary",
            expect: At("Hoover Elementary", Place),
            ..R
        },
        Row {
            body: "!r agents by the hoover school",
            expect: At("Hoover Elementary", Place),
            ..R
        },
        Row {
            body: "!r St. Patrick's church, 2 agents detained a man",
            expect: At("St. Patrick Church", Place),
            agents: Some(2),
            category: Some(Category::Detention),
            ..R
        },
        Row {
            body: "!r checkpoint at West Oakland BART",
            expect: At("West Oakland BART", Place),
            category: Some(Category::Checkpoint),
            ..R
        },
        Row {
            body: "!r people pretending to be ICE at DeFremery Park",
            expect: At("DeFremery Park", Place),
            category: Some(Category::Impersonation),
            ..R
        },
        Row {
            body: "!r agents at McClymonds 10 min ago",
            expect: At("McClymonds High School", Place),
            ago_min: Some(10),
            ..R
        },
        Row {
            body: "!r agents at Mack now",
            expect: At("McClymonds High School", Place),
            ago_min: Some(0),
            ..R
        },
        Row {
            body: "!r agents at raimondi park 7:50",
            expect: At("Raimondi Park", Place),
            ago_min: Some(16),
            ..R
        },
        Row {
            body: "!r van circling St Vincent de Paul",
            expect: At("St. Vincent de Paul Shelter", Place),
            category: Some(Category::Surveillance),
            vehicles: None,
            ..R
        },
        Row {
            body: "!r two vans parked outside Children's Hospital",
            expect: At("Children's Hospital Oakland", Place),
            vehicles: Some(2),
            category: Some(Category::Surveillance),
            ..R
        },
        // --- block addresses, coordinates, geo URIs
        Row {
            body: "!r 800 block of 31st St",
            expect: At("800 block of 31st St", Block),
            ..R
        },
        Row {
            body: "!r van parked 3000 block of Market",
            expect: At("3000 block of Market St", Block),
            ..R
        },
        Row {
            body: "!r geo:37.8237,-122.2762 two agents",
            expect: At("37.82370, -122.27620", GeoUri),
            agents: Some(2),
            ..R
        },
        Row {
            body: "!r agents at 37.82370, -122.27620",
            expect: At("37.82370, -122.27620", Coordinates),
            ..R
        },
        // --- times
        Row {
            body: "!r 31st & Market 8:10",
            expect: At("31st & Market", Intersection),
            ago_min: Some(-4),
            ..R
        },
        Row {
            body: "!r 2 agents at 31st & Market 9:30am",
            expect: Error(ReportError::FutureTime { minutes: 84 }),
            ..R
        },
        Row {
            body: "!r agents at raimondi park 20:05",
            expect: Error(ReportError::FutureTime { minutes: 719 }),
            ..R
        },
        // --- details
        Row {
            body: "!r 5 agents with rifles at 31st & Market, plate 4KDL882",
            expect: At("31st & Market", Intersection),
            agents: Some(5),
            plates: &["4KDL882"],
            ..R
        },
        Row {
            body: "!r <b>ICE</b> <script>x</script> at 31st & Market",
            expect: At("31st & Market", Intersection),
            ..R
        },
        // --- bad input and non-reports
        Row {
            body: "!r",
            expect: Error(ReportError::Empty),
            ..R
        },
        Row {
            body: "!report    ",
            expect: Error(ReportError::Empty),
            ..R
        },
        Row {
            body: "!aviso",
            expect: Error(ReportError::Empty),
            ..R
        },
        Row {
            body: "hello neighbors, school drop-off is starting",
            expect: NotReport,
            ..R
        },
        Row {
            body: "Hey can someone check 31st & Market?",
            expect: NotReport,
            ..R
        },
        Row {
            body: "!nw help",
            expect: NotReport,
            ..R
        },
        Row {
            body: "!rumor at 31st & Market",
            expect: NotReport,
            ..R
        },
        Row {
            body: "",
            expect: NotReport,
            ..R
        },
        Row {
            body: "!r agents at Mandela & 18th",
            expect: Unresolved(Some("Mandela Pkwy")),
            ..R
        },
        Row {
            body: "!r agents at Hovver Elementry",
            expect: Unresolved(Some("Hoover Elementary")),
            ..R
        },
        Row {
            body: "!r 3 agents",
            expect: Unresolved(None),
            agents: Some(3),
            ..R
        },
        // --- SALUTE
        Row {
            body: salute_en,
            expect: At("31st & Market", Intersection),
            form: Some(ReportForm::Salute),
            ago_min: Some(6),
            category: Some(Category::Detention),
            agents: Some(4),
            vehicles: Some(2),
            ..R
        },
        Row {
            body: "S: 3\nA: watching the school\nL: Hoover Elementary\nT: 7:55",
            expect: At("Hoover Elementary", Place),
            form: Some(ReportForm::Salute),
            ago_min: Some(11),
            category: Some(Category::Surveillance),
            ..R
        },
        Row {
            body: "!r\nSize: 2\nActivity: checkpoint\nLocation: 7th & Mandela",
            expect: At("7th & Mandela", Intersection),
            form: Some(ReportForm::Salute),
            category: Some(Category::Checkpoint),
            ..R
        },
        Row {
            body: "Size: 3\nActivity: watching\nTime: 8:00",
            expect: Error(ReportError::SaluteNoLocation),
            ..R
        },
        Row {
            body: "Location: 31st & Market\nTime: 8:00",
            expect: Error(ReportError::SaluteTooShort { found: 2 }),
            ..R
        },
        Row {
            body: "S: 2\nA: parked\nL: somewhere downtown",
            expect: Unresolved(None),
            form: Some(ReportForm::Salute),
            ..R
        },
        Row {
            body: "Size: 2\nActivity: parked\nLocation: 31st & Market\nTime: 11:00am",
            expect: Error(ReportError::FutureTime { minutes: 174 }),
            ..R
        },
        // --- Spanish
        Row {
            body: salute_es,
            expect: At("14th & Peralta", Intersection),
            form: Some(ReportForm::Salute),
            ago_min: Some(21),
            category: Some(Category::Raid),
            agents: Some(5),
            vehicles: Some(2),
            ..R
        },
        Row {
            body: "Tamaño: 2\nActividad: vigilando\nLugar: Escuela Hoover",
            expect: At("Hoover Elementary", Place),
            form: Some(ReportForm::Salute),
            category: Some(Category::Surveillance),
            ..R
        },
        Row {
            body: "Tamaño: 2\nHora: 8:00\nUniforme: chalecos",
            expect: Error(ReportError::SaluteNoLocation),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso 3 agentes de ICE en 31st y Market hace 5 minutos",
            expect: At("31st & Market", Intersection),
            agents: Some(3),
            ago_min: Some(5),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso retén en International y Fruitvale",
            expect: At("International & Fruitvale", Intersection),
            category: Some(Category::Checkpoint),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso dos camionetas blancas vigilando la Escuela Hawthorne",
            expect: At("Hawthorne Elementary", Place),
            vehicles: Some(2),
            category: Some(Category::Surveillance),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso se llevaron a un señor en 7th y Mandela ahora",
            expect: At("7th & Mandela", Intersection),
            ago_min: Some(0),
            category: Some(Category::Detention),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso hombres haciéndose pasar por agentes en Fruitvale BART",
            expect: At("Fruitvale BART", Place),
            category: Some(Category::Impersonation),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso agentes en la cuadra 3000 de Market",
            expect: At("3000 block of Market St", Block),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso redada en Santa Isabel",
            expect: At("St. Elizabeth Church", Place),
            category: Some(Category::Raid),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso agentes en geo:37.7770,-122.2240",
            expect: At("37.77700, -122.22400", GeoUri),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso placas 8XYZ999 en estación Fruitvale",
            expect: At("Fruitvale BART", Place),
            plates: &["8XYZ999"],
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso agentes en la calle Inventada",
            expect: Unresolved(None),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "!aviso",
            expect: Error(ReportError::Empty),
            ..R
        },
        Row {
            hood: "fruitvale",
            body: "hola vecinos, ¿todo bien?",
            expect: NotReport,
            ..R
        },
        // --- Chicago, Back of the Yards (America/Chicago: the message is at 10:06)
        Row {
            hood: "back-of-the-yards",
            body: "!aviso dos camionetas blancas en 47th y Ashland hace 5 min",
            expect: At("47th & Ashland", Intersection),
            vehicles: Some(2),
            ago_min: Some(5),
            ..R
        },
        Row {
            hood: "back-of-the-yards",
            body: "!r agents at Ashland & 51st",
            expect: At("51st & Ashland", Intersection),
            ..R
        },
        Row {
            hood: "back-of-the-yards",
            body: "!r agents at S Ashland Ave and W 47th St",
            expect: At("47th & Ashland", Intersection),
            ..R
        },
        Row {
            hood: "back-of-the-yards",
            body: "!r 4800 block of S Ashland",
            expect: At("4800 block of S Ashland Ave", Block),
            ..R
        },
        Row {
            hood: "back-of-the-yards",
            body: "!aviso agentes en la escuela Hamline",
            expect: At("Hamline Elementary", Place),
            ..R
        },
        Row {
            hood: "back-of-the-yards",
            body: "!r ICE at Hamline, 8:00am",
            expect: At("Hamline Elementary", Place),
            ago_min: Some(126),
            ..R
        },
        Row {
            hood: "back-of-the-yards",
            body: "!r agents at 47th & Damen",
            expect: At("47th & Damen", Intersection),
            ..R
        },
        Row {
            hood: "back-of-the-yards",
            body: "!r agents at 31st & Market",
            expect: Unresolved(None),
            ..R
        },
    ]
}

#[test]
fn every_row_gives_its_exact_outcome() {
    let rows = rows();
    assert!(rows.len() >= 60, "the table has {} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let nb = NETWORK.neighborhood(row.hood).expect("hood exists");
        let ctx = ParseContext {
            gazetteer: &nb.gazetteer,
            tz: nb.settings.timezone,
            sent_at: sent_at(),
        };
        let got = parse_report(row.body, &ctx);
        let outcome = match &got {
            Ok(None) => NotReport,
            Err(e) => Error(e.clone()),
            Ok(Some(r)) => match &r.location {
                LocationOutcome::Resolved(p) => {
                    // Leak the label: the table compares against static strings.
                    At(Box::leak(p.label.clone().into_boxed_str()), p.method)
                }
                LocationOutcome::Unresolved { suggestions, .. } => Unresolved(
                    suggestions
                        .first()
                        .map(|s| &*Box::leak(s.clone().into_boxed_str())),
                ),
            },
        };
        let mut problems = Vec::new();
        if outcome != row.expect {
            problems.push(format!("outcome {outcome:?}, expected {:?}", row.expect));
        }
        if let Ok(Some(r)) = &got {
            if let Some(f) = row.form
                && r.form != f
            {
                problems.push(format!("form {:?}, expected {f:?}", r.form));
            }
            if let Some(ago) = row.ago_min {
                let want = sent_at() - Duration::minutes(ago);
                if r.observed_at != want {
                    problems.push(format!("observed {}, expected {want}", r.observed_at));
                }
            }
            if let Some(c) = row.category
                && r.details.category != c
            {
                problems.push(format!("category {:?}, expected {c:?}", r.details.category));
            }
            if row.agents.is_some() && r.details.agents != row.agents {
                problems.push(format!(
                    "agents {:?}, expected {:?}",
                    r.details.agents, row.agents
                ));
            }
            if row.vehicles.is_some() && r.details.vehicles != row.vehicles {
                problems.push(format!(
                    "vehicles {:?}, expected {:?}",
                    r.details.vehicles, row.vehicles
                ));
            }
            if !row.plates.is_empty() && r.details.plates != row.plates {
                problems.push(format!(
                    "plates {:?}, expected {:?}",
                    r.details.plates, row.plates
                ));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{:?} [{}]: {}",
                row.body,
                row.hood,
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn oversized_message_is_refused_with_its_length() {
    let nb = NETWORK.neighborhood("hoover-foster").unwrap();
    let ctx = ParseContext {
        gazetteer: &nb.gazetteer,
        tz: nb.settings.timezone,
        sent_at: sent_at(),
    };
    let body = format!("!r {}", "a".repeat(2000));
    assert_eq!(
        parse_report(&body, &ctx),
        Err(ReportError::TooLong {
            chars: 2003,
            max: 2000
        })
    );
}
