//! Builds big versioned buckets directly in memory: N keys over P prefixes,
//! M entries each (some of them delete markers), timestamps spread over
//! the past days, keys of a chosen shape — deterministic from a seed, and
//! ten million versions in seconds.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::store::{splitmix64, Content, Entry, Store, StoreError, Versioning};

/// What keys look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    /// `p007/obj-0000001234-….jpg`
    Flat,
    /// `p007/2024/05/01/ab/obj-…`
    Deep,
    /// Non-ASCII letters, spaces and symbols that need encoding.
    Unicode,
    /// Also tabs, newlines and other control characters.
    Control,
}

impl std::str::FromStr for KeyShape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flat" => Ok(KeyShape::Flat),
            "deep" => Ok(KeyShape::Deep),
            "unicode" => Ok(KeyShape::Unicode),
            "control" => Ok(KeyShape::Control),
            _ => Err(format!("{s:?}: expected flat, deep, unicode or control")),
        }
    }
}

/// A bucket to build.
#[derive(Debug, Clone)]
pub struct SeedSpec {
    pub bucket: String,
    pub keys: u64,
    /// Entries (versions and delete markers) per key.
    pub versions: u32,
    /// Keys are spread evenly over `p000/`, `p001/`, ….
    pub prefixes: u32,
    /// Chance that an entry after a key's first is a delete marker.
    pub marker_ratio: f64,
    /// Timestamps fall within this many days before `until_ms` (now if `None`).
    pub days: u32,
    pub until_ms: Option<i64>,
    pub shape: KeyShape,
    /// Keys are padded to at least this many bytes.
    pub key_len: usize,
    /// Bytes per object (generated on GET).
    pub object_size: u64,
    pub seed: u64,
}

impl Default for SeedSpec {
    fn default() -> Self {
        SeedSpec {
            bucket: "seeded".into(),
            keys: 1000,
            versions: 2,
            prefixes: 8,
            marker_ratio: 0.1,
            days: 30,
            until_ms: None,
            shape: KeyShape::Flat,
            key_len: 40,
            object_size: 1024,
            seed: 1,
        }
    }
}

/// The name of prefix `p` (what `s3rewind scan --prefix` takes).
pub fn prefix_name(p: u32) -> String {
    format!("p{p:03}/")
}

/// Creates (or fills) the bucket, versioning enabled. Returns the number of
/// entries written.
pub fn seed(store: &Store, spec: &SeedSpec) -> Result<u64, StoreError> {
    let bucket = match store.bucket(&spec.bucket) {
        Ok(b) => b,
        Err(_) => store.create_bucket(&spec.bucket)?,
    };
    *bucket.versioning.lock().expect("not poisoned") = Versioning::Enabled;
    let now = spec.until_ms.unwrap_or_else(crate::store::now_ms);
    let span_ms = i64::from(spec.days.max(1)) * 86_400_000;
    let prefixes = u64::from(spec.prefixes.max(1));
    let versions = spec.versions.max(1);
    let mut built: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut written = 0;
    for k in 0..spec.keys {
        let p = (k % prefixes) as u32;
        let key = key_name(spec, p, k / prefixes);
        let mut rng = splitmix64(spec.seed ^ k.wrapping_mul(0x2545_F491_4F6C_DD1D));
        // Each key's history starts somewhere in the window and moves forward.
        let start = now - span_ms + (rng % (span_ms as u64 / 2)) as i64;
        let step = (span_ms / 2) / i64::from(versions);
        let mut entries = Vec::with_capacity(versions as usize);
        for j in 0..versions {
            rng = splitmix64(rng);
            let is_marker = j > 0 && ((rng >> 11) as f64 / (1u64 << 53) as f64) < spec.marker_ratio;
            let mtime_ms = (start + i64::from(j) * step + (rng % 1000) as i64) / 1000 * 1000;
            entries.push(Entry {
                version_id: store.new_version_id(),
                mtime_ms,
                content: (!is_marker).then_some(Content::Synthetic {
                    size: spec.object_size,
                    seed: rng,
                }),
                writer: None,
            });
        }
        written += entries.len() as u64;
        built.insert(key, entries);
    }
    let mut keys = bucket.keys.write().expect("not poisoned");
    if keys.is_empty() {
        *keys = built;
    } else {
        keys.extend(built);
    }
    Ok(written)
}

fn key_name(spec: &SeedSpec, p: u32, i: u64) -> String {
    let mut key = prefix_name(p);
    let h = splitmix64(i ^ spec.seed);
    match spec.shape {
        KeyShape::Flat => {
            let _ = write!(key, "obj-{i:010}-");
        }
        KeyShape::Deep => {
            let _ = write!(
                key,
                "{}/{:02}/{:02}/{:02x}/obj-{i:010}-",
                2020 + h % 6,
                1 + (h >> 8) % 12,
                1 + (h >> 16) % 28,
                (h >> 24) % 256
            );
        }
        KeyShape::Unicode => {
            let words = [
                "café",
                "日本",
                "ü ber",
                "naïve+plus",
                "percent%20",
                "amp&q?",
            ];
            let _ = write!(
                key,
                "{}/obj {i:010} ",
                words[(h % words.len() as u64) as usize]
            );
        }
        KeyShape::Control => {
            let words = ["tab\there", "new\nline", "bell\u{7}", "cr\rlf"];
            let _ = write!(
                key,
                "{}/obj-{i:010}-",
                words[(h % words.len() as u64) as usize]
            );
        }
    }
    // Pad to the requested length with hex of the hash.
    let hexes = format!("{h:016x}{:016x}", splitmix64(h));
    let mut n = 0;
    while key.len() < spec.key_len.saturating_sub(4) {
        key.push(hexes.as_bytes()[n % hexes.len()] as char);
        n += 1;
    }
    key.push_str(".jpg");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_deterministic_and_sized() {
        let spec = SeedSpec {
            keys: 100,
            versions: 3,
            prefixes: 4,
            ..SeedSpec::default()
        };
        let a = Store::new(spec.seed);
        let b = Store::new(spec.seed);
        assert_eq!(seed(&a, &spec).unwrap(), 300);
        seed(&b, &spec).unwrap();
        let page_a = a
            .list_versions(&a.bucket("seeded").unwrap(), "", None, None, None, 1000)
            .unwrap();
        let page_b = b
            .list_versions(&b.bucket("seeded").unwrap(), "", None, None, None, 1000)
            .unwrap();
        assert_eq!(page_a.entries.len(), 300);
        let ids = |p: &crate::store::VersionsPage| {
            p.entries
                .iter()
                .map(|l| (l.key.to_string(), l.entry.version_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&page_a), ids(&page_b));
        assert!(page_a.entries.iter().all(|l| l.key.len() >= 40));
        assert!(page_a.entries.iter().any(|l| l.entry.is_marker()));
        // Newest first within a key.
        assert!(page_a
            .entries
            .windows(2)
            .all(|w| w[0].key != w[1].key || w[0].entry.mtime_ms >= w[1].entry.mtime_ms));
    }
}
