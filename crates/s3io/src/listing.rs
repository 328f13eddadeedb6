//! ListObjectVersions responses, parsed from the raw XML.
//!
//! The SDK splits a page into a list of versions and a list of delete markers,
//! which loses the order in which S3 interleaved them. We read the XML
//! ourselves so the order S3 gave is kept, then put each key's entries in
//! newest-first order: each list keeps S3's order, and the two lists are merged
//! by LastModified, ties going to the entry S3 marked IsLatest and then to the
//! one S3 listed first. (AWS interleaves the lists already; some servers, such
//! as moto, write every version of a page before every delete marker.)

use std::borrow::Cow;
use std::collections::HashMap;

use crate::xml::{unescape, Reader, Token};
use crate::{decode_url_component, parse_s3_timestamp, S3Error};

/// One version or delete marker from a listing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEntry {
    pub key: String,
    pub version_id: String,
    pub is_marker: bool,
    pub is_latest: bool,
    /// LastModified, Unix seconds.
    pub mtime: i64,
    /// `None` for delete markers.
    pub size: Option<i64>,
    /// Without quotes.
    pub etag: Option<String>,
    /// `None` for STANDARD and for delete markers.
    pub storage_class: Option<String>,
}

/// One page of ListObjectVersions, keys and markers decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Keys in S3's order; each key's entries newest first.
    pub entries: Vec<ListedEntry>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    /// Whether the server honoured `EncodingType=url`.
    pub url_encoded: bool,
}

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

/// Parses a ListVersionsResult document.
pub fn parse_list_versions(xml: &[u8]) -> Result<ListPage, S3Error> {
    parse_document(xml, false).map(|(page, _)| page)
}

/// A page's paging fields, read without parsing its entries — when the
/// document gives them before its first entry, as AWS and s3sim do. `None`
/// otherwise: parse the whole page to find them.
pub fn parse_list_header(xml: &[u8]) -> Option<ListPage> {
    match parse_document(xml, true) {
        Ok((page, true)) => Some(page),
        _ => None,
    }
}

/// How much of a page [`parse_list_header`] reads: room for the longest
/// markers and prefix S3 allows, URL-encoded, and then some.
const HEADER_BYTES: usize = 16 * 1024;

/// The page, and whether IsTruncated was read (before the first entry,
/// when `header_only`).
fn parse_document(xml: &[u8], header_only: bool) -> Result<(ListPage, bool), S3Error> {
    let bad = |what: String| S3Error::malformed("ListObjectVersions", what);
    // The paging fields come first: validate only the start of the page for them.
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
        Err(e) => return Err(bad(format!("not UTF-8 at byte {}", e.valid_up_to()))),
    };
    let mut reader = Reader::new(doc);
    let mut saw_truncated = false;
    let mut page = ListPage::default();
    let mut entries: Vec<ListedEntry> = Vec::new();
    let mut current: Option<RawEntry> = None;
    let mut field = Field::None;
    // The text of the element being read: a slice of the page unless it
    // came in pieces or held references.
    let mut text: Cow<str> = Cow::Borrowed("");
    let mut depth = 0usize;
    loop {
        let at = reader.position();
        let token = reader
            .next_token()
            .map_err(|e| bad(format!("invalid XML: {e}")))?;
        match token {
            Some(Token::Start(name)) => {
                depth += 1;
                text = Cow::Borrowed("");
                field = match (depth, current.is_some()) {
                    (2, false) => match name {
                        "IsTruncated" => Field::IsTruncated,
                        "NextKeyMarker" => Field::NextKeyMarker,
                        "NextVersionIdMarker" => Field::NextVersionIdMarker,
                        "EncodingType" => Field::EncodingType,
                        "Version" | "DeleteMarker" if header_only => break,
                        "Version" | "DeleteMarker" => {
                            current = Some(RawEntry {
                                is_marker: name == "DeleteMarker",
                                ..RawEntry::default()
                            });
                            Field::None
                        }
                        _ => Field::None,
                    },
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
                // Nearly every field is plain text up to its end tag: read
                // it in one step.
                if field != Field::None {
                    if let Some(text) = reader.simple_text() {
                        let value = match text.has_refs {
                            true => resolve(field, text.raw)
                                .map_err(|e| bad(format!("at byte {at}: {e}")))?,
                            false => Cow::Borrowed(text.raw),
                        };
                        store(
                            field,
                            value,
                            &mut page,
                            current.as_mut(),
                            &mut saw_truncated,
                        )?;
                        field = Field::None;
                        depth -= 1;
                    }
                } else if depth >= 3 || (depth == 2 && current.is_none()) {
                    // An element not read (Owner, Name, MaxKeys…): past it
                    // in one step.
                    reader
                        .skip_element()
                        .map_err(|e| bad(format!("invalid XML: {e}")))?;
                    depth -= 1;
                }
            }
            Some(Token::Text(_) | Token::CData(_)) if field == Field::None => {}
            Some(Token::Text(t)) => {
                let t = match text.is_empty() {
                    true => resolve(field, t),
                    false => unescape(t),
                };
                append(&mut text, t.map_err(|e| bad(format!("at byte {at}: {e}")))?);
            }
            Some(Token::CData(t)) => append(&mut text, Cow::Borrowed(t)),
            Some(Token::Empty(_)) => field = Field::None,
            Some(Token::End) => {
                let value = std::mem::take(&mut text);
                match (depth, current.is_some()) {
                    (2, true) => {
                        let raw = current.take().expect("an entry is being read");
                        entries.push(finish(raw).map_err(bad)?);
                    }
                    (2, false) | (3, true) => store(
                        field,
                        value,
                        &mut page,
                        current.as_mut(),
                        &mut saw_truncated,
                    )?,
                    _ => {}
                }
                field = Field::None;
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad(format!("an end tag without a start at byte {at}")))?;
            }
            None if depth > 0 => return Err(bad("the document ends inside an element".into())),
            None => break,
        }
    }
    // Decoded once every entry is in: a page may say it encodes keys after
    // its first entries.
    if page.url_encoded {
        for entry in &mut entries {
            entry.key = decode_key(std::mem::take(&mut entry.key)).map_err(bad)?;
        }
        if let Some(marker) = page.next_key_marker.take() {
            page.next_key_marker = Some(decode_key(marker).map_err(bad)?);
        }
    }
    page.entries = newest_first_per_key(entries);
    Ok((page, saw_truncated))
}

