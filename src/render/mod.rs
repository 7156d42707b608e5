//! Rendering: every message the bot sends, as data (plain and HTML bodies, msgtype,
//! mentions, the `org.neighborwatch.incident` tag), in the receiving neighborhood's
//! language (PRODUCT.md §4, §7).
//!
//! Owns: the layout of alerts, acknowledgments, errors and command replies (wording
//! comes from `crate::catalog`), plural choice for counted phrases. User
//! text is escaped in HTML here and nowhere else. Must not touch: Matrix types, storage,
//! clocks. It never receives a reporter's identity, so it cannot leak one.

mod decisions;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use crate::catalog::{Catalogs, fill};
pub use decisions::{Undelivered, render_decisions, undelivered_notice};

impl crate::decision::Render for Catalogs {
    fn render<'i>(
        &self,
        net: &crate::config::Network,
        incident: &dyn Fn(&crate::model::IncidentId) -> Option<&'i crate::model::Incident>,
        decisions: &[crate::decision::Decision],
    ) -> Vec<crate::effect::Effect> {
        render_decisions(net, self, incident, decisions)
    }
}

use crate::config::Neighborhood;
use crate::effect::{LocationContent, MsgType, OutgoingMessage};
use crate::model::{ConfirmedBy, Incident, IncidentTag, LocalMark, Status};
use crate::places::Gazetteer;

/// One line of a message: its catalog key and arguments, rendered twice (plain text and
/// escaped HTML).
type Line = (&'static str, Vec<(&'static str, String)>);

/// Renders in one language and time zone.
#[derive(Clone, Copy, Debug)]
pub struct Renderer<'a> {
    cat: &'a Catalogs,
    lang: &'a str,
    tz: Tz,
}

/// The CLDR plural category (`one`, `other`, …) of `n` in `lang`; `other` for a language
/// the plural rules do not know.
pub fn plural_category(lang: &str, n: u64) -> &'static str {
    use icu_plurals::{PluralCategory, PluralRules};
    thread_local! {
        static RULES: std::cell::RefCell<std::collections::HashMap<String, Option<PluralRules>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    RULES.with(|rules| {
        let mut rules = rules.borrow_mut();
        let r = rules.entry(lang.to_owned()).or_insert_with(|| {
            let locale = icu_locale_core::Locale::try_from_str(lang).ok()?;
            PluralRules::try_new_cardinal(locale.into()).ok()
        });
        match r.as_ref().map(|r| r.category_for(n)) {
            Some(PluralCategory::Zero) => "zero",
            Some(PluralCategory::One) => "one",
            Some(PluralCategory::Two) => "two",
            Some(PluralCategory::Few) => "few",
            Some(PluralCategory::Many) => "many",
            Some(PluralCategory::Other) | None => "other",
        }
    })
}

/// Formats a distance the way people say it: `120 m`, `1.4 km`.
pub(crate) fn distance_words(r: &Renderer<'_>, m: f64) -> String {
    if m < 1000.0 {
        let n = ((m / 10.0).round() * 10.0).max(0.0) as u64;
        r.plain("distance.m", &[("n", &n.to_string())])
    } else {
        r.plain("distance.km", &[("n", &format!("{:.1}", m / 1000.0))])
    }
}

impl<'a> Renderer<'a> {
    /// A renderer for a language and zone.
    pub fn new(cat: &'a Catalogs, lang: &'a str, tz: Tz) -> Self {
        Self { cat, lang, tz }
    }

    /// A renderer for a neighborhood's language and zone.
    pub fn for_neighborhood(cat: &'a Catalogs, n: &'a Neighborhood) -> Self {
        Self::new(cat, &n.settings.language, n.settings.timezone)
    }

    /// A counted phrase ("1 room", "3 rooms"): the catalog entry `key` has one form per
    /// CLDR plural category of the language (`zero`, `one`, `two`, `few`, `many`,
    /// `other`), chosen by the language's plural rules for `n`; a category the entry
    /// lacks falls back to `other` (then to English).
    pub fn count(&self, key: &str, n: u64) -> String {
        let form = format!("{key}.{}", plural_category(self.lang, n));
        let other = format!("{key}.other");
        let template = self
            .cat
            .get(self.lang, &form)
            .or_else(|| self.cat.get(self.lang, &other))
            .unwrap_or_else(|| self.cat.template(self.lang, &other));
        fill(template, &[("n", &n.to_string())], false)
    }

