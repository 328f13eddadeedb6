//! The in-memory model: buckets of keys, each with its versions and delete
//! markers in write order, with the semantics of AWS S3 versioning.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::auth::Requester;

/// A version id: 24 bytes, written as 32 characters like AWS's; all zeros
/// is the `null` version of objects written while versioning was off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(pub [u8; 24]);

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";

impl VersionId {
    pub const NULL: VersionId = VersionId([0; 24]);

    /// A fresh id, unique within this process, derived from `n`.
    pub fn from_counter(n: u64, salt: u64) -> VersionId {
        let mut out = [0u8; 24];
        let mut s = n ^ salt.rotate_left(17);
        for chunk in out.chunks_mut(8) {
            s = splitmix64(s);
            chunk.copy_from_slice(&s.to_le_bytes());
        }
        // Keep `n` recoverable in the first 8 bytes so ids never collide.
        out[..8].copy_from_slice(&(n ^ 0xA5A5_A5A5_A5A5_A5A5).to_le_bytes());
        VersionId(out)
    }

    pub fn is_null(&self) -> bool {
        *self == VersionId::NULL
    }

    pub fn encode(&self) -> String {
        if self.is_null() {
            return "null".into();
        }
        let mut s = String::with_capacity(32);
        for chunk in self.0.chunks(3) {
            let v = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
            for shift in [18, 12, 6, 0] {
                s.push(ALPHABET[((v >> shift) & 63) as usize] as char);
            }
        }
        s
    }

    /// Parses an id as written by [`VersionId::encode`]; `None` if malformed.
    pub fn decode(s: &str) -> Option<VersionId> {
        if s == "null" {
            return Some(VersionId::NULL);
        }
        let b = s.as_bytes();
        if b.len() != 32 {
            return None;
        }
        let mut out = [0u8; 24];
        for (i, quad) in b.chunks(4).enumerate() {
            let mut v = 0u32;
            for &c in quad {
                v = (v << 6) | ALPHABET.iter().position(|&a| a == c)? as u32;
            }
            out[i * 3] = (v >> 16) as u8;
            out[i * 3 + 1] = (v >> 8) as u8;
            out[i * 3 + 2] = v as u8;
        }
        let id = VersionId(out);
        (!id.is_null()).then_some(id)
    }
}

pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What an uploaded object carries besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
    /// `None`: STANDARD.
    pub storage_class: Option<String>,
    /// SSE-KMS key id (`None`: SSE-S3).
    pub kms_key_id: Option<String>,
    /// SSE-C: the MD5 (base64) of the customer's key, which every read
    /// must present again.
    pub sse_customer_key_md5: Option<String>,
}

/// An object's content: uploaded bytes, or generated on demand (seeded
/// buckets; 10 million versions would not fit otherwise).
#[derive(Debug, Clone)]
pub enum Content {
    Stored(Arc<Stored>),
    /// `size` bytes generated from `seed`; its ETag is derived from the seed,
    /// not the MD5 of the bytes.
    Synthetic {
        size: u64,
        seed: u64,
    },
}

#[derive(Debug)]
pub struct Stored {
    pub body: Bytes,
    /// Without quotes: MD5 hex, or `<hex>-<parts>` for multipart uploads.
    pub etag: String,
    pub meta: ObjectMeta,
}

impl Content {
    pub fn stored(body: Bytes, meta: ObjectMeta) -> Content {
        let etag = hex::encode(Md5::digest(&body));
        Content::Stored(Arc::new(Stored { body, etag, meta }))
    }

    pub fn size(&self) -> u64 {
        match self {
            Content::Stored(s) => s.body.len() as u64,
            Content::Synthetic { size, .. } => *size,
        }
    }

    pub fn etag(&self) -> String {
        match self {
            Content::Stored(s) => s.etag.clone(),
            Content::Synthetic { seed, .. } => {
                format!(
                    "{:016x}{:016x}",
                    splitmix64(*seed),
                    splitmix64(seed ^ 0xFEED)
                )
            }
        }
    }

    pub fn meta(&self) -> Option<&ObjectMeta> {
        match self {
            Content::Stored(s) => Some(&s.meta),
            Content::Synthetic { .. } => None,
        }
    }

