//! An S3 Inventory report of a bucket, as AWS would deliver it (every
//! version and delete marker, `IncludedObjectVersions=All`): what tests
//! and benchmarks ingest without AWS. The files are written by
//! `s3inventory::write_report`.

use s3inventory::Row;

use crate::store::{Store, StoreError};

/// Every entry of `bucket` in listing order, as a report's rows.
pub fn rows_of(store: &Store, bucket: &str) -> Result<Vec<Row>, StoreError> {
    let b = store.bucket(bucket)?;
    let mut rows = Vec::new();
    let (mut key, mut version) = (None::<String>, None);
    loop {
        let page = store.list_versions(&b, "", None, key.as_deref(), version, 100_000)?;
        for listed in &page.entries {
            let e = &listed.entry;
            rows.push(Row {
                entry: model::Entry {
                    key: listed.key.to_string(),
                    version_id: e.version_id.encode(),
                    is_marker: e.is_marker(),
                    is_latest: listed.is_latest,
                    mtime: e.mtime_ms.div_euclid(1000),
                    size: e.content.as_ref().map(|c| c.size() as i64),
                    etag: e.content.as_ref().map(|c| c.etag()),
                    storage_class: e
                        .content
                        .as_ref()
                        .and_then(|c| c.storage_class().map(str::to_owned)),
                },
                // A report gives LastModifiedDate to the second, as a
                // listing does: versions of one second are not ordered by it.
                mtime_ms: e.mtime_ms.div_euclid(1000) * 1000,
            });
        }
        if !page.is_truncated {
            return Ok(rows);
        }
        key = page.next_key_marker;
        version = page
            .next_version_id_marker
            .as_deref()
            .and_then(crate::store::VersionId::decode);
    }
}
