//! Catching up: the catch-up marker (when this state store was created; events from
//! before it are never handled, so a lost state store never replays old sightings), and
//! how far back to read the rooms after a start (since the last sync, so nothing sent
//! while the bot was down is missed).

use chrono::Utc;
use tracing::warn;

use super::ShellError;
use crate::store::SledStore;

const CATCH_UP_KEY: &[u8] = b"catch_up_from";
/// When the bot last completed a sync (ms since 1970, big-endian).
const LAST_SYNC_KEY: &[u8] = b"last_sync_at";
/// Read back this much before the last sync too: events the server had received but
/// not yet sent down when the bot stopped.
const SLACK_MS: i64 = 60_000;

/// When the bot last completed a sync, as recorded by [`note_synced`] (`None`: never, or
/// by a release that did not record it, or unreadable).
pub(super) fn last_synced(store: &SledStore) -> Option<i64> {
    let stored = store
        .db()
        .open_tree("shell")
        .ok()?
        .get(LAST_SYNC_KEY)
        .ok()??;
    <[u8; 8]>::try_from(stored.as_ref())
        .ok()
        .map(i64::from_be_bytes)
}

/// Records that a sync completed at `at_ms` (written with the next flush of the state
/// database: at worst the last half second is read back once more).
pub(super) fn note_synced(store: &SledStore, at_ms: i64) {
    if let Err(e) = store
        .db()
        .open_tree("shell")
        .and_then(|t| t.insert(LAST_SYNC_KEY, &at_ms.to_be_bytes()).map(|_| ()))
    {
        warn!(error = %e, "cannot record the last sync time");
    }
}

/// From when (ms) to read the rooms back after a start at `now_ms`: since the last sync
/// (`last_sync_ms`, less a minute of slack), so that every report, verifier action,
/// reaction, redaction and command sent while the bot was down is handled; never less
/// than `window_ms` (the dedupe window: reports received but not yet committed when it
/// stopped) and never more than `limit_ms` (the longest `expiry_hours`: anything older
/// concerns incidents that have expired meanwhile). Events from before the catch-up
/// marker are never handled in any case.
pub(super) fn read_back_from(
    now_ms: i64,
    last_sync_ms: Option<i64>,
    window_ms: i64,
    limit_ms: i64,
) -> i64 {
    let by_window = now_ms - window_ms;
    match last_sync_ms {
        Some(t) => (t - SLACK_MS)
            .max(now_ms - limit_ms.max(window_ms))
            .min(by_window),
        None => by_window,
    }
}

/// The catch-up marker: when this state store was created. Events from before it are
/// never handled, so a lost state store never replays old sightings. An unreadable marker
/// (at `path`, named in the warning) is replaced by now, never read as 0.
pub(super) fn catch_up_marker(
    store: &SledStore,
    path: &std::path::Path,
) -> Result<i64, ShellError> {
    let shell = store
        .db()
        .open_tree("shell")
        .map_err(crate::store::StoreError::from)?;
    let stored = shell
        .get(CATCH_UP_KEY)
        .map_err(crate::store::StoreError::from)?;
    let now = Utc::now().timestamp_millis();
    let marker = read_catch_up_marker(stored.as_deref(), now);
    match marker {
        CatchUp::From(from) => return Ok(from),
        CatchUp::FirstStart => {}
        CatchUp::Unreadable => warn!(
            path = %path.display(),
            "the catch-up marker (tree `shell`, key `catch_up_from`) is unreadable; \
             catching up from now, as on a first start: reports sent while the bot was \
             down are not read back. Nothing else in the state database is affected."
        ),
    }
    shell
        .insert(CATCH_UP_KEY, &now.to_be_bytes())
        .map_err(crate::store::StoreError::from)?;
    shell.flush().map_err(crate::store::StoreError::from)?;
    Ok(now)
}

/// What the stored catch-up marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CatchUp {
    /// Events from this time on (ms since 1970) are read.
    From(i64),
    /// No marker: a first start; events from now on are read.
    FirstStart,
    /// The marker is not a time (damaged, or written by something else): never read as
    /// 0, which would replay the rooms' whole history.
    Unreadable,
}