    pub fn storage_class(&self) -> Option<&str> {
        self.meta().and_then(|m| m.storage_class.as_deref())
    }

    /// The bytes in `range` (inclusive start, exclusive end).
    pub fn bytes(&self, range: std::ops::Range<u64>) -> Bytes {
        match self {
            Content::Stored(s) => s.body.slice(range.start as usize..range.end as usize),
            Content::Synthetic { seed, .. } => {
                let pattern = format!("s3sim synthetic object {seed:016x}\n");
                let p = pattern.as_bytes();
                (range.start..range.end)
                    .map(|i| p[(i % p.len() as u64) as usize])
                    .collect::<Vec<u8>>()
                    .into()
            }
        }
    }
}

/// One version or delete marker.
#[derive(Debug, Clone)]
pub struct Entry {
    pub version_id: VersionId,
    /// Unix milliseconds.
    pub mtime_ms: i64,
    /// `None`: a delete marker.
    pub content: Option<Content>,
    /// Who made it (the signed request's principal and the client's
    /// address); `None` for seeded entries. Shared by every entry one
    /// requester makes.
    pub writer: Option<Arc<Requester>>,
}

impl Entry {
    pub fn is_marker(&self) -> bool {
        self.content.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Never,
    Enabled,
    Suspended,
}

/// A multipart upload in progress.
#[derive(Debug)]
pub struct Upload {
    pub key: String,
    pub meta: ObjectMeta,
    /// part number → (bytes, MD5)
    pub parts: BTreeMap<i32, (Bytes, [u8; 16])>,
}

/// A bucket. Each key's entries are kept oldest first (a push is a write).
pub struct Bucket {
    pub versioning: Mutex<Versioning>,
    pub keys: RwLock<BTreeMap<String, Vec<Entry>>>,
    pub uploads: Mutex<HashMap<String, Upload>>,
    pub created: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    NoSuchBucket,
    BucketExists,
    NoSuchKey,
    NoSuchVersion,
    /// The version id is not one this server could have issued.
    InvalidVersionId,
    /// GET of a delete marker by version id.
    MethodNotAllowed,
    NoSuchUpload,
    InvalidPart(String),
    EntityTooSmall,
    InvalidObjectState,
    InvalidArgument(String),
    /// A conditional write whose condition does not hold (HTTP 412).
    PreconditionFailed,
}

/// What a conditional write (If-Match / If-None-Match) requires of the
/// key's current object, checked under the same lock as the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// The current object has this ETag (quotes ignored); no current
    /// object: NoSuchKey, as AWS answers.
    IfMatch(String),
    /// No current object (`If-None-Match: *`).
    IfNoneMatch,
}

/// All buckets.
pub struct Store {
    buckets: RwLock<BTreeMap<String, Arc<Bucket>>>,
    next_id: AtomicU64,
    salt: u64,
}

/// One listed entry.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: Arc<str>,
    pub entry: Entry,
    pub is_latest: bool,
}

/// A ListObjectVersions page.
#[derive(Debug, Default)]
pub struct VersionsPage {
    pub entries: Vec<Listed>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}

/// A ListObjectsV2 page (latest versions that are objects).
#[derive(Debug, Default)]
pub struct ObjectsPage {
    pub objects: Vec<(String, Entry)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key returned (or common prefix), to continue after.
    pub next_after: Option<String>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Default for Store {
    fn default() -> Self {
        Store::new(now_ms() as u64)
    }
}

impl Store {
    pub fn new(salt: u64) -> Store {
        Store {
            buckets: RwLock::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            salt,
        }
    }

    pub fn new_version_id(&self) -> VersionId {
        VersionId::from_counter(self.next_id.fetch_add(1, Ordering::Relaxed), self.salt)
    }

    pub fn bucket(&self, name: &str) -> Result<Arc<Bucket>, StoreError> {
        self.buckets
            .read()
            .expect("not poisoned")
            .get(name)
            .cloned()
            .ok_or(StoreError::NoSuchBucket)
    }

    pub fn bucket_names(&self) -> Vec<(String, SystemTime)> {
        self.buckets
            .read()
            .expect("not poisoned")
            .iter()
            .map(|(n, b)| (n.clone(), b.created))
            .collect()
    }

