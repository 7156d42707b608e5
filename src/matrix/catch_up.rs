//! The catch-up marker: when this state store was created. Events from before it are
//! never handled, so a lost state store never replays old sightings.

use chrono::Utc;
use tracing::warn;

use super::ShellError;
use crate::store::SledStore;

const CATCH_UP_KEY: &[u8] = b"catch_up_from";

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
