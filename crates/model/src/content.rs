//! When two versions of a key hold the same bytes, by what s3rewind can know
//! without reading them (docs/design.md, "Already as at T").
//!
//! - Apply's journal: a done copy made one version from another, so they
//!   hold the same bytes, whatever their ETags (multipart and SSE-KMS copies
//!   too); copies of copies chain.
//! - The same size and the same single-part ETag. S3 makes a single-part
//!   object's ETag the MD5 of its bytes, unless it is encrypted with SSE-KMS
//!   or SSE-C; then the ETag is not an MD5 but is made anew for each write,
//!   so two equal ones are still one write's bytes, and a copy of such an
//!   object has another ETag (not recognised by its ETag: the journal, or a
//!   copy, is the answer). A multipart ETag (`<md5>-N`) is the MD5 of the
//!   parts' MD5s: two objects cut into other parts differ, and it is not
//!   trusted here. (API reference, `Object`, ETag.)
//!
//! A listing gives no checksum values, so a full-object checksum is not an
//! identity the catalog can use.

use crate::Etag;

/// How a version was known to hold another's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownBy {
    /// A done copy of an applied plan made it from the other (or through
    /// copies of copies).
    Journal,
    /// The same size and the same single-part ETag.
    Etag,
}

impl KnownBy {
    pub fn as_str(self) -> &'static str {
        match self {
            KnownBy::Journal => "journal",
            KnownBy::Etag => "etag",
        }
    }

    pub fn parse(s: &str) -> Option<KnownBy> {
        match s {
            "journal" => Some(KnownBy::Journal),
            "etag" => Some(KnownBy::Etag),
            _ => None,
        }
    }
}

/// The 16 bytes of a single-part ETag (32 hex digits), the only kind
/// compared (see the module's doc).
pub fn single_part_md5(etag: &str) -> Option<[u8; 16]> {
    let e = Etag::parse(etag);
    e.parts.is_none().then_some(e.md5).flatten()
}

/// The same size and the same single-part ETag (see the module's doc):
/// (size, [`single_part_md5`]) of each.
pub fn same_by_etag(
    a: (Option<i64>, Option<[u8; 16]>),
    b: (Option<i64>, Option<[u8; 16]>),
) -> bool {
    a.0.is_some() && a.1.is_some() && a == b
}

/// Whether the copies `(source, result)` a key's journal records tie
/// version `a` to version `b` (the same version is tied to itself).
pub fn same_by_journal(copies: &[(String, String)], a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    // The versions reached from `a`, through copies either way.
    let mut reached = vec![a];
    let mut at = 0;
    while let Some(&v) = reached.get(at) {
        at += 1;
        for (source, result) in copies {
            for (from, to) in [(source, result), (result, source)] {
                if from == v && !reached.contains(&to.as_str()) {
                    if to == b {
                        return true;
                    }
                    reached.push(to);
                }
            }
        }
    }
    false
}

/// How `newest` is known to hold `wanted`'s content, if it is: the journal
/// first (exact), then the ETag.
pub fn known_same(
    copies: &[(String, String)],
    wanted: (&str, Option<i64>, Option<[u8; 16]>),
    newest: (&str, Option<i64>, Option<[u8; 16]>),
) -> Option<KnownBy> {
    if same_by_journal(copies, wanted.0, newest.0) {
        return Some(KnownBy::Journal);
    }
    same_by_etag((wanted.1, wanted.2), (newest.1, newest.2)).then_some(KnownBy::Etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn md5(etag: &str) -> Option<[u8; 16]> {
        single_part_md5(etag)
    }

    #[test]
    fn the_same_single_part_etag_and_size_is_the_same_content() {
        assert!(same_by_etag((Some(3), md5(MD5)), (Some(3), md5(MD5))));
        // Another size, another ETag, no size, no ETag: not known.
        assert!(!same_by_etag((Some(3), md5(MD5)), (Some(4), md5(MD5))));
        assert!(!same_by_etag((Some(3), md5(MD5)), (Some(3), md5(OTHER))));
        assert!(!same_by_etag((None, md5(MD5)), (None, md5(MD5))));
        assert!(!same_by_etag((Some(3), None), (Some(3), None)));
        // A multipart ETag, or one that is no hex, is not compared.
        assert_eq!(md5(&format!("{MD5}-2")), None);
        assert_eq!(md5("not hex"), None);
        // As the catalog stores them: only lower-case hex is bytes.
        assert_eq!(md5(&MD5.to_uppercase()), None);
    }

    #[test]
    fn copies_tie_versions_either_way_and_through_copies_of_copies() {
        let copies = vec![
            ("v1".to_owned(), "c1".to_owned()),
            ("c1".to_owned(), "c2".to_owned()),
            ("v9".to_owned(), "c9".to_owned()),
        ];
        assert!(same_by_journal(&copies, "v1", "c2"));
        assert!(same_by_journal(&copies, "c2", "v1"));
        assert!(same_by_journal(&copies, "v1", "v1"));
        assert!(!same_by_journal(&copies, "v1", "c9"));
        assert!(!same_by_journal(&[], "v1", "c1"));
        assert_eq!(
            known_same(
                &copies,
                ("v1", Some(3), md5(MD5)),
                ("c2", Some(3), md5(OTHER))
            ),
            Some(KnownBy::Journal)
        );
        assert_eq!(
            known_same(&[], ("v1", Some(3), md5(MD5)), ("x", Some(3), md5(MD5))),
            Some(KnownBy::Etag)
        );
        assert_eq!(
            known_same(&[], ("v1", Some(3), md5(MD5)), ("x", Some(3), md5(OTHER))),
            None
        );
    }
}
