//! The ListVersionsResult document, written by hand: versions and delete
//! markers interleaved per key in listing order, as AWS does (a generic
//! serializer writes one list after the other), and fast, so that s3sim is
//! never what bounds a benchmark.

use std::fmt::Write;

use crate::store::{splitmix64, VersionsPage};

/// How a value goes into the document.
#[derive(Clone, Copy)]
pub enum Encoding {
    /// XML-escaped.
    Xml,
    /// `EncodingType=url`: form-encoded (space as `+`), `/` kept.
    Url,
}

/// Appends `s`, escaped for XML text (control characters as character
/// references, which is why clients ask for URL encoding).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Whether XML 1.0 can carry `s`: its `Char` production leaves out the
/// control characters but tab, line feed and carriage return, and U+FFFE
/// and U+FFFF, raw or as character references alike (W3C XML 1.0, 2.2
/// "Characters", and the well-formedness constraint "Legal Character").
/// AWS refuses a DeleteObjects document naming such a key: 400
/// MalformedXML, for `&#x1;` as for the raw byte (measured by others:
/// basho/riak_cs#974, boto/boto3#2005, aws/aws-sdk-java#333); such a key
/// is deleted by a DeleteObject of its own, its key in the URL.
pub fn carries(s: &str) -> bool {
    !s.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    })
}

/// A listing's keys as its `EncodingType` asks: URL-encoded for `url`,
/// as they are otherwise (s3s escapes them for XML).
pub fn listed_as(encoding_type: Option<&s3s::dto::EncodingType>) -> impl Fn(&str) -> String + Copy {
    let url = encoding_type.is_some_and(|e| e.as_str() == "url");
    move |s: &str| {
        let mut out = String::new();
        match url {
            true => url_encode_into(&mut out, s),
            false => out.push_str(s),
        }
        out
    }
}

/// Appends `s` URL-encoded the way S3 does for `EncodingType=url`.
pub fn url_encode_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

fn value(out: &mut String, s: &str, enc: Encoding) {
    match enc {
        Encoding::Xml => escape_into(out, s),
        Encoding::Url => url_encode_into(out, s),
    }
}

fn element(out: &mut String, name: &str, s: &str, enc: Encoding) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    value(out, s, enc);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// `2024-05-01T12:00:00.000Z` from Unix milliseconds (listings carry
/// whole seconds, as AWS's do).
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days → (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whose layout a ListVersionsResult is written in. S3-compatible servers
/// answer the same request differently; s3sim speaks their dialects so the
/// suite can scan each one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// Amazon S3: the paging fields and `EncodingType` before the entries,
    /// keys and markers alike URL-encoded as a form (space as `+`).
    #[default]
    Aws,
    /// MinIO (`cmd/api-response.go`, `ListVersionsResponse`): Go's XML
    /// encoder writes the struct's fields in order, so `EncodingType`
    /// comes after the entries; keys, prefixes and markers are encoded by
    /// its `s3URLEncode` (`cmd/api-utils.go`: letters, digits and `-_./*`
    /// kept, space as `+`, every other byte `%XX`, `~` included); each
    /// entry's fields in its own order (Key, LastModified, ETag, Size,
    /// Owner, StorageClass, IsLatest, VersionId), delete markers with an
    /// empty ETag and a zero Size, quotes written `&#34;`.
    Minio,
    /// Older Ceph RGW (`rgw_rest_s3.cc`, `send_versioned_response`):
    /// `EncodingType` first, keys encoded by its `url_encode`
    /// (`rgw_common.cc`: bytes up to space and from DEL up, the
    /// backtick and `" # % & + , / : ; < = > ? @ [ \ ] ^ { }` as `%XX`;
    /// space as `%20`), but the
    /// KeyMarker, NextKeyMarker and Prefix written raw.
    Ceph,
}

/// The request's parameters, echoed in the response.
pub struct ListParams<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub key_marker: &'a str,
    pub version_id_marker: &'a str,
    pub max_keys: usize,
    pub url_encoded: bool,
    pub dialect: Dialect,
}

