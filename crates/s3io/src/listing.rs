//! ListObjectVersions responses, parsed from the raw XML.
//!
//! The SDK splits a page into a list of versions and a list of delete markers,
//! which loses the order in which S3 interleaved them. We read the XML
//! ourselves so the order S3 gave is kept, then put each key's entries in
//! newest-first order: each list keeps S3's order, and the two lists are merged
//! by LastModified, ties going to the entry S3 marked IsLatest and then to the
//! one S3 listed first. (AWS interleaves the lists already; some servers, such
//! as moto, write every version of a page before every delete marker.)

use std::collections::HashMap;

use quick_xml::events::Event;

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

#[derive(Default)]
struct RawEntry {
    key: String,
    version_id: String,
    is_marker: bool,
    is_latest: bool,
    mtime: Option<i64>,
    size: Option<i64>,
    etag: Option<String>,
    storage_class: Option<String>,
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

/// The page, and whether IsTruncated was read (before the first entry,
/// when `header_only`).
fn parse_document(xml: &[u8], header_only: bool) -> Result<(ListPage, bool), S3Error> {
    let mut saw_truncated = false;
    let bad = |what: String| S3Error::malformed("ListObjectVersions", what);
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut page = ListPage::default();
    let mut raw: Vec<RawEntry> = Vec::new();
    let mut current: Option<RawEntry> = None;
    let mut field = Field::None;
    let mut text = String::new();
    let mut depth = 0usize;
    let mut in_owner = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            bad(format!(
                "invalid XML at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(e) => {
                depth += 1;
                text.clear();
                let name = e.local_name();
                let name = name.as_ref();
                match (depth, current.is_some()) {
                    (2, false) => {
                        field = match name {
                            b"IsTruncated" => Field::IsTruncated,
                            b"NextKeyMarker" => Field::NextKeyMarker,
                            b"NextVersionIdMarker" => Field::NextVersionIdMarker,
                            b"EncodingType" => Field::EncodingType,
                            b"Version" | b"DeleteMarker" if header_only => break,
                            b"Version" | b"DeleteMarker" => {
                                current = Some(RawEntry {
                                    is_marker: name == b"DeleteMarker",
                                    ..RawEntry::default()
                                });
                                Field::None
                            }
                            _ => Field::None,
                        };
                    }
                    (3, true) => {
                        in_owner = name == b"Owner";
                        field = match name {
                            b"Key" => Field::Key,
                            b"VersionId" => Field::VersionId,
                            b"IsLatest" => Field::IsLatest,
                            b"LastModified" => Field::LastModified,
                            b"ETag" => Field::ETag,
                            b"Size" => Field::Size,
                            b"StorageClass" => Field::StorageClass,
                            _ => Field::None,
                        };
                    }
                    _ => field = Field::None,
                }
            }
            Event::Text(t) if field != Field::None && !in_owner => {
                let s = t
                    .decode()
                    .map_err(|e| bad(format!("text is not UTF-8: {e}")))?;
                text.push_str(&s);
            }
            Event::CData(t) if field != Field::None => {
                let s = t
                    .decode()
                    .map_err(|e| bad(format!("CDATA is not UTF-8: {e}")))?;
                text.push_str(&s);
            }
            Event::GeneralRef(r) if field != Field::None => {
                if let Some(c) = r
                    .resolve_char_ref()
                    .map_err(|e| bad(format!("bad character reference: {e}")))?
                {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| bad(e.to_string()))?;
                    text.push(match name.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(bad(format!("unknown entity &{other};"))),
                    });
                }
            }
            Event::End(_) => {
                if depth == 3 && in_owner {
                    in_owner = false;
                }
                if depth == 2 {
                    if let Some(entry) = current.take() {
                        raw.push(entry);
                    } else {
                        let value = std::mem::take(&mut text);
                        match field {
                            Field::IsTruncated => {
                                page.is_truncated = value.trim() == "true";
                                saw_truncated = true;
                            }
                            Field::NextKeyMarker => page.next_key_marker = Some(value),
                            Field::NextVersionIdMarker => page.next_version_id_marker = Some(value),
                            Field::EncodingType => page.url_encoded = value.trim() == "url",
                            _ => {}
                        }
                    }
                } else if depth == 3 {
                    if let Some(entry) = current.as_mut() {
                        // Only the key and the version id are kept as text;
                        // the rest is read in place, without allocating.
                        match field {
                            Field::Key => entry.key = std::mem::take(&mut text),
                            Field::VersionId => entry.version_id = std::mem::take(&mut text),
                            Field::IsLatest => entry.is_latest = text.trim() == "true",
                            Field::LastModified => {
                                entry.mtime =
                                    Some(parse_s3_timestamp(text.trim()).ok_or_else(|| {
                                        bad(format!("LastModified {text:?} is not a timestamp"))
                                    })?)
                            }
                            Field::ETag => {
                                entry.etag = Some(text.trim().trim_matches('"').to_owned())
                            }
                            Field::Size => {
                                entry.size =
                                    Some(text.trim().parse().map_err(|_| {
                                        bad(format!("Size {text:?} is not a number"))
                                    })?)
                            }
                            Field::StorageClass if text.trim() != "STANDARD" => {
                                entry.storage_class = Some(text.trim().to_owned())
                            }
                            _ => {}
                        }
                    }
                }
                field = Field::None;
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let decode = |value: String, what: &str| -> Result<String, S3Error> {
        if page.url_encoded && value.bytes().any(|b| b == b'+' || b == b'%') {
            decode_url_component(&value)
                .ok_or_else(|| bad(format!("{what} {value:?} is not valid URL-encoded UTF-8")))
        } else {
            Ok(value)
        }
    };
    let mut entries = Vec::with_capacity(raw.len());
    for r in raw {
        let mtime = r
            .mtime
            .ok_or_else(|| bad(format!("an entry of key {:?} has no LastModified", r.key)))?;
        if r.version_id.is_empty() {
            return Err(bad(format!("an entry of key {:?} has no VersionId", r.key)));
        }
        entries.push(ListedEntry {
            key: decode(r.key, "Key")?,
            version_id: r.version_id,
            is_marker: r.is_marker,
            is_latest: r.is_latest,
            mtime,
            size: if r.is_marker {
                None
            } else {
                Some(r.size.unwrap_or(0))
            },
            etag: if r.is_marker { None } else { r.etag },
            storage_class: if r.is_marker { None } else { r.storage_class },
        });
    }
    page.next_key_marker = page
        .next_key_marker
        .take()
        .map(|m| decode(m, "NextKeyMarker"))
        .transpose()?;
    page.entries = newest_first_per_key(entries);
    Ok((page, saw_truncated))
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

/// The text of the first element named `name` in a small XML document.
pub(crate) fn element_text(xml: &[u8], name: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == name => inside = true,
            Event::Text(t) if inside => return t.decode().ok().map(|s| s.trim().to_owned()),
            Event::End(_) if inside => return Some(String::new()),
            Event::Eof => return None,
            _ => {}
        }
    }
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
    fn rejects_what_is_not_a_listing() {
        assert!(parse_list_versions(b"<ListVersionsResult><Version><Key>a</Key><VersionId>v</VersionId><LastModified>soon</LastModified></Version></ListVersionsResult>").is_err());
        assert!(parse_list_versions(b"<ListVersionsResult><Version><Key>a</Key></Vers").is_err());
    }
}
