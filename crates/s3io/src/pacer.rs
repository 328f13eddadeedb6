//! The one call policy: every S3 request s3rewind sends goes through
//! [`Pacer::call`], which decides when it may go, what its answer means,
//! and whether and when to try again. Nothing above this crate loops on an
//! S3 error.
//!
//! # When a request may go
//!
//! - At most a limit of requests are in flight: `--concurrency`, or for
//!   apply, verify and check a limit that adapts to the round trip up to
//!   it ([`limit`](crate::limit)).
//! - Each *partition* — the top-level prefix of the key a request is about
//!   (`hotels/`), or a listing's prefix — has a window of requests in
//!   flight that adapts to throttling, so that a burst of 503 SlowDown on
//!   one prefix, which S3 sends while it scales that prefix, slows that
//!   prefix only. Once per round trip (when a window's worth of answers
//!   has come back) the window shrinks by half the smoothed fraction of
//!   throttled answers (DCTCP's rule: 100 % throttled halves it, a stray
//!   503 costs a few percent), and it grows by 5 % a round trip (see
//!   [`growth`]); a round most of which was throttled cuts by all of it.
//!   A throttled request keeps its place in the window while it backs
//!   off. So a steady few percent of 503s, which real
//!   S3 sends at its limits and which retries absorb, keeps the window
//!   open, while a storm closes it within a few round trips.
//! - With `--max-rps`, requests start at most that many times a second.
//!
//! # Retry budget
//!
//! | answer | retried | backoff (before each retry, with jitter) |
//! | --- | --- | --- |
//! | throttled: 503, SlowDown and kin (also inside a 200 body) | for as long as it lasts | 50 ms, doubling to 5 s |
//! | transient: 500s, timeouts, resets, bodies cut short or unreadable | 8 times (9 attempts, ≤ 30 s of waiting) | 50 ms, doubling to 10 s |
//! | not found, refused, a reply that is not what S3 sends | never | — |
//!
//! Each attempt may take 10 s to connect, 60 s between bytes and 120 s in
//! all — except the copies inside S3 (CopyObject, UploadPartCopy,
//! CompleteMultipartUpload), which have no limit in all: S3 keeps them
//! alive with whitespace while it works, and cutting one off leaves its
//! outcome unknown. The SDK itself makes one attempt per request: its retries, retry
//! quota and client-side rate limiter are off, so this table is the whole
//! budget.
//!
//! A command's first call (GetBucketVersioning) stops after three attempts
//! when nothing answered, so that a wrong endpoint is reported at once; an
//! error S3 answered with has the table's budget.
//!
//! A request that creates a version (CopyObject, a DeleteObject that adds a
//! marker, CompleteMultipartUpload) is sent with [`Retry::Once`]: a
//! transient error may hide a success, and a blind second attempt would
//! make a second version. It comes back to its caller in this crate
//! (`writes`), which looks at the key before trying again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{ErrorKind, S3Error};
use crate::gate::{Gate, Places};
use crate::limit::{Answer, Limit, Reading};

/// How a request may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Sending it twice does what sending it once does.
    Idempotent,
    /// It may create a version: transient errors go back to the caller.
    Once,
    /// The first call of a command: three attempts when nothing answers
    /// (see the retry budget above).
    Few,
}

/// Retries of a transient error (attempts minus one).
pub const TRANSIENT_RETRIES: u32 = 8;
const FEW_RETRIES: u32 = 2;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const THROTTLED_BACKOFF_CAP: Duration = Duration::from_secs(5);
const TRANSIENT_BACKOFF_CAP: Duration = Duration::from_secs(10);

/// Window growth per round trip without throttling: 5 % of the window,
/// at least a tenth of a request and at most two requests. Proportional,
/// because a window that meets a fixed ceiling settles where its growth
/// equals its cut, with a share of throttled answers about twice its
/// growth per round (DCTCP): two requests a round were 25 % of a window
/// of 8, and half the answers of a prefix at its ceiling were 503s.
fn growth(size: f64) -> f64 {
    (size * 0.05).clamp(0.1, 2.0)
}
/// Weight of the last round trip in the smoothed throttled fraction.
const GAIN: f64 = 0.5;
/// Answers a partition's round takes at least.
const MIN_ROUND: usize = 8;
/// Partitions tracked one by one; past this many, new ones share a window.
const MAX_PARTITIONS: usize = 4096;

/// Requests and answers, for summaries and progress.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
}

