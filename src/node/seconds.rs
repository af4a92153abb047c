//! Client traffic per wall-clock second, kept by the node for the live model (SPEC §7: "from
//! the nodes' own counters, so traffic from any terminal shows"): requests, errors by kind and a
//! latency histogram for each of the last `KEEP` seconds. Only client traffic counts
//! (`Request::is_traffic`), never the polls of whoever watches. It must not decide what is
//! traffic or serve anything itself; `server.rs` records and `service.rs` answers.

use crate::proto::{buckets, latency_histogram, SecondCounts};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// How many completed seconds a node keeps: enough for a model that missed a minute or two.
pub const KEEP: usize = 120;

#[derive(Default)]
pub struct Seconds {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Completed seconds, oldest first; seconds without traffic are absent.
    done: VecDeque<SecondCounts>,
    /// The second being filled: its counts and its full histogram (kept compact once done).
    now: Option<(SecondCounts, Histogram<u64>)>,
}

impl Seconds {
    /// Counts one answered request in the wall-clock second `now_ms` falls in.
    pub fn record(&self, now_ms: u64, took: Duration, error: Option<&str>) {
        let sec = now_ms / 1000;
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.roll(sec);
        let (counts, h) =
            g.now.get_or_insert_with(|| (SecondCounts { sec, ..Default::default() }, latency_histogram()));
        counts.requests += 1;
        if let Some(kind) = error {
            *counts.errors.entry(kind.to_string()).or_default() += 1;
        }
        h.saturating_record(took.as_micros().max(1) as u64);
    }

    /// The completed seconds after `after` (Unix seconds), oldest first, as of `now_ms`.
    pub fn since(&self, after: u64, now_ms: u64) -> Vec<SecondCounts> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.roll(now_ms / 1000);
        g.done.iter().filter(|s| s.sec > after).cloned().collect()
    }
}

impl Inner {
    /// Closes the second being filled once `sec` is past it.
    fn roll(&mut self, sec: u64) {
        if self.now.as_ref().is_some_and(|(c, _)| c.sec < sec) {
            let (mut counts, h) = self.now.take().expect("checked");
            counts.latency = buckets(&h);
            self.done.push_back(counts);
            while self.done.len() > KEEP {
                self.done.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_is_served_once_it_is_over() {
        let s = Seconds::default();
        s.record(10_100, Duration::from_millis(2), None);
        s.record(10_900, Duration::from_millis(4), Some("timeout"));
        assert!(s.since(0, 10_999).is_empty(), "second 10 is still running");
        s.record(12_000, Duration::from_millis(1), None);
        let done = s.since(0, 12_500);
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].sec, done[0].requests, done[0].errors_total()), (10, 2, 1));
        assert_eq!(done[0].errors["timeout"], 1);
        assert_eq!(done[0].latency.iter().map(|b| b.1).sum::<u64>(), 2);
        assert_eq!(s.since(0, 13_000).len(), 2, "second 12 ends without another request");
        assert_eq!(s.since(10, 13_000).len(), 1, "only seconds after `after`");
    }

    #[test]
    fn keeps_a_bounded_history() {
        let s = Seconds::default();
        for sec in 0..(KEEP as u64 + 30) {
            s.record(sec * 1000, Duration::from_millis(1), None);
        }
        let done = s.since(0, 1_000_000);
        assert_eq!(done.len(), KEEP);
        assert_eq!(done.last().unwrap().sec, KEEP as u64 + 29);
    }
}
