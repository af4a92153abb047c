//! Per-node counters and latency histograms for `metrics`: client requests, bytes in and out,
//! and how long Raft log appends (with fsync) and state-machine applies take.

use crate::proto::NodeMetrics;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub struct Metrics {
    requests: AtomicU64,
    errors: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    request: Mutex<Histogram<u64>>,
    append: Mutex<Histogram<u64>>,
    apply: Mutex<Histogram<u64>>,
}

fn histogram() -> Mutex<Histogram<u64>> {
    Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid histogram bounds"))
}

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    h.lock().unwrap().saturating_record(d.as_micros().max(1) as u64);
}

fn ms(h: &Mutex<Histogram<u64>>, q: f64) -> f64 {
    let h = h.lock().unwrap();
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

    pub fn snapshot(&self) -> NodeMetrics {
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
        }
    }
}
