//! One data file's rows, a batch at a time, after its MD5 is checked.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use md5::{Digest, Md5};
use model::Entry;

use crate::manifest::normalise;
use crate::{DataFile, Format, InventoryError, Manifest};

/// Rows handed over at a time.
const BATCH: usize = 8192;

/// One version or delete marker of the report, with its time to the
/// millisecond (the order of a key's versions when the report does not
/// say more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub entry: Entry,
    pub mtime_ms: i64,
}

/// Reads the data file `file` of `manifest` from `path`: checks its MD5,
/// then calls `rows` with its rows, a batch at a time. Returns the rows read.
pub fn read_file(
    path: &Path,
    manifest: &Manifest,
    file: &DataFile,
    mut rows: impl FnMut(Vec<Row>) -> Result<(), InventoryError>,
) -> Result<u64, InventoryError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| InventoryError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let found = md5_of(path).map_err(io)?;
    if found != file.md5 {
        return Err(InventoryError::Checksum {
            path: shown,
            found,
            expected: file.md5.clone(),
        });
    }
    let handle = File::open(path).map_err(io)?;
    match manifest.format {
        Format::Csv => read_csv(handle, &manifest.columns, &shown, &mut rows),
        Format::Parquet => {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(handle)
                    .and_then(|b| b.with_batch_size(BATCH).build())
                    .map_err(|e| data(&shown, 0, e.to_string()))?;
            read_batches(reader, &shown, &mut rows)
        }
        Format::Orc => {
            let reader = orc_rust::ArrowReaderBuilder::try_new(handle)
                .map_err(|e| data(&shown, 0, e.to_string()))?
                .with_batch_size(BATCH)
                .build();
            read_batches(reader, &shown, &mut rows)
        }
    }
}

fn data(path: &str, row: u64, reason: impl Into<String>) -> InventoryError {
    InventoryError::Data {
        path: path.to_owned(),
        row,
        reason: reason.into(),
    }
}

fn md5_of(path: &Path) -> std::io::Result<String> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// A row's fields, however the format gave them.
struct Fields<'a> {
    key: std::borrow::Cow<'a, str>,
    version_id: Option<&'a str>,
    is_latest: bool,
    is_marker: bool,
    size: Option<i64>,
    mtime_ms: i64,
    etag: Option<&'a str>,
    storage_class: Option<&'a str>,
}

impl Fields<'_> {
    fn row(self) -> Row {
        let marker = self.is_marker;
        Row {
            entry: Entry {
                key: self.key.into_owned(),
                // The `null` version has no id in a report.
                version_id: match self.version_id {
                    None | Some("") => "null".to_owned(),
                    Some(v) => v.to_owned(),
                },
                is_marker: marker,
                is_latest: self.is_latest,
                mtime: self.mtime_ms.div_euclid(1000),
                size: if marker { None } else { self.size },
                etag: if marker {
                    None
                } else {
                    self.etag
                        .filter(|e| !e.is_empty())
                        .map(|e| e.trim_matches('"').to_owned())
                },
                storage_class: if marker {
                    None
                } else {
                    self.storage_class
                        .filter(|c| !c.is_empty() && *c != "STANDARD")
                        .map(str::to_owned)
                },
            },
            mtime_ms: self.mtime_ms,
        }
    }
}

fn read_csv(
    file: File,
    columns: &[String],
    path: &str,
    rows: &mut impl FnMut(Vec<Row>) -> Result<(), InventoryError>,
) -> Result<u64, InventoryError> {
    let at = |name: &str| columns.iter().position(|c| c == name);
    let key = at("key").expect("checked by the manifest");
    let (version, latest, marker) = (
        at("versionid").expect("checked"),
        at("islatest").expect("checked"),
        at("isdeletemarker").expect("checked"),
    );
    let (size, modified, etag, class) = (
        at("size"),
        at("lastmodifieddate"),
        at("etag"),
        at("storageclass"),
    );
    let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(gz);
    let mut record = csv::StringRecord::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut n: u64 = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(data(path, n + 1, e.to_string())),
        }
        n += 1;
        if record.len() != columns.len() {
            return Err(data(
                path,
                n,
                format!(
                    "{} fields, the manifest's fileSchema has {}",
                    record.len(),
                    columns.len()
                ),
            ));
        }
        let field = |i: Option<usize>| i.map(|i| &record[i]);
        let flag = |i: usize| match &record[i] {
            "true" | "TRUE" | "True" => Ok(true),
            "false" | "FALSE" | "False" | "" => Ok(false),
            other => Err(data(path, n, format!("{other:?} is not true or false"))),
        };
        let key = decode_key(&record[key])
            .ok_or_else(|| data(path, n, "the key is not URL-encoded UTF-8"))?;
        let mtime_ms = match field(modified) {
            Some(t) => parse_ms(t).ok_or_else(|| data(path, n, format!("{t:?} is not a time")))?,
            None => 0,
        };
        let size = match field(size).filter(|s| !s.is_empty()) {
            Some(s) => Some(
                s.parse::<i64>()
                    .map_err(|_| data(path, n, format!("size {s:?} is not a number")))?,
            ),
            None => None,
        };
        batch.push(
            Fields {
                key: key.into(),
                version_id: Some(&record[version]),
                is_latest: flag(latest)?,
                is_marker: flag(marker)?,
                size,
                mtime_ms,
                etag: field(etag),
                storage_class: field(class),
            }
            .row(),
        );
        if batch.len() == BATCH {
            rows(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
        }
    }
    if !batch.is_empty() {
        rows(batch)?;
    }
    Ok(n)
}

