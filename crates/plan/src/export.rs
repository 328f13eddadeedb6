//! Writing a plan's actions out: CSV for people and spreadsheets, and an
//! S3 Batch Operations manifest for its copies.

use std::io::Write;

use catalog::Catalog;

use crate::{find_plan, PlanError};

/// Every column of `actions` except the internal ids, one row per action.
///
/// Unless `raw`, a cell a spreadsheet would take for a formula (it starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return: a key named
/// `=HYPERLINK(…)`, say) is written with a `'` in front, which spreadsheets
/// show as text. `raw` keeps every cell's exact bytes.
pub fn write_csv(
    catalog: &Catalog,
    name: &str,
    raw: bool,
    out: impl Write,
) -> Result<u64, PlanError> {
    let plan = find_plan(catalog, name)?;
    // A plan restoring `--into` another place gets one more column: where
    // each action lands.
    let into = match (crate::destination_of(&plan), catalog.scan_record()?) {
        (Some(d), Some(scan)) => Some((d, scan.location.base_prefix)),
        _ => None,
    };
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<&str> = catalog::plans::EXPORT_COLUMNS.to_vec();
    if into.is_some() {
        header.push("destination");
    }
    w.write_record(&header).map_err(csv_error)?;
    let key_at = catalog::plans::EXPORT_COLUMNS
        .iter()
        .position(|c| *c == "key")
        .expect("key is exported");
    let n = catalog.for_each_action_row(plan.id, |values| {
        let mut cells: Vec<String> = values.into_iter().map(catalog::user_sql::display).collect();
        if let Some((d, base)) = &into {
            let lands = format!("s3://{}/{}", d.bucket, d.key_for(base, &cells[key_at]));
            cells.push(lands);
        }
        let cells = cells.into_iter().map(|text| match raw {
            true => text,
            false => defuse_formula(text),
        });
        w.write_record(cells).map_err(csv_error)
    })?;
    w.flush()?;
    Ok(n)
}

/// `text`, with a `'` in front if a spreadsheet would read it as a formula.
pub fn defuse_formula(text: String) -> String {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}"),
        _ => text,
    }
}

/// `Bucket,Key,VersionId` (the key URL-encoded) for each copy_version action: an S3 Batch
/// Operations manifest (CSV) for a Copy job, for plans too big for one machine.
pub fn write_s3_batch(
    catalog: &Catalog,
    name: &str,
    mut out: impl Write,
) -> Result<u64, PlanError> {
    let plan = find_plan(catalog, name)?;
    let bucket = catalog
        .scan_record()?
        .ok_or(PlanError::NoScan)?
        .location
        .bucket;
    let n = catalog.for_each_copy(plan.id, |key, version| {
        writeln!(out, "{bucket},{},{version}", model::encode_key(key)).map_err(PlanError::from)
    })?;
    out.flush()?;
    Ok(n)
}

fn csv_error(e: csv::Error) -> PlanError {
    PlanError::Io(std::io::Error::other(e))
}

#[cfg(test)]
mod tests {
    use super::defuse_formula as d;

    #[test]
    fn cells_a_spreadsheet_would_run_are_defused() {
        for live in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(d(live.into()), format!("'{live}"));
        }
        for plain in ["a=b", "img/=x", "", "1"] {
            assert_eq!(d(plain.into()), plain);
        }
    }
}
