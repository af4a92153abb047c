//! The nemesis: runs a fault schedule (`schedule.rs`) against the cluster in the background,
//! each fault through the same client requests (and process actions) the shell's fault
//! commands use, each announced as an event on the cluster so the feed, the live model and
//! the timeline show it. It owns one task, stopped by one `CancellationToken` and joined;
//! `stop` heals the fault in progress and then everything (resumes, restarts, clears network
//! faults, repairs). It must not decide what is printed.

use super::schedule::{schedule, Fault, Kind, CORRUPT_KEY, SLOW_MS};
use crate::client::{Client, Target};
use crate::error::Result;
use crate::proto::{node_name, Faults, NodeId, ProcessAction, ProcessInfo, Request, Slow};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What only a higher layer can do: act on node processes (the local cluster's children, or a
/// supervisor's). The shell lends its own, so `crash` here is `crash` at the prompt.
pub trait Hands: Send + Sync {
    fn process(&self, id: NodeId, action: ProcessAction) -> BoxFuture<'_, Result<ProcessInfo>>;
}

/// What to inject: drawn from `seed`, one of `kinds` every `every`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub kinds: Vec<Kind>,
    pub every: Duration,
}

/// One fault that was injected: when (ms after the nemesis started), what, when healed.
#[derive(Debug, Clone)]
pub struct Injected {
    pub at_ms: u64,
    pub kind: &'static str,
    pub fault: String,
    pub healed_ms: Option<u64>,
    /// Why injecting or healing it did not fully work (a node that did not answer).
    pub error: Option<String>,
}

impl Injected {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"at_ms": self.at_ms, "kind": self.kind, "fault": self.fault,
            "healed_ms": self.healed_ms, "error": self.error})
    }
}

#[derive(Default)]
struct Log {
    injected: Vec<Injected>,
}

pub struct Nemesis {
    pub plan: Plan,
    started: Instant,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    log: Arc<Mutex<Log>>,
    client: Arc<Client>,
    hands: Arc<dyn Hands>,
}

/// What `nemesis status` shows.
pub struct Status {
    pub plan: Plan,
    pub running_ms: u64,
    pub injected: Vec<Injected>,
}

/// Lets a check's workers run for `duration` (or until `stop`), then ends the schedule and
/// joins them: the schedule ends with the duration, not when the last op in flight gives up.
pub async fn run_for<T>(
    duration: std::time::Duration,
    stop: &CancellationToken,
    done: &CancellationToken,
    nemesis: Option<Nemesis>,
    workers: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Injected> {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stop.cancelled() => {}
    }
    done.cancel();
    let faults = match nemesis {
        Some(n) => n.stop().await,
        None => Vec::new(),
    };
    for w in workers {
        let _ = w.await;
    }
    faults
}

impl Nemesis {
    /// Starts the schedule on the current runtime.
    pub fn start(client: Arc<Client>, hands: Arc<dyn Hands>, plan: Plan) -> Nemesis {
        let stop = CancellationToken::new();
        let log = Arc::new(Mutex::new(Log::default()));
        let started = Instant::now();
        let task = tokio::spawn(run(client.clone(), hands.clone(), plan.clone(), started, stop.clone(), log.clone()));
        Nemesis { plan, started, stop, task: Some(task), log, client, hands }
    }

    pub fn status(&self) -> Status {
        Status {
            plan: self.plan.clone(),
            running_ms: self.started.elapsed().as_millis() as u64,
            injected: self.log.lock().unwrap().injected.clone(),
        }
    }

    /// Stops the schedule, heals what it left and everything else; what was injected.
    pub async fn stop(mut self) -> Vec<Injected> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        heal_all(&self.client, self.hands.as_ref(), self.plan.kinds.contains(&Kind::Corrupt)).await;
        let log = self.log.lock().unwrap();
        log.injected.clone()
    }
}