    /// A plain-text catalog message.
    pub fn plain(&self, key: &str, args: &[(&str, &str)]) -> String {
        fill(self.cat.template(self.lang, key), args, false)
    }

    fn html(&self, key: &str, args: &[(&str, &str)]) -> String {
        fill(self.cat.template(self.lang, key), args, true)
    }

    /// A quiet message from one catalog entry.
    pub fn notice(
        &self,
        key: &str,
        args: &[(&str, &str)],
        incident: Option<IncidentTag>,
    ) -> OutgoingMessage {
        OutgoingMessage {
            msgtype: MsgType::Notice,
            body: self.plain(key, args),
            html: self.html(key, args),
            mentions_room: false,
            incident,
        }
    }

    /// A quiet message of several catalog entries, one line each.
    pub fn notice_lines(&self, lines: &[(&str, Vec<(&str, String)>)]) -> OutgoingMessage {
        let join = |html: bool| {
            lines
                .iter()
                .map(|(k, args)| {
                    let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    if html {
                        self.html(k, &a)
                    } else {
                        self.plain(k, &a)
                    }
                })
                .collect::<Vec<_>>()
        };
        OutgoingMessage {
            msgtype: MsgType::Notice,
            body: join(false).join("\n"),
            html: join(true).join("<br>"),
            mentions_room: false,
            incident: None,
        }
    }

