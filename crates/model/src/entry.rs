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
    /// Parsed where the entry is read, not where it is written: the
    /// catalog's one writer bounds a report's ingest.
    pub etag: Option<Etag<'a>>,
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
            etag: self.etag.as_deref().map(Etag::parse),
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
            etag: self.etag.map(|e| e.text.to_owned()),
            storage_class: self.storage_class.map(str::to_owned),
        }
    }
}

/// Each byte's value as a hex digit, lower case only: upper case would
/// not come back identical from the catalog's `lower(hex())`. 0xff for the
/// rest. (Every ETag of a scan or report is parsed: a table, not a match.)
const HEX_DIGIT: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// An ETag as the catalog stores it: 16 bytes when it is an MD5 in
/// lower-case hex (optionally `-N` for multipart, N in `parts`), else its
/// text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Etag<'a> {
    pub md5: Option<[u8; 16]>,
    pub text: &'a str,
    pub parts: Option<i64>,
}

impl<'a> Etag<'a> {
    pub fn parse(etag: &'a str) -> Etag<'a> {
        let text = Etag {
            md5: None,
            text: etag,
            parts: None,
        };
        let (hex, parts) = match etag.len() {
            32 => (etag, None),
            _ => match etag.split_once('-') {
                Some((h, n)) => match n.parse::<i64>() {
                    Ok(n) => (h, Some(n)),
                    Err(_) => return text,
                },
                None => return text,
            },
        };
        if hex.len() != 32 {
            return text;
        }
        let mut md5 = [0u8; 16];
        let mut bad = 0u8;
        for (byte, pair) in md5.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let (hi, lo) = (HEX_DIGIT[pair[0] as usize], HEX_DIGIT[pair[1] as usize]);
            bad |= hi | lo;
            *byte = hi << 4 | lo;
        }
        if bad & 0xf0 != 0 {
            return text;
        }
        Etag {
            md5: Some(md5),
            text: etag,
            parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_is_an_md5_only_in_lower_case_hex() {
        let t = Etag::parse("d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(t.md5.map(|m| m[0]), Some(0xd4));
        assert_eq!(t.parts, None);
        let t = Etag::parse("d41d8cd98f00b204e9800998ecf8427e-12");
        assert_eq!(t.md5.map(|m| m[15]), Some(0x7e));
        assert_eq!(t.parts, Some(12));
        // Upper case would not come back identical from the view: kept as text.
        for text in [
            "D41D8CD98F00B204E9800998ECF8427E",
            "abc-def",
            "d41d8cd98f00b204e9800998ecf8427e-x",
            "d41d8cd98f00b204e9800998ecf8427",
            "g41d8cd98f00b204e9800998ecf8427e",
        ] {
            assert_eq!(
                Etag::parse(text),
                Etag {
                    md5: None,
                    text,
                    parts: None
                }
            );
        }
    }
}
