//! A report written as AWS delivers one — `manifest.json`,
//! `manifest.checksum` and the data files, with AWS's field names and
//! layout — from rows in listing order: what the tests and the benchmark
//! ingest without AWS.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use md5::{Digest, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::{Field as ReportField, Format, InventoryError, Row};

/// What a form encoding leaves as it is (as AWS's CSV keys show).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*')
    .remove(b' ');

const DESTINATION: &str = "inventory-destination";
const CONFIG: &str = "all-versions";
/// Rows per Arrow batch written.
const BATCH: usize = 65_536;

/// The columns, as each format's schema names them, in AWS's order.
const CSV_COLUMNS: [&str; 9] = [
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
];
const ORC_COLUMNS: [&str; 9] = [
    "bucket:string",
    "key:string",
    "version_id:string",
    "is_latest:boolean",
    "is_delete_marker:boolean",
    "size:bigint",
    "last_modified_date:timestamp",
    "e_tag:string",
    "storage_class:string",
];
const PARQUET_COLUMNS: [&str; 9] = [
    "required binary bucket (STRING)",
    "required binary key (STRING)",
    "optional binary version_id (STRING)",
    "optional boolean is_latest",
    "optional boolean is_delete_marker",
    "optional int64 size",
    "optional int64 last_modified_date (TIMESTAMP(MILLIS,true))",
    "optional binary e_tag (STRING)",
    "optional binary storage_class (STRING)",
];

/// The places of the columns a report without `without` has.
fn kept_columns(without: &[ReportField]) -> Vec<usize> {
    (0..CSV_COLUMNS.len())
        .filter(|&i| match i {
            5 => !without.contains(&ReportField::Size),
            7 => !without.contains(&ReportField::ETag),
            _ => true,
        })
        .collect()
}

/// Writes a report of `source_bucket` holding `rows` (each key's entries
/// newest first, keys ascending) into `files` data files under `dir`, laid
/// out as in the destination bucket: `inv/SOURCE/all-versions/data/…` and
/// `inv/SOURCE/all-versions/YYYY-MM-DDTHH-MMZ/manifest.json`. Returns the
/// manifest's path.
pub fn write_report(
    dir: &Path,
    source_bucket: &str,
    format: Format,
    rows: &[Row],
    files: usize,
    created_ms: i64,
) -> Result<PathBuf, InventoryError> {
    write_report_without(dir, source_bucket, format, rows, files, created_ms, &[])
}