/// Reads a stored marker: 8 big-endian bytes of a time after 2020 and no later than a
/// day past `now_ms` (a clock set back a little is no reason to refuse).
fn read_catch_up_marker(stored: Option<&[u8]>, now_ms: i64) -> CatchUp {
    const YEAR_2020_MS: i64 = 1_577_836_800_000;
    let Some(bytes) = stored else {
        return CatchUp::FirstStart;
    };
    match <[u8; 8]>::try_from(bytes).map(i64::from_be_bytes) {
        Ok(t) if (YEAR_2020_MS..=now_ms.saturating_add(86_400_000)).contains(&t) => {
            CatchUp::From(t)
        }
        _ => CatchUp::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_772_467_500_000; // 2026-03-02

    #[test]
    fn a_catch_up_marker_that_is_not_a_time_never_reads_as_the_beginning_of_time() {
        let at = |t: i64| t.to_be_bytes().to_vec();
        assert_eq!(read_catch_up_marker(None, NOW), CatchUp::FirstStart);
        assert_eq!(
            read_catch_up_marker(Some(&at(NOW - 60_000)), NOW),
            CatchUp::From(NOW - 60_000)
        );
        for bad in [
            vec![],
            vec![1, 2, 3],
            at(0),
            at(-5),
            at(NOW + 2 * 86_400_000),
            b"not a time at all".to_vec(),
        ] {
            assert_eq!(
                read_catch_up_marker(Some(&bad), NOW),
                CatchUp::Unreadable,
                "{bad:?}"
            );
        }
    }

    fn vault() -> crate::store::Vault {
        crate::store::Vault::new("test passphrase", "NW_TEST_PASS")
    }

    #[test]
    fn after_downtime_the_rooms_are_read_back_since_the_last_sync_within_bounds() {
        let min = 60_000;
        let hour = 60 * min;
        // Down for three hours: read back from a minute before the last sync.
        assert_eq!(
            read_back_from(NOW, Some(NOW - 3 * hour), 20 * min, 24 * hour),
            NOW - 3 * hour - min
        );
        // Down briefly: at least the dedupe window.
        assert_eq!(
            read_back_from(NOW, Some(NOW - min), 20 * min, 24 * hour),
            NOW - 20 * min
        );
        // Down for a week: no further back than the longest expiry.
        assert_eq!(
            read_back_from(NOW, Some(NOW - 7 * 24 * hour), 20 * min, 24 * hour),
            NOW - 24 * hour
        );
        // Never synced (or an older release): the dedupe window.
        assert_eq!(
            read_back_from(NOW, None, 20 * min, 24 * hour),
            NOW - 20 * min
        );
        // A last sync in the future (clock set back): the dedupe window.
        assert_eq!(
            read_back_from(NOW, Some(NOW + hour), 20 * min, 24 * hour),
            NOW - 20 * min
        );
    }

    #[test]
    fn the_last_sync_time_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sled");
        {
            let store = SledStore::open(&path, &vault()).unwrap();
            assert_eq!(last_synced(&store), None);
            note_synced(&store, NOW);
            store.flush().unwrap();
        }
        let store = loop {
            match SledStore::open(&path, &vault()) {
                Ok(s) => break s,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        };
        assert_eq!(last_synced(&store), Some(NOW));
    }

    #[test]
    fn an_unreadable_marker_in_the_state_database_is_replaced_by_now() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sled");
        let store = SledStore::open(
            &path,
            &crate::store::Vault::new("test passphrase", "NW_TEST_PASS"),
        )
        .unwrap();
        let shell = store.db().open_tree("shell").unwrap();
        shell.insert(CATCH_UP_KEY, &[0u8, 1, 2][..]).unwrap();
        let before = Utc::now().timestamp_millis();
        let from = catch_up_marker(&store, &path).unwrap();
        assert!(from >= before, "from now, not from {from}");
        // Written back readable: the next start reads the same time.
        assert_eq!(catch_up_marker(&store, &path).unwrap(), from);
    }
}
