//! The closed-loop load runner: `concurrency` workers, each issuing its next operation as soon as
//! the previous one finishes, until `count` operations are done or `duration` has passed.

use super::Etcd;
use crate::client::{Client, Target};
use crate::error::{Error, Result};
use crate::proto::{NodeId, Request};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOp {
    Put,
    Get,
}

impl LoadOp {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "put" => Ok(LoadOp::Put),
            "get" => Ok(LoadOp::Get),
            other => Err(Error::usage(format!("load: unknown operation `{other}` (put, get)"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub op: LoadOp,
    /// Stop after this many operations…
    pub count: Option<u64>,
    /// …or after this long.
    pub duration: Option<Duration>,
    pub concurrency: usize,
    /// Keys are `load:0` … `load:{keys-1}`.
    pub keys: u64,
    pub value_size: usize,
}

/// What the operations go to.
#[derive(Clone)]
pub enum Backend {
    Dsh(Arc<Client>),
    Etcd(Arc<Etcd>),
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub ops: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latency of successful operations, in microseconds.
    pub latency: Histogram<u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub by_node: BTreeMap<NodeId, u64>,
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

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

struct WorkerResult {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    by_node: BTreeMap<NodeId, u64>,
}

pub async fn run(backend: Backend, spec: LoadSpec) -> Result<Summary> {
    if spec.concurrency == 0 || spec.keys == 0 {
        return Err(Error::usage("load: --concurrency and --keys must be at least 1"));
    }
    if spec.count.is_none() && spec.duration.is_none() {
        return Err(Error::usage("load: give --count or --duration"));
    }
    let next = Arc::new(AtomicU64::new(0));
    let value: Arc<str> = "x".repeat(spec.value_size).into();
    let started = Instant::now();
    let deadline = spec.duration.map(|d| started + d);
    let mut tasks = Vec::with_capacity(spec.concurrency);
    for worker in 0..spec.concurrency {
        let (backend, next, value, spec) = (backend.clone(), next.clone(), value.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            let mut etcd_conn = None;
            let mut res = WorkerResult { latency: histogram(), errors: BTreeMap::new(), by_node: BTreeMap::new() };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if spec.count.is_some_and(|c| i >= c) || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let key = format!("load:{}", i % spec.keys);
                let t0 = Instant::now();
                let outcome = match &backend {
                    Backend::Dsh(client) => {
                        let req = match spec.op {
                            LoadOp::Put => Request::Put { key, value: value.to_string() },
                            LoadOp::Get => Request::Get { key, stale: false },
                        };
                        client.call(Target::Leader, req).await.map(|s| Some(s.node))
                    }
                    Backend::Etcd(etcd) => {
                        let conn = match etcd_conn.as_mut() {
                            Some(c) => c,
                            None => etcd_conn.insert(etcd.connection(worker)),
                        };
                        match spec.op {
                            LoadOp::Put => conn.put(&key, &value).await.map(|_| None),
                            LoadOp::Get => conn.get(&key).await.map(|_| None),
                        }
                    }
                };
                match outcome {
                    Ok(node) => {
                        let us = t0.elapsed().as_micros().max(1) as u64;
                        res.latency.saturating_record(us);
                        if let Some(n) = node {
                            *res.by_node.entry(n).or_default() += 1;
                        }
                    }
                    Err(e) => *res.errors.entry(e.kind.as_str().to_string()).or_default() += 1,
                }
            }
            res
        }));
    }
    let mut summary = Summary {
        ops: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
        errors_by_kind: BTreeMap::new(),
        by_node: BTreeMap::new(),
    };
    for t in tasks {
        let r = t.await.map_err(|e| Error::internal(format!("load worker: {e}")))?;
        summary.latency.add(&r.latency).map_err(|e| Error::internal(e.to_string()))?;
        for (k, v) in r.errors {
            *summary.errors_by_kind.entry(k).or_default() += v;
        }
        for (k, v) in r.by_node {
            *summary.by_node.entry(k).or_default() += v;
        }
    }
    summary.elapsed = started.elapsed();
    summary.ops = summary.latency.len();
    summary.errors = summary.errors_by_kind.values().sum();
    Ok(summary)
}
