/// One object version or delete marker, as a listing of the bucket gave it:
/// the one row type from ListObjectVersions to the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The full key, decoded.
    pub key: String,
    /// The version id; the literal `null` for objects written before versioning.
    pub version_id: String,
    pub is_marker: bool,
    /// IsLatest, as S3 reported it when listed.
    pub is_latest: bool,
    /// LastModified in whole seconds since the Unix epoch (UTC).
    pub mtime: i64,
    /// Bytes; `None` for delete markers.
    pub size: Option<i64>,
    /// The ETag without its quotes; `None` for delete markers.
    pub etag: Option<String>,
    /// `None` for STANDARD (and for delete markers).
    pub storage_class: Option<String>,
}

/// An [`Entry`] whose text is borrowed from wherever it lives: a batch of
/// an inventory report's rows, say, read without a string per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub key: &'a str,
    pub version_id: &'a str,
    pub is_marker: bool,
    pub is_latest: bool,
    pub mtime: i64,
    pub size: Option<i64>,
    pub etag: Option<&'a str>,
    pub storage_class: Option<&'a str>,
}

impl Entry {
    pub fn borrowed(&self) -> EntryRef<'_> {
        EntryRef {
            key: &self.key,
            version_id: &self.version_id,
            is_marker: self.is_marker,
            is_latest: self.is_latest,
            mtime: self.mtime,
            size: self.size,
            etag: self.etag.as_deref(),
            storage_class: self.storage_class.as_deref(),
        }
    }
}

impl EntryRef<'_> {
    pub fn to_entry(&self) -> Entry {
        Entry {
            key: self.key.to_owned(),
            version_id: self.version_id.to_owned(),
            is_marker: self.is_marker,
            is_latest: self.is_latest,
            mtime: self.mtime,
            size: self.size,
            etag: self.etag.map(str::to_owned),
            storage_class: self.storage_class.map(str::to_owned),
        }
    }
}
