//! One data file's rows, a batch at a time, after its MD5 is checked.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use md5::{Digest, Md5};
use model::{Entry, EntryRef, Etag};

use crate::manifest::normalise;
use crate::{DataFile, Format, InventoryError, Manifest};

/// Rows handed over at a time.
const BATCH: usize = 8192;

/// One version or delete marker of a report, with its time to the
/// millisecond (the order of a key's versions when the report does not
/// say more): what [`write_report`](crate::write_report) writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub entry: Entry,
    pub mtime_ms: i64,
}

/// A batch of a data file's rows, their text in one buffer: reading a
/// row costs no allocation of its own.
#[derive(Debug, Default)]
pub struct Rows {
    text: String,
    spans: Vec<Span>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    key: (u32, u32),
    version_id: (u32, u32),
    etag: Option<EtagSpan>,
    storage_class: Option<(u32, u32)>,
    is_marker: bool,
    is_latest: bool,
    size: Option<i64>,
    mtime_ms: i64,
}

/// An ETag's text in the batch's buffer, and what [`Etag::parse`] made of it.
#[derive(Debug, Clone, Copy)]
struct EtagSpan {
    text: (u32, u32),
    md5: Option<[u8; 16]>,
    parts: Option<i64>,
}

impl Rows {
    fn with_capacity(rows: usize) -> Rows {
        Rows {
            // A key, a version id and an ETag, mostly.
            text: String::with_capacity(rows * 160),
            spans: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn text(&self, (from, to): (u32, u32)) -> &str {
        &self.text[from as usize..to as usize]
    }

    fn entry(&self, s: &Span) -> (EntryRef<'_>, i64) {
        (
            EntryRef {
                key: self.text(s.key),
                version_id: self.text(s.version_id),
                is_marker: s.is_marker,
                is_latest: s.is_latest,
                mtime: s.mtime_ms.div_euclid(1000),
                size: s.size,
                etag: s.etag.map(|e| Etag {
                    md5: e.md5,
                    text: self.text(e.text),
                    parts: e.parts,
                }),
                storage_class: s.storage_class.map(|t| self.text(t)),
            },
            s.mtime_ms,
        )
    }

    /// Each row as an entry, with its time in milliseconds.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (EntryRef<'_>, i64)> + '_ {
        self.spans.iter().map(|s| self.entry(s))
    }

    /// Keeps the rows whose key `keep` says yes to.
    pub fn retain_keys(&mut self, keep: impl Fn(&str) -> bool) {
        let text = &self.text;
        self.spans
            .retain(|s| keep(&text[s.key.0 as usize..s.key.1 as usize]));
    }

    fn add(&mut self, text: &str) -> (u32, u32) {
        let from = self.text.len() as u32;
        self.text.push_str(text);
        (from, self.text.len() as u32)
    }

    /// Adds a row, as a listing would show it: the `null` version named,
    /// nothing but a time on a delete marker, STANDARD as no class.
    fn push(&mut self, f: Fields<'_>) {
        let key = self.add(&f.key);
        let version_id = match f.version_id {
            // The `null` version has no id in a report.
            None | Some("") => self.add("null"),
            Some(v) => self.add(v),
        };
        let marker = f.is_marker;
        // Parsed here, on a reader's thread, not by the catalog's writer.
        let etag = f.etag.filter(|e| !marker && !e.is_empty()).map(|e| {
            let e = Etag::parse(e.trim_matches('"'));
            EtagSpan {
                text: self.add(e.text),
                md5: e.md5,
                parts: e.parts,
            }
        });
        let storage_class = f
            .storage_class
            .filter(|c| !marker && !c.is_empty() && *c != "STANDARD")
            .map(|c| self.add(c));
        self.spans.push(Span {
            key,
            version_id,
            etag,
            storage_class,
            is_marker: marker,
            is_latest: f.is_latest,
            size: if marker { None } else { f.size },
            mtime_ms: f.mtime_ms,
        });
    }
}

/// Reads the data file `file` of `manifest` from `path`, checked against
/// its MD5, and calls `rows` with its rows, a batch at a time. Returns the
/// rows read. A CSV file is read once, hashed as it is decoded: its rows
/// may be handed over before a mismatch is known, so keep them only when
/// this returns `Ok`. A damaged file is named by its MD5 before whatever
/// else failed in it.
pub fn read_file(
    path: &Path,
    manifest: &Manifest,
    file: &DataFile,
    mut rows: impl FnMut(Rows) -> Result<(), InventoryError>,
) -> Result<u64, InventoryError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| InventoryError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let checked = |found: String| match found == file.md5 {
        true => Ok(()),
        false => Err(InventoryError::Checksum {
            path: shown.clone(),
            found,
            expected: file.md5.clone(),
        }),
    };
    let handle = File::open(path).map_err(io)?;
    match manifest.format {
        Format::Csv => {
            let mut hashing = Hashing::new(BufReader::with_capacity(1 << 20, handle));
            let read = read_csv(&mut hashing, &manifest.columns, &shown, &mut rows);
            checked(hashing.finish().map_err(io)?)?;
            read
        }
        Format::Parquet => {
            checked(md5_of(path).map_err(io)?)?;
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(handle)
                    .and_then(|b| {
                        let fields = b.schema().fields().clone();
                        let places = (0..fields.len()).filter(|&i| wanted(fields[i].name()));
                        let only =
                            parquet::arrow::ProjectionMask::roots(b.parquet_schema(), places);
                        b.with_projection(only).with_batch_size(BATCH).build()
                    })
                    .map_err(|e| data(&shown, 0, e.to_string()))?;
            read_batches(reader, &shown, &mut rows)
        }
        Format::Orc => {
            checked(md5_of(path).map_err(io)?)?;
            let builder = orc_rust::ArrowReaderBuilder::try_new(handle)
                .map_err(|e| data(&shown, 0, e.to_string()))?;
            let root = builder.file_metadata().root_data_type();
            let names: Vec<&str> = root
                .children()
                .iter()
                .map(|c| c.name())
                .filter(|name| wanted(name))
                .collect();
            let only = orc_rust::projection::ProjectionMask::named_roots(root, &names);
            let reader = builder.with_projection(only).with_batch_size(BATCH).build();
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

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    md5: Md5,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            md5: Md5::new(),
        }
    }