/// [`write_report`], of an inventory configured without the optional
/// fields `without`: a report s3rewind refuses unless told otherwise.
pub fn write_report_without(
    dir: &Path,
    source_bucket: &str,
    format: Format,
    rows: &[Row],
    files: usize,
    created_ms: i64,
    without: &[ReportField],
) -> Result<PathBuf, InventoryError> {
    let kept = kept_columns(without);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| InventoryError::Io {
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let config = format!("inv/{source_bucket}/{CONFIG}");
    let data = dir.join(&config).join("data");
    std::fs::create_dir_all(&data).map_err(io(&data))?;
    let ext = match format {
        Format::Csv => "csv.gz",
        Format::Orc => "orc",
        Format::Parquet => "parquet",
    };
    let per_file = rows.len().div_ceil(files.max(1)).max(1);
    let mut listed = Vec::new();
    for (i, chunk) in rows.chunks(per_file).enumerate() {
        let key = format!("{config}/data/part-{i:05}.{ext}");
        let path = dir.join(&key);
        match format {
            Format::Csv => write_csv(&path, source_bucket, chunk, &kept),
            Format::Orc | Format::Parquet => {
                write_columns(&path, format, source_bucket, chunk, &kept)
            }
        }?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        listed.push(serde_json::json!({
            "key": key,
            "size": bytes.len(),
            "MD5checksum": hex::encode(Md5::digest(&bytes)),
        }));
    }
    let stamp = chrono::DateTime::from_timestamp_millis(created_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H-%MZ");
    let at = dir.join(&config).join(stamp.to_string());
    std::fs::create_dir_all(&at).map_err(io(&at))?;
    let manifest = serde_json::json!({
        "sourceBucket": source_bucket,
        "destinationBucket": format!("arn:aws:s3:::{DESTINATION}"),
        "version": "2016-11-30",
        "creationTimestamp": created_ms.to_string(),
        "fileFormat": format.as_str(),
        "fileSchema": match format {
            Format::Csv => pick(&CSV_COLUMNS, &kept).join(", "),
            Format::Orc => format!("struct<{}>", pick(&ORC_COLUMNS, &kept).join(",")),
            Format::Parquet => format!(
                "message s3.inventory {{ {}; }}",
                pick(&PARQUET_COLUMNS, &kept).join("; ")
            ),
        },
        "files": listed,
    });
    let text = serde_json::to_vec_pretty(&manifest).expect("JSON");
    let path = at.join("manifest.json");
    std::fs::write(&path, &text).map_err(io(&path))?;
    let checksum = at.join("manifest.checksum");
    std::fs::write(&checksum, hex::encode(Md5::digest(&text))).map_err(io(&checksum))?;
    Ok(path)
}

/// The items of `all` at the places `kept`.
fn pick<T: Copy>(all: &[T], kept: &[usize]) -> Vec<T> {
    kept.iter().map(|&i| all[i]).collect()
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The version id as a report gives it: none for the `null` version.
fn version_text(row: &Row) -> &str {
    match row.entry.version_id.as_str() {
        "null" => "",
        v => v,
    }
}

fn write_csv(
    path: &Path,
    bucket: &str,
    rows: &[Row],
    kept: &[usize],
) -> Result<(), InventoryError> {
    let err = |e: String| InventoryError::Io {
        path: path.display().to_string(),
        reason: e,
    };
    let file = File::create(path).map_err(|e| err(e.to_string()))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    let mut out = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(gz);
    for row in rows {
        let e = &row.entry;
        let key = utf8_percent_encode(&e.key, FORM)
            .to_string()
            .replace(' ', "+");
        let size = e.size.map(|s| s.to_string()).unwrap_or_default();
        let class = match (e.is_marker, e.storage_class.as_deref()) {
            (true, _) => "",
            (false, None) => "STANDARD",
            (false, Some(c)) => c,
        };
        let time = time_text(row.mtime_ms);
        let fields = [
            bucket,
            &key,
            version_text(row),
            if e.is_latest { "true" } else { "false" },
            if e.is_marker { "true" } else { "false" },
            &size,
            &time,
            e.etag.as_deref().unwrap_or(""),
            class,
        ];
        out.write_record(pick(&fields, kept))
            .map_err(|e| err(e.to_string()))?;
    }
    let gz = out.into_inner().map_err(|e| err(e.to_string()))?;
    gz.finish()
        .and_then(|mut w| w.flush())
        .map_err(|e| err(e.to_string()))
}

fn schema() -> Arc<Schema> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("bucket", false),
        text("key", false),
        text("version_id", true),
        Field::new("is_latest", DataType::Boolean, true),
        Field::new("is_delete_marker", DataType::Boolean, true),
        Field::new("size", DataType::Int64, true),
        Field::new(
            "last_modified_date",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        text("e_tag", true),
        text("storage_class", true),
    ]))
}

/// The schema of the columns `kept`.
fn project(kept: &[usize]) -> Arc<Schema> {
    Arc::new(schema().project(kept).expect("kept columns exist"))
}

fn batch_of(bucket: &str, rows: &[Row]) -> RecordBatch {
    fn column<'r>(rows: &'r [Row], f: impl Fn(&'r Row) -> Option<&'r str>) -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![bucket; rows.len()])),
        column(rows, |r| Some(r.entry.key.as_str())),
        column(rows, |r| Some(version_text(r)).filter(|v| !v.is_empty())),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.entry.is_latest))
                .collect::<BooleanArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.entry.is_marker))
                .collect::<BooleanArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.entry.size).collect::<Int64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.mtime_ms))
                .collect::<TimestampMillisecondArray>(),
        ),
        column(rows, |r| r.entry.etag.as_deref()),
        column(rows, |r| {
            match (r.entry.is_marker, r.entry.storage_class.as_deref()) {
                (true, _) => None,
                (false, None) => Some("STANDARD"),
                (false, Some(c)) => Some(c),
            }
        }),
    ];
    RecordBatch::try_new(schema(), columns).expect("columns match the schema")
}

