//! Turning the location words of a report into a point (PRODUCT.md §2), in order:
//! `geo:` URIs and decimal coordinates, intersections, named places and aliases, block
//! addresses. And, when nothing matches, the closest gazetteer names.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::gazetteer::{Gazetteer, Street};
use super::normalize::{Token, is_article, is_connector, is_street_suffix, name_key, tokenize};
use super::point::{LatLon, parse_geo_uri};

/// How a location was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolveMethod {
    /// A `geo:` URI in the text or a location share.
    GeoUri,
    /// Decimal `lat,lon` in the text.
    Coordinates,
    /// Two streets of a gazetteer intersection.
    Intersection,
    /// A gazetteer name or alias.
    Place,
    /// A block address along a gazetteer street.
    Block,
}

/// A resolved location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The point.
    pub at: LatLon,
    /// What to call it in messages (gazetteer name, or the coordinates).
    pub label: String,
    /// How it was found.
    pub method: ResolveMethod,
    /// Radius of uncertainty in metres.
    pub uncertainty_m: f64,
}

static GEO_URI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bgeo:-?\d{1,2}(?:\.\d+)?,-?\d{1,3}(?:\.\d+)?(?:;[a-z]+=[\w.-]+)*")
        .expect("static regex")
});
static COORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(-?\d{1,2}\.\d{2,})\s*,\s*(-?\d{1,3}\.\d{2,})").expect("static regex")
});
static BLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(\d{1,6})\s*(?:block|blk)\s+(?:of\s+)?|\bcuadra\s+(\d{1,6})\s+(?:de\s+)?(?:la\s+)?",
    )
    .expect("static regex")
});

/// How uncertain a point given as coordinates is when it does not say (`;u=` absent).
pub const DEFAULT_UNCERTAINTY_M: f64 = 25.0;
/// A shared location is named after the gazetteer's nearest place this close.
const SHARED_LABEL_WITHIN_M: f64 = 150.0;

fn coordinate_label(p: LatLon) -> String {
    format!("{:.5}, {:.5}", p.lat, p.lon)
}

/// A street named in the text: canonical key and token span.
struct Mention {
    key: String,
    first: usize,
    /// One past the last token, street-kind word included.
    end: usize,
}

/// The longest run of tokens starting at `i` (at most `max` words) that is a key of `map`.
fn longest_match<'m, V>(
    map: &'m std::collections::HashMap<String, V>,
    toks: &[Token],
    i: usize,
    max: usize,
) -> Option<(usize, &'m V)> {
    let mut key = String::new();
    let mut best = None;
    for (n, t) in toks[i..].iter().take(max).enumerate() {
        if n > 0 {
            key.push(' ');
        }
        key.push_str(&t.norm);
        if let Some(v) = map.get(&key) {
            best = Some((n + 1, v));
        }
    }
    best
}

fn street_mention_at(g: &Gazetteer, toks: &[Token], i: usize) -> Option<Mention> {
    let (map, max) = g.street_names();
    let (len, canonical) = longest_match(map, toks, i, max)?;
    let mut end = i + len;
    if toks.get(end).is_some_and(|t| is_street_suffix(&t.norm)) {
        end += 1;
    }
    Some(Mention {
        key: canonical.clone(),
        first: i,
        end,
    })
}

fn street_mentions(g: &Gazetteer, toks: &[Token]) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match street_mention_at(g, toks, i) {
            Some(m) => {
                i = m.end;
                out.push(m);
            }
            None => i += 1,
        }
    }
    out
}

fn interpolate(s: &Street, number: u32) -> Option<LatLon> {
    let (lo, hi) = (
        s.from_number.min(s.to_number),
        s.from_number.max(s.to_number),
    );
    if number < lo || number > hi {
        return None;
    }
    let frac = (f64::from(number) - f64::from(s.from_number))
        / (f64::from(s.to_number) - f64::from(s.from_number));
    let lengths: Vec<f64> = s.line.windows(2).map(|w| w[0].distance_m(w[1])).collect();
    let total: f64 = lengths.iter().sum();
    let mut target = frac * total;
    for (w, len) in s.line.windows(2).zip(&lengths) {
        if target <= *len || *len == total {
            let t = if *len > 0.0 {
                (target / len).clamp(0.0, 1.0)
            } else {
                0.0
            };
            return LatLon::new(
                w[0].lat + (w[1].lat - w[0].lat) * t,
                w[0].lon + (w[1].lon - w[0].lon) * t,
            );
        }
        target -= len;
    }
    s.line.last().copied()
}