/// A finished entry, its key as listed.
fn finish(r: RawEntry<'_>) -> Result<ListedEntry, String> {
    let mtime = r
        .mtime
        .ok_or_else(|| format!("an entry of key {:?} has no LastModified", r.key))?;
    if r.version_id.is_empty() {
        return Err(format!("an entry of key {:?} has no VersionId", r.key));
    }
    let object = !r.is_marker;
    Ok(ListedEntry {
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

/// Puts a field's value where it belongs: in the page's paging fields, or
/// in `entry` (the entry being read).
fn store<'a>(
    field: Field,
    value: Cow<'a, str>,
    page: &mut ListPage,
    entry: Option<&mut RawEntry<'a>>,
    saw_truncated: &mut bool,
) -> Result<(), S3Error> {
    let bad = |what: String| S3Error::malformed("ListObjectVersions", what);
    let Some(entry) = entry else {
        match field {
            Field::IsTruncated => {
                page.is_truncated = value.trim_ascii() == "true";
                *saw_truncated = true;
            }
            Field::NextKeyMarker => page.next_key_marker = Some(value.into_owned()),
            Field::NextVersionIdMarker => page.next_version_id_marker = Some(value.into_owned()),
            Field::EncodingType => page.url_encoded = value.trim_ascii() == "url",
            _ => {}
        }
        return Ok(());
    };
    match field {
        Field::Key => entry.key = value,
        Field::VersionId => entry.version_id = value,
        Field::IsLatest => entry.is_latest = value.trim_ascii() == "true",
        Field::LastModified => {
            entry.mtime = Some(
                parse_s3_timestamp(value.trim_ascii())
                    .ok_or_else(|| bad(format!("LastModified {value:?} is not a timestamp")))?,
            )
        }
        Field::ETag => entry.etag = Some(trim_etag(value)),
        Field::Size => {
            entry.size = Some(
                value
                    .trim_ascii()
                    .parse()
                    .map_err(|_| bad(format!("Size {value:?} is not a number")))?,
            )
        }
        Field::StorageClass if value.trim_ascii() != "STANDARD" => {
            entry.storage_class = Some(Cow::Owned(value.trim_ascii().to_owned()))
        }
        _ => {}
    }
    Ok(())
}

/// An ETag without its surrounding whitespace and quotes.
fn trim_etag(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_ascii().trim_matches('"')),
        Cow::Owned(s) => Cow::Owned(s.trim_ascii().trim_matches('"').to_owned()),
    }
}

/// Groups entries by key in order of first appearance and orders each key's
/// entries newest first (see the module comment).
fn newest_first_per_key(entries: Vec<ListedEntry>) -> Vec<ListedEntry> {
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
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let group: Vec<usize> = entries
        .iter()
        .map(|e| {
            let next = first_seen.len();
            *first_seen.entry(e.key.as_str()).or_insert(next)
        })
        .collect();
    let mut listed: Vec<usize> = (0..entries.len()).collect();
    listed.sort_by_key(|&i| group[i]); // stable: S3's order within a key
    let mut order = Vec::with_capacity(entries.len());
    for run in listed.chunk_by(|&a, &b| group[a] == group[b]) {
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
    let mut slots: Vec<Option<ListedEntry>> = entries.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("every index once"))
        .collect()
}

