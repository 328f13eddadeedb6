//! The prefixes a scan lists in parallel: read, merged, checked for overlap.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PrefixError {
    #[error(
        "prefixes {first:?} and {second:?} overlap ({second:?} starts with {first:?}), so their keys would be listed twice{}\n  hint: keep only {first:?}, or only the longer prefixes",
        if *.in_catalog { "; the first is already in the catalog" } else { "" }
    )]
    Overlap {
        first: String,
        second: String,
        in_catalog: bool,
    },
    #[error("cannot read the prefixes file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the prefixes file {0} lists no prefix (only blank lines and # comments)\n  hint: to scan the whole location, leave out --prefixes")]
    EmptyFile(PathBuf),
}

/// Reads a prefixes file: one prefix a line; blank lines and lines starting
/// with `#` are ignored; surrounding whitespace is trimmed.
pub fn read_prefixes_file(path: &Path) -> Result<Vec<String>, PrefixError> {
    let text = std::fs::read_to_string(path).map_err(|e| PrefixError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let prefixes: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if prefixes.is_empty() {
        return Err(PrefixError::EmptyFile(path.to_owned()));
    }
    Ok(prefixes)
}

/// The union of the catalog's prefixes and the requested ones, sorted and
/// without duplicates. Refuses two prefixes where one starts with the other.
pub fn merge_prefixes(stored: &[String], requested: &[String]) -> Result<Vec<String>, PrefixError> {
    let mut all: Vec<(&str, bool)> = stored
        .iter()
        .map(|p| (p.as_str(), true))
        .chain(requested.iter().map(|p| (p.as_str(), false)))
        .collect();
    // Sorted by prefix, a stored duplicate first so it is the one kept.
    all.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    all.dedup_by(|later, earlier| later.0 == earlier.0);
    // In sorted order, a prefix's extensions follow it directly.
    for pair in all.windows(2) {
        let ((first, in_catalog), (second, _)) = (pair[0], pair[1]);
        if second.starts_with(first) {
            return Err(PrefixError::Overlap {
                first: first.to_owned(),
                second: second.to_owned(),
                in_catalog,
            });
        }
    }
    Ok(all.into_iter().map(|(p, _)| p.to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn merges_duplicates_and_sorts() {
        let merged = merge_prefixes(&s(&["b/"]), &s(&["c/", "a/", "b/", "c/"])).unwrap();
        assert_eq!(merged, s(&["a/", "b/", "c/"]));
    }

    #[test]
    fn refuses_overlaps_naming_both() {
        let err = merge_prefixes(&[], &s(&["img/", "a", "img/2024/"])).unwrap_err();
        assert!(
            matches!(err, PrefixError::Overlap { ref first, ref second, in_catalog: false }
            if first == "img/" && second == "img/2024/")
        );
        let err = merge_prefixes(&s(&[""]), &s(&["x/"])).unwrap_err();
        assert!(matches!(
            err,
            PrefixError::Overlap {
                in_catalog: true,
                ..
            }
        ));
        // A shared beginning is not an overlap.
        assert!(merge_prefixes(&[], &s(&["img/a", "img/b"])).is_ok());
    }
}
