//! Incident data: what the engine keeps, stores and renders.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::LocalMark;
use crate::places::{LatLon, PlaceKind};
use crate::report::{Details, ParsedReport, ReportForm};

/// Short, easy-to-type incident ID such as `K7Q2` (no 0/O, 1/I). Stored inline (it is
/// `Copy`): IDs are handled on every report.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncidentId {
    len: u8,
    bytes: [u8; 6],
}

const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

impl IncidentId {
    /// The ID of the `seq`-th incident: a bijection of the counter, so IDs never repeat
    /// (4 characters for the first 2^20 incidents, 6 after) and do not look sequential.
    pub fn from_seq(seq: u64) -> Self {
        let (bits, len) = if seq < (1 << 20) { (20, 4) } else { (30, 6) };
        let mask = (1u64 << bits) - 1;
        let x = (seq.wrapping_mul(0x9E37_79B1).wrapping_add(0x5_1F3A)) & mask;
        let mut bytes = [0u8; 6];
        for (i, b) in bytes.iter_mut().take(len).enumerate() {
            *b = ALPHABET[((x >> (5 * (len - 1 - i))) & 31) as usize];
        }
        Self {
            len: len as u8,
            bytes,
        }
    }

    /// Parses user input (`k7q2`) into an ID, if it has the right shape.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if !matches!(s.len(), 4 | 6) {
            return None;
        }
        let mut bytes = [0u8; 6];
        for (b, c) in bytes.iter_mut().zip(s.bytes()) {
            let c = c.to_ascii_uppercase();
            if !ALPHABET.contains(&c) {
                return None;
            }
            *b = c;
        }
        Some(Self {
            len: s.len() as u8,
            bytes,
        })
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        // Only ALPHABET bytes are ever stored: always ASCII.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IncidentId({})", self.as_str())
    }
}

impl Serialize for IncidentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IncidentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an incident ID")))
    }
}

/// Incident status (PRODUCT.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fewer than `confirmations` independent reporters so far.
    Unverified,
    /// Confirmed; relayed.
    Confirmed,
    /// All clear.
    Resolved,
    /// A verifier said it was not real.
    FalseAlarm,
    /// No new report for `expiry_hours`.
    Expired,
}

impl Status {
    /// Open incidents take new reports.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Unverified | Self::Confirmed)
    }

    /// The catalog key of the status's name.
    pub fn catalog_key(self) -> &'static str {
        match self {
            Self::Unverified => "status.unverified",
            Self::Confirmed => "status.confirmed",
            Self::Resolved => "status.resolved",
            Self::FalseAlarm => "status.false_alarm",
            Self::Expired => "status.expired",
        }
    }
}

/// Who confirmed an incident (for statistics and the alert's wording; never an identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmedBy {
    /// Enough independent reporters.
    Reporters,
    /// A verifier or room moderator (by command, reaction or their own report).
    Verifier,
}

/// A keyed hash of a reporter's user ID: counts distinct reporters without storing who.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReporterHash(#[serde(with = "hex_bytes")] pub [u8; 16]);

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(b: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(D::Error::custom)?;
        v.try_into()
            .map_err(|_| D::Error::custom("reporter hash must be 16 bytes"))
    }
}

/// The HMAC-SHA256 key for reporter hashes. Comes from an environment variable.
#[derive(Clone)]
pub struct ReporterKey(Hmac<Sha256>);

impl std::fmt::Debug for ReporterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReporterKey(…)")
    }
}

impl ReporterKey {
    /// A key from secret bytes (any length; at least 16 recommended).
    pub fn new(secret: &[u8]) -> Self {
        Self(Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length"))
    }

    /// The reporter hash of a user ID.
    pub fn hash(&self, user_id: &str) -> ReporterHash {
        let mut mac = self.0.clone();
        mac.update(user_id.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut h = [0u8; 16];
        h.copy_from_slice(&out[..16]);
        ReporterHash(h)
    }
}

/// One report merged into an incident.
///
/// Who sent it, where and as which event is kept only while the incident is open: when
/// it closes, [`Incident::set_status`] drops all three (PRODUCT.md §6). Each is left out
/// of the stored record when absent, so a record written while open reads the same as
/// one written by an older version, and an older version's records read as open ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// The Matrix event of the report (`None` once the incident closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Arc<str>>,
    /// The room it was posted in (`None` once the incident closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Arc<str>>,
    /// Who, as a keyed hash (`None` once the incident closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<ReporterHash>,
    /// Where.
    pub at: LatLon,
    /// When the sighting happened.
    pub observed_at: DateTime<Utc>,
    /// When the bot received it.
    pub received_at: DateTime<Utc>,
    /// The text, until `retention_hours` have passed.
    pub text: Option<Arc<str>>,
    /// The grammar used.
    pub form: ReportForm,
    /// Whether it counts toward confirmation (a reporter who joined the room too recently,
    /// or sent too many reports, is recorded but not counted).
    #[serde(default = "counts_by_default")]
    pub counts: bool,
}

fn counts_by_default() -> bool {
    true
}

/// A nearby sensitive place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NearPlace {
    /// Its name.
    pub name: Arc<str>,
    /// Its kind.
    pub kind: PlaceKind,
    /// Distance from the incident in metres.
    pub distance_m: f64,
}