/// A nemesis dropped without `stop` (its command cancelled by Ctrl-C) still ends its schedule:
/// the task heals the fault in progress and returns.
impl Drop for Nemesis {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn run(
    client: Arc<Client>,
    hands: Arc<dyn Hands>,
    plan: Plan,
    started: Instant,
    stop: CancellationToken,
    log: Arc<Mutex<Log>>,
) {
    let nodes = client.node_ids();
    for step in schedule(plan.seed, &plan.kinds, plan.every, &nodes) {
        tokio::select! {
            _ = tokio::time::sleep_until((started + step.at).into()) => {}
            _ = stop.cancelled() => return,
        }
        let at_ms = started.elapsed().as_millis() as u64;
        let error = inject(&client, hands.as_ref(), &step.fault).await.err().map(|e| e.to_string());
        let i = {
            let mut log = log.lock().unwrap();
            log.injected.push(Injected {
                at_ms,
                kind: step.fault.kind().name(),
                fault: step.fault.describe(),
                healed_ms: None,
                error,
            });
            log.injected.len() - 1
        };
        // Healed on time, or at once when stopped: a fault never outlives the nemesis.
        tokio::select! {
            _ = tokio::time::sleep_until((started + step.heal).into()) => {}
            _ = stop.cancelled() => {}
        }
        let healed = heal(&client, hands.as_ref(), &step.fault).await;
        let mut log = log.lock().unwrap();
        let entry = &mut log.injected[i];
        entry.healed_ms = Some(started.elapsed().as_millis() as u64);
        if let Err(e) = healed {
            entry.error.get_or_insert_with(|| e.to_string());
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

const NODE_CALL: Duration = Duration::from_millis(1000);

/// Announces what the nemesis does on the first node that takes it, so it is an event.
async fn announce(client: &Client, text: String) {
    for n in client.node_ids() {
        let req = Request::Record { kind: "nemesis".into(), text: text.clone() };
        if client.call_within(Target::Node(n), req, Duration::from_millis(300)).await.is_ok() {
            return;
        }
    }
}

/// Changes one node's network faults as `partition`/`slow` do: read, change, write back.
async fn set_faults(client: &Client, n: NodeId, change: impl Fn(&mut Faults)) -> Result<()> {
    let mut f = match client.call_within(Target::Node(n), Request::GetFaults, NODE_CALL).await?.value {
        crate::proto::Response::Faults(f) => f,
        other => return Err(crate::client::unexpected(other)),
    };
    change(&mut f);
    client.call_within(Target::Node(n), Request::SetFaults(f), NODE_CALL).await.map(|_| ())
}

/// Every node tried; the first error kept.
fn first_err(results: Vec<Result<()>>) -> Result<()> {
    results.into_iter().find(|r| r.is_err()).unwrap_or(Ok(()))
}

async fn inject(client: &Client, hands: &dyn Hands, fault: &Fault) -> Result<()> {
    announce(client, format!("nemesis: {}", fault.describe())).await;
    match fault {
        Fault::Crash(n) => hands.process(*n, ProcessAction::Crash).await.map(|_| ()),
        Fault::Pause(n) => hands.process(*n, ProcessAction::Pause).await.map(|_| ()),
        Fault::KillAll => {
            let mut r = Vec::new();
            for n in client.node_ids() {
                r.push(hands.process(n, ProcessAction::Crash).await.map(|_| ()));
            }
            first_err(r)
        }
        Fault::Partition(a, b) => {
            let mut r = Vec::new();
            for (side, other) in [(a, b), (b, a)] {
                for n in side {
                    r.push(set_faults(client, *n, |f| f.cut = other.clone()).await);
                }
            }
            first_err(r)
        }
        Fault::Slow(n) => {
            set_faults(client, *n, |f| {
                f.slow.retain(|s| s.to.is_some());
                f.slow.push(Slow { to: None, delay_ms: SLOW_MS, jitter_ms: SLOW_MS / 4, loss_pct: 0.0 });
            })
            .await
        }
        Fault::Corrupt(n) => {
            // The key must exist on the node to be damaged; it is no key a check reads.
            client.put(Target::Leader, CORRUPT_KEY, "intact", false).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            client
                .call_within(Target::Node(*n), Request::Corrupt { key: CORRUPT_KEY.into() }, NODE_CALL)
                .await
                .map(|_| ())
        }
    }
}

async fn heal(client: &Client, hands: &dyn Hands, fault: &Fault) -> Result<()> {
    let r = match fault {
        Fault::Crash(n) => hands.process(*n, ProcessAction::Restart).await.map(|_| ()),
        Fault::Pause(n) => hands.process(*n, ProcessAction::Resume).await.map(|_| ()),
        Fault::KillAll => {
            let mut r = Vec::new();
            for n in client.node_ids() {
                r.push(hands.process(n, ProcessAction::Restart).await.map(|_| ()));
            }
            first_err(r)
        }
        Fault::Partition(a, b) => {
            let mut r = Vec::new();
            for n in a.iter().chain(b) {
                r.push(set_faults(client, *n, |f| f.cut.clear()).await);
            }
            first_err(r)
        }
        Fault::Slow(n) => set_faults(client, *n, |f| f.slow.clear()).await,
        Fault::Corrupt(_) => crate::client::entropy::repair(client).await.map(|_| ()),
    };
    announce(client, format!("nemesis: healed {}", fault.describe())).await;
    r
}

/// Everything back: paused nodes resumed, crashed ones restarted, network faults cleared, and
/// damage repaired when the nemesis could have caused it.
pub async fn heal_all(client: &Client, hands: &dyn Hands, repair: bool) {
    for n in client.node_ids() {
        match hands.process(n, ProcessAction::State).await.map(|p| p.state) {
            Ok(s) if s == "paused" => {
                let _ = hands.process(n, ProcessAction::Resume).await;
            }
            Ok(s) if s == "down" => {
                let _ = hands.process(n, ProcessAction::Restart).await;
            }
            _ => {}
        }
    }
    for n in client.node_ids() {
        let _ = client.call_within(Target::Node(n), Request::SetFaults(Faults::default()), NODE_CALL).await;
    }
    if repair {
        let _ = crate::client::entropy::repair(client).await;
    }
    announce(client, format!("nemesis: stopped; every node resumed, restarted and healed ({})", names(client))).await;
}

fn names(client: &Client) -> String {
    client.node_ids().into_iter().map(node_name).collect::<Vec<_>>().join(",")
}
