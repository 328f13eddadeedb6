//! `plan restore`: each key as it was at T.
//!
//! The state of a key at T is its newest entry written at or before T (in
//! listing order: two entries of one second are ordered by S3's listing,
//! not by their timestamps); no such entry means the key did not exist.

use catalog::KeyHistory;
use model::time::format_time;
use model::ActionKind;

use super::{add_marker, newest_version, on_entry, KeyPlan};

/// The entry current at `to`, by position.
fn at_time(key: KeyHistory<'_>, to: i64) -> Option<usize> {
    key.entries.iter().position(|e| e.mtime <= to)
}

/// Non-destructive: copy the version of T back on top where data was
/// written after T, remove the delete markers written after T where only
/// those were, and hide keys that were absent or deleted at T behind a new
/// delete marker (unless `keep_new_keys`). Restore and undelete judge a key
/// by whether its newest entry is selected.
pub fn copy_back<'h>(key: KeyHistory<'h>, to: i64, keep_new_keys: bool) -> KeyPlan<'h> {
    let mut plan = KeyPlan::default();
    if !key.entries[0].selected {
        return plan;
    }
    let t = || format_time(to);
    match at_time(key, to) {
        // Unchanged since T.
        Some(0) if !key.entries[0].is_marker => {}
        Some(at) if !key.entries[at].is_marker => {
            let then = &key.entries[at];
            if newest_version(key).is_some_and(|v| v < at) {
                let why = format!(
                    "overwritten after {}; copy back the version of {}",
                    t(),
                    format_time(then.mtime)
                );
                plan.actions
                    .push(on_entry(key, ActionKind::CopyVersion, at, why));
            } else {
                // Only delete markers above it: remove them all.
                for marker in 0..at {
                    let why = format!(
                        "deleted after {}; remove this delete marker of {}",
                        t(),
                        format_time(key.entries[marker].mtime)
                    );
                    plan.actions
                        .push(on_entry(key, ActionKind::DeleteMarker, marker, why));
                }
            }
        }
        then if !key.entries[0].is_marker && !keep_new_keys => {
            let why = match then {
                None => format!("did not exist at {}; hide it again", t()),
                Some(_) => format!("was deleted at {}; hide it again", t()),
            };
            plan.actions.push(add_marker(key, why));
        }
        _ => {}
    }
    plan
}

