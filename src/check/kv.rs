//! `check kv`'s workload: concurrent clients, each its own `Client` (its own connections, as
//! separate processes would have), reading, writing unique values and cas-ing on a few fresh
//! keys while an optional nemesis injects faults; every operation recorded with its invoke and
//! complete positions in one real-time order and its outcome, then each key's history checked
//! (`linear.rs`). Workers and the nemesis stop on one token and are joined before the check.

use super::history::{Call, Op, Outcome};
use super::linear::{check_key, KeyVerdict};
use super::nemesis::{run_for, Hands, Injected, Nemesis, Plan};
use super::progress::Progress;
use super::schedule::Rng;
use crate::client::{Client, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::NodeId;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct KvOptions {
    pub duration: Duration,
    pub clients: usize,
    pub keys: usize,
    pub nemesis: Option<Plan>,
    pub seed: u64,
    /// Reads go to this node's local copy, without a linearizable read: the broken variant.
    pub stale: Option<NodeId>,
    /// Per operation: short, so a client stuck on a dead leader moves on (its op is `info`).
    pub op_timeout: Duration,
    /// Where the live views watch the run's outcomes as they complete.
    pub progress: Arc<Progress>,
}

/// A recorded and checked run.
#[derive(Debug, Clone)]
pub struct KvRun {
    pub ops: Vec<Op>,
    pub faults: Vec<Injected>,
    pub keys: Vec<KeyVerdict>,
    pub elapsed: Duration,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
}

/// One real-time order for every client's events, and the time since the run began.
pub struct Clock {
    start: Instant,
    next: AtomicU64,
}

impl Clock {
    pub fn new() -> Self {
        Clock { start: Instant::now(), next: AtomicU64::new(0) }
    }

    /// (position, µs since start): taken after the previous event and before the next.
    pub fn tick(&self) -> (u64, u64) {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        (i, self.start.elapsed().as_micros() as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a failed write or cas certainly had no effect: a cas refused as a conflict (its
/// retries carry one request id, so the answer is the one outcome), or a request refused
/// before it could be proposed anywhere. Anything else (timeout, unreachable, no quorum, busy
/// after an attempt that may have landed) is `info`.
pub fn outcome_of_error(call: &Call, e: &Error) -> Outcome {
    match (call, e.kind) {
        (Call::Read, _) => Outcome::Fail { conflict: false },
        (Call::Cas(..), ErrorKind::Conflict) => Outcome::Fail { conflict: true },
        (_, ErrorKind::Denied | ErrorKind::Usage) => Outcome::Fail { conflict: false },
        _ => Outcome::Info,
    }
}

/// Runs the workload and checks it.
pub async fn run_kv(
    client: Arc<Client>,
    hands: Arc<dyn Hands>,
    opts: KvOptions,
    stop: CancellationToken,
) -> Result<KvRun> {
    if opts.clients == 0 || opts.keys == 0 {
        return Err(Error::usage("check kv: --clients and --keys must be at least 1"));
    }
    // Fresh keys for every run: the model starts from "absent", whatever earlier runs left.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let keys: Arc<Vec<String>> = Arc::new((0..opts.keys).map(|k| format!("check:{run:x}:k{k}")).collect());
    let clock = Arc::new(Clock::new());
    let ops = Arc::new(Mutex::new(Vec::new()));
    let done = stop.child_token();
    let nemesis = opts.nemesis.clone().map(|p| Nemesis::start(client.clone(), hands, p));
    let mut workers = Vec::new();
    for i in 0..opts.clients {
        let c = Client::new(client.cluster_file(), opts.op_timeout)?;
        let w = Worker { i, client: c, keys: keys.clone(), clock: clock.clone(), opts: opts.clone() };
        workers.push(tokio::spawn(w.run(done.clone(), ops.clone())));
    }
    let faults = run_for(opts.duration, &stop, &done, nemesis, workers).await;
    let elapsed = clock.start.elapsed();
    let ops = std::mem::take(&mut *ops.lock().unwrap());
    let checked = ops.clone();
    let keys = tokio::task::spawn_blocking(move || check_all(&checked))
        .await
        .map_err(|e| Error::internal(format!("checker: {e}")))?;
    Ok(KvRun { ops, faults, keys, elapsed, interrupted: stop.is_cancelled() })
}

/// Every key's verdict, keys in name order.
pub fn check_all(ops: &[Op]) -> Vec<KeyVerdict> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for o in ops {
        by_key.entry(o.key.as_str()).or_default().push(o.clone());
    }
    by_key.into_iter().map(|(k, ops)| check_key(k, &ops)).collect()
}

struct Worker {
    i: usize,
    client: Client,
    keys: Arc<Vec<String>>,
    clock: Arc<Clock>,
    opts: KvOptions,
}

impl Worker {
    async fn run(self, done: CancellationToken, out: Arc<Mutex<Vec<Op>>>) {
        let mut rng = Rng::new(self.opts.seed.wrapping_mul(1_000_003).wrapping_add(self.i as u64));
        let mut process = self.i as u64;
        // What this client last saw of each key: what its cas expects.
        let mut seen: HashMap<String, Option<String>> = HashMap::new();
        let mut n = 0u64;
        while !done.is_cancelled() {
            let key = self.keys[rng.below(self.keys.len() as u64) as usize].clone();
            n += 1;
            let fresh = format!("{process}-{n}");
            let call = match rng.below(10) {
                0..=3 => Call::Read,
                4..=6 => Call::Write(fresh),
                _ => Call::Cas(seen.get(&key).cloned().flatten(), fresh),
            };
            let (invoke, invoke_us) = self.clock.tick();
            let result = self.call(&key, &call).await;
            let (complete, complete_us) = self.clock.tick();
            let outcome = match result {
                Ok(v) => {
                    let now = match &call {
                        Call::Read => v.clone(),
                        Call::Write(x) | Call::Cas(_, x) => Some(x.clone()),
                    };
                    seen.insert(key.clone(), now);
                    Outcome::Ok(v)
                }
                Err(e) => outcome_of_error(&call, &e),
            };
            let info = outcome == Outcome::Info;
            self.opts.progress.tally.outcome(&outcome);
            let op = Op { process, key, call, outcome, invoke, complete, invoke_us, complete_us };
            out.lock().unwrap().push(op);
            if info {
                // As Jepsen does: a process whose op may still land never invokes again.
                process += self.opts.clients as u64;
            }
        }
    }

    /// One operation; a read's value.
    async fn call(&self, key: &str, call: &Call) -> Result<Option<String>> {
        let c = &self.client;
        match call {
            Call::Read => {
                let (target, stale) = match self.opts.stale {
                    Some(n) => (Target::Node(n), true),
                    None => (Target::Leader, false),
                };
                Ok(c.get(target, key, stale).await?.value.map(|v| v.value))
            }
            Call::Write(v) => c.put(Target::Leader, key, v, false).await.map(|_| None),
            Call::Cas(e, v) => c.cas(key, e.as_deref(), v, false).await.map(|_| None),
        }
    }
}

impl KvRun {
    pub fn valid(&self) -> bool {
        self.keys.iter().all(|k| k.valid)
    }

    /// (ok, fail, info) for `f` (`None`: every kind).
    pub fn outcomes(&self, f: Option<&str>) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for o in self.ops.iter().filter(|o| f.is_none_or(|f| o.f() == f)) {
            match o.outcome {
                Outcome::Ok(_) => c.0 += 1,
                Outcome::Fail { .. } => c.1 += 1,
                Outcome::Info => c.2 += 1,
            }
        }
        c
    }

    /// Latency of completed (`ok`) ops in ms: p50, p99, max.
    pub fn latency_ms(&self) -> (f64, f64, f64) {
        let mut l: Vec<u64> = self
            .ops
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
            .map(|o| o.complete_us - o.invoke_us)
            .collect();
        if l.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        l.sort_unstable();
        let at = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        (at(0.5), at(0.99), at(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_certainly_had_no_effect_is_a_fail() {
        let cas = Call::Cas(None, "x".into());
        let write = Call::Write("x".into());
        let e = |k| Error::new(k, "");
        assert_eq!(outcome_of_error(&cas, &e(ErrorKind::Conflict)), Outcome::Fail { conflict: true });
        assert_eq!(outcome_of_error(&write, &e(ErrorKind::Denied)), Outcome::Fail { conflict: false });
        for k in [ErrorKind::Timeout, ErrorKind::Unreachable, ErrorKind::NoQuorum, ErrorKind::Busy] {
            assert_eq!(outcome_of_error(&write, &e(k)), Outcome::Info);
            assert_eq!(outcome_of_error(&cas, &e(k)), Outcome::Info);
        }
        // A read changes nothing: whatever stopped it, it had no effect.
        assert_eq!(outcome_of_error(&Call::Read, &e(ErrorKind::Timeout)), Outcome::Fail { conflict: false });
    }
}
