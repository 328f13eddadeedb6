//! ListObjectVersions responses: parsed from the raw XML, and checked.
//!
//! The SDK splits a page into a list of versions and a list of delete markers,
//! which loses the order in which S3 interleaved them. We read the XML
//! ourselves so the order S3 gave is kept, then put each key's entries in
//! newest-first order: each list keeps S3's order, and the two lists are merged
//! by LastModified, ties going to the entry S3 marked IsLatest and then to the
//! one S3 listed first. (AWS interleaves the lists already; some servers, such
//! as moto, write every version of a page before every delete marker.)
//!
//! A reply is a ListVersionsResult or an error, never "nothing": an `<Error>`
//! document (some proxies send one with HTTP 200) is that error, and any
//! other document, a page whose markers do not move forward, or an entry
//! that is not one (no key, a negative size, listed twice, outside the
//! request's prefix or before its marker) is refused ([`check_page`]).
//!
//! A page's NextKeyMarker is checked against the page itself: S3 sets it to
//! the last key listed (and NextVersionIdMarker to that key's last version
//! listed), so a marker that is not the page's last key is refused rather
//! than followed — following it would skip keys or list them again,
//! silently. Servers differ in how they encode it: Amazon S3 and MinIO
//! URL-encode it like the keys (MinIO writes `EncodingType` after the
//! entries, so it is known only once the whole page is read); older Ceph
//! RGW writes it raw while the keys are encoded (`rgw_rest_s3.cc`,
//! `send_versioned_response`). The page's last key, read either way,
//! settles which it is.

use std::borrow::Cow;
use std::collections::HashSet;

use model::time::parse_s3_timestamp;
use model::Entry;

use crate::urlcode::decode_url_component;
use crate::xml::{element_text, unescape, Reader, Token};
use crate::S3Error;

const OPERATION: &str = "ListObjectVersions";

/// One page of ListObjectVersions, keys and markers decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Keys ascending; each key's entries newest first.
    pub entries: Vec<Entry>,
    pub is_truncated: bool,
    /// The page's last key (or rolled-up prefix) when it is truncated:
    /// checked against the page, decoded as the server encoded it.
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    /// Whether the server honoured `EncodingType=url`.
    pub url_encoded: bool,
    /// With a delimiter: the prefixes rolled up (decoded).
    pub common_prefixes: Vec<String>,
}

/// Where a listing request starts: what its page is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub prefix: String,
    pub key_marker: Option<String>,
    pub version_id_marker: Option<String>,
    /// Roll keys up to the first `delimiter` after the prefix.
    pub delimiter: Option<String>,
}

impl ListRequest {
    /// The request for the page after `page`, which answered this one.
    /// Refuses a page whose markers do not move forward: following them
    /// would list the same entries again, for ever.
    pub fn after(&self, page: &ListPage) -> Result<ListRequest, S3Error> {
        let invalid = |what: String| S3Error::invalid(OPERATION, what);
        let key = match page.next_key_marker.as_deref() {
            Some(k) if !k.is_empty() => k,
            _ => {
                return Err(invalid(format!(
                    "a truncated page of prefix {:?} without a NextKeyMarker",
                    self.prefix
                )))
            }
        };
        let version = page
            .next_version_id_marker
            .as_deref()
            .filter(|v| !v.is_empty());
        let here = (
            self.key_marker.as_deref(),
            self.version_id_marker.as_deref(),
        );
        let forward = match here.0 {
            None => true,
            Some(k) => key > k || (key == k && version.is_some() && version != here.1),
        };
        if !forward {
            return Err(invalid(format!(
                "the page after key marker {:?} says to continue at {key:?}, which is not further on",
                here.0.unwrap_or_default()
            )));
        }
        Ok(ListRequest {
            prefix: self.prefix.clone(),
            key_marker: Some(key.to_owned()),
            version_id_marker: version.map(str::to_owned),
            delimiter: self.delimiter.clone(),
        })
    }
}