const OWNER: &str = "<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>s3sim</DisplayName></Owner>";

/// Appends `s` URL-encoded as MinIO's `s3URLEncode` does.
fn minio_encode_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Appends `s` URL-encoded as Ceph RGW's `url_encode` does (`slash`:
/// whether `/` is encoded too).
fn ceph_encode_into(out: &mut String, s: &str, slash: bool) {
    for &b in s.as_bytes() {
        let encode = b <= 0x20
            || b >= 0x7f
            || (b == b'/' && slash)
            || br##""#%&+,:;<>=?@[]\^`{}"##.contains(&b);
        match encode {
            true => {
                let _ = write!(out, "%{b:02X}");
            }
            false => out.push(b as char),
        }
    }
}

pub fn list_versions_result(p: &ListParams<'_>, page: &VersionsPage) -> String {
    let mut out = String::with_capacity(256 + page.entries.len() * 330);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    match p.dialect {
        Dialect::Aws => aws_listing(&mut out, p, page),
        Dialect::Minio => minio_listing(&mut out, p, page),
        Dialect::Ceph => ceph_listing(&mut out, p, page),
    }
    out.push_str("</ListVersionsResult>");
    out
}

fn aws_listing(out: &mut String, p: &ListParams<'_>, page: &VersionsPage) {
    let enc = if p.url_encoded {
        Encoding::Url
    } else {
        Encoding::Xml
    };
    element(out, "Name", p.bucket, Encoding::Xml);
    element(out, "Prefix", p.prefix, enc);
    element(out, "KeyMarker", p.key_marker, enc);
    element(out, "VersionIdMarker", p.version_id_marker, Encoding::Xml);
    if let Some(m) = &page.next_key_marker {
        element(out, "NextKeyMarker", m, enc);
    }
    if let Some(m) = &page.next_version_id_marker {
        element(out, "NextVersionIdMarker", m, Encoding::Xml);
    }
    let _ = write!(out, "<MaxKeys>{}</MaxKeys>", p.max_keys);
    if let Some(d) = p.delimiter {
        element(out, "Delimiter", d, enc);
    }
    if p.url_encoded {
        out.push_str("<EncodingType>url</EncodingType>");
    }
    let _ = write!(out, "<IsTruncated>{}</IsTruncated>", page.is_truncated);
    for listed in &page.entries {
        let e = &listed.entry;
        match &e.content {
            Some(content) => {
                out.push_str("<Version>");
                element(out, "Key", &listed.key, enc);
                let _ = write!(
                    out,
                    "<VersionId>{}</VersionId><IsLatest>{}</IsLatest><LastModified>{}</LastModified>\
                     <ETag>&quot;{}&quot;</ETag><Size>{}</Size>{OWNER}<StorageClass>{}</StorageClass></Version>",
                    e.version_id.encode(),
                    listed.is_latest,
                    iso8601(e.mtime_ms),
                    content.etag(),
                    content.size(),
                    content.storage_class().unwrap_or("STANDARD"),
                );
            }
            None => {
                out.push_str("<DeleteMarker>");
                out.push_str(OWNER);
                element(out, "Key", &listed.key, enc);
                let _ = write!(
                    out,
                    "<VersionId>{}</VersionId><IsLatest>{}</IsLatest><LastModified>{}</LastModified></DeleteMarker>",
                    e.version_id.encode(),
                    listed.is_latest,
                    iso8601(e.mtime_ms),
                );
            }
        }
    }
    for cp in &page.common_prefixes {
        out.push_str("<CommonPrefixes>");
        element(out, "Prefix", cp, enc);
        out.push_str("</CommonPrefixes>");
    }
}

