//! `check chat`, `check locks`, `check queue`'s workloads: concurrent clients (each its own
//! `Client`) under an optional nemesis, recording what they were told; then the nemesis is
//! stopped (everything healed) and what the nodes hold is read back and judged
//! (`systems.rs`). Workers and the nemesis stop on one token and are joined.

use super::kv::Clock;
use super::nemesis::{run_for, Hands, Injected, Nemesis, Plan};
use super::progress::{Progress, Tally};
use super::schedule::Rng;
use super::systems::{check_chat, check_locks, check_queue, Grant, QueueHistory, Sent};
use crate::client::{Acquired, Client, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::{ChatMessage, NodeId, Request, Response};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct SystemOptions {
    pub duration: Duration,
    pub clients: usize,
    pub nemesis: Option<Plan>,
    pub seed: u64,
    pub op_timeout: Duration,
    /// Where the live views watch the run's outcomes as they complete.
    pub progress: Arc<Progress>,
}

/// A recorded and judged run of one system.
#[derive(Debug, Clone)]
pub struct SystemRun {
    pub system: &'static str,
    /// Operations by outcome: ok, fail, info.
    pub outcomes: (usize, usize, usize),
    pub faults: Vec<Injected>,
    pub problems: Vec<String>,
    /// What was judged, in a line: "1,234 messages on 3 nodes".
    pub judged: String,
    pub elapsed: Duration,
}

impl SystemRun {
    pub fn valid(&self) -> bool {
        self.problems.is_empty()
    }
}

fn outcomes(t: &Tally) -> (usize, usize, usize) {
    let (ok, fail, info) = t.counts();
    (ok as usize, fail as usize, info as usize)
}

fn certain_no(e: &Error) -> bool {
    matches!(e.kind, ErrorKind::NotGranted | ErrorKind::Denied | ErrorKind::Usage | ErrorKind::Deadlock)
}

fn run_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}", t.as_millis())
}

/// Starts the nemesis, runs `worker(i, client, done)` on each client until the duration is up
/// (or `stop` fires), joins them and stops the nemesis.
async fn drive<F, Fut>(
    client: &Arc<Client>,
    hands: Arc<dyn Hands>,
    opts: &SystemOptions,
    stop: &CancellationToken,
    worker: F,
) -> Result<Vec<Injected>>
where
    F: Fn(usize, Client, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let done = stop.child_token();
    let nemesis = opts.nemesis.clone().map(|p| Nemesis::start(client.clone(), hands, p));
    let mut tasks = Vec::new();
    for i in 0..opts.clients.max(1) {
        let c = Client::new(client.cluster_file(), opts.op_timeout)?;
        tasks.push(tokio::spawn(worker(i, c, done.clone())));
    }
    let faults = run_for(opts.duration, stop, &done, nemesis, tasks).await;
    Ok(faults)
}

async fn chat_log(client: &Client, node: NodeId, after_seq: u64) -> Result<(Vec<ChatMessage>, u64)> {
    let req = Request::ChatLog { after_seq, limit: 1000, tail: false, wait_ms: 0 };
    match client.call_within(Target::Node(node), req, Duration::from_secs(3)).await?.value {
        Response::ChatLog { messages, last_seq } => Ok((messages, last_seq)),
        other => Err(crate::client::unexpected(other)),
    }
}

/// Everything after `after_seq` on one node, page by page.
async fn whole_log(client: &Client, node: NodeId, after_seq: u64) -> Result<Vec<ChatMessage>> {
    let mut out: Vec<ChatMessage> = Vec::new();
    loop {
        let from = out.last().map_or(after_seq, |m| m.seq);
        let (page, last_seq) = chat_log(client, node, from).await?;
        out.extend(page);
        if out.last().is_none_or(|m| m.seq >= last_seq) {
            return Ok(out);
        }
    }
}