/// An incident: one or more reports of the same sighting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Short ID.
    pub id: IncidentId,
    /// Status.
    pub status: Status,
    /// Bumped on every change; relayed alerts carry it.
    pub version: u64,
    /// Which bot instance created it.
    pub origin: Arc<str>,
    /// Relay hops from the origin (0 here).
    pub hops: u32,
    /// The neighborhood of the first report.
    pub neighborhood: Arc<str>,
    /// Centroid of the located reports.
    pub location: LatLon,
    /// Resolved place name of the first report.
    pub label: Arc<str>,
    /// Earliest sighting.
    pub first_seen: DateTime<Utc>,
    /// Latest sighting.
    pub last_seen: DateTime<Utc>,
    /// When it was confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Who confirmed it.
    #[serde(default)]
    pub confirmed_by: Option<ConfirmedBy>,
    /// When a verifier marked it a false alarm or all clear.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// When a report near here, at about this time, was marked a false alarm (set on an
    /// incident opened after one, so people can judge).
    #[serde(default)]
    pub after_false_alarm: Option<DateTime<Utc>>,
    /// When its status last changed or a report was added.
    pub updated_at: DateTime<Utc>,
    /// The reports.
    pub reports: Vec<ReportRecord>,
    /// Distinct reporters who count toward confirmation (emptied when it closes, see
    /// `former_reporters`).
    pub reporters: Vec<ReporterHash>,
    /// How many distinct counting reporters it had when it last closed: their hashes are
    /// dropped then, the number stays (for the alert's count if it is reopened).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub former_reporters: u32,
    /// Merged details.
    pub details: Details,
    /// The closest sensitive place within the sensitive radius.
    pub near: Option<NearPlace>,
    /// Rooms the alert was relayed to, in order.
    pub relayed_to: Vec<Arc<str>>,
    /// Those of `relayed_to` reached over a relay link (their messages count one more
    /// hop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_rooms: Vec<Arc<str>>,
    /// A drill (`!nw drill`): every message says so, nothing notifies, it never merges
    /// with real reports and never counts in statistics; all clear a minute after.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
    /// Rooms where the bot's messages about it were set to be redacted (once closed, at
    /// the room's `alert_retention_hours`): never twice. Emptied if it opens again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faded: Vec<Arc<str>>,
    /// False alarms and all clears from other alerted neighborhoods, each holding in
    /// that neighborhood's rooms only, until the incident's home decides (any status
    /// change empties it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marked_here: Vec<LocalMark>,
    /// Neighborhoods (IDs) whose verifiers or moderators confirmed it without being its
    /// home: support shown to the home, never its own verification (any status change
    /// empties it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub support: Vec<Arc<str>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The machine-readable `org.neighborwatch.incident` field of every bot message about
/// an incident (PRODUCT.md §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentTag {
    /// Incident ID.
    pub id: IncidentId,
    /// Status.
    pub status: Status,
    /// Version.
    pub version: u64,
    /// Origin instance.
    pub origin: Arc<str>,
    /// Relay hops.
    pub hops: u32,
}