    /// Reads what is left, and gives the MD5 of all of it, in hex.
    fn finish(mut self) -> std::io::Result<String> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(hex::encode(self.md5.finalize()))
    }
}

fn md5_of(path: &Path) -> std::io::Result<String> {
    Hashing::new(BufReader::with_capacity(1 << 20, File::open(path)?)).finish()
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

fn read_csv(
    file: impl Read,
    columns: &[String],
    path: &str,
    rows: &mut impl FnMut(Rows) -> Result<(), InventoryError>,
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
    let gz = flate2::read::MultiGzDecoder::new(file);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(gz);
    let mut record = csv::StringRecord::new();
    let mut batch = Rows::with_capacity(BATCH);
    let mut spaced = String::new();
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
        let key = decode_key(&record[key], &mut spaced)
            .ok_or_else(|| data(path, n, "the key is not URL-encoded UTF-8"))?;
        // The manifest has the column (it is refused without): an empty
        // cell is a row without a time, not 1970.
        let t = field(modified).unwrap_or_default();
        let mtime_ms = parse_ms(t).ok_or_else(|| match t {
            "" => data(path, n, "no LastModifiedDate"),
            t => data(path, n, format!("LastModifiedDate {t:?} is not a time")),
        })?;
        let size = match field(size).filter(|s| !s.is_empty()) {
            Some(s) => Some(
                s.parse::<i64>()
                    .map_err(|_| data(path, n, format!("size {s:?} is not a number")))?,
            ),
            None => None,
        };
        batch.push(Fields {
            key,
            version_id: Some(&record[version]),
            is_latest: flag(latest)?,
            is_marker: flag(marker)?,
            size,
            mtime_ms,
            etag: field(etag),
            storage_class: field(class),
        });
        if batch.len() == BATCH {
            rows(std::mem::replace(&mut batch, Rows::with_capacity(BATCH)))?;
        }
    }
    if !batch.is_empty() {
        rows(batch)?;
    }
    Ok(n)
}

/// A CSV key: URL-encoded as a form (`+` for a space). `spaced` is a
/// buffer to reuse.
fn decode_key<'a>(encoded: &'a str, spaced: &'a mut String) -> Option<std::borrow::Cow<'a, str>> {
    if !encoded.contains(['%', '+']) {
        return Some(encoded.into());
    }
    let encoded = if encoded.contains('+') {
        spaced.clear();
        spaced.extend(encoded.chars().map(|c| if c == '+' { ' ' } else { c }));
        spaced.as_str()
    } else {
        encoded
    };
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()
}

