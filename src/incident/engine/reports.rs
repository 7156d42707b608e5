//! Reports: a text or location message becomes a located report (or waits for its
//! location), and a located report merges into an incident in named steps: find or
//! open → merge → confirm if due → relay and acknowledge.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::alerts::{near_of, relay_to_new_rooms, update_alerts};
use super::{
    Content, Engine, EngineError, IncomingMessage, LOCATION_ATTACH_MIN, LocatedReport, Standing, Tx,
};
use crate::config::{Neighborhood, Tunables};
use crate::decision::{AckKind, AckNote, CoordinationKind, Decision, UpdateKind};
use crate::lifecycle;
use crate::model::{
    ConfirmedBy, Incident, IncidentId, PendingReport, ReportRecord, ReporterHash, Status,
};
use crate::places::{LatLon, parse_geo_uri};
use crate::report::{
    Details, LocationOutcome, ParseContext, ParsedReport, ReportForm, extract, parse_report,
};
use crate::store::Store;

/// A false alarm, remembered so that a later report at the same place and time says so.
#[derive(Clone, Copy, Debug)]
pub(super) struct FalseAlarmMark {
    pub(super) id: IncidentId,
    pub(super) at: LatLon,
    pub(super) last_seen: DateTime<Utc>,
    pub(super) marked_at: DateTime<Utc>,
}

/// Reports one reporter may send are counted over this window.
pub(super) const RATE_WINDOW_MS: i64 = 10 * 60_000;

/// Where a report was merged, and what that changed.
struct Merged {
    key: usize,
    created: bool,
    new_reporter: bool,
    was_confirmed: bool,
    needed: u32,
}

/// Who sent a report, where and when: what every step from a message to a located
/// report reads.
#[derive(Clone, Copy)]
struct ReportCx<'a> {
    nb: &'a Neighborhood,
    room: &'a Arc<str>,
    event_id: &'a Arc<str>,
    msg: &'a IncomingMessage,
    reporter: ReporterHash,
    now: DateTime<Utc>,
}

