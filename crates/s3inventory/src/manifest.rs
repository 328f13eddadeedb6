//! `manifest.json`: what a report holds and where its files are.

use serde::Deserialize;

use crate::InventoryError;

/// A data file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Gzip-compressed CSV without a header; the columns are `fileSchema`'s.
    Csv,
    Orc,
    Parquet,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Orc => "ORC",
            Format::Parquet => "Parquet",
        }
    }
}

/// A field of a report's rows that plans rely on, and that an inventory
/// configuration may leave out (AWS's InventoryConfiguration lists Size,
/// LastModifiedDate and ETag among its optional fields; without
/// LastModifiedDate a report is refused outright).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Size,
    ETag,
}

impl Field {
    pub const ALL: [Field; 2] = [Field::Size, Field::ETag];

    /// As AWS names it in a report's schema.
    pub fn name(self) -> &'static str {
        match self {
            Field::Size => "Size",
            Field::ETag => "ETag",
        }
    }

    /// As `--allow-missing` takes it.
    pub fn flag(self) -> &'static str {
        match self {
            Field::Size => "size",
            Field::ETag => "etag",
        }
    }

    /// `name()` or `flag()`, in any case.
    pub fn parse(text: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(text))
    }

    /// What a catalog without the field cannot do.
    pub fn what_is_lost(self) -> &'static str {
        match self {
            Field::Size => "without each version's size, copies larger than 5 GiB are not recognised (they are sent as one CopyObject, which S3 refuses, and a resumed apply cannot tell a multipart copy that landed)",
            Field::ETag => "without each version's ETag, copies cannot be conditioned on the key being as it was scanned (If-Match): a write made since would be overwritten",
        }
    }

    /// The normalised column name.
    fn column(self) -> &'static str {
        match self {
            Field::Size => "size",
            Field::ETag => "etag",
        }
    }
}

/// One data file as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Its key in the destination bucket.
    pub key: String,
    pub size: u64,
    /// Lower-case hex.
    pub md5: String,
}

/// A report's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub source_bucket: String,
    /// The bucket the files are in (the `arn:aws:s3:::` prefix removed).
    pub destination_bucket: String,
    /// When the report was made: Unix milliseconds.
    pub created_ms: i64,
    pub format: Format,
    /// The columns, as normalised names (`key`, `versionid`, `islatest`, …):
    /// the order of a CSV file's fields.
    pub columns: Vec<String>,
    pub files: Vec<DataFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    source_bucket: String,
    destination_bucket: String,
    creation_timestamp: String,
    file_format: String,
    file_schema: String,
    files: Vec<RawFile>,
}

#[derive(Deserialize)]
struct RawFile {
    key: String,
    size: u64,
    #[serde(rename = "MD5checksum")]
    md5: String,
}

/// `Is_Latest`, `is_latest` and `IsLatest` alike: lower case, no `_`.
pub(crate) fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The column names of a `fileSchema`: a CSV list (`Bucket, Key, …`), an
/// ORC struct (`struct<bucket:string,key:string,…>`) or a Parquet message
/// (`message s3.inventory { required binary bucket (UTF8); … }`).
fn columns(schema: &str) -> Vec<String> {
    let schema = schema.trim();
    if let Some(inner) = schema
        .strip_prefix("struct<")
        .and_then(|s| s.strip_suffix('>'))
    {
        return inner
            .split(',')
            .filter_map(|f| f.split_once(':').map(|(name, _)| normalise(name)))
            .collect();
    }
    if let Some((_, body)) = schema.split_once('{') {
        return body
            .trim_end_matches('}')
            .split(';')
            .filter_map(|f| {
                // `optional binary key (UTF8)`: the name is the third word.
                f.split_whitespace().nth(2).map(normalise)
            })
            .collect();
    }
    schema.split(',').map(normalise).collect()
}

