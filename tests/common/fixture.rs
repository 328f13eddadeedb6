//! Catalogs built without a network: the rows a scan would write, handed to
//! the catalog's own writer, so plans can be tested against exact histories.

use std::path::Path;

use model::{Entry, Location};

/// One entry of a key's history.
#[derive(Debug, Clone)]
pub struct E {
    pub version_id: String,
    pub is_marker: bool,
    /// `YYYY-MM-DDTHH:MM:SSZ`
    pub time: String,
    pub size: i64,
    pub storage_class: Option<String>,
}

/// An object version written at `time`.
pub fn v(version_id: &str, time: &str) -> E {
    E {
        version_id: version_id.into(),
        is_marker: false,
        time: time.into(),
        size: 100,
        storage_class: None,
    }
}

/// A delete marker written at `time`.
pub fn m(version_id: &str, time: &str) -> E {
    E {
        version_id: version_id.into(),
        is_marker: true,
        time: time.into(),
        size: 0,
        storage_class: None,
    }
}

/// Writes a finished scan of bucket `fixture` holding `keys`, each history
/// given newest first (listing order), into a new catalog at `path`.
pub fn build(path: &Path, keys: &[(&str, Vec<E>)]) {
    let mut keys: Vec<&(&str, Vec<E>)> = keys.iter().collect();
    keys.sort_by_key(|(k, _)| *k);
    let mut entries = Vec::new();
    for (key, history) in keys {
        for (i, e) in history.iter().enumerate() {
            entries.push(Entry {
                key: key.to_string(),
                version_id: e.version_id.clone(),
                is_marker: e.is_marker,
                is_latest: i == 0,
                mtime: model::time::parse_s3_timestamp(&e.time)
                    .unwrap_or_else(|| panic!("bad time {}", e.time)),
                size: (!e.is_marker).then_some(e.size),
                etag: (!e.is_marker).then(|| etag_of(key, &e.version_id)),
                storage_class: if e.is_marker {
                    None
                } else {
                    e.storage_class.clone()
                },
            });
        }
    }
    let location = Location {
        bucket: "fixture".into(),
        base_prefix: String::new(),
        endpoint: Some("http://fixture.invalid".into()),
    };
    catalog::fixture::write_finished_scan(path, &location, entries).expect("a fixture catalog");
}

/// A single-part ETag of its own for each version (two versions of a key
/// with one ETag and size would hold the same bytes, and a restore plans
/// no copy between them).
fn etag_of(key: &str, version_id: &str) -> String {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, key, version_id).hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}", half(0), half(1))
}

/// (kind, key, version id) of a plan's actions, sorted.
pub fn actions(catalog: &Path, plan: &str) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(catalog).expect("open catalog");
    let mut stmt = conn
        .prepare(
            "SELECT a.kind, a.key, coalesce(a.version_id, '') FROM actions a JOIN plans p ON p.id = a.plan_id \
             WHERE p.name = ?1 ORDER BY 2, 1, 3",
        )
        .unwrap();
    stmt.query_map([plan], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Sorted expected actions from (kind, key, version) literals.
pub fn expect(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    v.sort_by(|x, y| (&x.1, &x.0, &x.2).cmp(&(&y.1, &y.0, &y.2)));
    v
}