/// A CSV key: URL-encoded as a form (`+` for a space).
fn decode_key(encoded: &str) -> Option<String> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

fn parse_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn read_batches<E: std::fmt::Display>(
    batches: impl Iterator<Item = Result<RecordBatch, E>>,
    path: &str,
    rows: &mut impl FnMut(Vec<Row>) -> Result<(), InventoryError>,
) -> Result<u64, InventoryError> {
    let mut n: u64 = 0;
    for batch in batches {
        let batch = batch.map_err(|e| data(path, n + 1, e.to_string()))?;
        let out = batch_rows(&batch, path, n)?;
        n += batch.num_rows() as u64;
        rows(out)?;
    }
    Ok(n)
}

/// The column named (normalised) `name`, cast to `to`.
fn column(
    batch: &RecordBatch,
    name: &str,
    to: &DataType,
    path: &str,
) -> Result<Option<Arc<dyn Array>>, InventoryError> {
    let schema = batch.schema();
    let Some(i) = schema
        .fields()
        .iter()
        .position(|f| normalise(f.name()) == name)
    else {
        return Ok(None);
    };
    arrow::compute::cast(batch.column(i), to)
        .map(Some)
        .map_err(|e| data(path, 0, format!("column {name}: {e}")))
}

fn text_at(a: Option<&arrow::array::StringArray>, i: usize) -> Option<&str> {
    a.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

fn batch_rows(batch: &RecordBatch, path: &str, before: u64) -> Result<Vec<Row>, InventoryError> {
    let text = DataType::Utf8;
    let need = |name: &str, to: &DataType| {
        column(batch, name, to, path)?
            .ok_or_else(|| data(path, before + 1, format!("no column {name}")))
    };
    let key = need("key", &text)?;
    let version = need("versionid", &text)?;
    let latest = need("islatest", &DataType::Boolean)?;
    let marker = need("isdeletemarker", &DataType::Boolean)?;
    let size = column(batch, "size", &DataType::Int64, path)?;
    let modified = column(
        batch,
        "lastmodifieddate",
        &DataType::Timestamp(TimeUnit::Millisecond, None),
        path,
    )?;
    let etag = column(batch, "etag", &text, path)?;
    let class = column(batch, "storageclass", &text, path)?;
    let (key, version) = (key.as_string::<i32>(), version.as_string::<i32>());
    let (latest, marker) = (latest.as_boolean(), marker.as_boolean());
    let size = size
        .as_ref()
        .map(|s| s.as_primitive::<arrow::datatypes::Int64Type>());
    let modified = modified
        .as_ref()
        .map(|m| m.as_primitive::<TimestampMillisecondType>());
    let etag = etag.as_ref().map(|e| e.as_string::<i32>());
    let class = class.as_ref().map(|c| c.as_string::<i32>());
    (0..batch.num_rows())
        .map(|i| {
            if key.is_null(i) {
                return Err(data(path, before + i as u64 + 1, "a row without a key"));
            }
            Ok(Fields {
                key: key.value(i).into(),
                version_id: text_at(Some(version), i),
                is_latest: latest.is_valid(i) && latest.value(i),
                is_marker: marker.is_valid(i) && marker.value(i),
                size: size.filter(|s| s.is_valid(i)).map(|s| s.value(i)),
                mtime_ms: modified.filter(|m| m.is_valid(i)).map_or(0, |m| m.value(i)),
                etag: text_at(etag, i),
                storage_class: text_at(class, i),
            }
            .row())
        })
        .collect()
}