fn minio_listing(out: &mut String, p: &ListParams<'_>, page: &VersionsPage) {
    let name = |out: &mut String, tag: &str, s: &str| {
        let _ = write!(out, "<{tag}>");
        match p.url_encoded {
            true => minio_encode_into(out, s),
            false => escape_into(out, s),
        }
        let _ = write!(out, "</{tag}>");
    };
    element(out, "Name", p.bucket, Encoding::Xml);
    name(out, "Prefix", p.prefix);
    name(out, "KeyMarker", p.key_marker);
    if let Some(m) = page.next_key_marker.as_deref().filter(|m| !m.is_empty()) {
        name(out, "NextKeyMarker", m);
    }
    let next_version = page.next_version_id_marker.as_deref().unwrap_or("");
    element(out, "NextVersionIdMarker", next_version, Encoding::Xml);
    element(out, "VersionIdMarker", p.version_id_marker, Encoding::Xml);
    let _ = write!(out, "<MaxKeys>{}</MaxKeys>", p.max_keys);
    if let Some(d) = p.delimiter {
        name(out, "Delimiter", d);
    }
    let _ = write!(out, "<IsTruncated>{}</IsTruncated>", page.is_truncated);
    for cp in &page.common_prefixes {
        out.push_str("<CommonPrefixes>");
        name(out, "Prefix", cp);
        out.push_str("</CommonPrefixes>");
    }
    const MINIO_OWNER: &str = "<Owner><ID>02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4</ID><DisplayName>minio</DisplayName></Owner>";
    for listed in &page.entries {
        let e = &listed.entry;
        let tag = match e.content {
            Some(_) => "Version",
            None => "DeleteMarker",
        };
        let _ = write!(out, "<{tag}>");
        name(out, "Key", &listed.key);
        let (etag, size, class) = match &e.content {
            Some(c) => (
                format!("&#34;{}&#34;", c.etag()),
                c.size(),
                c.storage_class().unwrap_or("STANDARD"),
            ),
            None => (String::new(), 0, "STANDARD"),
        };
        let _ = write!(
            out,
            "<LastModified>{}</LastModified><ETag>{etag}</ETag><Size>{size}</Size>{MINIO_OWNER}\
             <StorageClass>{class}</StorageClass><IsLatest>{}</IsLatest><VersionId>{}</VersionId></{tag}>",
            iso8601(e.mtime_ms),
            listed.is_latest,
            e.version_id.encode(),
        );
    }
    if p.url_encoded {
        out.push_str("<EncodingType>url</EncodingType>");
    }
}

fn ceph_listing(out: &mut String, p: &ListParams<'_>, page: &VersionsPage) {
    if p.url_encoded {
        out.push_str("<EncodingType>url</EncodingType>");
    }
    element(out, "Name", p.bucket, Encoding::Xml);
    element(out, "Prefix", p.prefix, Encoding::Xml);
    let _ = write!(out, "<MaxKeys>{}</MaxKeys>", p.max_keys);
    if let Some(d) = p.delimiter {
        element(out, "Delimiter", d, Encoding::Xml);
    }
    let _ = write!(out, "<IsTruncated>{}</IsTruncated>", page.is_truncated);
    for cp in &page.common_prefixes {
        out.push_str("<CommonPrefixes><Prefix>");
        match p.url_encoded {
            true => ceph_encode_into(out, cp, false),
            false => escape_into(out, cp),
        }
        out.push_str("</Prefix></CommonPrefixes>");
    }
    element(out, "KeyMarker", p.key_marker, Encoding::Xml);
    element(out, "VersionIdMarker", p.version_id_marker, Encoding::Xml);
    if let (true, Some(m)) = (page.is_truncated, &page.next_key_marker) {
        // Raw, whatever EncodingType says: the dialect this option is for.
        element(out, "NextKeyMarker", m, Encoding::Xml);
        let version = page.next_version_id_marker.as_deref().unwrap_or("null");
        element(out, "NextVersionIdMarker", version, Encoding::Xml);
    }
    for listed in &page.entries {
        let e = &listed.entry;
        let tag = match e.content {
            Some(_) => "Version",
            None => "DeleteMarker",
        };
        let _ = write!(out, "<{tag}><Key>");
        match p.url_encoded {
            true => ceph_encode_into(out, &listed.key, true),
            false => escape_into(out, &listed.key),
        }
        let _ = write!(
            out,
            "</Key><VersionId>{}</VersionId><IsLatest>{}</IsLatest><LastModified>{}</LastModified>",
            e.version_id.encode(),
            listed.is_latest,
            iso8601(e.mtime_ms),
        );
        if let Some(c) = &e.content {
            let _ = write!(
                out,
                "<ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>{}</StorageClass>",
                c.etag(),
                c.size(),
                c.storage_class().unwrap_or("STANDARD"),
            );
        }
        let _ = write!(out, "{OWNER}<Type>Normal</Type></{tag}>");
    }
}