impl Gazetteer {
    /// A point shared as a location (`m.location`): named after the nearest place within
    /// 150 m, or by its coordinates.
    pub fn resolve_shared(&self, at: LatLon, uncertainty_m: Option<f64>) -> Resolved {
        let label = self
            .nearest_place(at)
            .filter(|(_, d)| *d <= SHARED_LABEL_WITHIN_M)
            .map_or_else(|| coordinate_label(at), |(p, _)| p.name.clone());
        Resolved {
            at,
            label,
            method: ResolveMethod::GeoUri,
            uncertainty_m: uncertainty_m.unwrap_or(DEFAULT_UNCERTAINTY_M),
        }
    }

    /// Finds the location in `text`, trying each form in the order of PRODUCT.md §2.
    /// `text` should have times already blanked out so `8:05` is never read as a street.
    pub fn resolve(&self, text: &str) -> Option<Resolved> {
        if let Some(m) = GEO_URI.find(text)
            && let Some((at, u)) = parse_geo_uri(m.as_str())
        {
            return Some(Resolved {
                at,
                label: coordinate_label(at),
                method: ResolveMethod::GeoUri,
                uncertainty_m: u.unwrap_or(DEFAULT_UNCERTAINTY_M),
            });
        }
        if let Some(c) = COORDS.captures(text) {
            let lat = c[1].parse().ok();
            let lon = c[2].parse().ok();
            if let Some(at) = lat.zip(lon).and_then(|(a, o)| LatLon::new(a, o)) {
                return Some(Resolved {
                    at,
                    label: coordinate_label(at),
                    method: ResolveMethod::Coordinates,
                    uncertainty_m: DEFAULT_UNCERTAINTY_M,
                });
            }
        }
        let toks = tokenize(text);
        let mentions = street_mentions(self, &toks);
        for pair in mentions.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let between = &toks[a.end..b.first];
            if between.len() == 1
                && is_connector(&between[0].norm)
                && a.key != b.key
                && let Some(p) = self.intersection(&a.key, &b.key)
            {
                return Some(Resolved {
                    at: p.at,
                    label: p.name.clone(),
                    method: ResolveMethod::Intersection,
                    uncertainty_m: 30.0,
                });
            }
        }
        if let Some(r) = self.resolve_name(&toks) {
            return Some(r);
        }
        self.resolve_block(text)
    }

    fn resolve_name(&self, toks: &[Token]) -> Option<Resolved> {
        let (names, max) = self.names();
        // Name keys have no articles; neither may the words read against them.
        let words: Vec<Token> = toks
            .iter()
            .filter(|t| !is_article(&t.norm))
            .cloned()
            .collect();
        let toks = &words[..];
        let mut best: Option<(usize, usize)> = None; // (words, place)
        for i in 0..toks.len() {
            if let Some((len, &idx)) = longest_match(names, toks, i, max)
                && best.is_none_or(|(w, _)| len > w)
            {
                best = Some((len, idx));
            }
        }
        best.map(|(_, idx)| {
            let p = self.place(idx);
            Resolved {
                at: p.at,
                label: p.name.clone(),
                method: ResolveMethod::Place,
                uncertainty_m: 50.0,
            }
        })
    }

    fn resolve_block(&self, text: &str) -> Option<Resolved> {
        for c in BLOCK.captures_iter(text) {
            let whole = c.get(0)?;
            let number: u32 = c.get(1).or_else(|| c.get(2))?.as_str().parse().ok()?;
            let rest = &text[whole.end()..];
            let toks = tokenize(rest);
            if toks.is_empty() {
                continue;
            }
            let Some(m) = street_mention_at(self, &toks, 0) else {
                continue;
            };
            let hundred = number / 100 * 100;
            for s in self.street_lines(&m.key) {
                if let Some(at) = interpolate(s, hundred + 50).or_else(|| interpolate(s, number)) {
                    return Some(Resolved {
                        at,
                        label: format!("{hundred} block of {}", s.name),
                        method: ResolveMethod::Block,
                        uncertainty_m: 80.0,
                    });
                }
            }
        }
        None
    }

    /// Up to `n` gazetteer names closest in spelling to `query`, best first. Names less
    /// than [`SUGGESTION_MIN_SIMILARITY`] alike are never suggested.
    pub fn suggest(&self, query: &str, n: usize) -> Vec<String> {
        let q = significant_words(query);
        if q.is_empty() {
            return Vec::new();
        }
        let score = |name: &str| -> f64 {
            let k = significant_words(name);
            if k.is_empty() {
                return 0.0;
            }
            let target = k.join(" ");
            let len = k.len().min(q.len());
            q.windows(len)
                .map(|w| strsim::normalized_levenshtein(&w.join(" "), &target))
                .fold(0.0, f64::max)
        };
        let mut scored: Vec<(f64, &str)> = Vec::new();
        for p in self.places() {
            let best = std::iter::once(&p.name)
                .chain(&p.aliases)
                .map(|s| score(s))
                .fold(0.0, f64::max);
            scored.push((best, &p.name));
        }
        for s in self.street_display_names() {
            scored.push((score(s), s));
        }
        scored.retain(|(s, _)| *s >= SUGGESTION_MIN_SIMILARITY);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let mut out: Vec<String> = Vec::new();
        for (_, name) in scored {
            if !out.iter().any(|o| o == name) {
                out.push(name.to_owned());
            }
            if out.len() == n {
                break;
            }
        }
        out
    }
}

