//! How many requests may be in flight at once, all partitions together.
//!
//! A fixed number is wrong everywhere but where it was measured: by Little's
//! law the requests in flight a rate needs grow with the round trip (1,000
//! copies a second take 20 in flight at 20 ms and 200 at 200 ms), and past
//! what the server — or this process's own CPU — can serve, more in flight
//! only queue. So for apply, verify and check the limit adapts, from 64
//! up to `--concurrency` (its upper bound), as TCP Vegas and Netflix's
//! gradient limiter do:
//!
//! - Once per round (when as many answers as the limit have come back,
//!   8 at least) the round's median round trip is compared with the
//!   *floor*, the lowest round median seen. (It never creeps up on its own: a floor
//!   that followed a lasting queue would let the queue grow without end.
//!   Only a limit pushed down to its minimum learns the floor anew, for a
//!   path that really got slower.)
//! - Near the floor (at most 1.5× it), and with the limit in use (at least
//!   half of it was in flight during the round): the limit grows —
//!   doubling at first (slow start), then by its square root a round.
//! - Above it, requests queue somewhere: the limit shrinks by the ratio
//!   (1.5 × floor / median, at most halving, never below the 64 it
//!   started at), and growth is gentle from then on.
//!   Whether the queue is this process's CPU is told by its CPU time over
//!   the round (`getrusage`): at 85 % of a core or more (apply's requests
//!   are all made on one thread), it is.
//! - More than 10 % of the answers transient errors (500s, timeouts,
//!   resets; smoothed over about 100 answers, so that one error in a
//!   small round is no overload): the limit shrinks by a fifth.
//!
//! Throttling (503 SlowDown) is not this limit's business: it is a
//! prefix's, and each partition's window in [`pacer`](crate::pacer) adapts
//! to it. A throttled answer is no sample here.
//!
//! With a fixed limit (`scan`, whose ranges are its own concurrency) the
//! limit is `--concurrency` and nothing is judged.

use std::time::{Duration, Instant};

use crate::gate::{Gate, Pass, Places};

/// Where the limit starts.
const INITIAL: f64 = 64.0;
/// The lowest it goes.
const MIN: f64 = 4.0;
/// Answers a round takes at least.
const MIN_ROUND: u32 = 8;
/// How far above the floor a round's median may be before it counts as queueing.
const TOLERANCE: f64 = 1.5;
/// Share of transient errors in a round that cuts the limit.
const ERRORS: f64 = 0.1;
/// Share of a core this process's CPU time must take to be the bottleneck.
const CPU_BUSY: f64 = 0.85;

/// What holds the limit where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Still growing: the round trip stays near its floor.
    Growing,
    /// `--concurrency`, the upper bound, is reached.
    Cap,
    /// More in flight only made answers slower: a queue at the server or
    /// on the way.
    Latency,
    /// More in flight only made answers slower, and this process's CPU is busy.
    Cpu,
    /// Transient errors.
    Errors,
    /// Fewer requests were waiting than the limit allows.
    Demand,
    /// Fixed: `--concurrency` as given.
    Fixed,
}

impl Bound {
    pub fn as_str(self) -> &'static str {
        match self {
            Bound::Growing => "growing",
            Bound::Cap => "cap",
            Bound::Latency => "latency",
            Bound::Cpu => "cpu",
            Bound::Errors => "errors",
            Bound::Demand => "demand",
            Bound::Fixed => "fixed",
        }
    }
}

/// The limit as it stands, for progress and summaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub limit: usize,
    /// `--concurrency`.
    pub max: usize,
    pub bound: Bound,
    /// The limit and its bound after the last round that kept it busy (a
    /// run's tail, with fewer requests left than the limit, says nothing):
    /// where it settled.
    pub settled: (usize, Bound),
    /// The lowest round trip seen (a round's median), if judged yet.
    pub floor: Option<Duration>,
}

/// How a request ended, for the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// An answer (a success, or an error S3 meant, such as 404 or 412).
    Answered(Duration),
    /// A 500, a timeout, a reset: the path may be overloaded.
    Transient(Duration),
    /// 503 SlowDown: the partition's business.
    Throttled,
}