/// Refuses entries a listing of `request` cannot hold: with a NUL in the
/// key, outside the prefix, before the marker, or listed twice (also
/// `previous`, the last entry of the page before). Entries without a key
/// or of negative size never get this far (see [`parse_list_versions`]).
pub fn check_page(
    page: &ListPage,
    request: &ListRequest,
    previous: Option<(&str, &str)>,
) -> Result<(), S3Error> {
    let invalid = |what: String| S3Error::invalid(OPERATION, what);
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(page.entries.len());
    if let Some(p) = previous {
        seen.insert(p);
    }
    for e in &page.entries {
        if e.key.is_empty() {
            return Err(invalid("an entry without a key".into()));
        }
        if e.key.contains('\0') {
            return Err(invalid(format!(
                "the key {:?} holds a NUL character",
                e.key
            )));
        }
        if !e.key.starts_with(&request.prefix) {
            return Err(invalid(format!(
                "the key {:?} is outside the requested prefix {:?}",
                e.key, request.prefix
            )));
        }
        if let Some(marker) = &request.key_marker {
            let continues = request.version_id_marker.is_some() && e.key == *marker;
            if e.key.as_str() < marker.as_str() || (e.key == *marker && !continues) {
                return Err(invalid(format!(
                    "the key {:?} comes before the key marker {marker:?}",
                    e.key
                )));
            }
        }
        if !seen.insert((&e.key, &e.version_id)) {
            return Err(invalid(format!(
                "version {} of {:?} is listed twice",
                e.version_id, e.key
            )));
        }
    }
    Ok(())
}

/// Parses a ListVersionsResult document; `bucket` names the bucket in
/// the error an `<Error>` document stands for.
pub fn parse_list_versions(xml: &[u8], bucket: &str) -> Result<ListPage, S3Error> {
    PageParser::new(xml, false)?
        .run(bucket)
        .map(|(page, _)| page)
}

/// A page's paging fields, read without parsing its entries — when the
/// document gives them before its first entry, as AWS and s3sim do. `None`
/// otherwise: parse the whole page to find them. Also `None` when the
/// NextKeyMarker would read differently URL-decoded and the document has
/// not said yet whether it encodes (MinIO says so after the entries). The
/// header is a guess to start the next request early: the whole page, its
/// marker checked against its last key, is what the next request is made
/// from (see `VersionPager`).
pub fn parse_list_header(xml: &[u8]) -> Option<ListPage> {
    match PageParser::new(xml, true).ok()?.run("") {
        Ok((page, true))
            if page.url_encoded
                || !page
                    .next_key_marker
                    .as_deref()
                    .is_some_and(might_be_encoded) =>
        {
            Some(page)
        }
        _ => None,
    }
}

/// Whether URL-decoding `text` could change it.
fn might_be_encoded(text: &str) -> bool {
    memchr::memchr2(b'%', b'+', text.as_bytes()).is_some()
}

/// How much of a page [`parse_list_header`] reads: room for the longest
/// markers and prefix S3 allows, URL-encoded, and then some.
const HEADER_BYTES: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    None,
    IsTruncated,
    NextKeyMarker,
    NextVersionIdMarker,
    EncodingType,
    Key,
    VersionId,
    IsLatest,
    LastModified,
    ETag,
    Size,
    StorageClass,
    CommonPrefix,
}

/// An entry as read, its text still borrowed from the page.
#[derive(Default)]
struct RawEntry<'a> {
    key: Cow<'a, str>,
    version_id: Cow<'a, str>,
    is_marker: bool,
    is_latest: bool,
    mtime: Option<i64>,
    size: Option<i64>,
    etag: Option<Cow<'a, str>>,
    storage_class: Option<Cow<'a, str>>,
}

/// One pass over a page's document.
struct PageParser<'a> {
    doc: &'a str,
    reader: Reader<'a>,
    /// Stop at the first entry: only the paging fields are wanted.
    header_only: bool,
    page: ListPage,
    entries: Vec<Entry>,
    /// The entry being read.
    entry: Option<RawEntry<'a>>,
    /// The field whose text is being read, when it comes in pieces.
    field: Field,
    text: Cow<'a, str>,
    depth: usize,
    saw_truncated: bool,
    /// Inside `<CommonPrefixes>`.
    in_prefixes: bool,
}

fn unreadable(what: String) -> S3Error {
    S3Error::malformed(OPERATION, what)
}

impl<'a> PageParser<'a> {
    fn new(xml: &'a [u8], header_only: bool) -> Result<Self, S3Error> {
        // The paging fields come first: only the start of the page is read for them.
        let xml = match header_only {
            true => &xml[..xml.len().min(HEADER_BYTES)],
            false => xml,
        };
        let doc = match std::str::from_utf8(xml) {
            Ok(doc) => doc,
            // Cut inside a character: the whole before it is enough.
            Err(e) if header_only && e.error_len().is_none() => {
                std::str::from_utf8(&xml[..e.valid_up_to()]).expect("valid up to here")
            }
            Err(e) => return Err(unreadable(format!("not UTF-8 at byte {}", e.valid_up_to()))),
        };
        Ok(PageParser {
            doc,
            reader: Reader::new(doc),
            header_only,
            page: ListPage::default(),
            entries: Vec::new(),
            entry: None,
            field: Field::None,
            text: Cow::Borrowed(""),
            depth: 0,
            saw_truncated: false,
            in_prefixes: false,
        })
    }

