//! `verify`: is the bucket where the plan meant it to be? Each key the plan
//! acts on is listed (adjacent keys share pages) and compared with the
//! state the plan reaches from what the scan saw: its newest entry, and
//! the absence of everything the plan removes.
//!
//! The state is the plan's intent, whatever became of its actions: a key
//! whose action failed or was skipped does not match, which is the point.

use model::content::single_part_md5;
use model::Entry;
use s3io::S3;

use catalog::{Catalog, Intended, PlannedKey, Top};

use crate::ApplyError;

/// Keys read from the catalog, and listed, at a time.
const SLICE: usize = 10_000;

/// A key that is not as the plan meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub key: String,
    pub expected: String,
    pub found: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    pub keys: u64,
    pub matching: u64,
    /// Every key that does not match, in key id order.
    pub mismatches: Vec<Mismatch>,
}

/// Compares a key's entries now (newest first) with what it should show;
/// `None` when it matches. A version meant to be on top may be another
/// one holding its content, by the identities a restore plans by
/// (`model::content`): `copies` are the key's done copies, from apply's journal.
pub fn compare(
    expected: &Intended,
    now: &[Entry],
    copies: &[(String, String)],
) -> Option<(String, String)> {
    for v in &expected.gone {
        if let Some(e) = now.iter().find(|e| &e.version_id == v) {
            let what = if e.is_marker {
                "delete marker"
            } else {
                "version"
            };
            return Some((
                format!("{what} {v} removed"),
                format!("{what} {v} still there"),
            ));
        }
    }
    let found = || match now.first() {
        None => "no entry".to_owned(),
        Some(e) if e.is_marker => format!("delete marker {} on top", e.version_id),
        Some(e) => format!(
            "version {} on top ({} bytes, ETag {})",
            e.version_id,
            e.size.unwrap_or(0),
            e.etag.as_deref().unwrap_or("?")
        ),
    };
    match &expected.top {
        Top::Deleted => match now.first() {
            None => None,
            Some(e) if e.is_marker => None,
            Some(_) => Some(("deleted".to_owned(), found())),
        },
        Top::Version {
            version_id,
            etag,
            size,
        } => {
            let ok = match now.first() {
                Some(e) if !e.is_marker => match version_id {
                    Some(id) => {
                        model::content::same_by_journal(copies, id, &e.version_id)
                            || model::content::same_by_etag(
                                (*size, etag.as_deref().and_then(single_part_md5)),
                                (e.size, e.etag.as_deref().and_then(single_part_md5)),
                            )
                    }
                    // A copy not recorded: its content. A multipart
                    // source's ETag is not the copy's, so size alone then.
                    None => {
                        e.size == *size
                            && (etag.as_deref().is_none_or(|t| t.contains('-')) || e.etag == *etag)
                    }
                },
                _ => false,
            };
            let want = match version_id {
                Some(id) => format!("version {id} on top"),
                None => format!(
                    "a copy on top ({} bytes, ETag {})",
                    size.unwrap_or(0),
                    etag.as_deref().unwrap_or("?")
                ),
            };
            (!ok).then(|| (want, found()))
        }
    }
}