pub(crate) struct Limit(Gate<State>);

pub(crate) struct State {
    limit: f64,
    max: f64,
    adaptive: bool,
    in_flight: usize,
    bound: Bound,
    slow_start: bool,
    floor: Option<f64>,
    /// The share of transient errors, smoothed over about 100 answers (a
    /// round of 8 with one error is no overload).
    errors: f64,
    round: Round,
    settled: (usize, Bound),
}

/// What a round saw so far.
struct Round {
    answers: u32,
    errors: u32,
    rtts: Vec<f64>,
    busiest: usize,
    started: Instant,
    cpu: Option<Duration>,
}

impl Round {
    fn new(in_flight: usize) -> Round {
        Round {
            answers: 0,
            errors: 0,
            rtts: Vec::new(),
            busiest: in_flight,
            started: Instant::now(),
            cpu: process_cpu(),
        }
    }
}

impl State {
    fn new(max: usize, adaptive: bool) -> State {
        let max = max.max(1) as f64;
        let limit = if adaptive { INITIAL.min(max) } else { max };
        let bound = if adaptive {
            Bound::Growing
        } else {
            Bound::Fixed
        };
        State {
            limit,
            max,
            adaptive,
            in_flight: 0,
            bound,
            slow_start: true,
            floor: None,
            errors: 0.0,
            round: Round::new(0),
            settled: (limit as usize, bound),
        }
    }

    fn limit(&self) -> usize {
        self.limit as usize
    }

    fn answered(&mut self, answer: Answer) {
        if !self.adaptive {
            return;
        }
        let rtt = match answer {
            Answer::Answered(rtt) => rtt,
            Answer::Transient(rtt) => {
                self.round.errors += 1;
                rtt
            }
            Answer::Throttled => return,
        };
        self.round.answers += 1;
        self.round.rtts.push(rtt.as_secs_f64());
        if self.round.answers >= (self.limit as u32).max(MIN_ROUND) {
            self.judge();
        }
    }

    /// The end of a round: the limit moves (see the module documentation).
    fn judge(&mut self) {
        let mut round = std::mem::replace(&mut self.round, Round::new(self.in_flight));
        // The round's median: round trips have long tails (a reset, a
        // slow body), and one of them in a small round is no queue.
        round.rtts.sort_unstable_by(f64::total_cmp);
        let mean = round.rtts[round.rtts.len() / 2];
        let floor = match self.floor {
            Some(f) if self.limit > MIN => f.min(mean),
            _ => mean,
        };
        self.floor = Some(floor);
        let share = f64::from(round.errors) / f64::from(round.answers);
        let weight = (f64::from(round.answers) / 100.0).min(1.0);
        self.errors += weight * (share - self.errors);
        if self.errors > ERRORS {
            self.limit *= 0.8;
            self.bound = Bound::Errors;
            self.slow_start = false;
        } else if mean > floor * TOLERANCE {
            // Slower answers alone never take it below where it started
            // (the fixed limit of old, safe everywhere): only errors do.
            let start = INITIAL.min(self.max);
            self.limit =
                (self.limit * (floor * TOLERANCE / mean).max(0.5)).max(start.min(self.limit));
            self.slow_start = false;
            self.bound = match cpu_busy(&round) {
                true => Bound::Cpu,
                false => Bound::Latency,
            };
        } else if (round.busiest as f64) < self.limit / 2.0 {
            if self.slow_start {
                self.bound = Bound::Demand;
            }
        } else if self.limit >= self.max {
            self.bound = Bound::Cap;
        } else {
            self.limit += match self.slow_start {
                true => self.limit,
                false => self.limit.sqrt(),
            };
            if self.slow_start || self.bound == Bound::Demand {
                self.bound = Bound::Growing;
            }
        }
        self.limit = self.limit.clamp(MIN.min(self.max), self.max);
        if self.limit >= self.max {
            self.bound = Bound::Cap;
        }
        if self.bound != Bound::Demand && (round.busiest as f64) >= self.limit / 2.0 {
            self.settled = (self.limit(), self.bound);
        }
    }
}

