//! etcd-load: drives etcd through its native gRPC API (the `etcd-client` crate) with the same
//! closed loop dsh's own `load put` runs, and prints one JSON line with the same summary fields
//! `dsh --json -c 'load put …'` prints (`ops`, `ops_per_sec`, `errors`, `p50_ms` … `max_ms`,
//! `elapsed_ms`, `late`, `interrupted`, `errors_by_kind`, `by_node`), so `scripts/bench.sh`
//! reads all three columns the same way.
//!
//! ```text
//! etcd-load --endpoints 127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793
//!           [--op put|get] [--count N | --duration 10s] [--concurrency 1]
//!           [--value-size 256] [--keys 1000] [--conns 1] [--any-member]
//! ```
//!
//! What matches dsh's `load` (src/load/ in the main package), so the two measure the same thing:
//! - `concurrency` workers take operation numbers from one shared counter; operation `i` writes
//!   key `load:{i % keys}` with a value that starts with `i` in hex and a dot, padded with `x` to
//!   `--value-size` bytes (every value is unique). Sequential = `--concurrency 1`.
//! - Closed loop: with `--duration`, no operation starts after the deadline and the run ends when
//!   those in flight are done; `ops_per_sec` is successful operations over that elapsed time.
//! - Latency per successful operation in an HDR histogram (1 µs to 120 s, 3 significant digits);
//!   an operation fails after 2 s (the gateway driver's limit) and is counted by kind.
//! - One tokio runtime with one worker thread and no LIFO slot, as dsh's client runtime.
//! - Requests go to the leader only, which is found first from every member's status, as dsh's
//!   client and the gateway driver do: a follower would forward each proposal, an extra hop.
//!   `--any-member` instead lets etcd-client balance over all endpoints.
//! - Connections: all workers share one gRPC channel (one HTTP/2 connection, requests
//!   multiplexed as streams), because dsh's `load` shares one client and so one QUIC connection
//!   per node among all its workers; etcd's own `benchmark` tool defaults to one connection too.
//!   `--conns N` opens N connections and gives worker w connection w % N.

use etcd_client::{Client, ConnectOptions, KvClient};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OP_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_US: u64 = 120_000_000;

const USAGE: &str = "usage: etcd-load --endpoints H:P[,H:P…] [--op put|get] [--count N | --duration 10s] \
[--concurrency 1] [--value-size 256] [--keys 1000] [--conns 1] [--any-member]";

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Put,
    Get,
}

struct Spec {
    endpoints: Vec<String>,
    op: Op,
    count: Option<u64>,
    duration: Option<Duration>,
    concurrency: usize,
    value_size: usize,
    keys: u64,
    conns: usize,
    any_member: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn parse_args() -> Result<Spec, String> {
    let mut spec = Spec {
        endpoints: Vec::new(),
        op: Op::Put,
        count: None,
        duration: None,
        concurrency: 1,
        value_size: 256,
        keys: 1000,
        conns: 1,
        any_member: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if a == "--any-member" {
            spec.any_member = true;
            continue;
        }
        let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("{a}: not a number: {v:?}"));
        match a.as_str() {
            "--endpoints" => spec.endpoints = v.split(',').filter(|e| !e.is_empty()).map(str::to_string).collect(),
            "--op" => {
                spec.op = match v.as_str() {
                    "put" => Op::Put,
                    "get" => Op::Get,
                    _ => return Err(format!("--op: put or get, not {v:?}")),
                }
            }
            "--count" => spec.count = Some(num(&v)?),
            "--duration" => spec.duration = Some(parse_duration(&v)?),
            "--concurrency" => spec.concurrency = num(&v)? as usize,
            "--value-size" => spec.value_size = num(&v)? as usize,
            "--keys" => spec.keys = num(&v)?,
            "--conns" => spec.conns = num(&v)? as usize,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if spec.endpoints.is_empty() {
        return Err("give --endpoints".into());
    }
    if spec.concurrency == 0 || spec.keys == 0 || spec.conns == 0 {
        return Err("--concurrency, --keys and --conns must be at least 1".into());
    }
    if spec.count.is_none() && spec.duration.is_none() {
        spec.count = Some(1000); // dsh's `load` default
    }
    Ok(spec)
}

fn url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

async fn connect(endpoints: &[String]) -> Result<Client, String> {
    let urls: Vec<String> = endpoints.iter().map(|e| url(e)).collect();
    let opts = ConnectOptions::new().with_timeout(OP_TIMEOUT).with_connect_timeout(OP_TIMEOUT);
    Client::connect(urls, Some(opts)).await.map_err(|e| format!("connect to {endpoints:?}: {e}"))
}

/// The endpoint of the member that is leader now: every member's status, the leader named in
/// the newest term, and the member whose id that is.
async fn leader(endpoints: &[String]) -> Result<String, String> {
    let mut statuses = Vec::new();
    for ep in endpoints {
        let status = async {
            let mut c = connect(std::slice::from_ref(ep)).await?;
            c.status().await.map_err(|e| format!("status of {ep}: {e}"))
        };
        match tokio::time::timeout(OP_TIMEOUT, status).await {
            Ok(Ok(s)) => statuses.push((ep, s)),
            Ok(Err(e)) => eprintln!("etcd-load: {e}"),
            Err(_) => eprintln!("etcd-load: status of {ep}: no answer within {OP_TIMEOUT:?}"),
        }
    }
    let (_, lead) = statuses
        .iter()
        .filter(|(_, s)| s.leader() != 0)
        .map(|(_, s)| (s.raft_term(), s.leader()))
        .max()
        .ok_or("no member reports a leader")?;
    statuses
        .iter()
        .find(|(_, s)| s.header().map(|h| h.member_id()) == Some(lead))
        .map(|(ep, _)| ep.to_string())
        .ok_or_else(|| format!("leader {lead:x} is not among the endpoints"))
}

/// The same kinds dsh's `load` counts errors by.
fn kind(e: &etcd_client::Error) -> &'static str {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) => {
            let msg = s.message();
            if ["no leader", "leader changed", "not leader"].iter().any(|m| msg.contains(m)) {
                "no_quorum"
            } else {
                match s.code() {
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => "timeout",
                    tonic::Code::Unavailable => "unreachable",
                    _ => "internal",
                }
            }
        }
        E::TransportError(_) | E::IoError(_) => "unreachable",
        _ => "internal",
    }
}

