//! The sender's scheduler, pure: which queued entries may be sent now, and when
//! messages other than new alerts may go.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::effect::Effect;
use crate::model::IncidentId;
use crate::store::Queued;

/// How long everything but alerts waits after the last alert in flight was accepted.
const SETTLE: Duration = Duration::from_millis(150);
/// The longest everything but alerts waits for alerts in flight.
const HOLD_MAX: Duration = Duration::from_secs(2);

/// When messages other than new alerts (locations, edits, acknowledgments, notices) may
/// be sent, or `None` for now: alerts go first at the homeserver too.
///
/// A homeserver persists new messages, federates them and answers syncs on the same
/// cores: a location sent while an alert is still being delivered delays that alert by
/// a whole send. So while alerts are being sent, and for [`SETTLE`] after the last one
/// was accepted, the rest waits; never longer than [`HOLD_MAX`] after the oldest alert
/// in flight started, so that a room whose sends hang holds nothing else up for long.
/// Acknowledgments and notices wait at most until [`answers_at`].
pub fn updates_at(
    oldest_alert_in_flight: Option<Instant>,
    last_alert_done: Option<Instant>,
) -> Option<Instant> {
    match oldest_alert_in_flight {
        Some(t) => Some(t + HOLD_MAX),
        None => last_alert_done.map(|t| t + SETTLE),
    }
}

/// When acknowledgments, answers and notices ([`priority`] 2) may be sent: as
/// [`updates_at`], but never later than [`HOLD_MAX`] after the run of alerts going out
/// began (`run_began`, see [`run_begins`]). A single relay, or a fan-out to fifty rooms,
/// is out well within that, and what it holds back is the incident's own locations and
/// updates; after downtime, with hundreds of alerts queued, the answers to hundreds of
/// reports would otherwise wait for the last alert (issue 25's catch-up): they go
/// alongside the alerts instead, while locations and edits still wait for them.
pub fn answers_at(
    run_began: Option<Instant>,
    oldest_alert_in_flight: Option<Instant>,
    last_alert_done: Option<Instant>,
) -> Option<Instant> {
    let t = updates_at(oldest_alert_in_flight, last_alert_done)?;
    Some(run_began.map_or(t, |b| t.min(b + HOLD_MAX)))
}

/// Whether an alert starting `now` begins a new run of alerts (for [`answers_at`]):
/// none is in flight, and the last was accepted at least [`SETTLE`] ago (or none was).
pub fn run_begins(in_flight: bool, last_alert_done: Option<Instant>, now: Instant) -> bool {
    !in_flight && last_alert_done.is_none_or(|t| now >= t + SETTLE)
}

/// Alerts to the incident's home wait for the others: an alert to a room of the
/// neighborhood the incident was reported in (`Effect::Relay { home: true, .. }`) is
/// taken out of `go` while an alert of the same incident to another neighborhood goes
/// now (in `go`) or is in flight (in `alerts_out`, started less than [`HOLD_MAX`]
/// ago). A homeserver persists and federates one alert sooner alone than two at once,
/// and the home's people saw the reports themselves.
pub fn home_alerts_wait(
    go: &mut Vec<u64>,
    queue: &BTreeMap<u64, Queued>,
    alerts_out: &HashMap<u64, Instant>,
    now: Instant,
) {
    let alert = |seq: &u64, home: bool| match queue.get(seq).map(|q| &q.entry.effect) {
        Some(Effect::Relay {
            message, home: h, ..
        }) if *h == home => message.incident.as_ref().map(|t| t.id),
        _ => None,
    };
    let mut away: HashSet<IncidentId> = go.iter().filter_map(|s| alert(s, false)).collect();
    away.extend(
        alerts_out
            .iter()
            .filter(|(_, started)| now.saturating_duration_since(**started) < HOLD_MAX)
            .filter_map(|(s, _)| alert(s, false)),
    );
    if away.is_empty() {
        return;
    }
    go.retain(|s| alert(s, true).is_none_or(|id| !away.contains(&id)));
}

/// One room's turn in [`schedule`]: the room, its entries in flight, and those that
/// may go now (seq, priority).
type RoomTurn<'a> = (&'a str, usize, Vec<(u64, u8)>);