    /// The page, and whether IsTruncated was read (before the first entry,
    /// when `header_only`).
    fn run(mut self, bucket: &str) -> Result<(ListPage, bool), S3Error> {
        self.root(bucket)?;
        loop {
            let at = self.reader.position();
            let token = self
                .reader
                .next_token()
                .map_err(|e| unreadable(format!("invalid XML: {e}")))?;
            match token {
                Some(Token::Start(name)) => {
                    if !self.start(name, at)? {
                        break;
                    }
                }
                Some(Token::Text(_) | Token::CData(_)) if self.field == Field::None => {}
                Some(Token::Text(t)) => {
                    let t = match self.text.is_empty() {
                        true => resolve(self.field, t),
                        false => unescape(t),
                    };
                    let t = t.map_err(|e| unreadable(format!("at byte {at}: {e}")))?;
                    append(&mut self.text, t);
                }
                Some(Token::CData(t)) => append(&mut self.text, Cow::Borrowed(t)),
                Some(Token::Empty(_)) => self.field = Field::None,
                Some(Token::End) => self.end(at)?,
                None if self.depth > 0 => {
                    return Err(unreadable("the document ends inside an element".into()))
                }
                None => break,
            }
        }
        self.finish()
    }

    /// The document element: a ListVersionsResult, or an S3 error.
    fn root(&mut self, bucket: &str) -> Result<(), S3Error> {
        loop {
            let token = self
                .reader
                .next_token()
                .map_err(|e| unreadable(format!("invalid XML: {e}")))?;
            match token {
                Some(Token::Start("ListVersionsResult")) => {
                    self.depth = 1;
                    return Ok(());
                }
                Some(Token::Start("Error")) if !self.header_only => {
                    let field = |name| element_text(self.doc.as_bytes(), name).unwrap_or_default();
                    let (code, message) = (field("Code"), field("Message"));
                    if code.is_empty() {
                        return Err(S3Error::invalid(
                            OPERATION,
                            "an <Error> document without a Code".into(),
                        ));
                    }
                    return Err(S3Error::from_code(
                        OPERATION,
                        &code,
                        Some(200),
                        &message,
                        bucket,
                    ));
                }
                Some(Token::Start(other) | Token::Empty(other)) => {
                    return Err(S3Error::invalid(
                        OPERATION,
                        format!("a <{other}> document, not a ListVersionsResult"),
                    ))
                }
                Some(Token::Text(t)) if t.trim().is_empty() => {}
                Some(_) => {
                    return Err(S3Error::invalid(
                        OPERATION,
                        "text outside any element, not a ListVersionsResult".into(),
                    ))
                }
                None => return Err(S3Error::invalid(OPERATION, "an empty document".into())),
            }
        }
    }

    /// A start tag at byte `at`; false: stop reading (the header is read).
    fn start(&mut self, name: &'a str, at: usize) -> Result<bool, S3Error> {
        self.depth += 1;
        self.text = Cow::Borrowed("");
        self.field = match (self.depth, self.entry.is_some()) {
            (2, false) => match name {
                "IsTruncated" => Field::IsTruncated,
                "NextKeyMarker" => Field::NextKeyMarker,
                "NextVersionIdMarker" => Field::NextVersionIdMarker,
                "EncodingType" => Field::EncodingType,
                "Version" | "DeleteMarker" if self.header_only => return Ok(false),
                "CommonPrefixes" => {
                    self.in_prefixes = true;
                    return Ok(true);
                }
                "Version" | "DeleteMarker" => {
                    self.entry = Some(RawEntry {
                        is_marker: name == "DeleteMarker",
                        ..RawEntry::default()
                    });
                    return Ok(true);
                }
                _ => Field::None,
            },
            (3, false) if self.in_prefixes && name == "Prefix" => Field::CommonPrefix,
            (3, true) => match name {
                "Key" => Field::Key,
                "VersionId" => Field::VersionId,
                "IsLatest" => Field::IsLatest,
                "LastModified" => Field::LastModified,
                "ETag" => Field::ETag,
                "Size" => Field::Size,
                "StorageClass" => Field::StorageClass,
                _ => Field::None,
            },
            _ => Field::None,
        };
        if self.field != Field::None {
            // Nearly every field is plain text up to its end tag: read it in one step.
            if let Some(text) = self.reader.simple_text() {
                let value = match text.has_refs {
                    true => resolve(self.field, text.raw)
                        .map_err(|e| unreadable(format!("at byte {at}: {e}")))?,
                    false => Cow::Borrowed(text.raw),
                };
                self.store(value)?;
                self.field = Field::None;
                self.depth -= 1;
            }
        } else {
            // An element not read (Owner, Name, MaxKeys…): past it in one step.
            self.reader
                .skip_element()
                .map_err(|e| unreadable(format!("invalid XML: {e}")))?;
            self.depth -= 1;
        }
        Ok(true)
    }