struct Worker {
    hist: Histogram<u64>,
    errors: BTreeMap<&'static str, u64>,
}

async fn work(
    mut kv: KvClient,
    spec: Arc<Spec>,
    next: Arc<AtomicU64>,
    pad: Arc<str>,
    deadline: Option<Instant>,
) -> Worker {
    let mut w = Worker {
        hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"),
        errors: BTreeMap::new(),
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if spec.count.is_some_and(|c| i >= c) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let key = format!("load:{}", i % spec.keys);
        let from = Instant::now();
        let call = async {
            match spec.op {
                Op::Put => {
                    let mut value = format!("{i:x}.");
                    let fill = spec.value_size.saturating_sub(value.len()).min(pad.len());
                    value.push_str(&pad[..fill]);
                    kv.put(key, value, None).await.map(|_| ())
                }
                Op::Get => kv.get(key, None).await.map(|_| ()),
            }
        };
        match tokio::time::timeout(OP_TIMEOUT, call).await {
            Ok(Ok(())) => {
                let us = (from.elapsed().as_micros() as u64).clamp(1, MAX_US);
                w.hist.saturating_record(us);
            }
            Ok(Err(e)) => *w.errors.entry(kind(&e)).or_default() += 1,
            Err(_) => *w.errors.entry("timeout").or_default() += 1,
        }
    }
    w
}

fn ms3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn run(spec: Spec) -> Result<Map<String, Value>, String> {
    let targets = if spec.any_member { spec.endpoints.clone() } else { vec![leader(&spec.endpoints).await?] };
    let mut kvs = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns {
        kvs.push(connect(&targets).await?.kv_client());
    }
    let spec = Arc::new(spec);
    let next = Arc::new(AtomicU64::new(0));
    let pad: Arc<str> = "x".repeat(spec.value_size).into();
    let started = Instant::now();
    let deadline = spec.duration.map(|d| started + d);
    let tasks: Vec<_> = (0..spec.concurrency)
        .map(|w| tokio::spawn(work(kvs[w % kvs.len()].clone(), spec.clone(), next.clone(), pad.clone(), deadline)))
        .collect();
    let mut hist: Histogram<u64> = Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds");
    let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
    for t in tasks {
        let w = t.await.map_err(|e| format!("worker: {e}"))?;
        hist.add(&w.hist).map_err(|e| format!("histogram: {e}"))?;
        for (k, n) in w.errors {
            *errors.entry(k).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    let q = |q: f64| ms3(hist.value_at_quantile(q) as f64 / 1000.0);
    let ops = hist.len();
    let mut m = Map::new();
    m.insert("ops".into(), json!(ops));
    m.insert("ops_per_sec".into(), json!((ops as f64 / elapsed.as_secs_f64().max(1e-9) * 10.0).round() / 10.0));
    m.insert("errors".into(), json!(errors.values().sum::<u64>()));
    m.insert("p50_ms".into(), json!(q(0.50)));
    m.insert("p95_ms".into(), json!(q(0.95)));
    m.insert("p99_ms".into(), json!(q(0.99)));
    m.insert("p999_ms".into(), json!(q(0.999)));
    m.insert("max_ms".into(), json!(ms3(hist.max() as f64 / 1000.0)));
    m.insert("elapsed_ms".into(), json!(elapsed.as_millis() as u64));
    m.insert("late".into(), json!(0));
    m.insert("interrupted".into(), json!(false));
    m.insert("errors_by_kind".into(), json!(errors));
    m.insert("by_node".into(), json!({}));
    m.insert("endpoints".into(), json!(targets));
    m.insert("conns".into(), json!(spec.conns));
    m.insert("value_size".into(), json!(spec.value_size));
    Ok(m)
}

fn main() {
    let spec = match parse_args() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("etcd-load: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1).enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    let rt = builder.build().expect("a tokio runtime");
    match rt.block_on(run(spec)) {
        Ok(m) => println!("{}", Value::Object(m)),
        Err(e) => {
            eprintln!("etcd-load: {e}");
            std::process::exit(1);
        }
    }
}
