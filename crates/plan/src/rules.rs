//! The rules, as SQL over `key_history`.
//!
//! Every rule is one SELECT that walks `entries` in its stored order
//! (key_id, seq) and decides, with window functions over each key's entries,
//! which entries need an action. Nothing is loaded into memory: SQLite holds
//! one key's entries at a time, so planning runs in bounded memory however
//! big the catalog is.
//!
//! Every rule's SELECT returns the columns of [`PlannedRow`], in order.

use rusqlite::types::Value;

use crate::readonly::where_sql;
use crate::timeparse::format_time;

/// A rule a plan is made from.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Rewind to a point in time (see DESIGN.md's point-in-time table).
    Restore {
        to: i64,
        /// Delete everything newer than `to` instead of copying/adding markers.
        rollback: bool,
        keep_new_keys: bool,
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
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Restore { .. } => "restore",
            Rule::Undelete { .. } => "undelete",
            Rule::Expire { .. } => "expire",
            Rule::Sql { .. } => "sql",
        }
    }

    /// The parameters, for the `plans.parameters` JSON.
    pub fn parameters(&self, where_expr: Option<&str>) -> serde_json::Value {
        use serde_json::json;
        let mut v = match self {
            Rule::Restore {
                to,
                rollback,
                keep_new_keys,
            } => json!({
                "to": format_time(*to),
                "mode": if *rollback { "rollback" } else { "copy" },
                "keep_new_keys": keep_new_keys,
            }),
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
        };
        if let Some(w) = where_expr {
            v["where"] = json!(w);
        }
        v
    }
}

/// The pseudo-action undelete uses to report keys it cannot bring back.
pub const UNRECOVERABLE: &str = "unrecoverable";