/// `RequestId` values for error documents and headers.
pub fn request_id(n: u64) -> String {
    format!("{:016X}", splitmix64(n))
}

/// An S3 error document.
pub fn error_document(code: &str, message: &str, request_id: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    element(&mut out, "Code", code, Encoding::Xml);
    element(&mut out, "Message", message, Encoding::Xml);
    element(&mut out, "RequestId", request_id, Encoding::Xml);
    out.push_str("</Error>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_10_carries_no_control_character_but_tab_and_line_ends() {
        assert!(carries("a b/é\t\r\nc"));
        for s in ["a\u{1}b", "\u{0}", "x\u{1f}", "\u{FFFF}"] {
            assert!(!carries(s), "{s:?}");
        }
    }

    #[test]
    fn encodes_like_s3() {
        let mut s = String::new();
        url_encode_into(&mut s, "a b/c+d%é\n");
        assert_eq!(s, "a+b/c%2Bd%25%C3%A9%0A");
        let mut s = String::new();
        escape_into(&mut s, "a&b<\n");
        assert_eq!(s, "a&amp;b&lt;&#xA;");
        let mut s = String::new();
        minio_encode_into(&mut s, "a b/c+d~*%é");
        assert_eq!(s, "a+b/c%2Bd%7E*%25%C3%A9");
        let mut s = String::new();
        ceph_encode_into(&mut s, "a b/c+d~*%é", true);
        assert_eq!(s, "a%20b%2Fc%2Bd~*%25%C3%A9");
    }

    #[test]
    fn each_dialect_lays_out_a_page_as_its_server_does() {
        use crate::store::{Content, ObjectMeta};
        let store = crate::Store::new(1);
        let bucket = store.create_bucket("b").unwrap();
        for key in ["a b%41", "a b%42"] {
            let body = bytes::Bytes::from_static(b"x");
            store.put(
                &bucket,
                key,
                Content::stored(body, ObjectMeta::default()),
                None,
            );
        }
        let page = store
            .list_versions(&bucket, "", None, None, None, 1)
            .unwrap();
        let xml = |dialect| {
            list_versions_result(
                &ListParams {
                    bucket: "b",
                    prefix: "",
                    delimiter: None,
                    key_marker: "",
                    version_id_marker: "",
                    max_keys: 1,
                    url_encoded: true,
                    dialect,
                },
                &page,
            )
        };
        let aws = xml(Dialect::Aws);
        assert!(aws.find("<EncodingType>") < aws.find("<Version>"), "{aws}");
        assert!(
            aws.contains("<NextKeyMarker>a+b%2541</NextKeyMarker>"),
            "{aws}"
        );
        let minio = xml(Dialect::Minio);
        assert!(
            minio.find("<EncodingType>") > minio.find("</Version>"),
            "{minio}"
        );
        assert!(
            minio.contains("<NextKeyMarker>a+b%2541</NextKeyMarker>"),
            "{minio}"
        );
        let ceph = xml(Dialect::Ceph);
        assert!(
            ceph.find("<EncodingType>") < ceph.find("<Version>"),
            "{ceph}"
        );
        assert!(ceph.contains("<Key>a%20b%2541</Key>"), "{ceph}");
        assert!(
            ceph.contains("<NextKeyMarker>a b%41</NextKeyMarker>"),
            "{ceph}"
        );
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_714_521_600_999), "2024-05-01T00:00:00.000Z");
        assert_eq!(iso8601(1_709_251_199_000), "2024-02-29T23:59:59.000Z");
    }
}