    /// An end tag at byte `at`.
    fn end(&mut self, at: usize) -> Result<(), S3Error> {
        let value = std::mem::take(&mut self.text);
        match (self.depth, self.entry.is_some()) {
            (2, true) => {
                let raw = self.entry.take().expect("an entry is being read");
                let entry = finish_entry(raw).map_err(|e| S3Error::invalid(OPERATION, e))?;
                self.entries.push(entry);
            }
            (2, false) if self.in_prefixes => self.in_prefixes = false,
            (2, false) | (3, true) => self.store(value)?,
            (3, false) if self.field == Field::CommonPrefix => self.store(value)?,
            _ => {}
        }
        self.field = Field::None;
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or_else(|| unreadable(format!("an end tag without a start at byte {at}")))?;
        Ok(())
    }

    /// Puts a field's value where it belongs: in the page's paging fields,
    /// or in the entry being read.
    fn store(&mut self, value: Cow<'a, str>) -> Result<(), S3Error> {
        let invalid = |what: String| S3Error::invalid(OPERATION, what);
        let Some(entry) = self.entry.as_mut() else {
            match self.field {
                Field::IsTruncated => {
                    self.page.is_truncated = value.trim_ascii() == "true";
                    self.saw_truncated = true;
                }
                Field::NextKeyMarker => self.page.next_key_marker = Some(value.into_owned()),
                Field::NextVersionIdMarker => {
                    self.page.next_version_id_marker = Some(value.into_owned())
                }
                Field::EncodingType => self.page.url_encoded = value.trim_ascii() == "url",
                Field::CommonPrefix => self.page.common_prefixes.push(value.into_owned()),
                _ => {}
            }
            return Ok(());
        };
        match self.field {
            Field::Key => entry.key = value,
            Field::VersionId => entry.version_id = value,
            Field::IsLatest => entry.is_latest = value.trim_ascii() == "true",
            Field::LastModified => {
                entry.mtime =
                    Some(parse_s3_timestamp(value.trim_ascii()).ok_or_else(|| {
                        invalid(format!("LastModified {value:?} is not a timestamp"))
                    })?)
            }
            Field::ETag => entry.etag = Some(trim_etag(value)),
            Field::Size => {
                entry.size = Some(
                    value
                        .trim_ascii()
                        .parse()
                        .map_err(|_| invalid(format!("Size {value:?} is not a number")))?,
                )
            }
            Field::StorageClass if value.trim_ascii() != "STANDARD" => {
                entry.storage_class = Some(Cow::Owned(value.trim_ascii().to_owned()))
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(ListPage, bool), S3Error> {
        if !self.saw_truncated && !self.header_only {
            return Err(S3Error::invalid(
                OPERATION,
                "a ListVersionsResult without IsTruncated".into(),
            ));
        }
        // Decoded once every entry is in: a page may say it encodes keys
        // after its first entries.
        let mut raw_marker = None;
        if self.page.url_encoded {
            for entry in &mut self.entries {
                entry.key = decode_key(std::mem::take(&mut entry.key)).map_err(unreadable)?;
            }
            if let Some(marker) = self.page.next_key_marker.take() {
                let decoded = decode_key(marker.clone());
                if !matches!(&decoded, Ok(d) if *d == marker) {
                    raw_marker = Some(marker);
                }
                // A raw marker need not be valid URL-encoding: it is
                // settled against the last key below.
                self.page.next_key_marker = decoded.ok().or_else(|| raw_marker.clone());
            }
            for prefix in &mut self.page.common_prefixes {
                *prefix = decode_key(std::mem::take(prefix)).map_err(unreadable)?;
            }
        }
        self.page.entries = newest_first_per_key(self.entries);
        if !self.header_only && self.page.is_truncated {
            settle_next_markers(&mut self.page, raw_marker)?;
        }
        Ok((self.page, self.saw_truncated))
    }
}

/// Checks a truncated page's NextKeyMarker against what the page listed
/// last, and settles how the server encoded it (`raw`: the marker as
/// written, when decoding changed it). Refuses a marker that is neither
/// encoding of the last key, and a NextVersionIdMarker that names no entry
/// of that key on the page: following either would skip entries or list
/// them again.
fn settle_next_markers(page: &mut ListPage, raw: Option<String>) -> Result<(), S3Error> {
    let invalid = |what: String| S3Error::invalid(OPERATION, what);
    let Some(marker) = page.next_key_marker.as_deref().filter(|m| !m.is_empty()) else {
        return Ok(()); // none, or empty: refused by `ListRequest::after`, which says so
    };
    let last_entry = page.entries.last().map(|e| e.key.as_str());
    let last_prefix = page.common_prefixes.last().map(String::as_str);
    let Some(last) = last_entry.max(last_prefix) else {
        // Nothing listed to check it against: following the marker would
        // skip whatever lies before it, unseen (S3 never sends such a page).
        return Err(invalid(format!(
            "a truncated page lists nothing but says to go on after {:?}: following it could skip keys nobody saw, and where to go on cannot be told",
            raw.as_deref().unwrap_or(marker)
        )));
    };
    if marker != last {
        match raw {
            // Written raw while the keys are encoded (older Ceph RGW).
            Some(raw) if raw == last => page.next_key_marker = Some(raw),
            _ => {
                return Err(invalid(format!(
                    "NextKeyMarker {marker:?}{} is not the page's last key {last:?}",
                    raw.map_or(String::new(), |r| format!(" (as written: {r:?})"))
                )))
            }
        }
    }
    if last_entry == Some(last) {
        let version = page.next_version_id_marker.as_deref().unwrap_or("");
        let mut of_last = page.entries.iter().rev().take_while(|e| e.key == last);
        if !of_last.any(|e| e.version_id == version) {
            return Err(invalid(format!(
                "NextVersionIdMarker {version:?} is not a version of the page's last key {last:?} listed on the page"
            )));
        }
    }
    Ok(())
}

/// A finished entry, its key as listed.
fn finish_entry(r: RawEntry<'_>) -> Result<Entry, String> {
    if r.key.is_empty() {
        return Err("an entry without a key".into());
    }
    let mtime = r
        .mtime
        .ok_or_else(|| format!("an entry of key {:?} has no LastModified", r.key))?;
    if r.version_id.is_empty() {
        return Err(format!("an entry of key {:?} has no VersionId", r.key));
    }
    if r.size.is_some_and(|s| s < 0) {
        return Err(format!(
            "version {} of {:?} has a negative size",
            r.version_id, r.key
        ));
    }
    let object = !r.is_marker;
    Ok(Entry {
        key: r.key.into_owned(),
        version_id: r.version_id.into_owned(),
        is_marker: r.is_marker,
        is_latest: r.is_latest,
        mtime,
        size: object.then(|| r.size.unwrap_or(0)),
        etag: r.etag.filter(|_| object).map(Cow::into_owned),
        storage_class: r.storage_class.filter(|_| object).map(Cow::into_owned),
    })
}

/// A key (or key marker) of a page that URL-encodes them, decoded.
fn decode_key(key: String) -> Result<String, String> {
    match decode_url_component(&key) {
        Some(Cow::Borrowed(_)) => Ok(key),
        Some(Cow::Owned(decoded)) => Ok(decoded),
        None => Err(format!("the key {key:?} is not valid URL-encoded UTF-8")),
    }
}

/// Adds a piece of an element's text (text split by CDATA or comments).
fn append<'a>(text: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if text.is_empty() {
        *text = piece;
    } else {
        text.to_mut().push_str(&piece);
    }
}

/// An element's text with its references resolved. Quotes around an ETag
/// are nearly always written `&quot;`: they are dropped first rather than
/// resolved into a new string.
fn resolve(field: Field, raw: &str) -> Result<Cow<'_, str>, String> {
    match field {
        Field::ETag => {
            let t = raw.trim_ascii();
            unescape(
                t.strip_prefix("&quot;")
                    .and_then(|t| t.strip_suffix("&quot;"))
                    .unwrap_or(t),
            )
        }
        _ => unescape(raw),
    }
}