/// A compiled rule: its SELECT and the named parameters to bind.
pub struct RuleQuery {
    pub sql: String,
    pub bindings: Vec<(&'static str, Value)>,
}

/// A rule's SELECT and its named parameters. `where_expr` has been checked
/// by `readonly::check_where`.
pub fn rule_sql(rule: &Rule, where_expr: Option<&str>) -> RuleQuery {
    // Restore and undelete select whole keys by their newest entry; expire
    // selects candidate entries one by one.
    let key_selected = match where_expr {
        Some(e) => format!(
            "max(CASE WHEN h.seq = 0 AND {} THEN 1 ELSE 0 END) OVER w",
            where_sql("", e)
        ),
        None => "1".to_owned(),
    };
    match rule {
        Rule::Restore {
            to,
            rollback,
            keep_new_keys,
        } => {
            let decide = if *rollback {
                ROLLBACK_DECISION
            } else {
                RESTORE_DECISION
            };
            let sql = RESTORE
                .replace("{decision}", decide)
                .replace("{selected}", &key_selected);
            RuleQuery {
                sql,
                bindings: vec![
                    (":t", Value::Integer(*to)),
                    (":t_text", Value::Text(format_time(*to))),
                    (":keep_new", Value::Integer(i64::from(*keep_new_keys))),
                ],
            }
        }
        Rule::Undelete { since, until } => RuleQuery {
            sql: UNDELETE.replace("{selected}", &key_selected),
            bindings: vec![
                (":since", Value::Integer(since.unwrap_or(i64::MIN))),
                (":until", Value::Integer(until.unwrap_or(i64::MAX))),
            ],
        },
        Rule::Expire {
            older_than,
            keep_newest,
            expired_markers,
            as_of,
        } => {
            let candidate = match where_expr {
                Some(e) => where_sql("", e),
                None => "1".to_owned(),
            };
            RuleQuery {
                sql: EXPIRE.replace("{candidate}", &candidate),
                bindings: vec![
                    (":now", Value::Integer(*as_of)),
                    (":older_than", Value::Integer(*older_than)),
                    (":keep", Value::Integer(*keep_newest)),
                    (
                        ":expired_markers",
                        Value::Integer(i64::from(*expired_markers)),
                    ),
                ],
            }
        }
        Rule::Sql { .. } => unreachable!("plan sql is compiled by sqlrule"),
    }
}

/// Per key (window `w`): `s` = 2·seq + is_marker of the newest entry at or
/// before T (NULL: the key did not exist), `l` = the same for the newest
/// entry, `nv` = seq of the newest object version.
const RESTORE: &str = "
SELECT action, key, key_id,
       CASE WHEN action = 'add_delete_marker' THEN NULL ELSE version_id END,
       CASE WHEN action = 'add_delete_marker' THEN NULL ELSE seq END,
       CASE WHEN action = 'add_delete_marker' THEN NULL ELSE size END,
       CASE WHEN action = 'add_delete_marker' THEN NULL ELSE storage_class END,
       why, latest_version
FROM (
  SELECT *, {decision}
  FROM (
    SELECT h.key, h.key_id, h.seq, h.version_id, h.is_marker, h.size, h.storage_class, h.last_modified,
           min(CASE WHEN h.last_modified_unix <= :t THEN h.seq * 2 + h.is_marker END) OVER w AS s,
           min(h.seq * 2 + h.is_marker) OVER w AS l,
           min(CASE WHEN h.is_marker = 0 THEN h.seq END) OVER w AS nv,
           max(CASE WHEN h.seq = 0 THEN h.version_id END) OVER w AS latest_version,
           {selected} AS selected
    FROM key_history h
    WINDOW w AS (PARTITION BY h.key_id)
  )
)
WHERE action IS NOT NULL AND selected = 1";

const RESTORE_DECISION: &str = "
    CASE
      WHEN s % 2 = 0 AND s > 0 AND nv < s / 2 AND seq = s / 2 THEN 'copy_version'
      WHEN s % 2 = 0 AND s > 0 AND nv >= s / 2 AND seq < s / 2 THEN 'delete_marker'
      WHEN (s IS NULL OR s % 2 = 1) AND l % 2 = 0 AND seq = 0 AND NOT :keep_new THEN 'add_delete_marker'
    END AS action,
    CASE
      WHEN s % 2 = 0 AND s > 0 AND nv < s / 2 THEN
        'overwritten after ' || :t_text || '; copy back the version of ' || last_modified
      WHEN s % 2 = 0 AND s > 0 THEN
        'deleted after ' || :t_text || '; remove this delete marker of ' || last_modified
      WHEN s IS NULL THEN 'did not exist at ' || :t_text || '; hide it again'
      ELSE 'was deleted at ' || :t_text || '; hide it again'
    END AS why";

const ROLLBACK_DECISION: &str = "
    CASE
      WHEN seq < coalesce(s / 2, 9223372036854775807)
           AND NOT (:keep_new AND (s IS NULL OR s % 2 = 1) AND l % 2 = 0)
      THEN CASE is_marker WHEN 1 THEN 'delete_marker' ELSE 'delete_version' END
    END AS action,
    'rollback: ' || CASE is_marker WHEN 1 THEN 'delete marker' ELSE 'version' END
      || ' written ' || last_modified || ', after ' || :t_text AS why";

const UNDELETE: &str = "
SELECT action, key, key_id, version_id, seq, size, storage_class, why, latest_version
FROM (
  SELECT *,
    CASE
      WHEN l % 2 = 1 AND latest_mtime BETWEEN :since AND :until AND nv IS NOT NULL AND seq < nv
        THEN 'delete_marker'
      WHEN l % 2 = 1 AND latest_mtime BETWEEN :since AND :until AND nv IS NULL AND seq = 0
        THEN 'unrecoverable'
    END AS action,
    'undelete: delete marker of ' || last_modified || ' hides the version of ' || coalesce(nv_modified, '?') AS why
  FROM (
    SELECT h.key, h.key_id, h.seq, h.version_id, h.size, h.storage_class, h.last_modified,
           min(h.seq * 2 + h.is_marker) OVER w AS l,
           min(CASE WHEN h.is_marker = 0 THEN h.seq END) OVER w AS nv,
           max(CASE WHEN h.seq = 0 THEN h.last_modified_unix END) OVER w AS latest_mtime,
           max(CASE WHEN h.seq = 0 THEN h.version_id END) OVER w AS latest_version,
           first_value(CASE WHEN h.is_marker = 0 THEN h.last_modified END) OVER v AS nv_modified,
           {selected} AS selected
    FROM key_history h
    WINDOW w AS (PARTITION BY h.key_id),
           v AS (PARTITION BY h.key_id ORDER BY h.is_marker, h.seq
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  )
)
WHERE action IS NOT NULL AND selected = 1";

/// `since` = when the entry became noncurrent (the next newer entry's time);
/// `rank` = 1 for the newest noncurrent version, 2 for the next, …
const EXPIRE: &str = "
SELECT action, key, key_id, version_id, seq, size, storage_class, why, latest_version
FROM (
  SELECT *,
    CASE
      WHEN expire THEN 'delete_version'
      WHEN :expired_markers AND is_marker = 1 AND l % 2 = 1 AND expired_versions = versions AND candidate
        THEN 'delete_marker'
    END AS action,
    CASE is_marker
      WHEN 0 THEN 'noncurrent since ' || strftime('%Y-%m-%dT%H:%M:%SZ', since, 'unixepoch')
                  || ', version ' || rank || ' back'
      ELSE 'expired delete marker: no version left under it'
    END AS why
  FROM (
    SELECT *,
      sum(expire) OVER k AS expired_versions,
      sum(1 - is_marker) OVER k AS versions,
      min(seq * 2 + is_marker) OVER k AS l,
      max(CASE WHEN seq = 0 THEN version_id END) OVER k AS latest_version
    FROM (
      SELECT *,
        (is_marker = 0 AND seq > 0 AND :now - since > :older_than AND rank > :keep AND candidate) AS expire
      FROM (
        SELECT h.key, h.key_id, h.seq, h.version_id, h.is_marker, h.size, h.storage_class,
               lag(h.last_modified_unix) OVER o AS since,
               sum(CASE WHEN h.is_marker = 0 AND h.seq > 0 THEN 1 ELSE 0 END) OVER o AS rank,
               coalesce({candidate}, 0) AS candidate
        FROM key_history h
        WINDOW o AS (PARTITION BY h.key_id ORDER BY h.seq ROWS UNBOUNDED PRECEDING)
      )
    )
    WINDOW k AS (PARTITION BY key_id)
  )
)
WHERE action IS NOT NULL";
