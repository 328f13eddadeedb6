//! The built-in rules. Each decides one key at a time, from that key's
//! entries alone, newest first (a [`KeyHistory`]), and says which actions
//! the key needs; none looks at another key.
//!
//! The point-in-time semantics they implement are in docs/design.md.

mod expire;
mod restore;
mod undelete;

use catalog::plans::NewAction;
use catalog::KeyHistory;

/// A rule a plan is made from.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Rewind to a point in time (docs/design.md, "Point-in-time semantics").
    Restore {
        to: i64,
        /// Delete everything newer than `to` instead of copying/adding markers.
        rollback: bool,
        keep_new_keys: bool,
        /// Copy each key's version of `to` there instead, leaving the keys
        /// themselves alone.
        into: Option<model::Destination>,
    },
    /// Remove the delete markers stacked above the newest version of keys
    /// whose latest entry is a delete marker written in the window.
    Undelete {
        since: Option<i64>,
        until: Option<i64>,
    },
    /// Delete noncurrent versions noncurrent for longer than `older_than`
    /// seconds at `as_of`, keeping the `keep_newest` newest noncurrent ones.
    Expire {
        older_than: i64,
        keep_newest: i64,
        expired_markers: bool,
        as_of: i64,
    },
    /// A person's SELECT returning (action, key, version_id[, why]).
    Sql { query: String },
    /// The inverse of an applied plan, from what apply recorded (see `undo`).
    Undo { of: String },
}

/// What a rule decided for one key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyPlan<'h> {
    pub actions: Vec<NewAction<'h>>,
    /// Undelete: the key is deleted in the window, but no version is left
    /// to bring back.
    pub unrecoverable: bool,
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Restore { .. } => "restore",
            Rule::Undelete { .. } => "undelete",
            Rule::Expire { .. } => "expire",
            Rule::Sql { .. } => "sql",
            Rule::Undo { .. } => "undo",
        }
    }

    /// The parameters, for the `plans.parameters` JSON.
    pub fn parameters(&self, where_expr: Option<&str>) -> serde_json::Value {
        use model::time::format_time;
        use serde_json::json;
        let mut v = match self {
            Rule::Restore {
                to,
                rollback,
                keep_new_keys,
                into,
            } => {
                let mut v = json!({
                    "to": format_time(*to),
                    "mode": if *rollback { "rollback" } else { "copy" },
                    "keep_new_keys": keep_new_keys,
                });
                if let Some(d) = into {
                    v["into"] = json!(d.to_string());
                }
                v
            }
            Rule::Undelete { since, until } => json!({
                "since": since.map(format_time),
                "until": until.map(format_time),
            }),
            Rule::Expire {
                older_than,
                keep_newest,
                expired_markers,
                as_of,
            } => json!({
                "noncurrent_older_than_seconds": older_than,
                "keep_newest": keep_newest,
                "expired_markers": expired_markers,
                "as_of": format_time(*as_of),
            }),
            Rule::Sql { query } => json!({ "query": query }),
            Rule::Undo { of } => json!({ "of": of }),
        };
        if let Some(w) = where_expr {
            v["where"] = json!(w);
        }
        v
    }

    /// The actions one key needs. `Sql` and `Undo` plans are not made from
    /// key histories (see `user` and `undo`).
    pub fn decide<'h>(&self, key: KeyHistory<'h>) -> KeyPlan<'h> {
        if key.entries.is_empty() {
            return KeyPlan::default();
        }
        match self {
            Rule::Restore {
                to, into: Some(_), ..
            } => restore::copy_elsewhere(key, *to),
            Rule::Restore {
                to,
                rollback: false,
                keep_new_keys,
                into: None,
            } => restore::copy_back(key, *to, *keep_new_keys),
            Rule::Restore {
                to,
                rollback: true,
                keep_new_keys,
                into: None,
            } => restore::roll_back(key, *to, *keep_new_keys),
            Rule::Undelete { since, until } => {
                undelete::decide(key, since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX))
            }
            Rule::Expire {
                older_than,
                keep_newest,
                expired_markers,
                as_of,
            } => expire::decide(key, *older_than, *keep_newest, *expired_markers, *as_of),
            Rule::Sql { .. } | Rule::Undo { .. } => KeyPlan::default(),
        }
    }
}

/// An action on one of the key's entries.
fn on_entry<'h>(
    key: KeyHistory<'h>,
    kind: model::ActionKind,
    at: usize,
    why: String,
) -> NewAction<'h> {
    let e = &key.entries[at];
    NewAction {
        kind,
        key: key.key,
        key_id: key.key_id,
        version_id: Some(&e.version_id),
        seq: Some(e.seq),
        size: e.size,
        storage_class: e.storage_class.as_deref(),
        why,
        expected_latest: Some(&key.entries[0].version_id),
    }
}

/// A new delete marker on top of the key.
fn add_marker(key: KeyHistory<'_>, why: String) -> NewAction<'_> {
    NewAction {
        kind: model::ActionKind::AddDeleteMarker,
        key: key.key,
        key_id: key.key_id,
        version_id: None,
        seq: None,
        size: None,
        storage_class: None,
        why,
        expected_latest: Some(&key.entries[0].version_id),
    }
}

/// Position of the key's newest object version.
fn newest_version(key: KeyHistory<'_>) -> Option<usize> {
    key.entries.iter().position(|e| !e.is_marker)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Key histories written out by hand.

    use catalog::{HistoryRow, KeyHistory};

    /// A key's history written out by hand; `view()` is what a rule sees.
    pub struct Owned {
        pub key: String,
        pub entries: Vec<HistoryRow>,
    }

    impl Owned {
        pub fn view(&self) -> KeyHistory<'_> {
            KeyHistory {
                key_id: 7,
                key: &self.key,
                entries: &self.entries,
            }
        }
    }

    /// `entries` newest first: (version id, is marker, mtime).
    pub fn history(key: &str, entries: &[(&str, bool, i64)]) -> Owned {
        Owned {
            key: key.into(),
            entries: entries
                .iter()
                .enumerate()
                .map(|(seq, &(v, marker, mtime))| HistoryRow {
                    seq: seq as i64,
                    version_id: v.into(),
                    is_marker: marker,
                    mtime,
                    size: (!marker).then_some(100),
                    storage_class: (!marker).then(|| "STANDARD".into()),
                    etag_md5: None,
                    selected: true,
                })
                .collect(),
        }
    }

    /// (kind, version id or "") of a key's plan.
    pub fn kinds(plan: &super::KeyPlan<'_>) -> Vec<(&'static str, String)> {
        plan.actions
            .iter()
            .map(|a| (a.kind.as_str(), a.version_id.unwrap_or_default().to_owned()))
            .collect()
    }
}