/// An ETag without its surrounding whitespace and quotes.
fn trim_etag(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_ascii().trim_matches('"')),
        Cow::Owned(s) => Cow::Owned(s.trim_ascii().trim_matches('"').to_owned()),
    }
}

/// Orders a page's keys ascending, as S3 lists them, and each key's entries
/// newest first (see the module comment). A server that lists every version
/// before every delete marker gives keys out of order across the two lists;
/// a range scan stops at the first key past its bound, so the order matters.
fn newest_first_per_key(entries: Vec<Entry>) -> Vec<Entry> {
    // Keys ascending and each key newest first already (AWS, s3sim): then
    // merging would give the same order back.
    let in_order = entries.windows(2).all(|w| match w[0].key.cmp(&w[1].key) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Equal => !newer(&w[1], 1, &w[0], 0),
        std::cmp::Ordering::Greater => false,
    });
    if in_order {
        return entries;
    }
    let mut listed: Vec<usize> = (0..entries.len()).collect();
    listed.sort_by(|&a, &b| entries[a].key.cmp(&entries[b].key)); // stable: S3's order within a key
    let mut order = Vec::with_capacity(entries.len());
    for run in listed.chunk_by(|&a, &b| entries[a].key == entries[b].key) {
        let (versions, markers): (Vec<usize>, Vec<usize>) =
            run.iter().partition(|&&i| !entries[i].is_marker);
        let (mut v, mut m) = (versions.as_slice(), markers.as_slice());
        while let (Some(&vi), Some(&mi)) = (v.first(), m.first()) {
            if newer(&entries[mi], mi, &entries[vi], vi) {
                order.push(mi);
                m = &m[1..];
            } else {
                order.push(vi);
                v = &v[1..];
            }
        }
        order.extend_from_slice(v);
        order.extend_from_slice(m);
    }
    if order.iter().enumerate().all(|(pos, &i)| pos == i) {
        return entries;
    }
    let mut slots: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("every index once"))
        .collect()
}