/// How alike (normalized Levenshtein, 0..1) a name must be to be suggested.
pub const SUGGESTION_MIN_SIMILARITY: f64 = 0.6;

/// Normalized words that carry meaning: no connectors, street kinds or articles.
fn significant_words(text: &str) -> Vec<String> {
    name_key(text)
        .into_iter()
        .filter(|w| !is_connector(w) && !is_street_suffix(w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","geometry":{"type":"Point","coordinates":[-122.2785,37.8232]},
       "properties":{"name":"31st & Market","kind":"intersection","streets":["31st St","Market St"]}},
      {"type":"Feature","geometry":{"type":"Point","coordinates":[-122.2790,37.8260]},
       "properties":{"name":"Hoover Elementary","kind":"school","aliases":["Hoover school","Escuela Hoover"]}},
      {"type":"Feature","geometry":{"type":"LineString","coordinates":[[-122.2830,37.8210],[-122.2740,37.8250]]},
       "properties":{"name":"31st St","kind":"street","from_number":700,"to_number":1100}}
    ]}"#;

    #[test]
    fn every_location_form_resolves() {
        let g = Gazetteer::from_geojson(G).unwrap();
        for text in [
            "31st & Market",
            "Market/31st",
            "31st y Market",
            "corner of 31st and Market St",
            "thirty-first & market",
        ] {
            let r = g.resolve(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (r.method, r.label.as_str()),
                (ResolveMethod::Intersection, "31st & Market"),
                "{text}"
            );
        }
        assert_eq!(
            g.resolve("near escuela hoover").unwrap().label,
            "Hoover Elementary"
        );
        let b = g.resolve("800 block of 31st St").unwrap();
        assert_eq!(b.method, ResolveMethod::Block);
        assert!(b.at.lon > -122.2830 && b.at.lon < -122.2740);
        assert_eq!(
            g.resolve("37.8,-122.2 hmm").map(|r| r.method),
            None,
            "one decimal is not coordinates"
        );
        assert_eq!(
            g.resolve("at 37.8232, -122.2785").unwrap().method,
            ResolveMethod::Coordinates
        );
    }

    #[test]
    fn a_place_whose_name_has_an_article_resolves_with_or_without_it() {
        let g = Gazetteer::from_geojson(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","geometry":{"type":"Point","coordinates":[-122.27,37.82]},
               "properties":{"name":"Taqueria El Farolito","kind":"landmark"}},
              {"type":"Feature","geometry":{"type":"Point","coordinates":[-122.28,37.83]},
               "properties":{"name":"The Old Library","kind":"landmark"}}
            ]}"#,
        )
        .unwrap();
        for (text, place) in [
            ("2 agents at Taqueria El Farolito", "Taqueria El Farolito"),
            ("agentes en la taqueria farolito", "Taqueria El Farolito"),
            ("van outside the old library now", "The Old Library"),
            ("van outside old library", "The Old Library"),
        ] {
            let r = g.resolve(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (r.method, r.label.as_str()),
                (ResolveMethod::Place, place),
                "{text}"
            );
        }
        assert!(
            g.resolve("el la los las the").is_none(),
            "articles alone name nothing"
        );
    }

    #[test]
    fn suggestions_are_the_closest_names() {
        let g = Gazetteer::from_geojson(G).unwrap();
        assert_eq!(g.suggest("Hoovr Elementry", 1), ["Hoover Elementary"]);
    }
}