impl Counters {
    /// HTTP requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that repeated an earlier attempt.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Answers that said "slow down", whether retried or not.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

/// How hard to push: set per command.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests started per second at most.
    pub max_rps: Option<f64>,
    /// Whether the limit adapts to the round trip below `concurrency`
    /// (see [`limit`](crate::limit)); else it is `concurrency`.
    pub adaptive: bool,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            concurrency: 64,
            max_rps: None,
            adaptive: false,
        }
    }
}

/// The call policy of one client (see the module documentation).
pub struct Pacer {
    limit: Limit,
    max: usize,
    windows: Mutex<HashMap<String, Arc<Window>>>,
    rate: Option<RateCap>,
    counters: Counters,
}

impl Pacer {
    pub fn new(pace: Pace) -> Pacer {
        let max = pace.concurrency.max(1);
        Pacer {
            limit: Limit::new(max, pace.adaptive),
            max,
            windows: Mutex::new(HashMap::new()),
            rate: pace.max_rps.map(RateCap::new),
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Requests in flight at most (`--concurrency`: the adaptive limit's
    /// upper bound).
    pub fn concurrency(&self) -> usize {
        self.max
    }

    /// The limit on requests in flight as it stands, and what holds it there.
    pub fn limit(&self) -> Reading {
        self.limit.reading()
    }

    /// Requests in flight right now.
    pub fn in_flight(&self) -> usize {
        self.limit.in_flight()
    }

    /// The smallest window of any partition, for progress.
    pub fn narrowest_window(&self) -> usize {
        let windows = self.windows.lock().expect("not poisoned");
        windows
            .values()
            .map(|w| w.lock().limit())
            .min()
            .unwrap_or(self.max)
    }

    fn partition(&self, partition: &str) -> Arc<Window> {
        let mut windows = self.windows.lock().expect("not poisoned");
        if let Some(w) = windows.get(partition) {
            return w.clone();
        }
        let name = match windows.len() < MAX_PARTITIONS {
            true => partition,
            false => "",
        };
        windows
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Gate::new(WindowState::new(self.max))))
            .clone()
    }

    /// Makes one request with the policy: `attempt` is called for each
    /// attempt, once it has a slot (so a request waiting for its turn
    /// holds no memory but this closure).
    pub async fn call<T, F, Fut>(
        &self,
        partition: &str,
        retry: Retry,
        mut attempt: F,
    ) -> Result<T, S3Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        let window = self.partition(partition);
        let mut retries = 0;
        // A throttled request keeps its place in the partition's window
        // while it backs off: the window then counts the prefix's load as
        // S3 sees it, and the attempts slow down by themselves as more of
        // them back off (as a sender clocked by its acknowledgements does).
        let mut held = None;
        loop {
            let slot = match held.take() {
                Some(slot) => slot,
                None => window.enter().await,
            };
            let result = {
                let _cap = self.limit.acquire().await;
                if let Some(rate) = &self.rate {
                    rate.wait().await;
                }
                self.counters.requests.fetch_add(1, Ordering::Relaxed);
                if retries > 0 {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                window.lock().sent();
                let sent = Instant::now();
                let result = Box::pin(attempt()).await;
                let took = sent.elapsed();
                let signal = match &result {
                    Ok(_) => Signal::Success,
                    Err(e) if e.kind == ErrorKind::Throttled => Signal::Throttled,
                    Err(_) => Signal::Other,
                };
                self.count(signal);
                window.lock().answered(signal);
                self.limit.answered(match &result {
                    Err(e) if e.kind == ErrorKind::Throttled => Answer::Throttled,
                    Err(e) if e.kind == ErrorKind::Transient => Answer::Transient(took),
                    _ => Answer::Answered(took),
                });
                if signal == Signal::Throttled {
                    tracing::debug!(partition, window = window.lock().limit(), "throttled");
                }
                result
            };
            let error = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let retry_allowed = match (retry, error.kind) {
                (Retry::Once, ErrorKind::Transient) => false,
                // An answer (a 500, a SlowDown) came from a server that
                // knows S3: only when nothing answered is it the endpoint.
                (Retry::Few, _) if error.code.is_none() => retries < FEW_RETRIES,
                _ => true,
            };
            match self.retry_delay(&error, retries).filter(|_| retry_allowed) {
                Some(delay) => {
                    match error.kind {
                        ErrorKind::Throttled => held = Some(slot),
                        _ => drop(slot),
                    }
                    retries += 1;
                    tracing::info!(
                        partition,
                        retry = retries,
                        delay_ms = delay.as_millis() as u64,
                        error = ?error.to_string(),
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                None => {
                    tracing::debug!(partition, retries, error = ?error.to_string(), "giving up");
                    return Err(error);
                }
            }
        }
    }

    /// A "slow down" for one part of an answer that succeeded as a whole
    /// (a key of a DeleteObjects request): the partition's window hears it.
    pub fn throttled_inside(&self, partition: &str) {
        self.count(Signal::Throttled);
        self.partition(partition).lock().heard(Signal::Throttled);
    }

    fn count(&self, signal: Signal) {
        if signal == Signal::Throttled {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How long to wait before retry number `retries + 1` of something that
    /// failed with `error`; `None`: do not retry.
    pub fn retry_delay(&self, error: &S3Error, retries: u32) -> Option<Duration> {
        let cap = match error.kind {
            ErrorKind::Throttled => THROTTLED_BACKOFF_CAP,
            ErrorKind::Transient if retries < TRANSIENT_RETRIES => TRANSIENT_BACKOFF_CAP,
            _ => return None,
        };
        let backoff = cap.min(FIRST_BACKOFF * 2u32.saturating_pow(retries.min(16)));
        Some(backoff.mul_f64(rand::random_range(0.5..=1.0)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Success,
    Throttled,
    /// An error that says nothing about the request rate.
    Other,
}

/// One partition's adaptive window (see the module documentation).
type Window = Gate<WindowState>;

struct WindowState {
    size: f64,
    max: f64,
    in_flight: usize,
    /// Answers and throttled answers since the window was last judged.
    answers: u32,
    throttled: u32,
    /// Requests sent and not answered yet (the window's `in_flight` also
    /// counts those waiting for the limit on all partitions, and those
    /// backing off), and the most of them during the round.
    sending: usize,
    busiest: usize,
    /// Smoothed fraction of throttled answers.
    alpha: f64,
}

impl WindowState {
    /// A window open to `max` requests.
    fn new(max: usize) -> WindowState {
        WindowState {
            size: max as f64,
            max: max as f64,
            in_flight: 0,
            answers: 0,
            throttled: 0,
            sending: 0,
            busiest: 0,
            alpha: 0.0,
        }
    }

    fn limit(&self) -> usize {
        self.size as usize
    }

    fn sent(&mut self) {
        self.sending += 1;
        self.busiest = self.busiest.max(self.sending);
    }

    /// An answer to a request it sent.
    fn answered(&mut self, signal: Signal) {
        self.sending = self.sending.saturating_sub(1);
        self.heard(signal);
    }

    /// An answer, or a part of one (a key of a DeleteObjects request).
    fn heard(&mut self, signal: Signal) {
        self.answers += 1;
        match signal {
            Signal::Success => {
                self.size = (self.size + growth(self.size) / self.size).min(self.max)
            }
            Signal::Throttled => self.throttled += 1,
            Signal::Other => {}
        }
        // A round trip is a window's worth of answers — or what was in
        // flight, when less (the limit on all partitions holds it lower).
        let round = self.size.min(self.busiest.max(MIN_ROUND) as f64);
        if f64::from(self.answers) >= round {
            self.judge();
        }
    }

    /// Once a round trip: the window moves by the round's share of
    /// throttled answers, cut from what was in use (a window above it
    /// would not bind), and at once by all of it when most of the round
    /// was throttled (no stray 503s, that).
    fn judge(&mut self) {
        let fraction = f64::from(self.throttled) / f64::from(self.answers);
        self.alpha += GAIN * (fraction - self.alpha);
        if fraction > 0.5 {
            self.alpha = self.alpha.max(fraction);
        }
        if self.throttled > 0 {
            let used = match (self.busiest as f64) < self.size - 1.0 {
                true => self.busiest.max(1) as f64,
                false => self.size,
            };
            self.size = (used * (1.0 - self.alpha / 2.0)).max(1.0);
        }
        self.answers = 0;
        self.throttled = 0;
        self.busiest = self.sending;
    }
}

impl Places for WindowState {
    fn taken(&mut self) -> &mut usize {
        &mut self.in_flight
    }

    fn places(&self) -> usize {
        self.limit()
    }
}

/// A ceiling on requests started per second (`--max-rps`).
struct RateCap {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateCap {
    fn new(per_second: f64) -> RateCap {
        RateCap {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().expect("not poisoned");
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

/// The partition a key belongs to: its top-level prefix (`hotels/` of
/// `hotels/0001.jpg`), or the whole bucket for a key without one.
pub fn partition_of(key: &str) -> &str {
    key.find('/').map_or("", |i| &key[..=i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Answers `rounds` round trips in which each answer is throttled
    /// with probability `p` (a fixed sequence).
    /// The window kept full: each answer's place taken by a new request.
    fn run(w: &mut WindowState, rounds: usize, p: f64) {
        let mut dice = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..rounds {
            for _ in 0..w.limit() {
                while w.sending < w.limit() {
                    w.sent();
                }
                dice ^= dice << 13;
                dice ^= dice >> 7;
                dice ^= dice << 17;
                let throttled = (dice % 10_000) as f64 / 10_000.0 < p;
                w.answered(if throttled {
                    Signal::Throttled
                } else {
                    Signal::Success
                });
            }
        }
    }

    /// Calls `pacer` with `retry`, failing the first `failures` attempts
    /// with a transient error with `code`; the attempts made, and whether
    /// the call succeeded.
    async fn attempts(retry: Retry, code: Option<&str>, failures: u32) -> (u32, bool) {
        let pacer = Pacer::new(Pace {
            concurrency: 1,
            ..Pace::default()
        });
        let made = AtomicUsize::new(0);
        let result = pacer
            .call("", retry, || {
                let n = made.fetch_add(1, Ordering::Relaxed) as u32;
                async move {
                    match n < failures {
                        true => Err(S3Error {
                            kind: ErrorKind::Transient,
                            operation: "GetBucketVersioning",
                            code: code.map(str::to_owned),
                            detail: "failed on purpose".into(),
                            advice: None,
                        }),
                        false => Ok(()),
                    }
                }
            })
            .await;
        (made.load(Ordering::Relaxed) as u32, result.is_ok())
    }

    #[tokio::test]
    async fn a_first_call_gives_up_soon_when_nothing_answers_but_not_on_s3s_own_errors() {
        // No answer at all (refused, reset, timed out): three attempts.
        assert_eq!(attempts(Retry::Few, None, 5).await, (3, false));
        // InternalError from S3 itself, four times: the fifth attempt goes through.
        assert_eq!(
            attempts(Retry::Few, Some("InternalError"), 4).await,
            (5, true)
        );
        assert_eq!(attempts(Retry::Idempotent, None, 4).await, (5, true));
    }

    #[test]
    fn a_few_percent_of_throttling_keeps_the_window_open() {
        let mut w = WindowState::new(64);
        run(&mut w, 200, 0.05);
        assert!(w.limit() >= 48, "{}", w.limit());
    }

    #[test]
    fn a_storm_closes_the_window_within_a_few_round_trips_and_success_opens_it() {
        let mut w = WindowState::new(64);
        run(&mut w, 6, 1.0);
        assert!(w.limit() <= 8, "{}", w.limit());
        run(&mut w, 40, 1.0);
        assert_eq!(w.limit(), 1);
        // 5 % more a round trip once it is calm again (a tenth of a
        // request at least, two at most).
        let mut rounds = 0;
        while w.limit() < 64 {
            run(&mut w, 1, 0.0);
            rounds += 1;
        }
        assert!((60..=100).contains(&rounds), "{rounds}");
    }

    #[test]
    fn at_most_one_cut_per_round_trip() {
        let mut w = WindowState::new(64);
        w.busiest = 64;
        // Ten 503s in a row within one round trip: one cut.
        for _ in 0..10 {
            w.answered(Signal::Throttled);
        }
        assert_eq!(w.limit(), 64);
        for _ in 0..54 {
            w.answered(Signal::Success);
        }
        assert!((56..64).contains(&w.limit()), "{}", w.limit());
    }

    #[tokio::test]
    async fn calls_wait_for_a_slot_and_throttling_is_retried_until_it_passes() {
        let pacer = Pacer::new(Pace {
            concurrency: 2,
            ..Pace::default()
        });
        let calls = AtomicU64::new(0);
        let result = pacer
            .call("p/", Retry::Idempotent, || async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0..=3 => Err(S3Error::for_test(ErrorKind::Throttled)),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(pacer.counters().requests(), 5);
        assert_eq!(pacer.counters().retries(), 4);
        assert_eq!(pacer.counters().throttled(), 4);
        // Transient errors: a bounded number of retries; Once: none.
        let calls = AtomicU64::new(0);
        let failed: Result<(), _> = pacer
            .call("p/", Retry::Once, || async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(S3Error::for_test(ErrorKind::Transient))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        let fatal: Result<(), _> = pacer
            .call("p/", Retry::Idempotent, || async {
                Err(S3Error::for_test(ErrorKind::Fatal))
            })
            .await;
        assert!(fatal.is_err());
        assert!(pacer
            .retry_delay(&S3Error::for_test(ErrorKind::Transient), TRANSIENT_RETRIES)
            .is_none());
    }

    #[test]
    fn partitions_are_top_level_prefixes() {
        assert_eq!(partition_of("hotels/0001.jpg"), "hotels/");
        assert_eq!(partition_of("a/b/c"), "a/");
        assert_eq!(partition_of("flat-key"), "");
    }
}
