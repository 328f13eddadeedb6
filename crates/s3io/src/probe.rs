//! The newest entry of given keys, read with as few listings as the keys'
//! places in the bucket allow: adjacent keys share ListObjectVersions pages.

use futures::stream::{self, StreamExt, TryStreamExt};
use model::Entry;

use crate::listing::ListRequest;
use crate::{S3Error, S3};

impl S3 {
    /// The first key under `prefix` that sorts after `after` (from the
    /// prefix's start without it), if any: one request of one entry, which
    /// tells where the keys of a key range are.
    pub async fn first_key_after(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<Option<String>, S3Error> {
        let request = ListRequest {
            prefix: prefix.to_owned(),
            key_marker: after.map(str::to_owned),
            ..ListRequest::default()
        };
        let page = self.list_page(bucket, &request, 1).await?;
        Ok(page.entries.into_iter().next().map(|e| e.key))
    }

    /// The first level of the hierarchy under `prefix`: the distinct
    /// prefixes up to the next `delimiter` (at most a page of them), and
    /// whether there are more.
    pub async fn common_prefixes(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
    ) -> Result<(Vec<String>, bool), S3Error> {
        let request = ListRequest {
            prefix: prefix.to_owned(),
            delimiter: Some(delimiter.to_owned()),
            ..ListRequest::default()
        };
        let page = self.list_page(bucket, &request, 1000).await?;
        Ok((page.common_prefixes, page.is_truncated))
    }

    /// The newest version or delete marker of exactly `key`, or `None` if
    /// the key has no entries. (A listing of prefix `key` starts with the
    /// key itself: every other key under that prefix sorts after it.)
    pub async fn newest_entry(&self, bucket: &str, key: &str) -> Result<Option<Entry>, S3Error> {
        let request = ListRequest {
            prefix: key.to_owned(),
            ..ListRequest::default()
        };
        let page = self.list_page(bucket, &request, 1).await?;
        Ok(page.entries.into_iter().next().filter(|e| e.key == key))
    }

    /// The newest entry of each of `keys`, which are sorted, distinct, and
    /// next to each other in the bucket (or nearly: keys in between are
    /// listed and passed over). `entries[i]` is about how many entries key
    /// `i` has, to size the pages so that they end where the keys do. One
    /// page covers many keys; when a page ends before the next key, the next
    /// request starts at that key rather than wading through what lies
    /// between.
    pub async fn newest_entries(
        &self,
        bucket: &str,
        keys: &[&str],
        entries: &[u64],
    ) -> Result<Vec<Option<Entry>>, S3Error> {
        let mut newest: Vec<Option<Entry>> = vec![None; keys.len()];
        let mut next = 0;
        while next < keys.len() {
            if keys.len() - next == 1 {
                newest[next] = self.newest_entry(bucket, keys[next]).await?;
                break;
            }
            let rest = &keys[next..];
            let request = ListRequest {
                prefix: common_prefix(rest[0], rest[rest.len() - 1]).to_owned(),
                key_marker: just_before(rest[0]),
                ..ListRequest::default()
            };
            let max_keys = entries[next..].iter().sum::<u64>().clamp(1, 1000) as i32;
            // Keys ascending, each newest first, whatever the server's layout.
            let page = self.list_page(bucket, &request, max_keys).await?;
            let mut i = next;
            for e in page.entries {
                while i < keys.len() && keys[i] < e.key.as_str() {
                    i += 1;
                }
                if i == keys.len() {
                    break;
                }
                if keys[i] == e.key && newest[i].is_none() {
                    newest[i] = Some(e);
                }
            }
            if !page.is_truncated {
                break;
            }
            // Every key up to the page's end is settled (its first entry,
            // the newest, came first); a key listed last is settled too.
            let settled = match i < keys.len() && newest[i].is_some() {
                true => i + 1,
                false => i,
            };
            if settled == next {
                // A page full of keys between: this one key on its own.
                newest[next] = self.newest_entry(bucket, keys[next]).await?;
                next += 1;
            } else {
                next = settled;
            }
        }
        Ok(newest)
    }
}

impl S3 {
    /// Every entry of each of `keys` (sorted, distinct, near each other in
    /// the bucket), each key's newest first: listed from just before the
    /// first key until past the last, keys in between passed over.
    async fn entries_of_keys(
        &self,
        bucket: &str,
        keys: &[&str],
    ) -> Result<Vec<Vec<Entry>>, S3Error> {
        let mut found: Vec<Vec<Entry>> = vec![Vec::new(); keys.len()];
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Ok(found);
        };
        let mut request = ListRequest {
            prefix: common_prefix(first, last).to_owned(),
            key_marker: just_before(first),
            ..ListRequest::default()
        };
        let mut i = 0;
        loop {
            let page = self.list_page(bucket, &request, 1000).await?;
            let mut past_last = false;
            for e in &page.entries {
                if e.key.as_str() > *last {
                    past_last = true;
                    break;
                }
                while i < keys.len() && keys[i] < e.key.as_str() {
                    i += 1;
                }
                if i < keys.len() && keys[i] == e.key {
                    found[i].push(e.clone());
                }
            }
            if past_last || !page.is_truncated {
                return Ok(found);
            }
            request = request.after(&page)?;
        }
    }
}

