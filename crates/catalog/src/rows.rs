//! The rows a scan hands to the catalog.

/// One object version or delete marker, as S3 listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    /// The full key, decoded.
    pub key: String,
    /// The version id; the literal `null` for objects written before versioning.
    pub version_id: String,
    pub is_marker: bool,
    pub is_latest: bool,
    /// LastModified in whole seconds since the Unix epoch (UTC).
    pub mtime: i64,
    /// Bytes; `None` for delete markers.
    pub size: Option<i64>,
    /// The ETag without its quotes.
    pub etag: Option<String>,
    /// `None` for STANDARD (and for delete markers).
    pub storage_class: Option<String>,
}

/// One ListObjectVersions page of one prefix, and the cursor that follows it.
///
/// `entries` are in listing order: keys ascending, each key's entries newest
/// first. The writer commits the entries and the cursor in one transaction.
#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    /// The cursor's prefix, relative to the scan's base.
    pub prefix: String,
    pub entries: Vec<EntryRow>,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    /// True when S3 said this was the last page of the prefix.
    pub done: bool,
}
