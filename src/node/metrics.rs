//! Per-node counters and latency histograms for `metrics`: client requests, bytes in and out,
//! how long Raft log appends (with fsync) and state-machine applies take, and the round trips
//! of replication to each peer.

use crate::proto::{NodeId, NodeMetrics, PeerMetrics};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Metrics {
    requests: AtomicU64,
    errors: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    request: Mutex<Histogram<u64>>,
    append: Mutex<Histogram<u64>>,
    apply: Mutex<Histogram<u64>>,
    peers: Mutex<BTreeMap<NodeId, PeerStats>>,
    /// Stamps for `put --trace`, kept here because every stage's code already holds `Metrics`.
    pub trace: Arc<super::trace::Tracer>,
}

/// Replication round trips to one peer over the last `WINDOW` to `2 × WINDOW`, so a link that
/// just turned slow shows in the percentiles at once, not after hours of history.
struct PeerStats {
    rtt: Histogram<u64>,
    previous: Histogram<u64>,
    since: Instant,
    timeouts: u64,
}

const WINDOW: Duration = Duration::from_secs(5);

impl PeerStats {
    fn recent(&self) -> Histogram<u64> {
        let mut h = self.previous.clone();
        let _ = h.add(&self.rtt);
        h
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid histogram bounds")
}

fn histogram() -> Mutex<Histogram<u64>> {
    Mutex::new(new_histogram())
}

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    h.lock().unwrap().saturating_record(d.as_micros().max(1) as u64);
}

fn ms(h: &Mutex<Histogram<u64>>, q: f64) -> f64 {
    quantile_ms(&h.lock().unwrap(), q)
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            request: histogram(),
            append: histogram(),
            apply: histogram(),
            peers: Mutex::default(),
            trace: Arc::default(),
        }
    }
}

impl Metrics {
    pub fn request(&self, took: Duration, ok: bool, bytes_in: usize, bytes_out: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes_in.fetch_add(bytes_in as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out as u64, Ordering::Relaxed);
        record(&self.request, took);
    }

    pub fn append(&self, took: Duration) {
        record(&self.append, took);
    }

    pub fn apply(&self, took: Duration) {
        record(&self.apply, took);
    }

    /// One AppendEntries round trip to `peer`. One that got no answer counts with the time it
    /// was given up after, so a slow link shows in the percentiles even when every call times out.
    pub fn replication(&self, peer: NodeId, took: Duration, answered: bool) {
        let mut peers = self.peers.lock().unwrap();
        let p = peers.entry(peer).or_insert_with(|| PeerStats {
            rtt: new_histogram(),
            previous: new_histogram(),
            since: Instant::now(),
            timeouts: 0,
        });
        if p.since.elapsed() >= WINDOW {
            p.previous = std::mem::replace(&mut p.rtt, new_histogram());
            p.since = Instant::now();
        }
        p.rtt.saturating_record(took.as_micros().max(1) as u64);
        if !answered {
            p.timeouts += 1;
        }
    }

    /// `lag` gives, per peer, the entries it has not acknowledged (known on the leader only).
    pub fn snapshot(&self, lag: &BTreeMap<NodeId, u64>) -> NodeMetrics {
        let peers = self
            .peers
            .lock()
            .unwrap()
            .iter()
            .map(|(&id, p)| (id, p.recent(), p.timeouts))
            .map(|(id, rtt, timeouts)| PeerMetrics {
                id,
                rtt_p50_ms: quantile_ms(&rtt, 0.5),
                rtt_p99_ms: quantile_ms(&rtt, 0.99),
                timeouts,
                lag: lag.get(&id).copied().unwrap_or(0),
            })
            .collect();
        NodeMetrics {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            request_p50_ms: ms(&self.request, 0.5),
            request_p99_ms: ms(&self.request, 0.99),
            append_p50_ms: ms(&self.append, 0.5),
            append_p99_ms: ms(&self.append, 0.99),
            apply_p50_ms: ms(&self.apply, 0.5),
            apply_p99_ms: ms(&self.apply, 0.99),
            peers,
        }
    }
}