/// Keys this far apart in a scan's order (key ids, handed out in listing
/// order) share a listing: the keys between are listed and passed over.
const RUN_GAP: i64 = 16;
/// Keys one chain of [`S3::entries_of`] requests lists at most, so that a
/// long run is listed by several chains at once.
const RUN_KEYS: usize = 200;

/// `sorted` (by key) cut into runs of at most `max` keys near each other
/// in the scan's order, each to be listed by one chain of requests.
pub fn key_runs<T>(sorted: &[T], key_id: impl Fn(&T) -> i64, max: usize) -> Vec<&[T]> {
    sorted
        .chunk_by(|a, b| (1..=RUN_GAP).contains(&(key_id(b) - key_id(a))))
        .flat_map(|run| run.chunks(max))
        .collect()
}

impl S3 {
    /// Every entry of each of `keys` ((key id, key), sorted by key, distinct),
    /// each key's newest first, in the order of `keys`: runs of keys near
    /// each other listed by one chain of requests each, as many chains at
    /// once as the call policy allows.
    pub async fn entries_of(
        &self,
        bucket: &str,
        keys: &[(i64, &str)],
    ) -> Result<Vec<Vec<Entry>>, S3Error> {
        let runs = key_runs(keys, |k| k.0, RUN_KEYS);
        let listed: Vec<Vec<Vec<Entry>>> = stream::iter(runs)
            .map(|run| async move {
                let names: Vec<&str> = run.iter().map(|k| k.1).collect();
                self.entries_of_keys(bucket, &names).await
            })
            .buffered(self.pacer().concurrency())
            .try_collect()
            .await?;
        Ok(listed.into_iter().flatten().collect())
    }
}

/// The longest common prefix of two keys, on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        end = i + x.len_utf8();
    }
    &a[..end]
}

/// A key marker that a listing starts right before `key` with: `key`
/// without its last character (keys sorting between the two are passed over).
fn just_before(key: &str) -> Option<String> {
    let mut chars = key.chars();
    chars.next_back();
    let before = chars.as_str();
    (!before.is_empty()).then(|| before.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_prefixes_of_a_run_of_keys() {
        assert_eq!(common_prefix("img/a1", "img/b2"), "img/");
        assert_eq!(common_prefix("é1", "é2"), "é");
        assert_eq!(common_prefix("a", "b"), "");
        assert_eq!(just_before("img/a1").as_deref(), Some("img/a"));
        assert_eq!(just_before("aé").as_deref(), Some("a"));
        assert_eq!(just_before("a"), None);
    }
}
