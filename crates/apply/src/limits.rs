//! How hard apply pushes: an adaptive cap on requests in flight (halved on
//! throttling, grown by one after a run of successes) and an optional
//! requests-per-second ceiling.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Successes between two increases of the cap.
const GROW_EVERY: u64 = 50;
/// At most one cut per this long: one burst of 503s is one signal.
const CUT_COOLDOWN: Duration = Duration::from_secs(1);

pub struct AdaptiveLimit {
    permits: Arc<Semaphore>,
    limit: AtomicUsize,
    max: usize,
    successes: AtomicU64,
    throttles_seen: AtomicU64,
    last_cut: Mutex<Option<Instant>>,
}

impl AdaptiveLimit {
    pub fn new(max: usize) -> AdaptiveLimit {
        let max = max.max(1);
        AdaptiveLimit {
            permits: Arc::new(Semaphore::new(max)),
            limit: AtomicUsize::new(max),
            max,
            successes: AtomicU64::new(0),
            throttles_seen: AtomicU64::new(0),
            last_cut: Mutex::new(None),
        }
    }

    /// The current cap.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("never closed")
    }

    /// Feeds the client's running count of 503 responses: any new ones cut
    /// the cap in half; otherwise a success counts towards growing it.
    pub fn observe(&self, throttled_total: u64) {
        let seen = self.throttles_seen.swap(throttled_total, Ordering::Relaxed);
        if throttled_total > seen {
            self.cut();
        } else if self.successes.fetch_add(1, Ordering::Relaxed) % GROW_EVERY == GROW_EVERY - 1 {
            self.grow();
        }
    }

    /// Halves the cap (at most once per cooldown).
    pub fn cut(&self) {
        let mut last = self.last_cut.lock().expect("not poisoned");
        if last.is_some_and(|t| t.elapsed() < CUT_COOLDOWN) {
            return;
        }
        *last = Some(Instant::now());
        let limit = self.limit();
        let new = (limit / 2).max(1);
        if new < limit {
            self.limit.store(new, Ordering::Relaxed);
            // Take the permits out of circulation as they come back.
            let permits = self.permits.clone();
            tokio::spawn(async move {
                if let Ok(p) = permits.acquire_many_owned((limit - new) as u32).await {
                    p.forget();
                }
            });
        }
    }

    fn grow(&self) {
        let limit = self.limit();
        if limit < self.max {
            self.limit.store(limit + 1, Ordering::Relaxed);
            self.permits.add_permits(1);
        }
    }
}

/// A ceiling on requests started per second (`--max-rps`).
pub struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    pub fn new(per_second: f64) -> RateLimit {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.001)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().expect("not poisoned");
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_the_cap_and_successes_grow_it_back() {
        let l = AdaptiveLimit::new(8);
        l.observe(0);
        assert_eq!(l.limit(), 8);
        l.observe(3);
        assert_eq!(l.limit(), 4);
        // Within the cooldown a second burst does not cut again.
        l.observe(5);
        assert_eq!(l.limit(), 4);
        for _ in 0..GROW_EVERY * 2 {
            l.observe(5);
        }
        assert_eq!(l.limit(), 6);
    }

    #[tokio::test]
    async fn the_rate_limit_spaces_requests() {
        let r = RateLimit::new(100.0);
        let start = Instant::now();
        for _ in 0..11 {
            r.wait().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
    }
}