impl Incident {
    /// The one status transition: the new status with the times and attribution it
    /// implies (confirmed: by whom, since when, open again; false alarm or all clear:
    /// closed now). The caller counts the version.
    ///
    /// A closed incident keeps no event ID, room or reporter hash (PRODUCT.md §6): they
    /// are dropped here, the number of distinct reporters kept as a number. Returns
    /// whether any report record changed so (the caller then writes them all).
    #[must_use = "scrubbed report records must be written"]
    pub fn set_status(
        &mut self,
        status: Status,
        now: DateTime<Utc>,
        by: Option<ConfirmedBy>,
    ) -> bool {
        self.status = status;
        self.updated_at = now;
        // The incident's home (or the network) decided: for every room.
        self.marked_here = Vec::new();
        self.support = Vec::new();
        match status {
            Status::Confirmed => {
                self.confirmed_by = by.or(self.confirmed_by);
                self.confirmed_at.get_or_insert(now);
                self.closed_at = None;
                self.faded = Vec::new();
            }
            Status::FalseAlarm | Status::Resolved => self.closed_at = Some(now),
            Status::Unverified | Status::Expired => {}
        }
        if status.is_open() {
            return false;
        }
        self.forget_reporters()
    }

    /// What another neighborhood marked for its own rooms, if anything and the incident
    /// is still open.
    pub fn mark_of(&self, neighborhood: &str) -> Option<&LocalMark> {
        self.marked_here
            .iter()
            .find(|m| &*m.neighborhood == neighborhood && self.status.is_open())
    }

    /// The incident as `neighborhood`'s rooms show it: with that neighborhood's own
    /// false alarm or all clear in place of the open status, if it marked one.
    pub fn as_seen_in(&self, neighborhood: &str) -> std::borrow::Cow<'_, Self> {
        match self.mark_of(neighborhood) {
            Some(m) => {
                let mut seen = self.clone();
                seen.status = m.status;
                std::borrow::Cow::Owned(seen)
            }
            None => std::borrow::Cow::Borrowed(self),
        }
    }

    /// Drops every report's event ID, room and reporter hash, and the reporters' hashes
    /// (their number stays in `former_reporters`). Returns whether a report record
    /// changed. [`Incident::set_status`] does it at every close.
    pub fn forget_reporters(&mut self) -> bool {
        let n = u32::try_from(self.reporters.len()).unwrap_or(u32::MAX);
        self.former_reporters = self.former_reporters.saturating_add(n);
        self.reporters = Vec::new();
        let mut changed = false;
        for r in &mut self.reports {
            if r.event_id.is_some() || r.room.is_some() || r.reporter.is_some() {
                (r.event_id, r.room, r.reporter) = (None, None, None);
                changed = true;
            }
        }
        changed
    }

    /// When it closed (`None` while open): a verifier's false alarm or all clear, or
    /// its expiry (the last change of an expired incident).
    pub fn closed(&self) -> Option<DateTime<Utc>> {
        if self.status.is_open() {
            None
        } else {
            Some(self.closed_at.unwrap_or(self.updated_at))
        }
    }

    /// The tag carried by messages about this incident.
    pub fn tag(&self) -> IncidentTag {
        IncidentTag {
            id: self.id,
            status: self.status,
            version: self.version,
            origin: self.origin.clone(),
            hops: self.hops,
        }
    }

    /// The tag of messages about this incident sent to `room`: one hop more in a room
    /// reached over a relay link.
    pub fn tag_in(&self, room: &str) -> IncidentTag {
        let mut t = self.tag();
        if self.linked_rooms.iter().any(|r| &**r == room) {
            t.hops += 1;
        }
        t
    }

    /// A copy with only the reports from index `from` on: what a store write of the
    /// changed part needs (see [`crate::store::IncidentWrite`]).
    pub fn clone_reports_from(&self, from: usize) -> Self {
        let Self {
            id,
            status,
            version,
            origin,
            hops,
            neighborhood,
            location,
            label,
            first_seen,
            last_seen,
            confirmed_at,
            confirmed_by,
            closed_at,
            after_false_alarm,
            updated_at,
            reports,
            reporters,
            former_reporters,
            details,
            near,
            relayed_to,
            linked_rooms,
            drill,
            faded,
            marked_here,
            support,
        } = self;
        Self {
            id: *id,
            status: *status,
            version: *version,
            origin: origin.clone(),
            hops: *hops,
            neighborhood: neighborhood.clone(),
            location: *location,
            label: label.clone(),
            first_seen: *first_seen,
            last_seen: *last_seen,
            confirmed_at: *confirmed_at,
            confirmed_by: *confirmed_by,
            closed_at: *closed_at,
            after_false_alarm: *after_false_alarm,
            updated_at: *updated_at,
            reports: reports.get(from..).unwrap_or_default().to_vec(),
            reporters: reporters.clone(),
            former_reporters: *former_reporters,
            details: details.clone(),
            near: near.clone(),
            relayed_to: relayed_to.clone(),
            linked_rooms: linked_rooms.clone(),
            drill: *drill,
            faded: faded.clone(),
            marked_here: marked_here.clone(),
            support: support.clone(),
        }
    }

    /// Whether it still names a reporter, a report's room or event (a closed incident
    /// stored by an older version).
    pub fn names_reporters(&self) -> bool {
        !self.reporters.is_empty()
            || self
                .reports
                .iter()
                .any(|r| r.event_id.is_some() || r.room.is_some() || r.reporter.is_some())
    }

    /// Number of distinct reporters who count toward confirmation (those of before it
    /// last closed by number: someone who reported both before and after a reopening
    /// counts twice).
    pub fn reporter_count(&self) -> usize {
        self.reporters.len() + self.former_reporters as usize
    }

    /// Recounts the distinct counting reporters and the centroid from the reports (after
    /// one was taken out). Reports whose reporter was dropped at a close are counted in
    /// `former_reporters` already.
    pub fn recount(&mut self) {
        let mut reporters: Vec<ReporterHash> = Vec::new();
        for r in self.reports.iter().filter(|r| r.counts) {
            if let Some(h) = r.reporter
                && !reporters.contains(&h)
            {
                reporters.push(h);
            }
        }
        self.reporters = reporters;
        if let Some(c) = LatLon::centroid(self.reports.iter().map(|x| x.at)) {
            self.location = c;
        }
        if let (Some(first), Some(last)) = (
            self.reports.iter().map(|r| r.observed_at).min(),
            self.reports.iter().map(|r| r.observed_at).max(),
        ) {
            self.first_seen = first;
            self.last_seen = last;
        }
    }

    /// Whether the incident's messages live in `room`: it was alerted there, or one of
    /// its reports was posted there (known while it is open only: a closed incident
    /// lives where it was alerted).
    pub fn lives_in(&self, room: &str) -> bool {
        self.relayed_to.iter().any(|r| &**r == room)
            || self.reports.iter().any(|r| r.room.as_deref() == Some(room))
    }

    /// Merges the details of a new report (counts: the highest said; category: the most
    /// severe; vehicles and plates: the union).
    pub fn merge_details(&mut self, d: &Details) {
        let m = &mut self.details;
        m.agents = m.agents.max(d.agents);
        m.vehicles = m.vehicles.max(d.vehicles);
        m.category = m.category.max(d.category);
        for v in &d.vehicle_descriptions {
            if !m.vehicle_descriptions.contains(v) {
                m.vehicle_descriptions.push(v.clone());
            }
        }
        for p in &d.plates {
            if !m.plates.contains(p) {
                m.plates.push(p.clone());
            }
        }
    }
}

