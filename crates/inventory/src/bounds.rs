//! Where a bucket's keys are, found with few requests: one-entry listings
//! from a key (the scan's and `split`'s, all made here), the first level of
//! its hierarchy (one delimiter listing), and a bound above the keys of an
//! open-ended range (a binary search of one-entry listings). Every request
//! made here is counted as spent on finding cut points.

use std::sync::atomic::{AtomicU64, Ordering};

use s3io::{S3Error, S3};

use crate::keyspace;

/// Counts the requests made to find where to cut.
pub(crate) struct Probe<'a> {
    pub s3: &'a S3,
    pub bucket: &'a str,
    pub spent: &'a AtomicU64,
}

impl Probe<'_> {
    /// The first key under `prefix` that sorts after `after` (from the
    /// prefix's start without it), if any: a listing of one entry.
    pub async fn first_key_after(
        &self,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<Option<String>, S3Error> {
        self.spent.fetch_add(1, Ordering::Relaxed);
        self.s3.first_key_after(self.bucket, prefix, after).await
    }

    /// Whether no key under `prefix` sorts after `key`.
    async fn nothing_after(&self, prefix: &str, key: &str) -> Result<bool, S3Error> {
        Ok(self.first_key_after(prefix, Some(key)).await?.is_none())
    }

    /// Cut points at the first level of the hierarchy under `prefix`
    /// (delimiter `/`): one between each two neighbouring common prefixes,
    /// so that each gets a range of its own; none where there is no
    /// hierarchy. (A common prefix `b/` is cut before at `b.`: every key of
    /// the prefix before it sorts below, every key under `b/` above.)
    pub async fn hierarchy_cuts(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        self.spent.fetch_add(1, Ordering::Relaxed);
        let (prefixes, _) = self.s3.common_prefixes(self.bucket, prefix, "/").await?;
        Ok(prefixes.iter().skip(1).map(|p| just_below(p)).collect())
    }

    /// A key above every key under `prefix` that sorts after `low`: the
    /// tightest of [`keyspace::raised`]'s candidates with nothing after it,
    /// narrowed one character further. `None` if even the loosest has keys
    /// after it.
    pub async fn bound_after(&self, prefix: &str, low: &str) -> Result<Option<String>, S3Error> {
        let candidates = keyspace::raised(prefix, low);
        let Some(found) = self.tightest_empty(prefix, &candidates).await? else {
            return Ok(None);
        };
        let mut bound = candidates[found].1.clone();
        // The next candidate has keys after it: the bound lies between.
        if let Some((Some(at), _)) = candidates.get(found + 1) {
            let finer: Vec<(Option<usize>, String)> = keyspace::raised_at(prefix, low, *at)
                .into_iter()
                .map(|k| (None, k))
                .filter(|(_, k)| k.as_str() < bound.as_str())
                .collect();
            if let Some(i) = self.tightest_empty(prefix, &finer).await? {
                bound = finer[i].1.clone();
            }
        }
        Ok(Some(bound))
    }

    /// The last (tightest) of `candidates` (largest first) with nothing
    /// after it; having nothing after is true up to some point, then false.
    async fn tightest_empty(
        &self,
        prefix: &str,
        candidates: &[(Option<usize>, String)],
    ) -> Result<Option<usize>, S3Error> {
        if candidates.is_empty() || !self.nothing_after(prefix, &candidates[0].1).await? {
            return Ok(None);
        }
        // candidates[lo] has nothing after it; candidates[hi] (if any) has.
        // Three probes a round, at once: a quarter of the round trips of a
        // plain bisection for a few more requests.
        let (mut lo, mut hi) = (0, candidates.len());
        while hi - lo > 1 {
            let mut picks: Vec<usize> = (1..=3).map(|j| lo + (hi - lo) * j / 4).collect();
            picks.dedup();
            picks.retain(|&i| i > lo && i < hi);
            let answers = futures::future::try_join_all(
                picks
                    .iter()
                    .map(|&i| self.nothing_after(prefix, &candidates[i].1)),
            )
            .await?;
            for (i, empty) in picks.into_iter().zip(answers) {
                match empty {
                    true => lo = lo.max(i),
                    false => hi = hi.min(i),
                }
            }
        }
        Ok(Some(lo))
    }
}

/// The key `prefix` with its last character one lower: below every key
/// under `prefix`, above every key under a smaller common prefix.
fn just_below(prefix: &str) -> String {
    let mut chars = prefix.chars();
    let last = chars.next_back().map_or(0, |c| c as u32);
    let mut below = chars.as_str().to_owned();
    if let Some(c) = last.checked_sub(1).and_then(char::from_u32) {
        below.push(c);
    }
    below
}

#[cfg(test)]
mod tests {
    use super::just_below;

    #[test]
    fn cuts_between_common_prefixes_fall_between_their_keys() {
        assert_eq!(just_below("b/"), "b.");
        assert_eq!(just_below("img/2024/"), "img/2024.");
        // Every key of a smaller common prefix sorts below the cut.
        assert!("b-x/zzzz" < just_below("b/").as_str());
        assert!("b/" > just_below("b/").as_str());
    }
}