/// Whether `a` (listed at position `ai`) goes before `b` (at `bi`) in
/// newest-first order.
fn newer(a: &Entry, ai: usize, b: &Entry, bi: usize) -> bool {
    (a.mtime, a.is_latest, std::cmp::Reverse(ai)) > (b.mtime, b.is_latest, std::cmp::Reverse(bi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn version(key: &str, id: &str, latest: bool, t: &str) -> String {
        format!(
            "<Version><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>{latest}</IsLatest>\
             <LastModified>{t}</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>\
             <Size>3</Size><Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Version>"
        )
    }

    fn marker(key: &str, id: &str, latest: bool, t: &str) -> String {
        format!(
            "<DeleteMarker><Owner><ID>x</ID></Owner><Key>{key}</Key><VersionId>{id}</VersionId>\
             <IsLatest>{latest}</IsLatest><LastModified>{t}</LastModified></DeleteMarker>"
        )
    }

    fn doc(encoding: &str, body: &str, truncated: bool) -> Vec<u8> {
        paged(encoding, body, truncated.then_some(("a%2Bb+c", "null")), "")
    }

    /// A page continued at `next` (key and version marker as written), and
    /// `after` written after its entries (MinIO's EncodingType).
    fn paged(encoding: &str, body: &str, next: Option<(&str, &str)>, after: &str) -> Vec<u8> {
        let markers = next.map_or(String::new(), |(k, v)| {
            format!(
                "<NextKeyMarker>{k}</NextKeyMarker><NextVersionIdMarker>{v}</NextVersionIdMarker>"
            )
        });
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Name>b</Name><Prefix></Prefix>{encoding}<IsTruncated>{}</IsTruncated>\
             {markers}{body}{after}</ListVersionsResult>",
            next.is_some()
        )
        .into_bytes()
    }

    const T1: &str = "2024-05-01T00:00:01.000Z";
    const T2: &str = "2024-05-01T00:00:02.000Z";

    #[test]
    fn decodes_keys_and_markers_only_when_the_server_encoded_them() {
        let body = version("a%2Bb+c%0A", "null", true, T1);
        let page = parse_list_versions_b(&paged(
            "<EncodingType>url</EncodingType>",
            &body,
            Some(("a%2Bb+c%0A", "null")),
            "",
        ))
        .unwrap();
        assert!(page.url_encoded && page.is_truncated);
        assert_eq!(page.entries[0].key, "a+b c\n");
        assert_eq!(page.next_key_marker.as_deref(), Some("a+b c\n"));
        assert_eq!(page.next_version_id_marker.as_deref(), Some("null"));
        assert_eq!(
            page.entries[0].etag.as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(page.entries[0].storage_class, None);

        let page =
            parse_list_versions_b(&doc("", &version("a%2Bb &amp; c", "v1", true, T1), false))
                .unwrap();
        assert!(!page.url_encoded && !page.is_truncated);
        assert_eq!(page.entries[0].key, "a%2Bb & c");
    }

    #[test]
    fn a_next_key_marker_is_the_pages_last_key_in_the_encoding_the_server_used() {
        let url = "<EncodingType>url</EncodingType>";
        let body = [
            version("k%2541", "v2", false, T2),
            version("k%2541", "v1", false, T1),
        ]
        .concat();
        // Older Ceph RGW: the keys encoded, the marker raw.
        let ceph = paged(url, &body, Some(("k%41", "v1")), "");
        let page = parse_list_versions_b(&ceph).unwrap();
        assert_eq!(page.entries[0].key, "k%41");
        assert_eq!(page.next_key_marker.as_deref(), Some("k%41"));
        // Read as encoded, the header would say "kA": too early to know,
        // and it is only a guess the whole page is checked against.
        assert_eq!(
            parse_list_header(&ceph).unwrap().next_key_marker.as_deref(),
            Some("kA")
        );
        // MinIO: EncodingType after the entries.
        let minio = paged("", &body, Some(("k%2541", "v1")), url);
        assert_eq!(
            parse_list_versions_b(&minio)
                .unwrap()
                .next_key_marker
                .as_deref(),
            Some("k%41")
        );
        assert!(parse_list_header(&minio).is_none());
        let plain = paged("", &version("k", "v1", true, T1), Some(("k", "v1")), url);
        assert_eq!(
            parse_list_header(&plain)
                .unwrap()
                .next_key_marker
                .as_deref(),
            Some("k")
        );
        // A marker past the last key, before it, or a version not listed.
        for (key, version) in [("l", "v1"), ("kA", "v1"), ("k%2541", "v0"), ("k%41", "v3")] {
            let e =
                parse_list_versions_b(&paged(url, &body, Some((key, version)), "")).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{key} {version}: {e}");
        }
        // Nothing listed, yet more to come: no marker can be trusted.
        for marker in ["k", "k%41"] {
            let e = parse_list_versions_b(&paged(url, "", Some((marker, "v")), "")).unwrap_err();
            assert!(e.to_string().contains("cannot be told"), "{marker}: {e}");
        }
        // With a delimiter, the last rolled-up prefix.
        let prefixes = "<CommonPrefixes><Prefix>a+b/</Prefix></CommonPrefixes>";
        let page = parse_list_versions_b(&paged(url, prefixes, Some(("a+b/", "")), "")).unwrap();
        assert_eq!(page.next_key_marker.as_deref(), Some("a b/"));
    }

    #[test]
    fn reads_common_prefixes() {
        let body = "<CommonPrefixes><Prefix>a%2Fb/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>c+d/</Prefix></CommonPrefixes>";
        let page =
            parse_list_versions_b(&doc("<EncodingType>url</EncodingType>", body, false)).unwrap();
        assert_eq!(page.common_prefixes, ["a/b/", "c d/"]);
        assert!(page.entries.is_empty());
    }

    #[test]
    fn merges_separate_version_and_marker_lists_newest_first() {
        // moto's layout: all versions, then all delete markers.
        let body = [
            version("a", "va2", false, T2),
            version("a", "va1", false, T1),
            version("b", "vb1", false, T1),
            marker("a", "ma", true, T2),
            // A key with markers only comes after later keys' versions.
            marker("a0", "ma0", true, T1),
            marker("b", "mb", true, T1),
        ]
        .concat();
        let page = parse_list_versions_b(&doc("", &body, false)).unwrap();
        let ids: Vec<_> = page.entries.iter().map(|e| e.version_id.as_str()).collect();
        assert_eq!(ids, ["ma", "va2", "va1", "ma0", "mb", "vb1"]);
        assert!(page.entries[4].is_marker && page.entries[4].size.is_none());
    }

    #[test]
    fn keeps_an_interleaved_order_as_listed() {
        let body = [
            version("a", "v3", true, T1),
            marker("a", "m2", false, T1),
            version("a", "v1", false, T1),
        ]
        .concat();
        let page = parse_list_versions_b(&doc("", &body, false)).unwrap();
        let ids: Vec<_> = page.entries.iter().map(|e| e.version_id.as_str()).collect();
        assert_eq!(ids, ["v3", "m2", "v1"]);
    }

    #[test]
    fn reads_the_paging_fields_from_the_start_of_a_long_page() {
        let page = |last: &str| {
            let body: String = (0..400)
                .map(|i| version(&format!("k{i:04}é"), "v", true, T1))
                .chain([version(last, "v", true, T1)])
                .collect();
            paged("", &body, Some((last, "v")), "")
        };
        let xml = page("k9");
        assert!(xml.len() > HEADER_BYTES);
        let header = parse_list_header(&xml).unwrap();
        assert!(header.is_truncated && header.entries.is_empty());
        assert_eq!(header.next_key_marker.as_deref(), Some("k9"));
        // Paging fields that end past the bytes read: no header, parse it all.
        let xml = page(&format!("k9{}", "é".repeat(HEADER_BYTES)));
        assert!(parse_list_header(&xml).is_none());
        assert_eq!(parse_list_versions_b(&xml).unwrap().entries.len(), 401);
    }

    fn parse_list_versions_b(xml: &[u8]) -> Result<ListPage, S3Error> {
        parse_list_versions(xml, "b")
    }

    fn kind(xml: &[u8]) -> ErrorKind {
        parse_list_versions_b(xml).unwrap_err().kind
    }

    #[test]
    fn refuses_what_is_not_a_listing() {
        use ErrorKind::*;
        assert_eq!(kind(b"<ListVersionsResult><IsTruncated>false</IsTruncated><Version><Key>a</Key><VersionId>v</VersionId><LastModified>soon</LastModified></Version></ListVersionsResult>"), Invalid);
        assert_eq!(
            kind(b"<ListVersionsResult><Version><Key>a</Key></Vers"),
            Transient
        );
        // An error document, even with HTTP 200, is that error.
        let e = parse_list_versions_b(
            b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce</Message></Error>",
        )
        .unwrap_err();
        assert_eq!((e.kind, e.code.as_deref()), (Throttled, Some("SlowDown")));
        assert_eq!(kind(b"<Error><Code>AccessDenied</Code></Error>"), Fatal);
        // Anything else is not an empty listing.
        assert_eq!(kind(b"<html><body>Welcome</body></html>"), Invalid);
        assert_eq!(kind(b""), Invalid);
        assert_eq!(
            kind(b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"),
            Invalid
        );
        assert_eq!(kind(b"<ListVersionsResult></ListVersionsResult>"), Invalid);
        // Entries without a key, or of negative size.
        assert_eq!(kind(&doc("", &version("", "v1", true, T1), false)), Invalid);
        assert_eq!(
            kind(&doc(
                "",
                &version("a", "v1", true, T1).replace("<Size>3</Size>", "<Size>-3</Size>"),
                false
            )),
            Invalid
        );
    }

    fn page(keys: &[(&str, &str)], next: Option<(&str, &str)>) -> ListPage {
        ListPage {
            entries: keys
                .iter()
                .map(|(k, v)| Entry {
                    key: k.to_string(),
                    version_id: v.to_string(),
                    is_marker: false,
                    is_latest: true,
                    mtime: 0,
                    size: Some(1),
                    etag: None,
                    storage_class: None,
                })
                .collect(),
            is_truncated: next.is_some(),
            next_key_marker: next.map(|n| n.0.to_owned()),
            next_version_id_marker: next.map(|n| n.1.to_owned()),
            url_encoded: true,
            common_prefixes: Vec::new(),
        }
    }

    #[test]
    fn markers_must_move_forward() {
        let start = ListRequest {
            prefix: "p/".into(),
            key_marker: Some("p/b".into()),
            version_id_marker: Some("v2".into()),
            delimiter: None,
        };
        let next = start
            .after(&page(&[("p/b", "v1"), ("p/c", "v9")], Some(("p/c", "v9"))))
            .unwrap();
        assert_eq!(
            (
                next.key_marker.as_deref(),
                next.version_id_marker.as_deref()
            ),
            (Some("p/c"), Some("v9"))
        );
        // The same markers again, an empty one, one going back: refused.
        // (One that is not the page's last key is refused as the page is
        // parsed.)
        for (last, marker) in [
            (("p/b", "v1"), ("p/b", "v2")),
            (("p/b", "v1"), ("", "")),
            (("p/c", "v1"), ("p/a", "x")),
        ] {
            let e = start.after(&page(&[last], Some(marker))).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{marker:?}: {e}");
        }
    }

    #[test]
    fn entries_must_belong_to_the_request() {
        let req = ListRequest {
            prefix: "p/".into(),
            key_marker: Some("p/b".into()),
            version_id_marker: None,
            delimiter: None,
        };
        assert!(check_page(&page(&[("p/c", "1"), ("p/c", "2")], None), &req, None).is_ok());
        for bad in [
            page(&[("p/c", "1"), ("p/c", "1")], None),
            page(&[("q/c", "1")], None),
            page(&[("p/a", "1")], None),
            page(&[("p/b", "1")], None),
            page(&[("p/c\0", "1")], None),
        ] {
            assert_eq!(
                check_page(&bad, &req, None).unwrap_err().kind,
                ErrorKind::Invalid
            );
        }
        // The page before's last entry, listed again.
        assert!(check_page(&page(&[("p/c", "1")], None), &req, Some(("p/c", "1"))).is_err());
        // A key continued from the page before.
        let cont = ListRequest {
            version_id_marker: Some("3".into()),
            ..req
        };
        assert!(check_page(&page(&[("p/b", "1")], None), &cont, None).is_ok());
    }
}
