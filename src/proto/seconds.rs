//! Client traffic per wall-clock second, as a node counts it and the live model merges it: how
//! many requests, which errors, and their latencies as HDR histogram buckets that add up
//! exactly across nodes. Pure data plus the bucket codec; nothing here reads a clock.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latencies are counted in microseconds up to a minute, two significant figures: what a
/// percentile needs on a chart, and small enough to keep per second.
pub const LATENCY_MAX_US: u64 = 60_000_000;
pub const LATENCY_SIGFIG: u8 = 2;

/// An empty latency histogram with the bounds every node and the model share, so buckets
/// recorded in one land in the same buckets in another.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGFIG).expect("valid histogram bounds")
}

/// One completed second of client traffic on one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondCounts {
    /// Unix seconds; requests count in the second they were answered.
    pub sec: u64,
    pub requests: u64,
    /// Failed requests by error kind (`timeout`, `no_quorum`, …).
    pub errors: BTreeMap<String, u64>,
    /// `(microseconds, count)` for each non-empty bucket of the latency histogram, every
    /// request counted (failed ones too).
    pub latency: Vec<(u64, u64)>,
}

impl SecondCounts {
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds this second's latencies to `into` (which must come from [`latency_histogram`]).
    pub fn add_latency_to(&self, into: &mut Histogram<u64>) {
        for &(us, n) in &self.latency {
            into.saturating_record_n(us, n);
        }
    }
}

/// The non-empty buckets of `h`, each as the highest value it stands for.
pub fn buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Request;

    #[test]
    fn only_what_users_ask_is_traffic() {
        let put = Request::Put { key: "k".into(), value: "v".into() };
        let read = Request::ChatLog { after_seq: 0, limit: 10, tail: true, wait_ms: 0 };
        assert!(put.is_traffic() && read.is_traffic() && Request::QueueStats.is_traffic());
        let follow = Request::ChatLog { after_seq: 0, limit: 10, tail: false, wait_ms: 1000 };
        let watching = [Request::Status, Request::Metrics, Request::GetFaults, Request::Seconds { after: 0 }, follow];
        assert!(watching.iter().all(|r| !r.is_traffic()), "a watcher must not see its own polls");
        assert!(!Request::Events { after: 0, wait_ms: 0 }.is_traffic() && !Request::Ping.is_traffic());
    }

    #[test]
    fn buckets_merge_to_the_same_percentiles() {
        let (mut a, mut b, mut both) = (latency_histogram(), latency_histogram(), latency_histogram());
        for us in (100..5_000).step_by(7) {
            a.record(us).unwrap();
            both.record(us).unwrap();
        }
        for us in (3_000..90_000).step_by(13) {
            b.record(us).unwrap();
            both.record(us).unwrap();
        }
        let mut merged = latency_histogram();
        for h in [&a, &b] {
            SecondCounts { latency: buckets(h), ..Default::default() }.add_latency_to(&mut merged);
        }
        assert_eq!(merged.len(), both.len());
        for q in [0.5, 0.95, 0.99] {
            assert_eq!(merged.value_at_quantile(q), both.value_at_quantile(q), "q {q}");
        }
    }
}