/// Chat: every client sends numbered messages; afterwards each node's log is read back.
pub async fn run_chat(
    client: Arc<Client>,
    hands: Arc<dyn Hands>,
    opts: SystemOptions,
    stop: CancellationToken,
) -> Result<SystemRun> {
    let started = Instant::now();
    let leader = client.call(Target::Leader, Request::ChatLog { after_seq: 0, limit: 1, tail: true, wait_ms: 0 });
    let Response::ChatLog { last_seq: after_seq, .. } = leader.await?.value else {
        return Err(Error::internal("chat log: unexpected reply"));
    };
    let (sent, progress) = (Arc::new(Mutex::new(Vec::new())), opts.progress.clone());
    let run = run_id();
    let seed = opts.seed;
    let faults = drive(&client, hands, &opts, &stop, |i, c, done| {
        let (sent, progress, run) = (sent.clone(), progress.clone(), run.clone());
        async move {
            let mut rng = Rng::new(seed.wrapping_mul(7919).wrapping_add(i as u64));
            let mut n = 0;
            while !done.is_cancelled() {
                n += 1;
                let id = rng.next_u64();
                let req = Request::ChatSend { id, from: format!("check-{i}"), text: format!("{run} c{i} #{n}") };
                let r = c.call(Target::Leader, req).await;
                progress.tally.result(r.as_ref().err());
                let seq = match r.map(|s| s.value) {
                    Ok(Response::ChatSent { seq, .. }) => Some(seq),
                    Err(e) if certain_no(&e) => continue,
                    _ => None,
                };
                sent.lock().unwrap().push(Sent { id, seq });
            }
        }
    })
    .await?;
    // Healed: every node catches up to the same last seq (bounded), then each log is read.
    let nodes = client.node_ids();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut logs = Vec::new();
    loop {
        logs.clear();
        for &n in &nodes {
            logs.push((n, whole_log(&client, n, after_seq).await.unwrap_or_default()));
        }
        let lens: Vec<usize> = logs.iter().map(|(_, l)| l.len()).collect();
        if lens.iter().all(|l| *l == lens[0]) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let problems = check_chat(after_seq, &sent, &logs);
    let count = logs.first().map_or(0, |(_, l)| l.len());
    let outcomes = outcomes(&progress.tally);
    let judged = format!("{count} messages after seq {after_seq} on {} nodes", logs.len());
    Ok(SystemRun { system: "chat", outcomes, faults, problems, judged, elapsed: started.elapsed() })
}

/// Locks: clients take turns on one exclusive lock, hold it briefly and release it.
pub async fn run_locks(
    client: Arc<Client>,
    hands: Arc<dyn Hands>,
    opts: SystemOptions,
    stop: CancellationToken,
) -> Result<SystemRun> {
    let clock = Arc::new(Clock::new());
    let (grants, progress) = (Arc::new(Mutex::new(Vec::new())), opts.progress.clone());
    let run = run_id();
    let name = format!("check:lock:{run}");
    let (ttl, clients) = (Duration::from_secs(2), opts.clients.max(1));
    let seed = opts.seed;
    let faults = drive(&client, hands, &opts, &stop, |i, c, done| {
        let (grants, progress, clock, name, run) =
            (grants.clone(), progress.clone(), clock.clone(), name.clone(), run.clone());
        async move {
            let mut rng = Rng::new(seed.wrapping_mul(104_729).wrapping_add(i as u64));
            let mut process = i;
            while !done.is_cancelled() {
                let owner = format!("check-{run}-p{process}");
                let (_, invoked_us) = clock.tick();
                let r = c.lock_acquire(&name, &owner, false, ttl, Duration::from_millis(500), false).await;
                let (_, granted_us) = clock.tick();
                progress.tally.result(r.as_ref().err());
                let holder = match r.map(|s| s.value) {
                    Ok(Acquired::Granted(h)) => h,
                    Ok(Acquired::Queued(_)) => continue,
                    Err(e) if certain_no(&e) => continue,
                    Err(_) => {
                        // It may hold the lock without knowing: a new owner from now on, and
                        // the old one lets go (if it holds nothing this is refused) so the
                        // others need not wait a lease out. It never acted as holder.
                        let _ = c.lock_release(&name, &owner).await;
                        process += clients;
                        continue;
                    }
                };
                tokio::time::sleep(Duration::from_millis(2 + rng.below(20))).await;
                let (_, release_us) = clock.tick();
                let released = c.lock_release(&name, &owner).await;
                progress.tally.result(released.as_ref().err());
                if released.as_ref().is_err_and(|e| e.kind != ErrorKind::Expired) {
                    // It may still hold the lock, and acquiring again would only renew that
                    // grant: a new owner from now on.
                    process += clients;
                }
                grants.lock().unwrap().push(Grant {
                    owner: owner.clone(),
                    token: holder.token,
                    invoked_us,
                    granted_us,
                    released_us: Some(release_us),
                    ttl_us: ttl.as_micros() as u64,
                });
            }
        }
    })
    .await?;
    let grants = std::mem::take(&mut *grants.lock().unwrap());
    let problems = check_locks(&grants);
    let outcomes = outcomes(&progress.tally);
    let judged = format!("{} grants of {name}", grants.len());
    Ok(SystemRun { system: "locks", outcomes, faults, problems, judged, elapsed: clock_elapsed(&clock) })
}

fn clock_elapsed(clock: &Clock) -> Duration {
    Duration::from_micros(clock.tick().1)
}

/// Queues: half the clients push unique items, half pop and ack; afterwards the queue is
/// drained until nothing is left to come back.
pub async fn run_queue(
    client: Arc<Client>,
    hands: Arc<dyn Hands>,
    opts: SystemOptions,
    stop: CancellationToken,
) -> Result<SystemRun> {
    let clock = Arc::new(Clock::new());
    let (h, progress) = (Arc::new(Mutex::new(QueueHistory::default())), opts.progress.clone());
    let run = run_id();
    let queue = format!("check:q:{run}");
    let visibility = Duration::from_secs(2);
    let faults = drive(&client, hands, &opts, &stop, |i, c, done| {
        let (h, progress, clock, queue, run) = (h.clone(), progress.clone(), clock.clone(), queue.clone(), run.clone());
        async move {
            let mut n = 0;
            while !done.is_cancelled() {
                if i % 2 == 0 {
                    n += 1;
                    let item = format!("{run}-c{i}-{n}");
                    let r = c.queue_push(&queue, &item).await;
                    progress.tally.result(r.as_ref().err());
                    match r {
                        Ok(_) => h.lock().unwrap().pushed.push(item),
                        Err(e) if certain_no(&e) => {}
                        Err(_) => h.lock().unwrap().maybe_pushed.push(item),
                    }
                } else {
                    pop_and_ack(&c, &queue, visibility, &clock, &h, &progress.tally).await;
                }
            }
        }
    })
    .await?;
    // Drain: until nothing was delivered for longer than the visibility timeout, so whatever
    // was popped and not acked has come back and been taken.
    let (mut quiet_since, bound) = (Instant::now(), Instant::now() + Duration::from_secs(30));
    while quiet_since.elapsed() < visibility + Duration::from_millis(500) && Instant::now() < bound {
        if pop_and_ack(&client, &queue, visibility, &clock, &h, &progress.tally).await {
            quiet_since = Instant::now();
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let h = std::mem::take(&mut *h.lock().unwrap());
    let problems = check_queue(&h);
    let outcomes = outcomes(&progress.tally);
    let judged = format!("{} items pushed, {} deliveries", h.pushed.len(), h.delivered.len());
    Ok(SystemRun { system: "queue", outcomes, faults, problems, judged, elapsed: clock_elapsed(&clock) })
}

/// One pop and, if it got an item, its ack; whether an item came.
async fn pop_and_ack(
    c: &Client,
    queue: &str,
    visibility: Duration,
    clock: &Clock,
    h: &Mutex<QueueHistory>,
    tally: &Tally,
) -> bool {
    let (_, invoked_us) = clock.tick();
    let r = c.queue_pop(queue, visibility).await;
    tally.result(r.as_ref().err());
    let Ok(Some(item)) = r.map(|s| s.value) else { return false };
    h.lock().unwrap().delivered.push((item.item.clone(), item.id, invoked_us));
    let acked = c.queue_ack(queue, item.id).await;
    tally.result(acked.as_ref().err());
    if acked.is_ok() {
        let (_, done_us) = clock.tick();
        h.lock().unwrap().acked.push((item.id, done_us));
    }
    true
}
