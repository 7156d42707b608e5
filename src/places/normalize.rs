//! Text normalization for place matching: case, accents, punctuation, ordinals and
//! street suffixes. Pure string functions; no gazetteer knowledge.

/// One word of a message, normalized, with its byte span in the original text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Normalized form: lowercase, no accents, ordinals as digits (`31st` → `31`).
    pub norm: String,
    /// Byte offset of the first character in the original text.
    pub start: usize,
    /// Byte offset one past the last character in the original text.
    pub end: usize,
}

/// Words that name a kind of street and are ignored when matching street names.
const STREET_SUFFIXES: &[&str] = &[
    "st",
    "street",
    "str",
    "ave",
    "av",
    "avenue",
    "blvd",
    "boulevard",
    "rd",
    "road",
    "dr",
    "drive",
    "way",
    "pl",
    "place",
    "ln",
    "lane",
    "ct",
    "court",
    "pkwy",
    "parkway",
    "hwy",
    "highway",
    "ter",
    "terrace",
    "calle",
    "avenida",
    "bulevar",
    "camino",
];

/// Directions that may precede a street name (`W 47th St`, `South Ashland`).
const DIRECTIONS: &[&str] = &[
    "n", "s", "e", "w", "north", "south", "east", "west", "norte", "sur", "este", "oeste",
];

/// Words that join two street names into an intersection.
const CONNECTORS: &[&str] = &["&", "/", "and", "y", "at", "@", "con"];

/// True when the normalized word is a street-kind word such as `st` or `avenue`.
pub fn is_street_suffix(norm: &str) -> bool {
    STREET_SUFFIXES.contains(&norm)
}

/// True when the normalized word is a compass direction.
pub fn is_direction(norm: &str) -> bool {
    DIRECTIONS.contains(&norm)
}

/// True when the normalized word joins two streets (`&`, `and`, `y`, `/` …).
pub fn is_connector(norm: &str) -> bool {
    CONNECTORS.contains(&norm)
}

/// Lowercases and strips Spanish/Latin accents (`Márquez` → `marquez`); keeps length in chars.
pub fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'Á' | 'À' | 'Â' | 'Ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ñ' | 'Ñ' => 'n',
        'ç' | 'Ç' => 'c',
        c => c.to_ascii_lowercase(),
    }
}

const SPELLED_ORDINALS: &[(&str, &str)] = &[
    ("first", "1"),
    ("second", "2"),
    ("third", "3"),
    ("fourth", "4"),
    ("fifth", "5"),
    ("sixth", "6"),
    ("seventh", "7"),
    ("eighth", "8"),
    ("ninth", "9"),
    ("tenth", "10"),
    ("eleventh", "11"),
    ("twelfth", "12"),
    ("primera", "1"),
    ("primero", "1"),
    ("segunda", "2"),
    ("segundo", "2"),
    ("tercera", "3"),
    ("tercero", "3"),
    ("cuarta", "4"),
    ("cuarto", "4"),
    ("quinta", "5"),
    ("quinto", "5"),
];

/// Normalizes one word: `31st` → `31`, `Third` → `3`, `Márket` → `market`.
pub fn normalize_word(word: &str) -> String {
    let w: String = word.chars().map(fold_char).collect();
    if let Some((_, n)) = SPELLED_ORDINALS.iter().find(|(s, _)| *s == w) {
        return (*n).to_string();
    }
    let digits = w.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < w.len() {
        let suffix = &w[digits..];
        if matches!(
            suffix,
            "st" | "nd" | "rd" | "th" | "a" | "o" | "ra" | "ro" | "va" | "vo" | "º" | "ª"
        ) {
            return w[..digits].to_string();
        }
    }
    w
}