/// How urgent an entry is, most urgent first: new alerts; then what changes an alert
/// people already have (edits, thread replies, locations: a status change travels as
/// an edit and a thread reply); then everything else (acknowledgments, answers,
/// coordination notices). A flood of answers never holds up an alert or an update.
pub fn priority(effect: &Effect) -> u8 {
    match effect {
        Effect::Relay { .. } => 0,
        Effect::Edit { .. } | Effect::ThreadReply { .. } | Effect::Location { .. } => 1,
        _ => 2,
    }
}

/// The scheduler, pure: which queued entries may be sent now, best first.
///
/// Rooms do not wait for each other: each sends up to `room_limit(room)` entries at once
/// (0 while it waits out a backoff). Within a room, messages about the same incident go
/// in queue order (an edit, a location or a thread reply needs its alert first, and
/// edits must land in order); messages about different incidents, or about none, do not
/// wait for each other, and go by [`priority`], then in queue order: alerts before
/// updates before the rest (alerts are what people wait for). Across rooms, all alerts
/// come first, then all updates, then the rest. `queue` is in queue order; `busy` holds the entries
/// being sent now.
pub fn schedule<'a>(
    queue: impl IntoIterator<Item = &'a Queued>,
    busy: &HashSet<u64>,
    room_limit: impl Fn(&str) -> usize,
) -> Vec<u64> {
    // Chains already holding an earlier entry: (room, incident).
    let mut held: HashSet<(&str, &str)> = HashSet::new();
    // Per room, in order of first appearance: entries in flight, and those that may go
    // now (seq, is an alert).
    let mut rooms: Vec<RoomTurn> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for q in queue {
        let effect = &q.entry.effect;
        let room = effect.room();
        let i = *at.entry(room).or_insert_with(|| {
            rooms.push((room, 0, Vec::new()));
            rooms.len() - 1
        });
        let chain_free = effect
            .incident()
            .is_none_or(|id| held.insert((room, id.as_str())));
        if busy.contains(&q.seq) {
            rooms[i].1 += 1;
        } else if chain_free {
            rooms[i].2.push((q.seq, priority(effect)));
        }
    }
    let mut go: Vec<(u8, u64)> = Vec::new();
    for (room, in_flight, mut ready) in rooms {
        let free = room_limit(room).saturating_sub(in_flight);
        // Stable: queue order within a priority.
        ready.sort_by_key(|r| r.1);
        go.extend(ready.into_iter().take(free).map(|(seq, p)| (p, seq)));
    }
    // Stable: room order (of first appearance) within a priority.
    go.sort_by_key(|g| g.0);
    go.into_iter().map(|(_, seq)| seq).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::effect::{MsgType, OutgoingMessage};
    use crate::model::{IncidentId, IncidentTag, Status};
    use crate::store::OutboxEntry;

    fn msg(incident: Option<u64>) -> OutgoingMessage {
        OutgoingMessage {
            msgtype: MsgType::Text,
            body: "b".into(),
            html: "b".into(),
            mentions_room: false,
            incident: incident.map(|n| IncidentTag {
                id: IncidentId::from_seq(n),
                status: Status::Confirmed,
                version: 1,
                origin: Arc::from("o"),
                hops: 0,
            }),
        }
    }

    fn q(seq: u64, effect: Effect) -> Queued {
        Queued {
            seq,
            entry: OutboxEntry {
                txn_id: format!("t{seq}"),
                at_ms: 0,
                effect,
            },
        }
    }

    fn relay(seq: u64, room: &str, incident: u64) -> Queued {
        relay_to(seq, room, incident, false)
    }

    fn home_relay(seq: u64, room: &str, incident: u64) -> Queued {
        relay_to(seq, room, incident, true)
    }

    fn relay_to(seq: u64, room: &str, incident: u64, home: bool) -> Queued {
        q(
            seq,
            Effect::Relay {
                room: room.into(),
                message: msg(Some(incident)),
                home,
            },
        )
    }

    #[test]
    fn the_home_rooms_alert_waits_while_the_other_neighborhoods_alerts_go() {
        let queue: BTreeMap<u64, Queued> = [
            home_relay(1, "!home", 7),
            relay(2, "!away", 7),
            relay(3, "!other", 8),
            home_relay(4, "!home2", 8),
            home_relay(5, "!home3", 9),
        ]
        .into_iter()
        .map(|q| (q.seq, q))
        .collect();
        let now = Instant::now();
        let none = HashMap::new();
        // Picked together: incident 7's and 8's home alerts wait for their other
        // alerts; incident 9 has no other alert, so its home alert goes.
        let mut go = vec![1, 2, 3, 4, 5];
        home_alerts_wait(&mut go, &queue, &none, now);
        assert_eq!(go, vec![2, 3, 5]);
        // While incident 7's other alert is in flight, its home alert still waits;
        // incident 8's goes once its other alert is no longer in flight.
        let out = HashMap::from([(2, now)]);
        let mut go = vec![1, 4];
        home_alerts_wait(&mut go, &queue, &out, now);
        assert_eq!(go, vec![4]);
        // An alert in flight for longer than HOLD_MAX holds nothing any more.
        let mut go = vec![1, 4];
        home_alerts_wait(&mut go, &queue, &out, now + HOLD_MAX);
        assert_eq!(go, vec![1, 4]);
    }

    fn edit(seq: u64, room: &str, incident: u64) -> Queued {
        q(
            seq,
            Effect::Edit {
                room: room.into(),
                message: msg(Some(incident)),
            },
        )
    }

    fn ack(seq: u64, room: &str, incident: Option<u64>) -> Queued {
        q(
            seq,
            Effect::Reply {
                room: room.into(),
                in_reply_to: format!("$r{seq}"),
                message: msg(incident),
            },
        )
    }

    #[test]
    fn alerts_go_first_and_an_update_waits_for_its_alert_in_that_room() {
        let queue = [
            ack(1, "!a", Some(7)),
            relay(2, "!a", 7),
            edit(3, "!a", 7),
            relay(4, "!b", 7),
            edit(5, "!b", 7),
            ack(6, "!a", None),
        ];
        let one = |_: &str| 1;
        let go = schedule(&queue, &HashSet::new(), one);
        // B's alert first; in A the acknowledgment came first in its chain, so A's alert
        // and both edits wait; one message per room.
        assert_eq!(go, vec![4, 1]);
        // While a room sends its one message, it sends nothing else.
        let busy = HashSet::from([1, 4]);
        assert_eq!(schedule(&queue, &busy, one), Vec::<u64>::new());
        // With the acknowledgment and B's alert sent, A's alert and B's edit go.
        let queue = [
            ack(6, "!a", None),
            relay(2, "!a", 7),
            edit(3, "!a", 7),
            edit(5, "!b", 7),
        ];
        assert_eq!(schedule(&queue, &HashSet::new(), one), vec![2, 5]);
    }

    #[test]
    fn an_alert_queued_behind_a_thousand_replies_goes_first_then_updates_then_replies() {
        let mut queue: Vec<Queued> = (1..=1000)
            .map(|n| ack(n, if n % 2 == 0 { "!a" } else { "!b" }, None))
            .collect();
        queue.push(edit(1001, "!b", 3));
        queue.push(relay(1002, "!a", 7));
        let go = schedule(&queue, &HashSet::new(), |_| 3);
        // Three per room: the alert, then the update, then the oldest replies.
        assert_eq!(go, vec![1002, 1001, 1, 3, 2, 4]);
        assert_eq!(priority(&queue[1001].entry.effect), 0);
        // With the alert in flight, the room's other two places go to replies.
        let busy = HashSet::from([1002]);
        assert_eq!(schedule(&queue, &busy, |_| 3), vec![1001, 1, 3, 2, 4]);
    }

    #[test]
    fn everything_but_alerts_waits_while_alerts_go_out_and_briefly_after() {
        let t = Instant::now();
        // Nothing sent yet: nothing waits.
        assert_eq!(updates_at(None, None), None);
        assert_eq!(answers_at(None, None, None), None);
        // An alert in flight holds the rest, at most HOLD_MAX from its start.
        assert_eq!(updates_at(Some(t), None), Some(t + HOLD_MAX));
        let later = t + Duration::from_millis(500);
        assert_eq!(updates_at(Some(t), Some(later)), Some(t + HOLD_MAX));
        assert_eq!(answers_at(Some(t), Some(t), None), Some(t + HOLD_MAX));
        // The last alert accepted: the rest goes SETTLE later.
        assert_eq!(updates_at(None, Some(later)), Some(later + SETTLE));
        assert_eq!(answers_at(Some(t), None, Some(later)), Some(later + SETTLE));
        assert!(SETTLE < HOLD_MAX);
    }

    #[test]
    fn in_a_long_run_of_alerts_answers_go_after_hold_max_and_updates_wait_for_the_alerts() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        // The first alert begins a run; the next ones, in flight or just accepted,
        // continue it.
        assert!(run_begins(false, None, t));
        assert!(!run_begins(true, Some(ms(100)), ms(120)));
        assert!(!run_begins(false, Some(ms(100)), ms(100) + SETTLE / 2));
        // Hundreds of alerts one after another (a catch-up after downtime), the
        // oldest in flight started at 9 s: locations and edits still wait for them,
        // answers to reports go once HOLD_MAX has passed since the run began.
        assert_eq!(
            updates_at(Some(ms(9_000)), None),
            Some(ms(9_000) + HOLD_MAX)
        );
        assert_eq!(
            answers_at(Some(t), Some(ms(9_000)), None),
            Some(t + HOLD_MAX)
        );
        assert_eq!(
            answers_at(Some(t), None, Some(ms(9_000))),
            Some(t + HOLD_MAX)
        );
        // A quiet spell ends the run: the next alert holds the answers again.
        assert!(run_begins(false, Some(ms(9_000)), ms(9_000) + SETTLE));
    }

    #[test]
    fn a_room_sends_several_independent_messages_at_once_but_never_two_of_one_chain() {
        let queue = [
            relay(1, "!a", 7),
            edit(2, "!a", 7),
            ack(3, "!a", Some(8)),
            ack(4, "!a", Some(9)),
            ack(5, "!a", None),
            ack(6, "!a", None),
            ack(7, "!a", None),
        ];
        let three = |_: &str| 3;
        // Alert first; its edit waits for it; then the oldest independent messages.
        assert_eq!(schedule(&queue, &HashSet::new(), three), vec![1, 3, 4]);
        // Two in flight: one more may go, and the alert's edit still waits.
        let busy = HashSet::from([1, 3]);
        assert_eq!(schedule(&queue, &busy, three), vec![4]);
        let busy = HashSet::from([1, 3, 4]);
        assert_eq!(schedule(&queue, &busy, three), Vec::<u64>::new());
        // The alert sent: its edit goes with the rest.
        assert_eq!(schedule(&queue[1..], &HashSet::new(), three), vec![2, 3, 4]);
        // No limit to speak of: everything but the edit goes.
        assert_eq!(
            schedule(&queue, &HashSet::new(), |_| 100),
            vec![1, 3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn a_room_in_backoff_holds_up_no_other_room_and_incidents_do_not_wait_for_each_other() {
        let queue = [
            relay(1, "!slow", 1),
            relay(2, "!slow", 2),
            ack(3, "!fast", Some(1)),
            edit(4, "!fast", 1),
            relay(5, "!fast", 2),
            ack(6, "!fast", Some(3)),
        ];
        let go = schedule(&queue, &HashSet::new(), |r| usize::from(r != "!slow"));
        // The failing room waits alone; in the other, incident 2's alert overtakes
        // incident 1's acknowledgment (different incidents).
        assert_eq!(go, vec![5], "the failing room waits alone");
        let go = schedule(&queue, &HashSet::new(), |_| 1);
        assert_eq!(go, vec![1, 5]);
        // Incident 2's alert sent: incident 1's acknowledgment goes before its edit.
        let queue = [
            ack(3, "!fast", Some(1)),
            edit(4, "!fast", 1),
            ack(6, "!fast", Some(3)),
        ];
        assert_eq!(schedule(&queue, &HashSet::new(), |_| 1), vec![3]);
        assert_eq!(schedule(&queue, &HashSet::new(), |_| 2), vec![3, 6]);
        let queue = [edit(4, "!fast", 1), ack(6, "!fast", Some(3))];
        assert_eq!(schedule(&queue, &HashSet::new(), |_| 1), vec![4]);
    }
}