fn write_columns(
    path: &Path,
    format: Format,
    bucket: &str,
    rows: &[Row],
    kept: &[usize],
) -> Result<(), InventoryError> {
    let err = |e: String| InventoryError::Io {
        path: path.display().to_string(),
        reason: e,
    };
    let file = File::create(path).map_err(|e| err(e.to_string()))?;
    match format {
        Format::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .build();
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, project(kept), Some(props))
                .map_err(|e| err(e.to_string()))?;
            for chunk in rows.chunks(BATCH) {
                writer
                    .write(
                        &batch_of(bucket, chunk)
                            .project(kept)
                            .expect("kept columns exist"),
                    )
                    .map_err(|e| err(e.to_string()))?;
            }
            writer.close().map_err(|e| err(e.to_string()))?;
        }
        _ => {
            let mut writer = orc_rust::ArrowWriterBuilder::new(file, project(kept))
                .try_build()
                .map_err(|e| err(e.to_string()))?;
            for chunk in rows.chunks(BATCH) {
                writer
                    .write(
                        &batch_of(bucket, chunk)
                            .project(kept)
                            .expect("kept columns exist"),
                    )
                    .map_err(|e| err(e.to_string()))?;
            }
            writer.close().map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_file, Manifest};
    use model::Entry;

    fn rows() -> Vec<Row> {
        let entry = |key: &str, v: &str, marker: bool, latest: bool, ms: i64| Row {
            entry: Entry {
                key: key.into(),
                version_id: v.into(),
                is_marker: marker,
                is_latest: latest,
                mtime: ms.div_euclid(1000),
                size: (!marker).then_some(7),
                etag: (!marker).then(|| "0cc175b9c0f1b6a831c399e269772661".into()),
                storage_class: (!marker && key.starts_with("cold")).then(|| "GLACIER".into()),
            },
            mtime_ms: ms,
        };
        vec![
            entry("a b+c%d/é\u{1}\n", "v2", true, true, 1_700_000_001_500),
            entry("a b+c%d/é\u{1}\n", "v1", false, false, 1_700_000_000_250),
            entry("cold", "null", false, true, 1_600_000_000_000),
            entry("m", "m2", true, true, 1_700_000_003_000),
            entry("m", "m1", true, false, 1_700_000_002_000),
        ]
    }

    #[test]
    fn every_format_reads_back_what_was_written() {
        for format in [Format::Csv, Format::Orc, Format::Parquet] {
            let dir = tempfile::tempdir().unwrap();
            let path =
                write_report(dir.path(), "src", format, &rows(), 2, 1_700_000_100_000).unwrap();
            let manifest = Manifest::parse(&std::fs::read(&path).unwrap(), "m").unwrap();
            assert_eq!(manifest.files.len(), 2);
            let mut read = Vec::new();
            for f in &manifest.files {
                read_file(&dir.path().join(&f.key), &manifest, f, |rows| {
                    read.extend(rows.entries().map(|(e, ms)| Row {
                        entry: e.to_entry(),
                        mtime_ms: ms,
                    }));
                    Ok(())
                })
                .unwrap();
            }
            assert_eq!(read, rows(), "{format:?}");
        }
    }

    #[test]
    fn a_report_without_the_optional_fields_reads_back_without_them() {
        for format in [Format::Csv, Format::Orc, Format::Parquet] {
            let dir = tempfile::tempdir().unwrap();
            let without = [ReportField::Size, ReportField::ETag];
            let path =
                write_report_without(dir.path(), "src", format, &rows(), 1, 0, &without).unwrap();
            let manifest = Manifest::parse(&std::fs::read(&path).unwrap(), "m").unwrap();
            assert_eq!(manifest.missing(), without, "{format:?}");
            let f = &manifest.files[0];
            let mut read = Vec::new();
            read_file(&dir.path().join(&f.key), &manifest, f, |rows| {
                read.extend(rows.entries().map(|(e, ms)| (e.to_entry(), ms)));
                Ok(())
            })
            .unwrap();
            let expected: Vec<_> = rows()
                .into_iter()
                .map(|r| {
                    let mut e = r.entry;
                    (e.size, e.etag) = (None, None);
                    (e, r.mtime_ms)
                })
                .collect();
            assert_eq!(read, expected, "{format:?}");
        }
    }

    #[test]
    fn a_damaged_file_is_refused_by_its_md5() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_report(dir.path(), "src", Format::Csv, &rows(), 1, 0).unwrap();
        let manifest = Manifest::parse(&std::fs::read(&path).unwrap(), "m").unwrap();
        let file = dir.path().join(&manifest.files[0].key);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&file, &bytes).unwrap();
        let err = read_file(&file, &manifest, &manifest.files[0], |_| Ok(())).unwrap_err();
        assert!(matches!(err, InventoryError::Checksum { .. }), "{err}");
        // Truncated, with a manifest that agrees: the gzip stream says so.
        let mut agreeing = manifest.clone();
        agreeing.files[0].md5 = hex::encode(Md5::digest(&bytes));
        let err = read_file(&file, &agreeing, &agreeing.files[0], |_| Ok(())).unwrap_err();
        assert!(matches!(err, InventoryError::Data { .. }), "{err}");
    }
}