/// Splits text into normalized tokens. `&`, `/` and `@` are tokens of their own;
/// other punctuation separates words; apostrophes inside a word are dropped.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut word = String::new();
    let flush = |out: &mut Vec<Token>, word: &mut String, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            if !word.is_empty() {
                out.push(Token {
                    norm: normalize_word(word),
                    start: s,
                    end,
                });
            }
            word.clear();
        }
    };
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() || c == 'º' || c == 'ª' {
            if start.is_none() {
                start = Some(i);
            }
            word.push(c);
        } else if (c == '\'' || c == '’') && start.is_some() {
            // "Children's" → "childrens"
        } else {
            flush(&mut out, &mut word, &mut start, i);
            if matches!(c, '&' | '/' | '@') {
                out.push(Token {
                    norm: c.to_string(),
                    start: i,
                    end: i + c.len_utf8(),
                });
            }
        }
    }
    flush(&mut out, &mut word, &mut start, text.len());
    merge_spelled_ordinals(out)
}

const TENS: &[(&str, u32)] = &[
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];

const TENS_ORDINALS: &[(&str, u32)] = &[
    ("twentieth", 20),
    ("thirtieth", 30),
    ("fortieth", 40),
    ("fiftieth", 50),
    ("sixtieth", 60),
    ("seventieth", 70),
    ("eightieth", 80),
    ("ninetieth", 90),
];

/// `thirty` + `first` (already `1`) → `31`; `thirtieth` → `30`.
fn merge_spelled_ordinals(toks: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    for t in toks {
        if let Some((_, n)) = TENS_ORDINALS.iter().find(|(w, _)| *w == t.norm) {
            out.push(Token {
                norm: n.to_string(),
                ..t
            });
            continue;
        }
        let unit = t.norm.parse::<u32>().ok().filter(|u| (1..=9).contains(u));
        if let (Some(u), Some(prev)) = (unit, out.last_mut())
            && let Some((_, tens)) = TENS.iter().find(|(w, _)| *w == prev.norm)
        {
            prev.norm = (tens + u).to_string();
            prev.end = t.end;
            continue;
        }
        out.push(t);
    }
    out
}

/// An article, left out of place-name keys: "the Hoover Elementary" and "Taquería El
/// Farolito" typed as "taqueria farolito" mean the same place.
pub fn is_article(norm: &str) -> bool {
    matches!(norm, "the" | "el" | "la" | "los" | "las")
}

/// The normalized words of a name, as used for gazetteer keys.
pub fn name_key(name: &str) -> Vec<String> {
    tokenize(name)
        .into_iter()
        .map(|t| t.norm)
        .filter(|w| !is_article(w))
        .collect()
}

/// The key of a street name: normalized words without street-kind words and without a
/// leading direction (`W 47th St` → `["47"]`, `West Grand Ave` → `["west", "grand"]` and
/// the variant `["grand"]`). Returns the full key first, then variants.
pub fn street_keys(name: &str) -> Vec<Vec<String>> {
    let words: Vec<String> = name_key(name)
        .into_iter()
        .filter(|w| !is_street_suffix(w))
        .collect();
    let mut keys = vec![words.clone()];
    if words.len() > 1 && is_direction(&words[0]) {
        keys.push(words[1..].to_vec());
    }
    keys.retain(|k| !k.is_empty());
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norms(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.norm).collect()
    }

    #[test]
    fn ordinals_case_accents_and_symbols() {
        assert_eq!(norms("31st & Market St."), ["31", "&", "market", "st"]);
        assert_eq!(norms("Third/Calle Márquez"), ["3", "/", "calle", "marquez"]);
        assert_eq!(norms("Children's Hospital"), ["childrens", "hospital"]);
        assert_eq!(norms("47th y Ashland"), ["47", "y", "ashland"]);
        assert_eq!(norms("Thirty-First & Fortieth"), ["31", "&", "40"]);
    }

    #[test]
    fn spans_point_into_the_original_text() {
        let text = "at 31st & Market";
        let t = tokenize(text);
        assert_eq!(&text[t[1].start..t[1].end], "31st");
        assert_eq!(&text[t[3].start..t[3].end], "Market");
    }

    #[test]
    fn street_keys_drop_suffixes_and_leading_directions() {
        assert_eq!(street_keys("W 47th St"), vec![vec!["w", "47"], vec!["47"]]);
        assert_eq!(street_keys("Market Street"), vec![vec!["market"]]);
    }
}
