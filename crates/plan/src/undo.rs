//! `plan undo`: the inverse of an applied plan, made from what apply
//! recorded of each action (the journal: a copy's new version id, a new
//! delete marker's id, the marker a removal took away).
//!
//! Per key, in reverse order of the plan's actions that are done: a copy
//! is undone by deleting the version it made; a delete marker added, by
//! removing it; delete markers removed from the top of a key, by one new
//! delete marker that hides the key again. A deleted version cannot come
//! back: it is counted as irreversible, not planned.

use catalog::plans::NewAction;
use catalog::PlannedKey;
use model::ActionKind;

/// What undoing one key takes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyUndo<'k> {
    pub actions: Vec<NewAction<'k>>,
    /// Versions the plan deleted for good.
    pub irreversible: Vec<&'k str>,
}

/// The inverse of plan `of`'s done actions on `key` (`elsewhere`: the
/// plan acted on a destination, not on the scanned key).
pub fn undo_key<'k>(key: &'k PlannedKey, of: &str, elsewhere: bool) -> KeyUndo<'k> {
    // The newest entry once the plan is applied, borrowed from `key`
    // (a scanned entry, or one apply recorded making).
    let newest_id = match elsewhere {
        true => key.intended_elsewhere().newest_id,
        false => key.intended().newest_id,
    };
    let newest: Option<&'k str> = newest_id.as_deref().and_then(|id| {
        key.history
            .iter()
            .map(|e| e.version_id.as_str())
            .chain(
                key.actions
                    .iter()
                    .filter_map(|a| a.result_version_id.as_deref()),
            )
            .find(|v| *v == id)
    });
    let mut out = KeyUndo::default();
    let mut hidden_again = false;
    let source_size = |version: Option<&str>| {
        key.history
            .iter()
            .find(|e| Some(e.version_id.as_str()) == version)
            .and_then(|e| e.size)
    };
    for a in key.actions.iter().rev().filter(|a| a.status == "done") {
        let action = |kind, version_id: Option<&'k str>, size, why: String| NewAction {
            kind,
            key: &key.key,
            key_id: key.key_id,
            version_id,
            seq: None,
            size,
            storage_class: None,
            why,
            expected_latest: newest,
        };
        match (a.kind, a.result_version_id.as_deref()) {
            (ActionKind::CopyVersion, Some(made)) => out.actions.push(action(
                ActionKind::DeleteVersion,
                Some(made),
                source_size(a.version_id.as_deref()),
                format!("undo {of}: delete the copy apply made (action {})", a.id),
            )),
            (ActionKind::AddDeleteMarker, Some(made)) => out.actions.push(action(
                ActionKind::DeleteMarker,
                Some(made),
                None,
                format!(
                    "undo {of}: remove the delete marker apply added (action {})",
                    a.id
                ),
            )),
            // The marker was the key's newest when the plan was made.
            (ActionKind::DeleteMarker, _)
                if !hidden_again && a.version_id.is_some() && a.version_id == a.expected_latest =>
            {
                hidden_again = true;
                out.actions.push(action(
                    ActionKind::AddDeleteMarker,
                    None,
                    None,
                    format!(
                        "undo {of}: hide the key again, as the delete marker apply removed did (action {})",
                        a.id
                    ),
                ));
            }
            // A marker from under the top: the key read the same with it.
            (ActionKind::DeleteMarker, _) => {}
            (ActionKind::DeleteVersion, _) => {
                if let Some(v) = a.version_id.as_deref() {
                    out.irreversible.push(v);
                }
            }
            // Done without a recorded result: nothing known to take back.
            (ActionKind::CopyVersion | ActionKind::AddDeleteMarker, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::{KeyAction, SeenEntry};

    fn seen(id: &str, marker: bool) -> SeenEntry {
        SeenEntry {
            version_id: id.into(),
            is_marker: marker,
            size: (!marker).then_some(7),
            etag: (!marker).then(|| "e".into()),
        }
    }

    fn done(id: i64, kind: ActionKind, version: Option<&str>, result: Option<&str>) -> KeyAction {
        KeyAction {
            id,
            kind,
            version_id: version.map(Into::into),
            status: "done".into(),
            result_version_id: result.map(Into::into),
            expected_latest: None,
        }
    }

    fn key(history: Vec<SeenEntry>, actions: Vec<KeyAction>) -> PlannedKey {
        PlannedKey {
            key_id: 9,
            key: "k".into(),
            history,
            actions,
        }
    }

    #[test]
    fn each_done_action_has_its_inverse_and_deleted_data_is_irreversible() {
        // A copy made: deleted again; the newest is then the copy.
        let k = key(
            vec![seen("bad", false), seen("good", false)],
            vec![done(1, ActionKind::CopyVersion, Some("good"), Some("copy"))],
        );
        let u = undo_key(&k, "r", false);
        assert_eq!(u.actions.len(), 1);
        let a = &u.actions[0];
        assert_eq!(
            (a.kind, a.version_id, a.size),
            (ActionKind::DeleteVersion, Some("copy"), Some(7))
        );
        assert_eq!(a.expected_latest, Some("copy"));

        // Markers removed from the top: one new marker; one added: removed.
        let k = key(
            vec![seen("m2", true), seen("m1", true), seen("v", false)],
            vec![
                done(1, ActionKind::DeleteMarker, Some("m2"), None),
                done(2, ActionKind::DeleteMarker, Some("m1"), None),
            ],
        );
        let mut k = k;
        for a in &mut k.actions {
            a.expected_latest = Some("m2".into());
        }
        let u = undo_key(&k, "r", false);
        let kinds: Vec<_> = u.actions.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [ActionKind::AddDeleteMarker]);
        assert_eq!(u.actions[0].expected_latest, Some("v"));
        let k = key(
            vec![seen("v", false)],
            vec![done(1, ActionKind::AddDeleteMarker, None, Some("m"))],
        );
        assert_eq!(undo_key(&k, "r", false).actions[0].version_id, Some("m"));

        // Data deleted: irreversible; actions not done: nothing to undo.
        let mut k = key(
            vec![seen("new", false), seen("old", false)],
            vec![done(1, ActionKind::DeleteVersion, Some("new"), None)],
        );
        let u = undo_key(&k, "r", false);
        assert!(u.actions.is_empty());
        assert_eq!(u.irreversible, ["new"]);
        k.actions[0].status = "failed".into();
        assert_eq!(undo_key(&k, "r", false), KeyUndo::default());
    }
}