/// A report whose location did not resolve: it waits for a location share or an edit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingReport {
    /// The report's event.
    pub event_id: Arc<str>,
    /// Its room.
    pub room: Arc<str>,
    /// Who, as a keyed hash.
    pub reporter: ReporterHash,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// What was read.
    pub report: ParsedReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ReportRecord {
        let t = DateTime::<Utc>::from_timestamp(1_772_467_560, 0).unwrap();
        ReportRecord {
            event_id: Some("$e".into()),
            room: Some("!r:x".into()),
            reporter: Some(ReporterKey::new(b"k").hash("@a:b")),
            at: LatLon::new(37.82, -122.27).unwrap(),
            observed_at: t,
            received_at: t,
            text: None,
            form: ReportForm::Quick,
            counts: true,
        }
    }

    #[test]
    fn an_open_record_is_stored_as_before_and_a_closed_one_names_nothing() {
        let open = record();
        let v = serde_json::to_value(&open).unwrap();
        // As older versions wrote and read it: plain strings.
        assert_eq!(v["event_id"], "$e");
        assert_eq!(v["room"], "!r:x");
        assert_eq!(v["reporter"].as_str().map(str::len), Some(32));
        assert_eq!(serde_json::from_value::<ReportRecord>(v).unwrap(), open);
        let mut closed = open;
        (closed.event_id, closed.room, closed.reporter) = (None, None, None);
        let v = serde_json::to_value(&closed).unwrap();
        for k in ["event_id", "room", "reporter"] {
            assert!(v.get(k).is_none(), "{k} in {v}");
        }
        assert_eq!(serde_json::from_value::<ReportRecord>(v).unwrap(), closed);
    }
}