/// Elsewhere (`--into`): copy the version of T of each key that had one
/// to the destination; keys absent or deleted at T are not written.
pub fn copy_elsewhere(key: KeyHistory<'_>, to: i64) -> KeyPlan<'_> {
    let mut plan = KeyPlan::default();
    if !key.entries[0].selected {
        return plan;
    }
    if let Some(at) = at_time(key, to).filter(|&at| !key.entries[at].is_marker) {
        let why = format!(
            "the version of {} as it was at {}",
            format_time(key.entries[at].mtime),
            format_time(to)
        );
        plan.actions
            .push(on_entry(key, ActionKind::CopyVersion, at, why));
    }
    plan
}

/// Destructive: permanently delete every version and delete marker written
/// after T. With `keep_new_keys`, keys absent or deleted at T but live now
/// are left alone.
pub fn roll_back<'h>(key: KeyHistory<'h>, to: i64, keep_new_keys: bool) -> KeyPlan<'h> {
    let mut plan = KeyPlan::default();
    if !key.entries[0].selected {
        return plan;
    }
    let then = at_time(key, to);
    let absent_then = then.is_none_or(|at| key.entries[at].is_marker);
    if keep_new_keys && absent_then && !key.entries[0].is_marker {
        return plan;
    }
    let t = format_time(to);
    for (at, e) in key.entries[..then.unwrap_or(key.entries.len())]
        .iter()
        .enumerate()
    {
        let (kind, what) = match e.is_marker {
            true => (ActionKind::DeleteMarker, "delete marker"),
            false => (ActionKind::DeleteVersion, "version"),
        };
        let why = format!(
            "rollback: {what} written {}, after {t}",
            format_time(e.mtime)
        );
        plan.actions.push(on_entry(key, kind, at, why));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{history, kinds};

    const T: i64 = 1000;

    fn restore(entries: &[(&str, bool, i64)]) -> Vec<(&'static str, String)> {
        let key = history("k", entries);
        kinds(&copy_back(key.view(), T, false))
    }

    #[test]
    fn each_row_of_the_point_in_time_table() {
        // version V at T, latest is V: nothing.
        assert_eq!(restore(&[("v1", false, 900)]), []);
        // version V at T, only delete markers newer: remove them all.
        assert_eq!(
            restore(&[("m2", true, 1200), ("m1", true, 1100), ("v1", false, 900)]),
            [
                ("delete_marker", "m2".into()),
                ("delete_marker", "m1".into())
            ]
        );
        // version V at T, data versions newer (a marker on top or not): copy V.
        assert_eq!(
            restore(&[("v2", false, 1100), ("v1", false, 900)]),
            [("copy_version", "v1".into())]
        );
        assert_eq!(
            restore(&[("m", true, 1200), ("v2", false, 1100), ("v1", false, 900)]),
            [("copy_version", "v1".into())]
        );
        // absent at T, or a delete marker at T, and live now: a new marker.
        assert_eq!(
            restore(&[("v1", false, 1100)]),
            [("add_delete_marker", String::new())]
        );
        assert_eq!(
            restore(&[("v2", false, 1100), ("m", true, 950), ("v1", false, 900)]),
            [("add_delete_marker", String::new())]
        );
        // absent or deleted at T, deleted now: nothing.
        assert_eq!(restore(&[("m", true, 1200), ("v1", false, 1100)]), []);
        assert_eq!(restore(&[("m", true, 950), ("v1", false, 900)]), []);
        assert_eq!(restore(&[("m2", true, 1100), ("m1", true, 800)]), []);
    }

    #[test]
    fn within_one_second_the_listing_order_decides() {
        assert_eq!(
            restore(&[
                ("after", false, 1100),
                ("c", false, T),
                ("b", false, T),
                ("a", false, T)
            ]),
            [("copy_version", "c".into())]
        );
    }

    #[test]
    fn new_keys_can_be_kept_and_unselected_keys_are_left_alone() {
        let key = history("k", &[("v1", false, 1100)]);
        assert!(copy_back(key.view(), T, true).actions.is_empty());
        let mut key = history("k", &[("v2", false, 1100), ("v1", false, 900)]);
        key.entries[0].selected = false;
        assert!(copy_back(key.view(), T, false).actions.is_empty());
        assert!(roll_back(key.view(), T, false).actions.is_empty());
    }

    #[test]
    fn copies_carry_what_apply_needs() {
        let key = history("k", &[("v2", false, 1100), ("v1", false, 900)]);
        let plan = copy_back(key.view(), T, false);
        let a = &plan.actions[0];
        assert_eq!(
            (a.seq, a.size, a.storage_class, a.expected_latest, a.key_id),
            (Some(1), Some(100), Some("STANDARD"), Some("v2"), 7)
        );
        assert_eq!(
            a.why,
            "overwritten after 1970-01-01T00:16:40Z; copy back the version of 1970-01-01T00:15:00Z"
        );
    }

    #[test]
    fn rollback_deletes_everything_after_t() {
        let key = history(
            "k",
            &[("m", true, 1200), ("v2", false, 1100), ("v1", false, 900)],
        );
        assert_eq!(
            kinds(&roll_back(key.view(), T, false)),
            [
                ("delete_marker", "m".into()),
                ("delete_version", "v2".into())
            ]
        );
        // A key created after T goes entirely, unless new keys are kept.
        let key = history("k", &[("v2", false, 1100), ("v1", false, 1050)]);
        assert_eq!(kinds(&roll_back(key.view(), T, false)).len(), 2);
        assert!(roll_back(key.view(), T, true).actions.is_empty());
        // Deleted at T: what came after goes, the marker of T stays.
        let key = history(
            "k",
            &[("v2", false, 1100), ("m", true, 950), ("v1", false, 900)],
        );
        assert_eq!(
            kinds(&roll_back(key.view(), T, false)),
            [("delete_version", "v2".into())]
        );
    }
}