    pub fn create_bucket(&self, name: &str) -> Result<Arc<Bucket>, StoreError> {
        let mut buckets = self.buckets.write().expect("not poisoned");
        if buckets.contains_key(name) {
            return Err(StoreError::BucketExists);
        }
        let bucket = Arc::new(Bucket {
            versioning: Mutex::new(Versioning::Never),
            keys: RwLock::new(BTreeMap::new()),
            uploads: Mutex::new(HashMap::new()),
            created: SystemTime::now(),
        });
        buckets.insert(name.to_owned(), bucket.clone());
        Ok(bucket)
    }

    /// A new object version (or the `null` one when versioning is off).
    pub fn put(
        &self,
        bucket: &Bucket,
        key: &str,
        content: Content,
        writer: Option<Arc<Requester>>,
    ) -> VersionId {
        self.put_if(bucket, key, content, None, writer)
            .expect("an unconditional write is never refused")
    }

    /// A write that happens only if `condition` holds for the key's
    /// current object.
    pub fn put_if(
        &self,
        bucket: &Bucket,
        key: &str,
        content: Content,
        condition: Option<&Precondition>,
        writer: Option<Arc<Requester>>,
    ) -> Result<VersionId, StoreError> {
        let versioned = *bucket.versioning.lock().expect("not poisoned") == Versioning::Enabled;
        let mut keys = bucket.keys.write().expect("not poisoned");
        if let Some(condition) = condition {
            let current = keys
                .get(key)
                .and_then(|list| list.last())
                .and_then(|e| e.content.as_ref());
            match (condition, current) {
                (Precondition::IfNoneMatch, Some(_)) => return Err(StoreError::PreconditionFailed),
                (Precondition::IfMatch(_), None) => return Err(StoreError::NoSuchKey),
                (Precondition::IfMatch(tag), Some(c))
                    if c.etag().trim_matches('"') != tag.trim_matches('"') =>
                {
                    return Err(StoreError::PreconditionFailed)
                }
                _ => {}
            }
        }
        let id = if versioned {
            self.new_version_id()
        } else {
            VersionId::NULL
        };
        let list = keys.entry(key.to_owned()).or_default();
        if !versioned {
            list.retain(|e| !e.version_id.is_null());
        }
        list.push(Entry {
            version_id: id,
            mtime_ms: now_ms(),
            content: Some(content),
            writer,
        });
        Ok(id)
    }

    /// DeleteObject without a version id: a delete marker on a versioned
    /// bucket; a real removal on one that never was. Returns the marker's id.
    pub fn delete(
        &self,
        bucket: &Bucket,
        key: &str,
        writer: Option<Arc<Requester>>,
    ) -> Option<VersionId> {
        let versioning = *bucket.versioning.lock().expect("not poisoned");
        let mut keys = bucket.keys.write().expect("not poisoned");
        match versioning {
            Versioning::Never => {
                keys.remove(key);
                None
            }
            Versioning::Enabled | Versioning::Suspended => {
                let id = if versioning == Versioning::Enabled {
                    self.new_version_id()
                } else {
                    VersionId::NULL
                };
                let list = keys.entry(key.to_owned()).or_default();
                if id.is_null() {
                    list.retain(|e| !e.version_id.is_null());
                }
                list.push(Entry {
                    version_id: id,
                    mtime_ms: now_ms(),
                    content: None,
                    writer,
                });
                Some(id)
            }
        }
    }

    /// Removes one version or marker for good; returns whether it was a marker.
    pub fn delete_version(
        &self,
        bucket: &Bucket,
        key: &str,
        id: VersionId,
    ) -> Result<bool, StoreError> {
        let mut keys = bucket.keys.write().expect("not poisoned");
        let list = keys.get_mut(key).ok_or(StoreError::NoSuchVersion)?;
        let pos = list
            .iter()
            .position(|e| e.version_id == id)
            .ok_or(StoreError::NoSuchVersion)?;
        let removed = list.remove(pos);
        if list.is_empty() {
            keys.remove(key);
        }
        Ok(removed.is_marker())
    }

