//! The recorder: every finished operation lands here, from every worker, as it happens. It owns
//! the HDR histograms (the whole run, and one per wall-clock second for the series), errors by
//! kind, which node served how much, and how many operations started late. Progress displays
//! read live snapshots of it. It must not decide when operations run or what they are, and it
//! must not print.

use crate::proto::NodeId;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Microseconds, up to two minutes: a stalled operation must still be counted, not clipped.
const MAX_US: u64 = 120_000_000;

/// One second of the run, by completion time: a stall shows as a second with few or no
/// completions followed by one with a high p99. Seconds are wall-clock seconds, so the series
/// lines up with what the nodes counted in the same seconds (the live model); the first and
/// the last are therefore partial.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Seconds since the start's wall-clock second (0 = the second the run started in).
    pub second: u64,
    /// The same second as Unix seconds.
    pub sec: u64,
    pub ops: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Successful operations.
    pub ops: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latency of successful operations, in microseconds. Open loop: from the intended start.
    pub latency: Histogram<u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub by_node: BTreeMap<NodeId, u64>,
    /// Open loop: operations that began more than a millisecond after their intended start,
    /// because every allowed slot was busy (their wait is part of their latency).
    pub late: u64,
    pub series: Vec<Point>,
    /// Stopped early (Ctrl-C): the figures cover what completed until then.
    pub interrupted: bool,
}

impl Summary {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

/// What a progress display shows while the run goes on.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub ops: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Completions in the last full second (the average so far during the first).
    pub ops_per_sec: f64,
    /// p99 over the run so far.
    pub p99_ms: f64,
}

pub struct Recorder {
    started: Instant,
    /// The wall clock at `started`, ms since the Unix epoch: seconds are cut where the wall
    /// clock's seconds are, measured on the monotonic clock from here.
    started_wall_ms: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    total: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    by_node: BTreeMap<NodeId, u64>,
    late: u64,
    series: Vec<Point>,
    /// The Unix second the run started in.
    first_sec: u64,
    /// The second being filled, its own histogram (coarser: only p50/p99 are asked of it).
    second: u64,
    now: Histogram<u64>,
    now_errors: u64,
}

fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, sigfig).expect("valid histogram bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

impl Recorder {
    pub fn new() -> Self {
        let started_wall_ms = crate::proto::wall_ms();
        let inner = Inner {
            first_sec: started_wall_ms / 1000,
            total: histogram(3),
            errors: BTreeMap::new(),
            by_node: BTreeMap::new(),
            late: 0,
            series: Vec::new(),
            second: 0,
            now: histogram(2),
            now_errors: 0,
        };
        Recorder { started: Instant::now(), started_wall_ms, inner: Mutex::new(inner) }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn ok(&self, latency: Duration, node: Option<NodeId>) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_US);
        let mut g = self.roll();
        g.total.saturating_record(us);
        g.now.saturating_record(us);
        if let Some(n) = node {
            *g.by_node.entry(n).or_default() += 1;
        }
    }

    pub fn error(&self, kind: &str) {
        let mut g = self.roll();
        g.now_errors += 1;
        match g.errors.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                g.errors.insert(kind.to_string(), 1);
            }
        }
    }

    pub fn late(&self) {
        self.inner.lock().unwrap().late += 1;
    }

    /// Locks, first closing every second that has ended (empty ones included: a stall that
    /// completes nothing must still appear in the series).
    fn roll(&self) -> std::sync::MutexGuard<'_, Inner> {
        let second = self.second_now();
        let mut g = self.inner.lock().unwrap();
        while g.second < second {
            g.close_second();
        }
        g
    }

    /// The second being filled now, counted from the wall-clock second the run started in.
    fn second_now(&self) -> u64 {
        let wall = self.started_wall_ms + self.started.elapsed().as_millis() as u64;
        wall / 1000 - self.started_wall_ms / 1000
    }

    pub fn live(&self) -> Live {
        let elapsed = self.started.elapsed();
        let g = self.roll();
        let ops = g.total.len();
        let errors = g.errors.values().sum();
        // The first second is partial: until a full one has passed, the average stands in.
        let ops_per_sec = match g.series.last().filter(|_| g.series.len() > 1) {
            Some(p) => p.ops as f64,
            None => ops as f64 / elapsed.as_secs_f64().max(1e-3),
        };
        Live { ops, errors, elapsed, ops_per_sec, p99_ms: if ops == 0 { 0.0 } else { ms(&g.total, 0.99) } }
    }

    pub fn finish(&self) -> Summary {
        let elapsed = self.started.elapsed();
        let mut g = self.roll();
        if !g.now.is_empty() || g.now_errors > 0 {
            g.close_second();
        }
        let errors = g.errors.values().sum();
        Summary {
            ops: g.total.len(),
            errors,
            elapsed,
            latency: g.total.clone(),
            errors_by_kind: g.errors.clone(),
            by_node: g.by_node.clone(),
            late: g.late,
            series: g.series.clone(),
            interrupted: false,
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn close_second(&mut self) {
        let (p50_ms, p99_ms) = if self.now.is_empty() { (0.0, 0.0) } else { (ms(&self.now, 0.5), ms(&self.now, 0.99)) };
        let sec = self.first_sec + self.second;
        self.series.push(Point {
            second: self.second,
            sec,
            ops: self.now.len(),
            errors: self.now_errors,
            p50_ms,
            p99_ms,
        });
        self.now.reset();
        self.now_errors = 0;
        self.second += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentiles() {
        let r = Recorder::new();
        for ms in 1..=100 {
            r.ok(Duration::from_millis(ms), Some(1 + ms % 2));
        }
        r.error("timeout");
        r.error("timeout");
        r.error("no_quorum");
        let s = r.finish();
        assert_eq!((s.ops, s.errors), (100, 3));
        assert_eq!(s.errors_by_kind["timeout"], 2);
        assert_eq!(s.by_node[&1] + s.by_node[&2], 100);
        assert!((s.ms(0.99) - 99.0).abs() < 0.5, "{}", s.ms(0.99));
        assert!(s.series.len() <= 2, "the run may straddle a wall-clock second");
        let first_sec = s.series[0].sec;
        assert!(s.series.iter().enumerate().all(|(i, p)| p.sec == first_sec + i as u64 && p.second == i as u64));
        let summed = s.series.iter().fold((0, 0), |(o, e), p| (o + p.ops, e + p.errors));
        assert_eq!(summed, (100, 3));
    }

    #[test]
    fn seconds_are_the_wall_clocks() {
        let r = Recorder::new();
        let before = crate::proto::wall_ms() / 1000;
        r.ok(Duration::from_millis(1), None);
        let s = r.finish();
        let after = crate::proto::wall_ms() / 1000;
        assert!((before..=after).contains(&s.series[0].sec), "{} in {before}..={after}", s.series[0].sec);
    }
}