/// Checks every key of plan `plan_id` against `bucket`; `seen` is told
/// how many keys are checked so far.
pub async fn verify(
    s3: &S3,
    catalog: &Catalog,
    target: &crate::ApplyTarget,
    seen: impl Fn(u64),
) -> Result<Verified, ApplyError> {
    let mut out = Verified::default();
    let mut after = 0;
    loop {
        let keys = catalog.planned_keys(target.plan_id, after, SLICE)?;
        let Some(last) = keys.last() else {
            return Ok(out);
        };
        after = last.key_id;
        // Where each key's actions landed, in key order.
        let mut placed: Vec<(i64, std::borrow::Cow<'_, str>, &PlannedKey)> = keys
            .iter()
            .map(|k| (k.key_id, target.place(&k.key).1, k))
            .collect();
        placed.sort_by(|a, b| a.1.cmp(&b.1));
        let names: Vec<(i64, &str)> = placed
            .iter()
            .map(|(id, name, _)| (*id, name.as_ref()))
            .collect();
        let listed = s3
            .entries_of(target.bucket(), &names)
            .await
            .map_err(ApplyError::Verify)?;
        // Copies onto the keys themselves; an --into plan's land elsewhere.
        let copies = match target.into {
            None => catalog.copies_made(&keys.iter().map(|k| k.key_id).collect::<Vec<_>>())?,
            Some(_) => Default::default(),
        };
        for ((_, name, key), now) in placed.iter().zip(listed) {
            out.keys += 1;
            let intended = match target.into {
                None => key.intended(),
                Some(_) => key.intended_elsewhere(),
            };
            let copies = copies.get(&key.key_id).map_or(&[][..], Vec::as_slice);
            match compare(&intended, &now, copies) {
                None => out.matching += 1,
                Some((expected, found)) => out.mismatches.push(Mismatch {
                    key: name.clone().into_owned(),
                    expected,
                    found,
                }),
            }
        }
        seen(out.keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::{KeyAction, SeenEntry};
    use model::ActionKind;

    fn seen(id: &str, marker: bool, etag: &str) -> SeenEntry {
        SeenEntry {
            version_id: id.into(),
            is_marker: marker,
            size: (!marker).then_some(3),
            etag: (!marker).then(|| etag.into()),
        }
    }

    fn action(kind: ActionKind, version: Option<&str>, result: Option<&str>) -> KeyAction {
        KeyAction {
            id: 1,
            kind,
            version_id: version.map(Into::into),
            status: if result.is_some() { "done" } else { "pending" }.into(),
            result_version_id: result.map(Into::into),
            expected_latest: None,
        }
    }

    fn now(id: &str, marker: bool, etag: &str) -> Entry {
        Entry {
            key: "k".into(),
            version_id: id.into(),
            is_marker: marker,
            is_latest: false,
            mtime: 0,
            size: (!marker).then_some(3),
            etag: (!marker).then(|| etag.into()),
            storage_class: None,
        }
    }

    fn key(history: Vec<SeenEntry>, actions: Vec<KeyAction>) -> PlannedKey {
        PlannedKey {
            key_id: 1,
            key: "k".into(),
            history,
            actions,
        }
    }

    #[test]
    fn a_restored_copy_must_be_on_top_by_id_or_by_content() {
        let history = vec![seen("bad", false, "e2"), seen("good", false, "e1")];
        let done = key(
            history.clone(),
            vec![action(ActionKind::CopyVersion, Some("good"), Some("copy"))],
        )
        .intended();
        assert_eq!(
            compare(
                &done,
                &[now("copy", false, "e1"), now("bad", false, "e2")],
                &[]
            ),
            None
        );
        let (want, found) = compare(&done, &[now("other", false, "e1")], &[]).unwrap();
        assert!(
            want.contains("copy") && found.contains("other"),
            "{want} / {found}"
        );

        let pending = key(
            history,
            vec![action(ActionKind::CopyVersion, Some("good"), None)],
        )
        .intended();
        assert_eq!(compare(&pending, &[now("x", false, "e1")], &[]), None);
        assert!(compare(&pending, &[now("bad", false, "e2")], &[]).is_some());
        assert!(compare(&pending, &[now("m", true, "")], &[]).is_some());
    }

    #[test]
    fn removed_markers_must_be_gone_and_hidden_keys_deleted() {
        let history = vec![seen("m1", true, ""), seen("v1", false, "e1")];
        let undelete = key(
            history.clone(),
            vec![action(ActionKind::DeleteMarker, Some("m1"), Some("m1"))],
        )
        .intended();
        assert_eq!(
            undelete.top,
            Top::Version {
                version_id: Some("v1".into()),
                etag: Some("e1".into()),
                size: Some(3)
            }
        );
        assert_eq!(compare(&undelete, &[now("v1", false, "e1")], &[]), None);
        let (_, found) = compare(
            &undelete,
            &[now("m1", true, ""), now("v1", false, "e1")],
            &[],
        )
        .unwrap();
        assert!(found.contains("still there"), "{found}");

        let hide = key(
            vec![seen("v1", false, "e1")],
            vec![action(ActionKind::AddDeleteMarker, None, None)],
        )
        .intended();
        assert_eq!(hide.top, Top::Deleted);
        assert_eq!(
            compare(&hide, &[now("m", true, ""), now("v1", false, "e1")], &[]),
            None
        );
        assert_eq!(compare(&hide, &[], &[]), None);
        assert!(compare(&hide, &[now("v1", false, "e1")], &[]).is_some());
    }
}
