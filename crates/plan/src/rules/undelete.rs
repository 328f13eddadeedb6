//! `plan undelete`: bring back keys whose newest entry is a delete marker.

use catalog::KeyHistory;
use model::time::format_time;
use model::ActionKind;

use super::{newest_version, on_entry, KeyPlan};

/// A key whose newest entry is a delete marker written in `since..=until`
/// gets every marker above its newest version removed; a key with no
/// version left is reported unrecoverable.
pub fn decide<'h>(key: KeyHistory<'h>, since: i64, until: i64) -> KeyPlan<'h> {
    let mut plan = KeyPlan::default();
    let newest = &key.entries[0];
    if !newest.selected || !newest.is_marker || !(since..=until).contains(&newest.mtime) {
        return plan;
    }
    let Some(version) = newest_version(key) else {
        plan.unrecoverable = true;
        return plan;
    };
    let hidden = format_time(key.entries[version].mtime);
    for marker in 0..version {
        let why = format!(
            "undelete: delete marker of {} hides the version of {hidden}",
            format_time(key.entries[marker].mtime)
        );
        plan.actions
            .push(on_entry(key, ActionKind::DeleteMarker, marker, why));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{history, kinds};

    #[test]
    fn removes_the_markers_above_the_newest_version() {
        let key = history(
            "k",
            &[
                ("m2", true, 30),
                ("m1", true, 20),
                ("v2", false, 10),
                ("m0", true, 5),
            ],
        );
        let plan = decide(key.view(), i64::MIN, i64::MAX);
        assert_eq!(
            kinds(&plan),
            [
                ("delete_marker", "m2".into()),
                ("delete_marker", "m1".into())
            ]
        );
        assert_eq!(
            plan.actions[0].why,
            "undelete: delete marker of 1970-01-01T00:00:30Z hides the version of 1970-01-01T00:00:10Z"
        );
    }

    #[test]
    fn only_keys_deleted_in_the_window_and_live_keys_are_left_alone() {
        let key = history("k", &[("m", true, 30), ("v", false, 10)]);
        assert!(decide(key.view(), 31, i64::MAX).actions.is_empty());
        assert!(decide(key.view(), i64::MIN, 29).actions.is_empty());
        assert_eq!(decide(key.view(), 30, 30).actions.len(), 1);
        let live = history("k", &[("v2", false, 30), ("m", true, 20), ("v", false, 10)]);
        assert_eq!(decide(live.view(), i64::MIN, i64::MAX), KeyPlan::default());
    }

    #[test]
    fn keys_with_nothing_to_bring_back_are_unrecoverable() {
        let key = history("k", &[("m2", true, 30), ("m1", true, 20)]);
        let plan = decide(key.view(), i64::MIN, i64::MAX);
        assert!(plan.unrecoverable && plan.actions.is_empty());
    }
}