/// Whether this process's CPU time over `round` took most of the cores.
fn cpu_busy(round: &Round) -> bool {
    let (Some(before), Some(now)) = (round.cpu, process_cpu()) else {
        return false;
    };
    // Against one core: apply's requests are all made on one thread.
    let wall = round.started.elapsed().as_secs_f64();
    wall > 0.0 && (now - before).as_secs_f64() / wall >= CPU_BUSY
}

/// User and system CPU time of this process so far.
fn process_cpu() -> Option<Duration> {
    // SAFETY: getrusage writes the struct it is given, nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0).then_some(usage)
    }?;
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

/// A request's place under the limit, given back when dropped.
pub(crate) type Slot<'l> = Pass<'l, State>;

impl Places for State {
    fn taken(&mut self) -> &mut usize {
        &mut self.in_flight
    }

    fn places(&self) -> usize {
        self.limit()
    }

    fn entered(&mut self) {
        self.round.busiest = self.round.busiest.max(self.in_flight);
    }
}

impl Limit {
    pub(crate) fn new(max: usize, adaptive: bool) -> Limit {
        Limit(Gate::new(State::new(max, adaptive)))
    }

    pub(crate) async fn acquire(&self) -> Slot<'_> {
        self.0.enter().await
    }

    pub(crate) fn answered(&self, answer: Answer) {
        self.0.lock().answered(answer);
    }

    pub(crate) fn reading(&self) -> Reading {
        let s = self.0.lock();
        Reading {
            limit: s.limit(),
            max: s.max as usize,
            bound: s.bound,
            settled: s.settled,
            floor: s.floor.map(Duration::from_secs_f64),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.0.lock().in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounds in which `in_flight(limit)` requests are kept in flight and
    /// each answers after `rtt(in flight)`.
    fn rounds(s: &mut State, n: usize, rtt: impl Fn(f64) -> f64) {
        for _ in 0..n {
            let in_flight = s.limit;
            s.round.busiest = in_flight as usize;
            for _ in 0..s.limit().max(MIN_ROUND as usize) {
                s.answered(Answer::Answered(Duration::from_secs_f64(rtt(in_flight))));
            }
        }
    }

    /// A server that serves `rate` a second behind a path of `latency`:
    /// beyond rate × latency in flight, requests queue.
    fn server(rate: f64, latency: f64) -> impl Fn(f64) -> f64 {
        move |in_flight| latency.max(in_flight / rate)
    }

    #[test]
    fn it_settles_where_the_round_trip_starts_to_grow_higher_for_a_longer_path() {
        let settled = |latency| {
            let mut s = State::new(4096, true);
            rounds(&mut s, 60, server(5000.0, latency));
            s.limit
        };
        let (near, far) = (settled(0.020), settled(0.200));
        // Little's law: 100 in flight at 20 ms, 1,000 at 200 ms.
        assert!((60.0..=300.0).contains(&near), "{near}");
        assert!((600.0..=3000.0).contains(&far), "{far}");
    }

    #[test]
    fn it_stops_at_the_cap_and_shrinks_on_errors() {
        let mut s = State::new(1024, true);
        rounds(&mut s, 20, |_| 0.1);
        assert_eq!((s.limit(), s.bound), (1024, Bound::Cap));
        for _ in 0..1024 {
            s.answered(Answer::Transient(Duration::from_millis(100)));
        }
        assert_eq!(s.bound, Bound::Errors);
        assert!(s.limit() < 1024, "{}", s.limit());
        // Throttling is the partitions' business.
        let before = s.limit;
        for _ in 0..5000 {
            s.answered(Answer::Throttled);
        }
        assert_eq!(s.limit, before);
    }

    #[test]
    fn an_idle_limit_does_not_grow_and_a_fixed_one_never_moves() {
        let mut s = State::new(1024, true);
        for _ in 0..1000 {
            s.round.busiest = 3;
            s.answered(Answer::Answered(Duration::from_millis(10)));
        }
        assert_eq!((s.limit(), s.bound), (64, Bound::Demand));
        let mut s = State::new(100, false);
        rounds(&mut s, 10, |n| n);
        assert_eq!((s.limit(), s.bound), (100, Bound::Fixed));
    }
}