fn parse_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn read_batches<E: std::fmt::Display>(
    batches: impl Iterator<Item = Result<RecordBatch, E>>,
    path: &str,
    rows: &mut impl FnMut(Rows) -> Result<(), InventoryError>,
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

/// The columns a row is made of (normalised names): a report may carry
/// many more (its owner, ACLs, encryption, replication…), left undecoded.
const COLUMNS: [&str; 8] = [
    "key",
    "versionid",
    "islatest",
    "isdeletemarker",
    "size",
    "lastmodifieddate",
    "etag",
    "storageclass",
];

/// Whether a file's column `name` is one of [`COLUMNS`].
fn wanted(name: &str) -> bool {
    COLUMNS.contains(&normalise(name).as_str())
}

/// The column named (normalised) `name`, cast to `to`.
fn column(
    batch: &RecordBatch,
    name: &str,
    to: &DataType,
    path: &str,
) -> Result<Option<Arc<dyn Array>>, InventoryError> {
    // A column not in COLUMNS was never decoded: it would read as absent.
    debug_assert!(COLUMNS.contains(&name), "{name} is not in COLUMNS");
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

fn batch_rows(batch: &RecordBatch, path: &str, before: u64) -> Result<Rows, InventoryError> {
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
    let modified = need(
        "lastmodifieddate",
        &DataType::Timestamp(TimeUnit::Millisecond, None),
    )?;
    let etag = column(batch, "etag", &text, path)?;
    let class = column(batch, "storageclass", &text, path)?;
    let (key, version) = (key.as_string::<i32>(), version.as_string::<i32>());
    let (latest, marker) = (latest.as_boolean(), marker.as_boolean());
    let size = size
        .as_ref()
        .map(|s| s.as_primitive::<arrow::datatypes::Int64Type>());
    let modified = modified.as_primitive::<TimestampMillisecondType>();
    let etag = etag.as_ref().map(|e| e.as_string::<i32>());
    let class = class.as_ref().map(|c| c.as_string::<i32>());
    let mut rows = Rows::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        if key.is_null(i) {
            return Err(data(path, before + i as u64 + 1, "a row without a key"));
        }
        if modified.is_null(i) {
            return Err(data(path, before + i as u64 + 1, "no LastModifiedDate"));
        }
        rows.push(Fields {
            key: key.value(i).into(),
            version_id: text_at(Some(version), i),
            is_latest: latest.is_valid(i) && latest.value(i),
            is_marker: marker.is_valid(i) && marker.value(i),
            size: size.filter(|s| s.is_valid(i)).map(|s| s.value(i)),
            mtime_ms: modified.value(i),
            etag: text_at(etag, i),
            storage_class: text_at(class, i),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn a_row_without_a_time_is_refused_not_dated_1970() {
        let columns: Vec<String> = [
            "key",
            "versionid",
            "islatest",
            "isdeletemarker",
            "lastmodifieddate",
        ]
        .map(str::to_owned)
        .to_vec();
        let csv = |line: &str| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, line.as_bytes()).unwrap();
            gz.finish().unwrap()
        };
        let read = |line: &str| read_csv(&csv(line)[..], &columns, "f.csv.gz", &mut |_| Ok(()));
        assert_eq!(
            read("k,v,true,false,2024-05-01T00:00:00.000Z\n").unwrap(),
            1
        );
        let err = read("k,v,true,false,\n").unwrap_err();
        assert!(
            err.to_string().contains("row 1: no LastModifiedDate"),
            "{err}"
        );

        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("version_id", DataType::Utf8, true),
            Field::new("is_latest", DataType::Boolean, true),
            Field::new("is_delete_marker", DataType::Boolean, true),
            Field::new(
                "last_modified_date",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(StringArray::from(vec!["1", "2"])),
                Arc::new(BooleanArray::from(vec![true, true])),
                Arc::new(BooleanArray::from(vec![false, false])),
                Arc::new(TimestampMillisecondArray::from(vec![Some(1_000), None])),
            ],
        )
        .unwrap();
        let err = batch_rows(&batch, "f.parquet", 10).unwrap_err();
        assert!(
            err.to_string().contains("row 12: no LastModifiedDate"),
            "{err}"
        );
    }
}