    /// A quiet message of several catalog entries, one after the other (a sentence each).
    pub fn notice_parts(
        &self,
        parts: &[(&str, Vec<(&str, String)>)],
        incident: Option<IncidentTag>,
    ) -> OutgoingMessage {
        let join = |html: bool| {
            parts
                .iter()
                .map(|(k, args)| {
                    let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    if html {
                        self.html(k, &a)
                    } else {
                        self.plain(k, &a)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        OutgoingMessage {
            msgtype: MsgType::Notice,
            body: join(false),
            html: join(true),
            mentions_room: false,
            incident,
        }
    }

    /// The incident's status in words ("confirmed by a verifier" when one did).
    pub fn status_words(&self, inc: &Incident) -> String {
        match (inc.status, inc.confirmed_by) {
            (Status::Confirmed, Some(ConfirmedBy::Verifier)) => {
                self.plain("status.confirmed_by_verifier", &[])
            }
            (s, _) => self.plain(s.catalog_key(), &[]),
        }
    }

    /// The incident as `to`'s rooms show it: its own mark, if it made one.
    pub fn status_words_in(&self, inc: &Incident, to: &str) -> String {
        self.status_words(&inc.as_seen_in(to))
    }

    /// Whether messages people must hear about this incident mention the whole room: the
    /// alert did, because it is near a school, church, hospital or shelter.
    pub fn alert_mentions_room(&self, inc: &Incident) -> bool {
        inc.near.is_some()
    }

    /// A local clock time.
    pub fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format(self.cat.template(self.lang, "time_format"))
            .to_string()
    }

    /// A local date and clock time.
    pub fn date_time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format(self.cat.template(self.lang, "date_time_format"))
            .to_string()
    }

    /// The catalog's one valid example report.
    pub fn example(&self) -> &str {
        self.cat.template(self.lang, "example")
    }

    /// Items joined with the language's list separator.
    pub fn list(&self, items: &[String]) -> String {
        items.join(self.cat.template(self.lang, "list_separator"))
    }

    /// A confirmed (or closed) alert as relayed to `to` (PRODUCT.md §4): headline, where,
    /// when, what was seen, the reports and status, then the notes that apply.
    pub fn alert(
        &self,
        inc: &Incident,
        to: &Neighborhood,
        gazetteer: &Gazetteer,
    ) -> OutgoingMessage {
        // Another neighborhood's own false alarm or all clear shows in its rooms only;
        // the tag keeps the incident's own status.
        let tag = inc.tag();
        let mark = inc.mark_of(&to.id).map(|m| self.marked_here(inc, m, to));
        let seen = inc.as_seen_in(&to.id);
        let inc = &*seen;
        let status = self.status_words(inc);
        let urgent = inc.status == Status::Confirmed && self.alert_mentions_room(inc);
        // A false alarm or an all clear no longer presents the sighting as current.
        let current = !matches!(inc.status, Status::FalseAlarm | Status::Resolved);
        let mut lines = vec![
            self.alert_headline(inc, &status, urgent),
            self.alert_where(inc, to, gazetteer),
            self.alert_when(inc),
        ];
        let what = self.alert_what(inc);
        if !what.is_empty() && current {
            lines.push(("alert.what", vec![("what", what.join(" · "))]));
        }
        lines.push((
            "alert.reports",
            vec![
                ("count", inc.reporter_count().to_string()),
                ("status", status),
                ("id", inc.id.to_string()),
            ],
        ));
        match mark {
            Some(line) => lines.push(line),
            None => self.alert_notes(inc, current, &mut lines),
        }
        OutgoingMessage {
            msgtype: MsgType::Text,
            body: self.alert_text(&lines, false),
            html: self.alert_text(&lines, true),
            mentions_room: urgent,
            incident: Some(tag),
        }
    }

    /// The line of an alert marked false alarm or all clear by `to`, not the incident's
    /// home: by whom, and that the home decides for everyone.
    fn marked_here(&self, inc: &Incident, m: &LocalMark, to: &Neighborhood) -> Line {
        let key = match m.status {
            Status::Resolved => "alert.marked_here_resolved",
            _ => "alert.marked_here_false_alarm",
        };
        (
            key,
            vec![
                ("who", self.plain(who_key(m.by_moderator), &[])),
                ("neighborhood", to.name.clone()),
                ("status", self.status_words(inc)),
            ],
        )
    }

    /// The alert's first line: what, where and its status; urgent when it is confirmed
    /// near a sensitive place.
    fn alert_headline(&self, inc: &Incident, status: &str, urgent: bool) -> Line {
        let place: &str = &inc.label;
        let mut args = vec![
            (
                "category",
                self.plain(inc.details.category.catalog_key(), &[]),
            ),
            ("place", place.to_owned()),
            ("status", status.to_owned()),
        ];
        if let Some(n) = &inc.near {
            args.push(("near", n.name.to_string()));
            args.push(("near_kind", self.plain(n.kind.catalog_key(), &[])));
        }
        // The sighting at the sensitive place itself: say the place once.
        let at_the_place = inc
            .near
            .as_ref()
            .is_some_and(|n| n.name.trim().eq_ignore_ascii_case(place.trim()));
        let key = match inc.status {
            Status::Confirmed if urgent && at_the_place => "alert.headline_urgent_at",
            Status::Confirmed if urgent => "alert.headline_urgent",
            Status::Confirmed | Status::Unverified => "alert.headline_confirmed",
            Status::FalseAlarm => "alert.headline_false_alarm",
            Status::Resolved => "alert.headline_resolved",
            Status::Expired => "alert.headline_closed",
        };
        (key, args)
    }

    /// Where: the place, the nearest landmark within 2 km (not the place itself), and
    /// how far from `to` (or inside it).
    fn alert_where(&self, inc: &Incident, to: &Neighborhood, gazetteer: &Gazetteer) -> Line {
        let place: &str = &inc.label;
        let landmark = gazetteer
            .nearest_landmark(inc.location)
            .filter(|(p, d)| *d <= 2000.0 && !p.name.trim().eq_ignore_ascii_case(place.trim()))
            .map(|(p, d)| {
                self.plain(
                    "alert.landmark",
                    &[("name", &p.name), ("distance", &distance_words(self, d))],
                )
            })
            .unwrap_or_default();
        let from_area = to.area.distance_m(inc.location);
        let distance = if from_area < 1.0 {
            self.plain("alert.inside", &[("neighborhood", &to.name)])
        } else {
            self.plain(
                "alert.away",
                &[
                    ("distance", &distance_words(self, from_area)),
                    ("neighborhood", &to.name),
                ],
            )
        };
        (
            "alert.where",
            vec![
                ("place", place.to_owned()),
                ("landmark", landmark),
                ("distance", distance),
            ],
        )
    }

    /// When: first and last seen, local time.
    fn alert_when(&self, inc: &Incident) -> Line {
        (
            "alert.when",
            vec![
                ("first", self.time(inc.first_seen)),
                ("last", self.time(inc.last_seen)),
            ],
        )
    }

    /// What was seen: agents, vehicles (with their descriptions), plates; empty when the
    /// reports said none of it.
    fn alert_what(&self, inc: &Incident) -> Vec<String> {
        let mut what = Vec::new();
        if let Some(n) = inc.details.agents {
            what.push(self.count("count.agents", u64::from(n)));
        }
        if let Some(n) = inc.details.vehicles {
            let mut s = self.count("count.vehicles", u64::from(n));
            if !inc.details.vehicle_descriptions.is_empty() {
                s.push_str(&format!(
                    " ({})",
                    self.list(&inc.details.vehicle_descriptions)
                ));
            }
            what.push(s);
        }
        if !inc.details.plates.is_empty() {
            what.push(self.plain(
                "alert.what_plates",
                &[("plates", &self.list(&inc.details.plates))],
            ));
        }
        what
    }

    /// The closing lines: a false alarm's or an all clear's note; for a current sighting,
    /// an earlier false alarm; the footer while it is open. Never a reporter's words:
    /// an alert carries the facts the bot extracted, and the words stay in the origin
    /// room (PRODUCT.md §4).
    fn alert_notes(&self, inc: &Incident, current: bool, lines: &mut Vec<Line>) {
        match inc.status {
            Status::FalseAlarm => lines.push(("alert.false_alarm_note", vec![])),
            Status::Resolved => lines.push(("alert.resolved_note", vec![])),
            _ => {}
        }
        if let (true, Some(t)) = (current, inc.after_false_alarm) {
            lines.push(("alert.after_false_alarm", vec![("time", self.time(t))]));
        }
        if inc.status.is_open() {
            lines.push(("alert.footer", vec![("id", inc.id.to_string())]));
        }
    }

    /// The alert's lines as plain text, or as escaped HTML with the headline in bold.
    fn alert_text(&self, lines: &[Line], html: bool) -> String {
        lines
            .iter()
            .enumerate()
            .map(|(i, (k, args))| {
                let a: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let s = if html {
                    self.html(k, &a)
                } else {
                    self.plain(k, &a)
                };
                if html && i == 0 {
                    format!("<strong>{s}</strong>")
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join(if html { "<br>\n" } else { "\n" })
    }

    /// The `m.location` that follows an alert.
    pub fn alert_location(&self, inc: &Incident) -> LocationContent {
        let uncertainty = if inc.reports.len() > 1 { 60.0 } else { 30.0 };
        LocationContent {
            geo_uri: inc.location.geo_uri(Some(uncertainty)),
            description: self.plain(
                "alert.location",
                &[("id", inc.id.as_str()), ("place", &inc.label)],
            ),
        }
    }
}

/// The catalog key naming who marked or confirmed: a room moderator or a verifier.
pub fn who_key(by_moderator: bool) -> &'static str {
    if by_moderator {
        "who.moderator"
    } else {
        "who.verifier"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_categories_follow_each_languages_cldr_rules() {
        assert_eq!(plural_category("en", 1), "one");
        assert_eq!(plural_category("en", 0), "other");
        assert_eq!(plural_category("en", 2), "other");
        assert_eq!(plural_category("es", 1), "one");
        assert_eq!(plural_category("es", 1_000_000), "many");
        assert_eq!(plural_category("ru", 2), "few");
        assert_eq!(plural_category("ru", 5), "many");
        assert_eq!(plural_category("ar", 0), "zero");
        assert_eq!(plural_category("not a language!", 1), "other");
    }

    #[test]
    fn counted_phrases_pick_the_form_and_fall_back_to_other() {
        let cat = Catalogs::builtin();
        let en = Renderer::new(cat, "en", chrono_tz::UTC);
        assert_eq!(en.count("count.rooms", 1), "1 room");
        assert_eq!(en.count("count.rooms", 0), "0 rooms");
        assert_eq!(en.count("count.rooms", 12), "12 rooms");
        let es = Renderer::new(cat, "es", chrono_tz::UTC);
        assert_eq!(es.count("count.reports", 1), "1 aviso independiente");
        assert_eq!(es.count("count.reports", 3), "3 avisos independientes");
        // Spanish's `many` (a million) is not in the catalog: `other` stands in.
        assert_eq!(es.count("count.rooms", 1_000_000), "1000000 salas");
        // A language without a catalog: English.
        let ru = Renderer::new(cat, "ru", chrono_tz::UTC);
        assert_eq!(ru.count("count.rooms", 2), "2 rooms");
    }
}
