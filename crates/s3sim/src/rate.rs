//! `--prefix-write-rps`: S3's per-prefix request ceiling for writes.
//!
//! S3 scales per prefix: "at least 3,500 PUT/COPY/POST/DELETE … requests
//! per second per partitioned Amazon S3 prefix", and past it answers 503
//! Slow Down (S3 user guide, "Best practices design patterns: optimizing
//! Amazon S3 performance"). A DeleteObjects request counts one write per
//! key, and S3 reports a key it would not delete now as a per-key SlowDown
//! error inside the 200. Here each top-level prefix of each bucket (the
//! key up to its first `/`) has a bucket of tokens, refilled at the
//! ceiling, holding one second's worth: a burst passes, a sustained rate
//! above the ceiling does not.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct PrefixRates {
    per_second: f64,
    tokens: Mutex<HashMap<(String, String), (f64, Instant)>>,
}

impl PrefixRates {
    pub fn new(per_second: f64) -> PrefixRates {
        PrefixRates {
            per_second,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Whether one more write to `key` of `bucket` may go now (and counts it).
    pub fn take(&self, bucket: &str, key: &str) -> bool {
        let prefix = key.find('/').map_or("", |i| &key[..=i]);
        let now = Instant::now();
        let mut tokens = self.tokens.lock().expect("not poisoned");
        let (left, at) = tokens
            .entry((bucket.to_owned(), prefix.to_owned()))
            .or_insert((self.per_second, now));
        *left =
            (*left + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.per_second);
        *at = now;
        match *left >= 1.0 {
            true => {
                *left -= 1.0;
                true
            }
            false => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_seconds_worth_passes_then_the_ceiling_holds() {
        let rates = PrefixRates::new(10.0);
        let passed = (0..30).filter(|_| rates.take("b", "p/k")).count();
        assert_eq!(passed, 10);
        // Another prefix, another bucket: their own tokens.
        assert!(rates.take("b", "q/k"));
        assert!(rates.take("c", "p/k"));
    }
}