    /// The entry GET/HEAD/copy would read.
    pub fn get(
        &self,
        bucket: &Bucket,
        key: &str,
        id: Option<VersionId>,
    ) -> Result<Entry, StoreError> {
        let keys = bucket.keys.read().expect("not poisoned");
        let list = keys.get(key);
        match id {
            None => {
                let e = list.and_then(|l| l.last()).ok_or(StoreError::NoSuchKey)?;
                if e.is_marker() {
                    return Err(StoreError::NoSuchKey);
                }
                Ok(e.clone())
            }
            Some(id) => {
                let e = list
                    .and_then(|l| l.iter().find(|e| e.version_id == id))
                    .ok_or(StoreError::NoSuchVersion)?;
                if e.is_marker() {
                    return Err(StoreError::MethodNotAllowed);
                }
                Ok(e.clone())
            }
        }
    }

    /// The newest entry of a key, marker or not (for 404 headers).
    pub fn newest(&self, bucket: &Bucket, key: &str) -> Option<Entry> {
        bucket
            .keys
            .read()
            .expect("not poisoned")
            .get(key)
            .and_then(|l| l.last().cloned())
    }

    /// Replaces a version's tags.
    pub fn set_tags(
        &self,
        bucket: &Bucket,
        key: &str,
        id: Option<VersionId>,
        tags: Vec<(String, String)>,
    ) -> Result<VersionId, StoreError> {
        let mut keys = bucket.keys.write().expect("not poisoned");
        let list = keys.get_mut(key).ok_or(StoreError::NoSuchKey)?;
        let entry = match id {
            None => list
                .last_mut()
                .filter(|e| !e.is_marker())
                .ok_or(StoreError::NoSuchKey)?,
            Some(id) => list
                .iter_mut()
                .find(|e| e.version_id == id)
                .ok_or(StoreError::NoSuchVersion)?,
        };
        let content = entry.content.as_mut().ok_or(StoreError::MethodNotAllowed)?;
        let (body, etag, mut meta) = match &*content {
            Content::Stored(s) => (s.body.clone(), s.etag.clone(), s.meta.clone()),
            synthetic => (
                synthetic.bytes(0..synthetic.size()),
                synthetic.etag(),
                ObjectMeta::default(),
            ),
        };
        meta.tags = tags;
        *content = Content::Stored(Arc::new(Stored { body, etag, meta }));
        Ok(entry.version_id)
    }

