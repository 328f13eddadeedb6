//! `plan expire`: what a NoncurrentVersionExpiration lifecycle rule would
//! delete, as a reviewable plan.

use catalog::KeyHistory;
use model::time::format_time;
use model::ActionKind;

use super::{on_entry, KeyPlan};

/// A version is noncurrent from the moment the next newer entry (version
/// or delete marker) was written. Deletes the noncurrent versions older
/// than `older_than` seconds at `as_of`, beyond the `keep_newest` newest
/// noncurrent ones, among the selected entries (expire judges each entry,
/// not the key). With `expired_markers`, a key left with no version has
/// its delete markers removed as well.
pub fn decide<'h>(
    key: KeyHistory<'h>,
    older_than: i64,
    keep_newest: i64,
    expired_markers: bool,
    as_of: i64,
) -> KeyPlan<'h> {
    let mut plan = KeyPlan::default();
    let entries = key.entries;
    let mut noncurrent = 0;
    let mut expired = 0;
    for at in 1..entries.len() {
        let e = &entries[at];
        if e.is_marker {
            continue;
        }
        noncurrent += 1;
        let since = entries[at - 1].mtime;
        if e.selected && as_of - since > older_than && noncurrent > keep_newest {
            let why = format!(
                "noncurrent since {}, version {noncurrent} back",
                format_time(since)
            );
            plan.actions
                .push(on_entry(key, ActionKind::DeleteVersion, at, why));
            expired += 1;
        }
    }
    let versions = entries.iter().filter(|e| !e.is_marker).count();
    if expired_markers && entries[0].is_marker && expired == versions {
        for (at, e) in entries.iter().enumerate() {
            if e.is_marker && e.selected {
                let why = "expired delete marker: no version left under it".to_owned();
                plan.actions
                    .push(on_entry(key, ActionKind::DeleteMarker, at, why));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{history, kinds};

    const DAY: i64 = 86_400;

    #[test]
    fn noncurrent_time_counts_from_the_next_newer_entry() {
        // v1 became noncurrent when v2 was written (day 5), v2 when the
        // marker was (day 9).
        let key = history(
            "k",
            &[
                ("m", true, 9 * DAY),
                ("v2", false, 5 * DAY),
                ("v1", false, DAY),
            ],
        );
        let plan = decide(key.view(), 3 * DAY, 0, false, 10 * DAY);
        assert_eq!(kinds(&plan), [("delete_version", "v1".into())]);
        assert_eq!(
            plan.actions[0].why,
            "noncurrent since 1970-01-06T00:00:00Z, version 2 back"
        );
        let plan = decide(key.view(), 0, 0, false, 10 * DAY);
        assert_eq!(kinds(&plan).len(), 2);
    }

    #[test]
    fn the_newest_noncurrent_versions_can_be_kept() {
        let key = history(
            "k",
            &[
                ("v4", false, 40),
                ("v3", false, 30),
                ("v2", false, 20),
                ("v1", false, 10),
            ],
        );
        assert_eq!(
            kinds(&decide(key.view(), 0, 2, false, 100)),
            [("delete_version", "v1".into())]
        );
        // The current version is never expired.
        assert_eq!(kinds(&decide(key.view(), 0, 0, false, 100)).len(), 3);
    }

    #[test]
    fn markers_go_only_when_no_version_is_left_and_only_if_asked() {
        let key = history("k", &[("m", true, 50), ("v1", false, 10)]);
        assert_eq!(
            kinds(&decide(key.view(), 0, 0, true, 100)),
            [
                ("delete_version", "v1".into()),
                ("delete_marker", "m".into())
            ]
        );
        assert_eq!(kinds(&decide(key.view(), 0, 0, false, 100)).len(), 1);
        assert_eq!(kinds(&decide(key.view(), 0, 1, true, 100)), []);
        let only_markers = history("k", &[("m2", true, 50), ("m1", true, 10)]);
        assert_eq!(
            kinds(&decide(only_markers.view(), 0, 0, true, 100)).len(),
            2
        );
    }

    #[test]
    fn the_where_judges_each_entry() {
        let mut key = history(
            "k",
            &[("v3", false, 30), ("v2", false, 20), ("v1", false, 10)],
        );
        key.entries[2].selected = false;
        assert_eq!(
            kinds(&decide(key.view(), 0, 0, false, 100)),
            [("delete_version", "v2".into())]
        );
    }
}
