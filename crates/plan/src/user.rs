//! `plan sql`: a person's rows of (action, key, version_id[, why]), each
//! checked to name a real action on a real entry of the catalog.

use catalog::plans::{NewAction, UserRow};
use model::ActionKind;

use crate::PlanError;

/// The action `row` (the query's `n`-th) asks for, or why it is refused.
pub fn action(row: &UserRow, n: u64) -> Result<NewAction<'_>, PlanError> {
    let bad = |reason: String| PlanError::BadRow { row: n, reason };
    let action = row.action.as_deref().unwrap_or_default();
    let kind = ActionKind::parse(action).ok_or_else(|| {
        bad(format!(
            "unknown action {action:?} (expected delete_version, delete_marker, copy_version or add_delete_marker)"
        ))
    })?;
    let Some(key) = row.key.as_deref() else {
        return Err(bad("the key is NULL".into()));
    };
    let Some(key_id) = row.key_id else {
        return Err(bad(format!("key {key:?} is not in the catalog")));
    };
    match (
        kind.needs_version(),
        row.version_id.as_deref(),
        row.is_marker,
    ) {
        (false, None, _) => {}
        (false, Some(v), _) => {
            return Err(bad(format!(
                "add_delete_marker takes no version_id (got {v:?} for key {key:?}); return NULL"
            )))
        }
        (true, None, _) => {
            return Err(bad(format!(
                "{} needs a version_id (key {key:?})",
                kind.as_str()
            )))
        }
        (true, Some(v), None) => {
            return Err(bad(format!(
                "version {v:?} of key {key:?} is not in the catalog"
            )))
        }
        (true, Some(v), Some(true)) if kind != ActionKind::DeleteMarker => {
            return Err(bad(format!(
                "{v:?} of key {key:?} is a delete marker: only delete_marker applies to it"
            )))
        }
        (true, Some(v), Some(false)) if kind == ActionKind::DeleteMarker => {
            return Err(bad(format!(
                "{v:?} of key {key:?} is an object version, not a delete marker: use delete_version"
            )))
        }
        _ => {}
    }
    Ok(NewAction {
        kind,
        key,
        key_id,
        version_id: row.version_id.as_deref(),
        seq: row.seq,
        size: row.size,
        storage_class: row.storage_class.as_deref(),
        why: row.why.clone(),
        expected_latest: row.expected_latest.as_deref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, version: Option<&str>, is_marker: Option<bool>) -> UserRow {
        UserRow {
            action: Some(action.into()),
            key: Some("k".into()),
            key_id: Some(1),
            version_id: version.map(str::to_owned),
            seq: is_marker.map(|_| 1),
            is_marker,
            size: None,
            storage_class: None,
            why: "mine".into(),
            expected_latest: Some("v9".into()),
        }
    }

    fn refusal(r: &UserRow) -> String {
        action(r, 3).unwrap_err().to_string()
    }

    #[test]
    fn rows_that_name_real_actions_on_real_entries_pass() {
        let r = row("delete_version", Some("v1"), Some(false));
        let a = action(&r, 1).unwrap();
        assert_eq!(
            (a.kind, a.version_id, a.why.as_str()),
            (ActionKind::DeleteVersion, Some("v1"), "mine")
        );
        assert!(action(&row("delete_marker", Some("m"), Some(true)), 1).is_ok());
        assert!(action(&row("add_delete_marker", None, None), 1).is_ok());
    }

    #[test]
    fn every_other_row_is_refused_by_number_and_reason() {
        assert!(refusal(&row("explode", Some("v"), Some(false)))
            .contains("row 3 of the query: unknown action"));
        let mut no_key = row("delete_version", Some("v"), Some(false));
        no_key.key_id = None;
        assert!(refusal(&no_key).contains("not in the catalog"));
        assert!(refusal(&row("delete_version", Some("v"), None)).contains("not in the catalog"));
        assert!(refusal(&row("delete_version", None, None)).contains("needs a version_id"));
        assert!(
            refusal(&row("add_delete_marker", Some("v"), Some(false))).contains("no version_id")
        );
        assert!(refusal(&row("copy_version", Some("m"), Some(true))).contains("is a delete marker"));
        assert!(
            refusal(&row("delete_marker", Some("v"), Some(false))).contains("not a delete marker")
        );
    }
}
