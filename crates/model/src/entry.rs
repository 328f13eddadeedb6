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
