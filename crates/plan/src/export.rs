//! Writing a plan's actions out: CSV for people and spreadsheets, and an
//! S3 Batch Operations manifest for its copies.

use std::io::Write;

use catalog::Catalog;
use rusqlite::types::Value;

use crate::{find_plan, PlanError};

/// Every column of `actions` except the internal ids, one row per action.
pub fn write_csv(catalog: &Catalog, name: &str, out: impl Write) -> Result<u64, PlanError> {
    let plan = find_plan(catalog, name)?;
    let mut stmt = catalog.conn().prepare(
        "SELECT id, kind, key, version_id, size, storage_class, why, expected_latest, status, attempts, \
         error, result_version_id, applied_at FROM actions WHERE plan_id = ?1 ORDER BY id",
    )?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut w = csv::Writer::from_writer(out);
    w.write_record(&names).map_err(csv_error)?;
    let mut rows = stmt.query([plan.id])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let mut record = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            record.push(crate::store::display(r.get::<_, Value>(i)?));
        }
        w.write_record(&record).map_err(csv_error)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// `Bucket,Key,VersionId` (the key URL-encoded) for each copy_version action: an S3 Batch
/// Operations manifest (CSV) for a Copy job, for plans too big for one machine.
pub fn write_s3_batch(
    catalog: &Catalog,
    name: &str,
    mut out: impl Write,
) -> Result<u64, PlanError> {
    let plan = find_plan(catalog, name)?;
    let bucket: String = catalog.conn().query_row(
        "SELECT bucket FROM scans WHERE id = ?1",
        [plan.scan_id],
        |r| r.get(0),
    )?;
    let mut stmt = catalog.conn().prepare(
        "SELECT key, version_id FROM actions WHERE plan_id = ?1 AND kind = 'copy_version' ORDER BY id",
    )?;
    let mut rows = stmt.query([plan.id])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let version: String = r.get(1)?;
        writeln!(out, "{bucket},{},{version}", s3io::encode_key(&key))?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

fn csv_error(e: csv::Error) -> PlanError {
    PlanError::Io(std::io::Error::other(e))
}