/// Whether `a` (listed at position `ai`) goes before `b` (at `bi`) in
/// newest-first order.
fn newer(a: &ListedEntry, ai: usize, b: &ListedEntry, bi: usize) -> bool {
    (a.mtime, a.is_latest, std::cmp::Reverse(ai)) > (b.mtime, b.is_latest, std::cmp::Reverse(bi))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Name>b</Name><Prefix></Prefix>{encoding}<IsTruncated>{truncated}</IsTruncated>\
             <NextKeyMarker>a%2Bb+c</NextKeyMarker><NextVersionIdMarker>null</NextVersionIdMarker>{body}</ListVersionsResult>"
        )
        .into_bytes()
    }

    const T1: &str = "2024-05-01T00:00:01.000Z";
    const T2: &str = "2024-05-01T00:00:02.000Z";

    #[test]
    fn decodes_keys_and_markers_only_when_the_server_encoded_them() {
        let body = version("a%2Bb+c%0A", "v1", true, T1);
        let page =
            parse_list_versions(&doc("<EncodingType>url</EncodingType>", &body, true)).unwrap();
        assert!(page.url_encoded && page.is_truncated);
        assert_eq!(page.entries[0].key, "a+b c\n");
        assert_eq!(page.next_key_marker.as_deref(), Some("a+b c"));
        assert_eq!(page.next_version_id_marker.as_deref(), Some("null"));
        assert_eq!(
            page.entries[0].etag.as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(page.entries[0].storage_class, None);

        let page = parse_list_versions(&doc("", &version("a%2Bb &amp; c", "v1", true, T1), false))
            .unwrap();
        assert!(!page.url_encoded && !page.is_truncated);
        assert_eq!(page.entries[0].key, "a%2Bb & c");
        assert_eq!(page.next_key_marker.as_deref(), Some("a%2Bb+c"));
    }

    #[test]
    fn merges_separate_version_and_marker_lists_newest_first() {
        // moto's layout: all versions, then all delete markers.
        let body = [
            version("a", "va2", false, T2),
            version("a", "va1", false, T1),
            version("b", "vb1", false, T1),
            marker("a", "ma", true, T2),
            marker("b", "mb", true, T1),
        ]
        .concat();
        let page = parse_list_versions(&doc("", &body, false)).unwrap();
        let ids: Vec<_> = page.entries.iter().map(|e| e.version_id.as_str()).collect();
        assert_eq!(ids, ["ma", "va2", "va1", "mb", "vb1"]);
        assert!(page.entries[3].is_marker && page.entries[3].size.is_none());
    }

    #[test]
    fn keeps_an_interleaved_order_as_listed() {
        let body = [
            version("a", "v3", true, T1),
            marker("a", "m2", false, T1),
            version("a", "v1", false, T1),
        ]
        .concat();
        let page = parse_list_versions(&doc("", &body, false)).unwrap();
        let ids: Vec<_> = page.entries.iter().map(|e| e.version_id.as_str()).collect();
        assert_eq!(ids, ["v3", "m2", "v1"]);
    }

    #[test]
    fn reads_the_paging_fields_from_the_start_of_a_long_page() {
        let body: String = (0..400)
            .map(|i| version(&format!("k{i:04}é"), "v", true, T1))
            .collect();
        let xml = doc("", &body, true);
        assert!(xml.len() > HEADER_BYTES);
        let header = parse_list_header(&xml).unwrap();
        assert!(header.is_truncated && header.entries.is_empty());
        assert_eq!(header.next_key_marker.as_deref(), Some("a%2Bb+c"));
        // Paging fields that end past the bytes read: no header, parse it all.
        let long_marker = format!(
            "<NextKeyMarker>{}</NextKeyMarker>",
            "é".repeat(HEADER_BYTES)
        );
        let xml = String::from_utf8(doc("", &body, true))
            .unwrap()
            .replace("<NextKeyMarker>a%2Bb+c</NextKeyMarker>", &long_marker);
        assert!(parse_list_header(xml.as_bytes()).is_none());
        assert_eq!(
            parse_list_versions(xml.as_bytes()).unwrap().entries.len(),
            400
        );
    }

    #[test]
    fn rejects_what_is_not_a_listing() {
        assert!(parse_list_versions(b"<ListVersionsResult><Version><Key>a</Key><VersionId>v</VersionId><LastModified>soon</LastModified></Version></ListVersionsResult>").is_err());
        assert!(parse_list_versions(b"<ListVersionsResult><Version><Key>a</Key></Vers").is_err());
    }
}