    /// One page of ListObjectVersions, with AWS's marker semantics: a key
    /// marker alone starts after every version of that key; with a version
    /// id marker, after that version.
    pub fn list_versions(
        &self,
        bucket: &Bucket,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        version_id_marker: Option<VersionId>,
        max_keys: usize,
    ) -> Result<VersionsPage, StoreError> {
        if version_id_marker.is_some() && key_marker.is_none_or(str::is_empty) {
            return Err(StoreError::InvalidArgument(
                "A version-id marker cannot be specified without a key marker.".into(),
            ));
        }
        let keys = bucket.keys.read().expect("not poisoned");
        let key_marker = key_marker.filter(|m| !m.is_empty());
        let start: Bound<&str> = match (key_marker, version_id_marker) {
            (Some(m), Some(_)) if m >= prefix => Bound::Included(m),
            (Some(m), None) if m >= prefix => Bound::Excluded(m),
            _ => Bound::Included(prefix),
        };
        let mut page = VersionsPage::default();
        let mut count = 0usize;
        let mut last: Option<(String, Option<VersionId>)> = None;
        for (key, list) in keys.range::<str, _>((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if let (Some(d), false) = (delimiter, d_is_empty(delimiter)) {
                if let Some(pos) = key[prefix.len()..].find(d) {
                    let cp = &key[..prefix.len() + pos + d.len()];
                    if page.common_prefixes.last().map(String::as_str) == Some(cp)
                        || key_marker == Some(cp)
                    {
                        continue;
                    }
                    if count == max_keys {
                        page.is_truncated = true;
                        break;
                    }
                    page.common_prefixes.push(cp.to_owned());
                    count += 1;
                    last = Some((cp.to_owned(), None));
                    continue;
                }
            }
            let shared: Arc<str> = Arc::from(key.as_str());
            let mut entries = list.iter().rev().enumerate();
            if key_marker == Some(key.as_str()) {
                if let Some(marker) = version_id_marker {
                    // Skip up to and including the marker's version.
                    if !list.iter().any(|e| e.version_id == marker) {
                        return Err(StoreError::InvalidArgument(
                            "Invalid version id specified".into(),
                        ));
                    }
                    for (_, e) in entries.by_ref() {
                        if e.version_id == marker {
                            break;
                        }
                    }
                }
            }
            for (i, e) in entries {
                if count == max_keys {
                    page.is_truncated = true;
                    break;
                }
                page.entries.push(Listed {
                    key: shared.clone(),
                    entry: e.clone(),
                    is_latest: i == 0,
                });
                count += 1;
                last = Some((key.clone(), Some(e.version_id)));
            }
            if page.is_truncated {
                break;
            }
        }
        if page.is_truncated {
            if let Some((key, version)) = last {
                page.next_key_marker = Some(key);
                page.next_version_id_marker = version.map(|v| v.encode());
            }
        }
        Ok(page)
    }

    /// One page of ListObjectsV2: keys whose newest entry is an object.
    pub fn list_objects(
        &self,
        bucket: &Bucket,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: usize,
    ) -> ObjectsPage {
        let keys = bucket.keys.read().expect("not poisoned");
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let mut page = ObjectsPage::default();
        let mut count = 0;
        for (key, list) in keys.range::<str, _>((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let Some(latest) = list.last().filter(|e| !e.is_marker()) else {
                continue;
            };
            if let (Some(d), false) = (delimiter, d_is_empty(delimiter)) {
                if let Some(pos) = key[prefix.len()..].find(d) {
                    let cp = &key[..prefix.len() + pos + d.len()];
                    if page.common_prefixes.last().map(String::as_str) == Some(cp)
                        || after.is_some_and(|a| a.starts_with(cp))
                    {
                        continue;
                    }
                    if count == max_keys {
                        page.is_truncated = true;
                        break;
                    }
                    page.common_prefixes.push(cp.to_owned());
                    page.next_after = Some(cp.to_owned());
                    count += 1;
                    continue;
                }
            }
            if count == max_keys {
                page.is_truncated = true;
                break;
            }
            page.objects.push((key.clone(), latest.clone()));
            page.next_after = Some(key.clone());
            count += 1;
        }
        if !page.is_truncated {
            page.next_after = None;
        }
        page
    }

    pub fn create_upload(&self, bucket: &Bucket, key: &str, meta: ObjectMeta) -> String {
        let id = self.new_version_id().encode();
        bucket.uploads.lock().expect("not poisoned").insert(
            id.clone(),
            Upload {
                key: key.to_owned(),
                meta,
                parts: BTreeMap::new(),
            },
        );
        id
    }

    /// Stores a part; returns its ETag (MD5 hex).
    pub fn upload_part(
        &self,
        bucket: &Bucket,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let mut uploads = bucket.uploads.lock().expect("not poisoned");
        let upload = uploads.get_mut(upload_id).ok_or(StoreError::NoSuchUpload)?;
        let md5: [u8; 16] = Md5::digest(&body).into();
        upload.parts.insert(number, (body, md5));
        Ok(hex::encode(md5))
    }

    /// Assembles the listed parts into a new version. Every part but the
    /// last must be at least 5 MiB, as on AWS.
    pub fn complete_upload(
        &self,
        bucket: &Bucket,
        upload_id: &str,
        parts: &[(i32, Option<String>)],
        writer: Option<Arc<Requester>>,
    ) -> Result<(String, VersionId, String), StoreError> {
        const MIN_PART: usize = 5 * 1024 * 1024;
        let upload = {
            let mut uploads = bucket.uploads.lock().expect("not poisoned");
            let upload = uploads.get(upload_id).ok_or(StoreError::NoSuchUpload)?;
            if parts.is_empty() {
                return Err(StoreError::InvalidPart("no parts".into()));
            }
            for (i, (number, etag)) in parts.iter().enumerate() {
                let (body, md5) = upload.parts.get(number).ok_or_else(|| {
                    StoreError::InvalidPart(format!("part {number} was not uploaded"))
                })?;
                if let Some(etag) = etag {
                    if etag.trim_matches('"') != hex::encode(md5) {
                        return Err(StoreError::InvalidPart(format!(
                            "part {number} has another ETag"
                        )));
                    }
                }
                if i + 1 < parts.len() && body.len() < MIN_PART {
                    return Err(StoreError::EntityTooSmall);
                }
            }
            uploads.remove(upload_id).expect("checked above")
        };
        let mut body = Vec::new();
        let mut digests = Vec::new();
        for (number, _) in parts {
            let (bytes, md5) = &upload.parts[number];
            body.extend_from_slice(bytes);
            digests.extend_from_slice(md5);
        }
        let etag = format!("{}-{}", hex::encode(Md5::digest(&digests)), parts.len());
        let content = Content::Stored(Arc::new(Stored {
            body: body.into(),
            etag: etag.clone(),
            meta: upload.meta,
        }));
        let id = self.put(bucket, &upload.key, content, writer);
        Ok((upload.key, id, etag))
    }

    pub fn abort_upload(&self, bucket: &Bucket, upload_id: &str) -> Result<(), StoreError> {
        bucket
            .uploads
            .lock()
            .expect("not poisoned")
            .remove(upload_id)
            .map(drop)
            .ok_or(StoreError::NoSuchUpload)
    }
}

fn d_is_empty(d: Option<&str>) -> bool {
    d.is_none_or(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versioned() -> (Store, Arc<Bucket>) {
        let store = Store::new(7);
        let b = store.create_bucket("b").unwrap();
        *b.versioning.lock().unwrap() = Versioning::Enabled;
        (store, b)
    }

    fn body(s: &str) -> Content {
        Content::stored(Bytes::from(s.to_owned()), ObjectMeta::default())
    }

    #[test]
    fn version_ids_round_trip_and_look_like_aws() {
        let id = VersionId::from_counter(42, 9);
        let s = id.encode();
        assert_eq!(s.len(), 32);
        assert_eq!(VersionId::decode(&s), Some(id));
        assert_eq!(VersionId::decode("null"), Some(VersionId::NULL));
        assert_eq!(VersionId::decode("nonsense"), None);
        assert_ne!(VersionId::from_counter(1, 9), VersionId::from_counter(2, 9));
    }

    #[test]
    fn listing_interleaves_versions_and_markers_newest_first() {
        let (s, b) = versioned();
        let v1 = s.put(&b, "a", body("1"), None);
        let m = s.delete(&b, "a", None).unwrap();
        let v2 = s.put(&b, "a", body("2"), None);
        s.put(&b, "b", body("x"), None);
        let page = s.list_versions(&b, "", None, None, None, 1000).unwrap();
        let got: Vec<(&str, VersionId, bool, bool)> = page
            .entries
            .iter()
            .map(|l| {
                (
                    &*l.key,
                    l.entry.version_id,
                    l.entry.is_marker(),
                    l.is_latest,
                )
            })
            .collect();
        assert_eq!(
            got[..3],
            [
                ("a", v2, false, true),
                ("a", m, true, false),
                ("a", v1, false, false)
            ]
        );
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn markers_continue_where_the_last_page_ended() {
        let (s, b) = versioned();
        for k in ["a", "b", "c"] {
            for i in 0..3 {
                s.put(&b, k, body(&i.to_string()), None);
            }
        }
        let mut seen = Vec::new();
        let (mut km, mut vm) = (None::<String>, None::<VersionId>);
        loop {
            let page = s.list_versions(&b, "", None, km.as_deref(), vm, 2).unwrap();
            seen.extend(
                page.entries
                    .iter()
                    .map(|l| (l.key.to_string(), l.entry.version_id)),
            );
            if !page.is_truncated {
                break;
            }
            km = page.next_key_marker;
            vm = page
                .next_version_id_marker
                .as_deref()
                .and_then(VersionId::decode);
        }
        assert_eq!(seen.len(), 9);
        // A key marker alone skips every version of that key.
        let page = s
            .list_versions(&b, "", None, Some("a"), None, 1000)
            .unwrap();
        assert!(page.entries.iter().all(|l| &*l.key != "a"));
        assert_eq!(page.entries.len(), 6);
        // A version marker needs a key marker.
        assert!(s
            .list_versions(&b, "", None, None, Some(seen[0].1), 10)
            .is_err());
    }

    #[test]
    fn unversioned_and_suspended_buckets_keep_one_null_version() {
        let s = Store::new(1);
        let b = s.create_bucket("b").unwrap();
        s.put(&b, "k", body("1"), None);
        s.put(&b, "k", body("2"), None);
        let page = s.list_versions(&b, "", None, None, None, 10).unwrap();
        assert_eq!(page.entries.len(), 1);
        assert!(page.entries[0].entry.version_id.is_null());
        *b.versioning.lock().unwrap() = Versioning::Enabled;
        s.put(&b, "k", body("3"), None);
        *b.versioning.lock().unwrap() = Versioning::Suspended;
        s.delete(&b, "k", None);
        let page = s.list_versions(&b, "", None, None, None, 10).unwrap();
        // null version replaced by a null marker on top of the enabled-era version.
        assert_eq!(page.entries.len(), 2);
        assert!(page.entries[0].entry.is_marker() && page.entries[0].entry.version_id.is_null());
    }

    #[test]
    fn delimiters_roll_up_common_prefixes() {
        let (s, b) = versioned();
        for k in ["a/1", "a/2", "b/1", "c"] {
            s.put(&b, k, body("x"), None);
        }
        let page = s
            .list_versions(&b, "", Some("/"), None, None, 1000)
            .unwrap();
        assert_eq!(page.common_prefixes, ["a/", "b/"]);
        assert_eq!(page.entries.len(), 1);
        let page = s.list_objects(&b, "", Some("/"), None, 1);
        assert_eq!(page.common_prefixes, ["a/"]);
        assert!(page.is_truncated);
    }

    #[test]
    fn every_entry_keeps_its_writer() {
        use crate::auth::{Principal, Requester};
        let (s, b) = versioned();
        let alice = Arc::new(Requester {
            principal: Arc::new(Principal::root("alice", "111122223333")),
            address: Some("10.0.0.7".parse().unwrap()),
        });
        let bob = Arc::new(Requester {
            principal: Arc::new(Principal::root("bob", "444455556666")),
            address: Some("10.0.0.8".parse().unwrap()),
        });
        let v1 = s.put(&b, "k", body("1"), Some(alice.clone()));
        let marker = s.delete(&b, "k", Some(bob.clone())).unwrap();
        let up = s.create_upload(&b, "k", ObjectMeta::default());
        let e = s.upload_part(&b, &up, 1, Bytes::from_static(b"x")).unwrap();
        let (_, v2, _) = s
            .complete_upload(&b, &up, &[(1, Some(e))], Some(alice.clone()))
            .unwrap();
        // Seeded (or otherwise unattributed) entries have no writer.
        s.put(&b, "seeded", body("s"), None);
        let page = s.list_versions(&b, "", None, None, None, 10).unwrap();
        let writers: Vec<(VersionId, Option<&str>, Option<String>)> = page
            .entries
            .iter()
            .map(|l| {
                let w = l.entry.writer.as_deref();
                (
                    l.entry.version_id,
                    w.map(|w| w.principal.arn.as_str()),
                    w.and_then(|w| w.address).map(|a| a.to_string()),
                )
            })
            .collect();
        assert_eq!(
            writers,
            [
                (
                    v2,
                    Some("arn:aws:iam::111122223333:root"),
                    Some("10.0.0.7".into())
                ),
                (
                    marker,
                    Some("arn:aws:iam::444455556666:root"),
                    Some("10.0.0.8".into())
                ),
                (
                    v1,
                    Some("arn:aws:iam::111122223333:root"),
                    Some("10.0.0.7".into())
                ),
                (page.entries[3].entry.version_id, None, None),
            ]
        );
        assert_eq!(
            s.get(&b, "k", Some(v1))
                .unwrap()
                .writer
                .unwrap()
                .principal
                .account_id,
            "111122223333"
        );
    }

    #[test]
    fn multipart_parts_must_be_big_enough() {
        let (s, b) = versioned();
        let up = s.create_upload(&b, "big", ObjectMeta::default());
        let e1 = s
            .upload_part(&b, &up, 1, Bytes::from(vec![1u8; 10]))
            .unwrap();
        let e2 = s
            .upload_part(&b, &up, 2, Bytes::from(vec![2u8; 10]))
            .unwrap();
        let parts = [(1, Some(e1)), (2, Some(e2))];
        assert_eq!(
            s.complete_upload(&b, &up, &parts, None),
            Err(StoreError::EntityTooSmall)
        );
    }
}