impl<S: Store> Engine<S> {
    /// A message in a neighborhood room that is not a command: a report (text or location
    /// share), an edit of a report waiting for its location, or an undecryptable message.
    /// False when it is none of these (nothing to commit, the event stays unhandled).
    pub(super) fn report(
        &mut self,
        tx: &mut Tx,
        nb: &Neighborhood,
        room: &Arc<str>,
        event_id: &Arc<str>,
        msg: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> bool {
        let cx = ReportCx {
            nb,
            room,
            event_id,
            msg,
            reporter: self.key.hash(&msg.sender),
            now,
        };
        match &msg.content {
            Content::Undecryptable { event_id: original } => {
                tx.decisions.push(Decision::Undecryptable {
                    room: Arc::clone(room),
                    in_reply_to: Arc::from(original.as_str()),
                });
                true
            }
            Content::Text { body, replaces, .. } => {
                self.text_report(tx, cx, body, replaces.as_deref())
            }
            Content::Location { geo_uri, body } => {
                let Some((at, u)) = parse_geo_uri(geo_uri) else {
                    return false;
                };
                self.location_report(tx, cx, nb.gazetteer.resolve_shared(at, u), body);
                true
            }
            Content::Reaction { .. } | Content::Redaction { .. } => true,
        }
    }

    /// A text message: parsed as a report; an edit (`replaces`) counts only for the
    /// sender's report that is waiting for its location, and is read again.
    fn text_report(
        &mut self,
        tx: &mut Tx,
        cx: ReportCx<'_>,
        body: &str,
        replaces: Option<&str>,
    ) -> bool {
        let ReportCx {
            nb,
            room,
            event_id,
            msg,
            reporter,
            ..
        } = cx;
        let ctx = ParseContext {
            gazetteer: &nb.gazetteer,
            tz: nb.settings.timezone,
            sent_at: msg.ts,
        };
        let edited = replaces.and_then(|orig| {
            self.pending
                .iter()
                .position(|p| *p.event_id == *orig && p.reporter == reporter)
        });
        if replaces.is_some() && edited.is_none() {
            return false;
        }
        let reply_to = match edited {
            Some(i) => self.pending[i].event_id.clone(),
            None => Arc::clone(event_id),
        };
        match parse_report(body, &ctx) {
            Ok(None) => return false,
            Err(error) => tx.decisions.push(Decision::Rejected {
                room: Arc::clone(room),
                in_reply_to: reply_to,
                error,
            }),
            Ok(Some(parsed)) => {
                if let Some(i) = edited {
                    let p = self.pending.remove(i);
                    tx.batch.pending_delete.push(p.event_id);
                }
                self.take_report(tx, cx, reply_to, parsed);
            }
        }
        true
    }

    /// A location share: it locates the sender's newest report in the room still waiting
    /// for one (within [`LOCATION_ATTACH_MIN`]), or is a report of its own.
    fn location_report(
        &mut self,
        tx: &mut Tx,
        cx: ReportCx<'_>,
        place: crate::places::Resolved,
        body: &str,
    ) {
        let ReportCx {
            room,
            event_id,
            msg,
            reporter,
            ..
        } = cx;
        let waiting = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.reporter == reporter
                    && p.room == *room
                    && (msg.ts - p.received_at).num_minutes().abs() <= LOCATION_ATTACH_MIN
            })
            .max_by_key(|(_, p)| p.received_at)
            .map(|(i, _)| i);
        let (event_id, report) = match waiting {
            Some(i) => {
                let mut p = self.pending.remove(i);
                tx.batch.pending_delete.push(p.event_id.clone());
                p.report.location = LocationOutcome::Resolved(place);
                (p.event_id, p.report)
            }
            None => (
                Arc::clone(event_id),
                ParsedReport {
                    form: ReportForm::LocationShare,
                    text: body.to_owned(),
                    location: LocationOutcome::Resolved(place),
                    observed_at: msg.ts,
                    details: extract(body),
                },
            ),
        };
        self.take_report(tx, cx, event_id, report);
    }

    /// A parsed report replying to `event_id` (its own, or the earlier report it
    /// completes): ingested when located, kept waiting for a location otherwise.
    fn take_report(
        &mut self,
        tx: &mut Tx,
        cx: ReportCx<'_>,
        event_id: Arc<str>,
        report: ParsedReport,
    ) {
        let ReportCx {
            nb,
            room,
            msg,
            reporter,
            now,
            ..
        } = cx;
        match report.location {
            LocationOutcome::Resolved(place) => {
                let standing = self.standing(nb, msg, reporter, now);
                let r = LocatedReport {
                    standing,
                    event_id,
                    room: Arc::clone(room),
                    reporter,
                    place,
                    observed_at: report.observed_at,
                    text: report.text.into(),
                    details: report.details,
                    form: report.form,
                };
                self.ingest_in(tx, nb, r, now);
            }
            LocationOutcome::Unresolved {
                ref query,
                ref suggestions,
            } => {
                tx.decisions.push(Decision::Unresolved {
                    room: Arc::clone(room),
                    in_reply_to: Arc::clone(&event_id),
                    query: query.clone(),
                    suggestions: suggestions.clone(),
                });
                let p = PendingReport {
                    event_id: Arc::clone(&event_id),
                    room: Arc::clone(room),
                    reporter,
                    received_at: now,
                    report,
                };
                self.pending.retain(|q| q.event_id != event_id);
                self.pending.push(p.clone());
                tx.batch.pending_put.push(p);
                self.note_due(now + Duration::minutes(i64::from(nb.settings.dedupe_window_min)));
            }
        }
    }

    /// Merges a located report into an incident and returns the decisions (unworded).
    /// For callers that parse elsewhere and for the benchmark; [`Engine::handle`] is the
    /// usual way in.
    pub fn ingest(
        &mut self,
        report: LocatedReport,
        now: DateTime<Utc>,
    ) -> Result<Vec<Decision>, EngineError> {
        let net = Arc::clone(&self.net);
        let Some(nb) = net.neighborhood_of_room(&report.room) else {
            return Ok(Vec::new());
        };
        let mut tx = Tx::new(report.event_id.clone());
        tx.batch.seen.push(report.event_id.clone());
        self.ingest_in(&mut tx, nb, report, now);
        Ok(self.commit(tx, now, false)?.decisions)
    }

    /// The open incident a report at `at`, seen at `observed_at`, belongs to, if any:
    /// the one with the nearest centroid within the radius, whose newest report is within
    /// the window, and none of whose reports is farther than twice the radius.
    fn find_incident(&self, s: &Tunables, at: LatLon, observed_at: DateTime<Utc>) -> Option<usize> {
        let window_ms = i64::from(s.dedupe_window_min) * 60_000;
        let observed_ms = observed_at.timestamp_millis();
        let r = s.dedupe_radius_m;
        let (r2, merge2) = (r * r, 4.0 * r * r);
        let m = at.metric();
        let mut best: Option<(f64, usize, IncidentId)> = None;
        self.incidents.for_each_candidate(&m, r, |key, hot, i| {
            // Squared distances throughout: same order, no square roots. The summary
            // rules most candidates out before the incident itself is read.
            let d = m.distance2_m2(hot.at);
            let fits = d <= r2
                && hot.open
                && hot.last_seen_ms.abs_diff(observed_ms) <= window_ms.unsigned_abs()
                && !i.drill
                && i.reports.iter().all(|x| m.distance2_m2(x.at) <= merge2);
            if fits && best.is_none_or(|(bd, _, bid)| d < bd || (d == bd && i.id < bid)) {
                best = Some((d, key, i.id));
            }
        });
        best.map(|(_, key, _)| key)
    }

    /// Merges a located report into its incident, in named steps: too old → find or
    /// open → merge → confirm if due → relay and acknowledge.
    pub(super) fn ingest_in(
        &mut self,
        tx: &mut Tx,
        nb: &Neighborhood,
        r: LocatedReport,
        now: DateTime<Utc>,
    ) {
        let s = &nb.settings;
        if now - r.observed_at > Duration::minutes(i64::from(s.dedupe_window_min)) {
            tx.decisions.push(Decision::TooOld {
                room: r.room,
                in_reply_to: r.event_id,
                place: r.place.label,
                window_min: s.dedupe_window_min,
            });
            return;
        }
        let (key, created) = self.find_or_open(tx, nb, &r, now);
        let Some(merged) = self.merge(tx, nb, key, created, &r, now) else {
            return;
        };
        let last_seen = self.announce_report(tx, &merged, r, now);
        let due = (last_seen + Duration::hours(i64::from(s.expiry_hours)))
            .min(now + Duration::hours(i64::from(s.retention_hours)));
        self.note_due(due);
    }

    /// The open incident the report belongs to, or a new one (a drill always opens its
    /// own); its slot, and whether it was opened now.
    fn find_or_open(
        &mut self,
        tx: &mut Tx,
        nb: &Neighborhood,
        r: &LocatedReport,
        now: DateTime<Utc>,
    ) -> (usize, bool) {
        let s = &nb.settings;
        if !r.standing.drill
            && let Some(key) = self.find_incident(s, r.place.at, r.observed_at)
        {
            return (key, false);
        }
        let after_false_alarm = self.false_alarm_near(s, r.place.at, r.observed_at, now);
        let id = IncidentId::from_seq(self.next_seq);
        self.next_seq += 1;
        tx.batch.next_seq = Some(self.next_seq);
        let neighborhood = self
            .hood_ids
            .iter()
            .find(|h| ***h == *nb.id)
            .map_or_else(|| Arc::from(nb.id.as_str()), Arc::clone);
        let inc = Incident {
            id,
            status: Status::Unverified,
            version: 0,
            origin: Arc::clone(&self.origin),
            hops: 0,
            neighborhood,
            location: r.place.at,
            label: r.place.label.as_str().into(),
            first_seen: r.observed_at,
            last_seen: r.observed_at,
            confirmed_at: None,
            confirmed_by: None,
            closed_at: None,
            after_false_alarm,
            updated_at: now,
            reports: Vec::new(),
            reporters: Vec::new(),
            former_reporters: 0,
            details: Details::default(),
            near: None,
            relayed_to: Vec::new(),
            linked_rooms: Vec::new(),
            faded: Vec::new(),
            marked_here: Vec::new(),
            support: Vec::new(),
            drill: r.standing.drill,
        };
        (self.incidents.insert(inc), true)
    }

    /// Adds the report to the incident in slot `key` (reporter counted once, times,
    /// details, centroid, nearby sensitive place), and confirms it if that is now due.
    fn merge(
        &mut self,
        tx: &mut Tx,
        nb: &Neighborhood,
        key: usize,
        created: bool,
        r: &LocatedReport,
        now: DateTime<Utc>,
    ) -> Option<Merged> {
        let net = Arc::clone(&self.net);
        let mut inc = self.incidents.at_mut(key)?;
        tx.touch(inc.id, key, inc.reports.len());
        // Interned: a pointer comparison finds the incident's neighborhood.
        let needed = match self
            .hood_ids
            .iter()
            .position(|h| Arc::ptr_eq(h, &inc.neighborhood))
        {
            Some(i) => net.neighborhoods()[i].settings.confirmations,
            None => net.settings(&inc.neighborhood).confirmations,
        };
        let was_confirmed = inc.status == Status::Confirmed;
        let new_reporter = r.standing.counts && !inc.reporters.contains(&r.reporter);
        if new_reporter {
            inc.reporters.push(r.reporter);
        }
        inc.first_seen = inc.first_seen.min(r.observed_at);
        inc.last_seen = inc.last_seen.max(r.observed_at);
        inc.merge_details(&r.details);
        inc.reports.push(ReportRecord {
            event_id: Some(r.event_id.clone()),
            room: Some(r.room.clone()),
            reporter: Some(r.reporter),
            at: r.place.at,
            observed_at: r.observed_at,
            received_at: now,
            text: Some(Arc::clone(&r.text)),
            form: r.form,
            counts: r.standing.counts,
        });
        inc.location = LatLon::centroid(inc.reports.iter().map(|x| x.at)).unwrap_or(inc.location);
        inc.near = near_of(nb, inc.location);
        inc.version += 1;
        inc.updated_at = now;
        // Confirmed by enough distinct reporters, or by a verifier's own report.
        let by_reporters = inc.reporter_count() >= needed as usize;
        if inc.status == Status::Unverified && (by_reporters || r.standing.by_verifier) {
            let by = if by_reporters {
                ConfirmedBy::Reporters
            } else {
                ConfirmedBy::Verifier
            };
            // Confirmed is open: no report record changes.
            let _ = inc.set_status(Status::Confirmed, now, Some(by));
        }
        Some(Merged {
            key,
            created,
            new_reporter,
            was_confirmed,
            needed,
        })
    }

    /// After a merge: alerts already sent are updated, rooms newly in range alerted, the
    /// reporter acknowledged, the coordination room told of a change (not of every
    /// report). A report over its sender's limit does none of this but the one note to
    /// its sender. Returns the incident's newest
    /// sighting.
    fn announce_report(
        &mut self,
        tx: &mut Tx,
        m: &Merged,
        r: LocatedReport,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let net = Arc::clone(&self.net);
        let Some(mut inc) = self.incidents.at_mut(m.key) else {
            return now;
        };
        let id = inc.id;
        // A report over the sender's limit is echoed nowhere: recorded, not counted, and
        // only its sender hears of it (once).
        let limited = r.standing.limited;
        // Rooms already alerted: edit + one thread reply each. New rooms in range: alert.
        if m.was_confirmed && !limited {
            update_alerts(&inc, &UpdateKind::Reports, &mut tx.decisions);
        }
        let relayed = if inc.status == Status::Confirmed && !limited {
            relay_to_new_rooms(&net, &mut inc, &mut tx.decisions)
        } else {
            0
        };
        let kind = if !m.was_confirmed && inc.status == Status::Confirmed {
            AckKind::Confirmed
        } else if m.was_confirmed {
            AckKind::Update
        } else if m.created {
            AckKind::New
        } else if m.new_reporter {
            AckKind::Merged
        } else {
            AckKind::SameReporter
        };
        if !r.standing.quiet {
            tx.decisions.push(Decision::Ack {
                room: r.room,
                in_reply_to: r.event_id,
                incident: id,
                kind,
                rooms: inc.relayed_to.len(),
                needed: m.needed,
                note: r.standing.note,
            });
        }
        // The coordination room hears of changes, not of every report: an incident opened,
        // confirmed (with the rooms alerted, if any), relayed to more rooms.
        let newly_confirmed = !m.was_confirmed && inc.status == Status::Confirmed;
        if let Some(coord) = self.coordination_room.as_ref().filter(|_| !limited) {
            if m.created || (newly_confirmed && relayed == 0) {
                tx.decisions.push(Decision::Coordination {
                    room: Arc::clone(coord),
                    incident: id,
                    kind: CoordinationKind::Incident,
                    needed: m.needed,
                });
            }
            if relayed > 0 {
                tx.decisions.push(Decision::Coordination {
                    room: Arc::clone(coord),
                    incident: id,
                    kind: CoordinationKind::Relayed {
                        rooms: inc.relayed_to.len(),
                    },
                    needed: m.needed,
                });
            }
        }
        inc.last_seen
    }

    /// How a located report from `msg`'s sender counts (PRODUCT.md §3, fake reports):
    /// verifiers' and moderators' reports confirm at once; a reporter over
    /// `max_reports_per_10min` or younger in the room than `min_member_hours` is
    /// recorded but not counted.
    fn standing(
        &mut self,
        nb: &Neighborhood,
        msg: &IncomingMessage,
        reporter: ReporterHash,
        now: DateTime<Utc>,
    ) -> Standing {
        let s = &nb.settings;
        let now_ms = now.timestamp_millis();
        let by_verifier =
            lifecycle::role(&msg.sender, msg.member.power, [s.verifiers.as_slice()]).may_act();
        let recent = self.recent.entry(reporter).or_default();
        recent.retain(|t| now_ms - *t < RATE_WINDOW_MS);
        let over = recent.len() >= s.max_reports_per_10min as usize;
        recent.push(now_ms);
        if by_verifier {
            return Standing {
                by_verifier,
                ..Standing::default()
            };
        }
        if over {
            let told = self
                .limited_told
                .get(&reporter)
                .is_some_and(|t| now_ms - t < RATE_WINDOW_MS);
            if !told {
                self.limited_told.insert(reporter, now_ms);
            }
            return Standing {
                counts: false,
                by_verifier: false,
                note: (!told).then_some(AckNote::RateLimited {
                    max: s.max_reports_per_10min,
                }),
                quiet: told,
                limited: true,
                drill: false,
            };
        }
        let young = s.min_member_hours > 0
            && msg
                .member
                .since
                .is_some_and(|t| now - t < Duration::hours(i64::from(s.min_member_hours)));
        Standing {
            counts: !young,
            note: young.then_some(AckNote::NewMember {
                hours: s.min_member_hours,
            }),
            ..Standing::default()
        }
    }

    /// When a false alarm was marked at about this place and time, if one was.
    fn false_alarm_near(
        &mut self,
        s: &Tunables,
        at: LatLon,
        observed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.false_alarms
            .retain(|m| now - m.marked_at < Duration::hours(24));
        let window = Duration::minutes(i64::from(s.dedupe_window_min));
        self.false_alarms
            .iter()
            .filter(|m| {
                m.at.distance_m(at) <= s.dedupe_radius_m
                    && observed_at >= m.last_seen - window
                    && observed_at <= m.marked_at + window
            })
            .map(|m| m.marked_at)
            .max()
    }
}
