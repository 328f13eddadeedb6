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
use crate::checksum::{Algorithm, Checksum, UploadChecksum};
use crate::conditions::Precondition;

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
    /// Without quotes: MD5 hex, or `<hex>-<parts>` for multipart uploads;
    /// under SSE-KMS not an MD5 (see `encryption`).
    pub etag: String,
    pub meta: ObjectMeta,
    pub checksum: Checksum,
}

impl Content {
    /// Bytes written in one request with SSE-S3: the MD5 as ETag, the
    /// default CRC64NVME checksum.
    pub fn stored(body: Bytes, meta: ObjectMeta) -> Content {
        let etag = hex::encode(Md5::digest(&body));
        let checksum = Checksum::full(Algorithm::Crc64Nvme, &body);
        Content::Stored(Arc::new(Stored {
            body,
            etag,
            meta,
            checksum,
        }))
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

    /// Whether the ETag is the MD5 of the bytes (a seeded object's seeded
    /// ETag counts as its MD5): what a single-request SSE-S3 copy keeps.
    /// SSE-KMS, SSE-C and multipart ETags are not.
    pub fn etag_is_md5(&self) -> bool {
        match self {
            Content::Stored(s) => {
                s.meta.kms_key_id.is_none()
                    && s.meta.sse_customer_key_md5.is_none()
                    && !s.etag.contains('-')
            }
            Content::Synthetic { .. } => true,
        }
    }

    /// The version's checksum; a seeded object's CRC64NVME is computed
    /// when asked for, so seeding stays as fast as it was.
    pub fn checksum(&self) -> Checksum {
        match self {
            Content::Stored(s) => s.checksum.clone(),
            synthetic => {
                Checksum::full(Algorithm::Crc64Nvme, &synthetic.bytes(0..synthetic.size()))
            }
        }
    }

    /// The checksum if it is at hand (a seeded object's is not computed
    /// until asked for by HeadObject or GetObject).
    pub fn known_checksum(&self) -> Option<&Checksum> {
        match self {
            Content::Stored(s) => Some(&s.checksum),
            Content::Synthetic { .. } => None,
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
    pub parts: BTreeMap<i32, Part>,
    pub checksum: UploadChecksum,
    /// Unix milliseconds.
    pub initiated_ms: i64,
}

/// One uploaded part.
#[derive(Debug)]
pub struct Part {
    pub body: Bytes,
    /// The part's ETag: its MD5, or (SSE-KMS) not.
    pub etag: [u8; 16],
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

/// A ListMultipartUploads page: uploads in progress by key, then by
/// creation.
#[derive(Debug, Default)]
pub struct UploadsPage {
    /// (key, upload id, initiated at, storage class)
    pub uploads: Vec<(String, String, i64, Option<String>)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
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

    /// 16 bytes that are nobody's MD5 (an SSE-KMS ETag), repeatable from
    /// the seed like the version ids.
    pub fn random_tag(&self) -> [u8; 16] {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) ^ self.salt.rotate_left(29);
        let (a, b) = (splitmix64(n), splitmix64(n ^ 0x5EED));
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..].copy_from_slice(&b.to_le_bytes());
        out
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
        Ok(self
            .write(bucket, key, Some(content), condition, None, writer)?
            .expect("an object write makes a version"))
    }

    /// DeleteObject without a version id: a delete marker on a versioned
    /// bucket; a real removal on one that never was. Returns the marker's id.
    pub fn delete(
        &self,
        bucket: &Bucket,
        key: &str,
        writer: Option<Arc<Requester>>,
    ) -> Option<VersionId> {
        self.write(bucket, key, None, None, None, writer)
            .expect("an unconditional delete is never refused")
    }

    /// The one way a new entry is written: an object (`content`) or a
    /// delete marker (`None`), if `condition` holds for the key's current
    /// object, judged under the same lock. `reserved`: the id to give it
    /// on a versioned bucket (one already told to the client), else a
    /// fresh one. `writer`: who made it (`None`: nobody said, as for
    /// seeded entries). Returns the new entry's id; `None` for a delete on
    /// a bucket that was never versioned, which removes the key.
    pub fn write(
        &self,
        bucket: &Bucket,
        key: &str,
        content: Option<Content>,
        condition: Option<&Precondition>,
        reserved: Option<VersionId>,
        writer: Option<Arc<Requester>>,
    ) -> Result<Option<VersionId>, StoreError> {
        let versioning = *bucket.versioning.lock().expect("not poisoned");
        let mut keys = bucket.keys.write().expect("not poisoned");
        if let Some(condition) = condition {
            let current = keys
                .get(key)
                .and_then(|list| list.last())
                .and_then(|e| e.content.as_ref());
            condition.judge(current)?;
        }
        if versioning == Versioning::Never && content.is_none() {
            keys.remove(key);
            return Ok(None);
        }
        let id = match versioning {
            Versioning::Enabled => reserved.unwrap_or_else(|| self.new_version_id()),
            Versioning::Never | Versioning::Suspended => VersionId::NULL,
        };
        let list = keys.entry(key.to_owned()).or_default();
        if id.is_null() {
            list.retain(|e| !e.version_id.is_null());
        }
        list.push(Entry {
            version_id: id,
            mtime_ms: now_ms(),
            content,
            writer,
        });
        Ok(Some(id))
    }

    /// The id [`Store::write`] will give a new entry with `reserved`,
    /// were it made now: what a response sent before the write says.
    pub fn id_to_be(
        &self,
        bucket: &Bucket,
        reserved: VersionId,
        marker: bool,
    ) -> Option<VersionId> {
        match *bucket.versioning.lock().expect("not poisoned") {
            Versioning::Enabled => Some(reserved),
            Versioning::Never if marker => None,
            Versioning::Never | Versioning::Suspended => Some(VersionId::NULL),
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
        let (body, etag, mut meta, checksum) = match &*content {
            Content::Stored(s) => (
                s.body.clone(),
                s.etag.clone(),
                s.meta.clone(),
                s.checksum.clone(),
            ),
            synthetic => (
                synthetic.bytes(0..synthetic.size()),
                synthetic.etag(),
                ObjectMeta::default(),
                synthetic.checksum(),
            ),
        };
        meta.tags = tags;
        *content = Content::Stored(Arc::new(Stored {
            body,
            etag,
            meta,
            checksum,
        }));
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

    pub fn create_upload(
        &self,
        bucket: &Bucket,
        key: &str,
        meta: ObjectMeta,
        checksum: UploadChecksum,
    ) -> String {
        // Ids sort in creation order, so that S3's two rules for a key's
        // uploads (listed by initiation; after the upload id marker,
        // those with "upload IDs lexicographically greater") agree.
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{n:016x}{}", VersionId::from_counter(n, self.salt).encode());
        bucket.uploads.lock().expect("not poisoned").insert(
            id.clone(),
            Upload {
                key: key.to_owned(),
                meta,
                parts: BTreeMap::new(),
                checksum,
                initiated_ms: now_ms(),
            },
        );
        id
    }

    /// Stores a part; returns its ETag (hex): its MD5, or under SSE-KMS
    /// one that is not.
    pub fn upload_part(
        &self,
        bucket: &Bucket,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let mut uploads = bucket.uploads.lock().expect("not poisoned");
        let upload = uploads.get_mut(upload_id).ok_or(StoreError::NoSuchUpload)?;
        let etag: [u8; 16] = if upload.meta.kms_key_id.is_some() {
            self.random_tag()
        } else {
            Md5::digest(&body).into()
        };
        upload.parts.insert(number, Part { body, etag });
        Ok(hex::encode(etag))
    }

    /// Checks a CompleteMultipartUpload's part list against the upload:
    /// every part uploaded, with the ETag given, every part but the last
    /// at least 5 MiB, as on AWS. Returns the completed object's ETag.
    pub fn check_parts(
        &self,
        bucket: &Bucket,
        upload_id: &str,
        parts: &[(i32, Option<String>)],
    ) -> Result<String, StoreError> {
        let uploads = bucket.uploads.lock().expect("not poisoned");
        let upload = uploads.get(upload_id).ok_or(StoreError::NoSuchUpload)?;
        check_parts(upload, parts)
    }

    /// Assembles the listed parts into a new version, if `condition`
    /// holds when it is made (a 412 or 404 leaves the upload in progress;
    /// anything else ends it). `reserved` as in [`Store::write`]. Returns
    /// the key, the new version's id and the completed content.
    pub fn complete_upload(
        &self,
        bucket: &Bucket,
        upload_id: &str,
        parts: &[(i32, Option<String>)],
        condition: Option<&Precondition>,
        reserved: Option<VersionId>,
        writer: Option<Arc<Requester>>,
    ) -> Result<(String, VersionId, Content), StoreError> {
        // Taken out while it completes, so that it completes once.
        let (upload, etag) = {
            let mut uploads = bucket.uploads.lock().expect("not poisoned");
            let upload = uploads.get(upload_id).ok_or(StoreError::NoSuchUpload)?;
            let etag = check_parts(upload, parts)?;
            (uploads.remove(upload_id).expect("checked above"), etag)
        };
        let bodies: Vec<&[u8]> = parts
            .iter()
            .map(|(n, _)| &upload.parts[n].body[..])
            .collect();
        let content = Content::Stored(Arc::new(Stored {
            body: bodies.concat().into(),
            etag,
            meta: upload.meta.clone(),
            checksum: upload.checksum.of(&bodies),
        }));
        match self.write(
            bucket,
            &upload.key,
            Some(content.clone()),
            condition,
            reserved,
            writer,
        ) {
            Ok(id) => Ok((
                upload.key,
                id.expect("an object write makes a version"),
                content,
            )),
            Err(e) => {
                bucket
                    .uploads
                    .lock()
                    .expect("not poisoned")
                    .insert(upload_id.to_owned(), upload);
                Err(e)
            }
        }
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

    /// The key of the upload in progress with this id, if any.
    pub fn upload_key(&self, bucket: &Bucket, upload_id: &str) -> Option<String> {
        let uploads = bucket.uploads.lock().expect("not poisoned");
        uploads.get(upload_id).map(|u| u.key.clone())
    }

    /// One page of ListMultipartUploads, with S3's marker semantics
    /// (API reference, ListMultipartUploads): uploads ordered by key, then
    /// by creation; a key marker alone starts after every upload of that
    /// key; with an upload id marker, the key marker's uploads whose ids
    /// are greater are listed first (an upload id marker without a key
    /// marker is ignored); completed and aborted uploads are not listed.
    pub fn list_uploads(
        &self,
        bucket: &Bucket,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        max_uploads: usize,
    ) -> UploadsPage {
        let mut all: Vec<(String, String, i64, Option<String>)> = {
            let uploads = bucket.uploads.lock().expect("not poisoned");
            uploads
                .iter()
                .filter(|(_, u)| u.key.starts_with(prefix))
                .map(|(id, u)| {
                    (
                        u.key.clone(),
                        id.clone(),
                        u.initiated_ms,
                        u.meta.storage_class.clone(),
                    )
                })
                .collect()
        };
        all.sort_unstable();
        let key_marker = key_marker.filter(|m| !m.is_empty());
        let id_marker = upload_id_marker.filter(|m| !m.is_empty() && key_marker.is_some());
        let mut page = UploadsPage::default();
        let mut count = 0;
        let mut last: Option<(String, Option<String>)> = None;
        for (key, id, initiated, class) in all {
            if let Some(m) = key_marker {
                let past = match id_marker {
                    Some(after) => key.as_str() > m || (key == m && id.as_str() > after),
                    None => key.as_str() > m,
                };
                if !past {
                    continue;
                }
            }
            if let (Some(d), false) = (delimiter, d_is_empty(delimiter)) {
                if let Some(pos) = key[prefix.len()..].find(d) {
                    let cp = &key[..prefix.len() + pos + d.len()];
                    if page.common_prefixes.last().map(String::as_str) == Some(cp)
                        || key_marker.is_some_and(|m| m.starts_with(cp))
                    {
                        continue;
                    }
                    if count == max_uploads {
                        page.is_truncated = true;
                        break;
                    }
                    page.common_prefixes.push(cp.to_owned());
                    last = Some((cp.to_owned(), None));
                    count += 1;
                    continue;
                }
            }
            if count == max_uploads {
                page.is_truncated = true;
                break;
            }
            last = Some((key.clone(), Some(id.clone())));
            page.uploads.push((key, id, initiated, class));
            count += 1;
        }
        if page.is_truncated {
            if let Some((key, id)) = last {
                page.next_key_marker = Some(key);
                page.next_upload_id_marker = id;
            }
        }
        page
    }
}

/// The completed object's ETag (the MD5 of its parts' ETags, `-<parts>`),
/// if `parts` may complete `upload`.
fn check_parts(upload: &Upload, parts: &[(i32, Option<String>)]) -> Result<String, StoreError> {
    const MIN_PART: usize = 5 * 1024 * 1024;
    if parts.is_empty() {
        return Err(StoreError::InvalidPart("no parts".into()));
    }
    for (i, (number, etag)) in parts.iter().enumerate() {
        let part = upload
            .parts
            .get(number)
            .ok_or_else(|| StoreError::InvalidPart(format!("part {number} was not uploaded")))?;
        if let Some(etag) = etag {
            if etag.trim_matches('"') != hex::encode(part.etag) {
                return Err(StoreError::InvalidPart(format!(
                    "part {number} has another ETag"
                )));
            }
        }
        if i + 1 < parts.len() && part.body.len() < MIN_PART {
            return Err(StoreError::EntityTooSmall);
        }
    }
    let mut digests = Md5::new();
    for (number, _) in parts {
        digests.update(upload.parts[number].etag);
    }
    Ok(format!(
        "{}-{}",
        hex::encode(digests.finalize()),
        parts.len()
    ))
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
        let up = s.create_upload(&b, "k", ObjectMeta::default(), UploadChecksum::default());
        let e = s.upload_part(&b, &up, 1, Bytes::from_static(b"x")).unwrap();
        let (_, v2, _) = s
            .complete_upload(&b, &up, &[(1, Some(e))], None, None, Some(alice.clone()))
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
        let up = s.create_upload(&b, "big", ObjectMeta::default(), UploadChecksum::default());
        let e1 = s
            .upload_part(&b, &up, 1, Bytes::from(vec![1u8; 10]))
            .unwrap();
        let e2 = s
            .upload_part(&b, &up, 2, Bytes::from(vec![2u8; 10]))
            .unwrap();
        let parts = [(1, Some(e1)), (2, Some(e2))];
        assert_eq!(
            s.complete_upload(&b, &up, &parts, None, None, None)
                .map(|_| ()),
            Err(StoreError::EntityTooSmall)
        );
    }
}
