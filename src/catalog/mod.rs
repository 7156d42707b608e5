//! Message catalogs: every user-facing string, per language, from `catalogs/*.toml`.
//!
//! Owns: loading the built-in catalogs, looking templates up (with the English
//! fallback), filling placeholders. Stands on its own: the network file's loader checks
//! languages against it and the renderer words messages with it; it must not touch
//! either.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The catalogs compiled in from `catalogs/` by `build.rs`: (language code, TOML text).
const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalogs.rs"));

/// All languages' messages.
#[derive(Debug)]
pub struct Catalogs {
    langs: HashMap<String, HashMap<String, String>>,
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut HashMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

static BUILTIN_CATALOGS: LazyLock<Catalogs> = LazyLock::new(|| {
    let mut langs = HashMap::new();
    for (code, text) in BUILTIN {
        // A broken built-in catalog is a build defect, caught by the catalog tests.
        let v: toml::Value =
            toml::from_str(text).unwrap_or_else(|e| panic!("catalogs/{code}.toml: {e}"));
        let mut map = HashMap::new();
        flatten("", &v, &mut map);
        langs.insert((*code).to_owned(), map);
    }
    Catalogs { langs }
});

impl Catalogs {
    /// The built-in catalogs.
    pub fn builtin() -> &'static Catalogs {
        &BUILTIN_CATALOGS
    }

    /// True when there is a catalog for `lang`.
    pub fn has(&self, lang: &str) -> bool {
        self.langs.contains_key(lang)
    }

    /// The language codes, sorted.
    pub fn languages(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.langs.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Every key of a language's catalog.
    pub fn keys(&self, lang: &str) -> Vec<&str> {
        self.langs
            .get(lang)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The raw template for `key` in `lang` itself, if it has one.
    pub fn get(&self, lang: &str, key: &str) -> Option<&str> {
        self.langs.get(lang)?.get(key).map(String::as_str)
    }

    /// The raw template for `key` in `lang`, falling back to English, then to the key.
    pub fn template<'a>(&'a self, lang: &str, key: &'a str) -> &'a str {
        self.langs
            .get(lang)
            .and_then(|m| m.get(key))
            .or_else(|| self.langs.get("en").and_then(|m| m.get(key)))
            .map_or(key, String::as_str)
    }
}

/// Fills `{name}` placeholders. With `html`, the template and the values are escaped.
pub fn fill(template: &str, args: &[(&str, &str)], html: bool) -> String {
    let esc = |s: &str, out: &mut String| {
        if html {
            html_escape::encode_safe_to_string(s, out);
        } else {
            out.push_str(s);
        }
    };
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        esc(&rest[..open], &mut out);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => esc(v, &mut out),
                    None => esc(&rest[open..open + close + 2], &mut out),
                }
                rest = &after[close + 1..];
            }
            None => {
                esc(&rest[open..], &mut out);
                rest = "";
            }
        }
    }
    esc(rest, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_and_spanish_are_complete_and_keep_placeholders() {
        let c = Catalogs::builtin();
        let en = c.keys("en");
        assert!(en.len() > 40);
        let re = regex::Regex::new(r"\{[a-z_]+\}").unwrap();
        for k in en {
            let es = c.langs["es"]
                .get(k)
                .unwrap_or_else(|| panic!("es.toml lacks `{k}`"));
            let mut a: Vec<_> = re
                .find_iter(c.template("en", k))
                .map(|m| m.as_str())
                .collect();
            let mut b: Vec<_> = re.find_iter(es).map(|m| m.as_str()).collect();
            a.sort_unstable();
            b.sort_unstable();
            a.dedup();
            b.dedup();
            assert_eq!(a, b, "placeholders of `{k}` differ between en and es");
        }
    }

    #[test]
    fn fill_escapes_values_in_html_only() {
        let t = "At {place}: {x}";
        assert_eq!(
            fill(t, &[("place", "<b>31st</b>")], false),
            "At <b>31st</b>: {x}"
        );
        assert_eq!(
            fill(t, &[("place", "<b>31st</b>")], true),
            "At &lt;b&gt;31st&lt;&#x2F;b&gt;: {x}"
        );
    }
}