impl Manifest {
    /// Parses a manifest read from `path` (named in errors).
    pub fn parse(bytes: &[u8], path: &str) -> Result<Manifest, InventoryError> {
        let bad = |reason: String| InventoryError::Manifest {
            path: path.to_owned(),
            reason,
        };
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let format = match raw.file_format.to_ascii_lowercase().as_str() {
            "csv" => Format::Csv,
            "orc" => Format::Orc,
            "parquet" => Format::Parquet,
            _ => {
                return Err(InventoryError::UnknownFormat {
                    path: path.to_owned(),
                    format: raw.file_format,
                })
            }
        };
        let created_ms = raw.creation_timestamp.trim().parse::<i64>().map_err(|_| {
            bad(format!(
                "creationTimestamp {:?} is not a number of milliseconds",
                raw.creation_timestamp
            ))
        })?;
        let columns = columns(&raw.file_schema);
        if !columns.iter().any(|c| c == "lastmodifieddate") {
            return Err(InventoryError::NoTimes {
                path: path.to_owned(),
            });
        }
        for needed in ["key", "versionid", "islatest", "isdeletemarker"] {
            if !columns.iter().any(|c| c == needed) {
                return Err(if needed == "key" {
                    bad(format!("fileSchema {:?} has no Key", raw.file_schema))
                } else {
                    InventoryError::CurrentOnly {
                        path: path.to_owned(),
                    }
                });
            }
        }
        let files = raw
            .files
            .into_iter()
            .map(|f| {
                let md5 = f.md5.to_ascii_lowercase();
                if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(format!(
                        "file {}: MD5checksum {md5:?} is not an MD5",
                        f.key
                    )));
                }
                Ok(DataFile {
                    key: f.key,
                    size: f.size,
                    md5,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Manifest {
            source_bucket: raw.source_bucket,
            destination_bucket: raw
                .destination_bucket
                .strip_prefix("arn:aws:s3:::")
                .unwrap_or(&raw.destination_bucket)
                .to_owned(),
            created_ms,
            format,
            columns,
            files,
        })
    }

    /// The fields plans rely on that the report's rows lack.
    pub fn missing(&self) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|f| !self.columns.iter().any(|c| c == f.column()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = r#"{
      "sourceBucket": "photos",
      "destinationBucket": "arn:aws:s3:::reports",
      "version": "2016-11-30",
      "creationTimestamp": "1514944800000",
      "fileFormat": "CSV",
      "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass",
      "files": [{"key": "inv/photos/all/data/a.csv.gz", "size": 10, "MD5checksum": "F11166069F1990ABEB9C97ACE9CDFABC"}]
    }"#;

    #[test]
    fn a_csv_manifest_gives_its_columns_in_order() {
        let m = Manifest::parse(CSV.as_bytes(), "m.json").unwrap();
        assert_eq!(m.source_bucket, "photos");
        assert_eq!(m.destination_bucket, "reports");
        assert_eq!(m.created_ms, 1_514_944_800_000);
        assert_eq!(m.format, Format::Csv);
        assert_eq!(m.columns[..4], ["bucket", "key", "versionid", "islatest"]);
        assert_eq!(m.files[0].md5, "f11166069f1990abeb9c97ace9cdfabc");
    }

    #[test]
    fn orc_and_parquet_schemas_name_the_same_columns() {
        let orc = columns("struct<bucket:string,key:string,version_id:string,is_latest:boolean>");
        let parquet = columns("message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id (UTF8); optional boolean is_latest; }");
        assert_eq!(orc, ["bucket", "key", "versionid", "islatest"]);
        assert_eq!(parquet, orc);
    }

    #[test]
    fn a_report_of_current_versions_only_is_refused_with_how_to_configure_one() {
        let current = CSV.replace("VersionId, IsLatest, IsDeleteMarker, ", "");
        let err = Manifest::parse(current.as_bytes(), "m.json").unwrap_err();
        assert!(
            err.to_string().contains("IncludedObjectVersions=All"),
            "{err}"
        );
        let timeless = CSV.replace("LastModifiedDate, ", "");
        let err = Manifest::parse(timeless.as_bytes(), "m.json").unwrap_err();
        assert!(matches!(err, InventoryError::NoTimes { .. }), "{err}");
        let bare = CSV.replace("Size, ", "").replace(", ETag", "");
        let m = Manifest::parse(bare.as_bytes(), "m.json").unwrap();
        assert_eq!(m.missing(), [Field::Size, Field::ETag]);
        assert!(Manifest::parse(CSV.as_bytes(), "m")
            .unwrap()
            .missing()
            .is_empty());
        let unknown = CSV.replace("\"CSV\"", "\"Avro\"");
        let err = Manifest::parse(unknown.as_bytes(), "m.json").unwrap_err();
        assert!(err.to_string().contains("Avro"), "{err}");
    }
}
