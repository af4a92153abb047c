//! Answers client requests on a node: writes go through Raft on the leader, reads are
//! linearizable through openraft's read index unless the caller asked for this node's own
//! (possibly stale) state. A follower forwards what needs the leader, once, over the peer link.
//!
//! A write goes into the log wrapped with its client's request id (`Op::Once`), so however
//! often it is retried or passed on, it applies at most once. Nothing is passed on after the
//! caller's deadline: a node paused mid-request must not wake up and send a stale write on.

use super::cache::Directory;
use super::events::Events;
use super::log_store::LogStore;
use super::metrics::Metrics;
use super::network::Peers;
use super::proposer::{Proposed, Proposer};
use super::state_machine::Store;
use super::trace::{self, Traced, TRACE_ACK_WAIT};
use super::types::Raft;
use crate::error::{Error, ErrorKind, Result};
use crate::proto::{Envelope, NodeId, NodeStatus, Op, Reply, Request, RequestId, Response, Trace};
use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::{BasicNode, ServerState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Upper bound on how long a node works on one request, whatever the client allows.
const MAX_REQUEST_TIME: Duration = Duration::from_secs(30);

pub struct Service {
    pub id: NodeId,
    pub addr: String,
    pub raft: Raft,
    pub store: Arc<Store>,
    pub log: LogStore,
    pub peers: Peers,
    pub proposer: Proposer,
    pub data_dir: PathBuf,
    pub started: Instant,
    pub recovery: Duration,
    /// Membership changes one at a time; concurrent joins would otherwise race.
    pub join_lock: tokio::sync::Mutex<()>,
    pub metrics: Arc<Metrics>,
    /// Client traffic per second, for the live model.
    pub seconds: super::seconds::Seconds,
    pub events: Arc<Events>,
    pub cache: Directory,
}

pub(super) enum Outcome {
    Done(Result<Response>),
    /// Not the leader: hand to this node (if known).
    Forward(Option<NodeId>),
}

impl Service {
    fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Handles one client request. `may_forward` is false for requests that were already
    /// forwarded to us, so a stale leader hint can never bounce a request around.
    pub async fn handle(&self, env: Envelope, may_forward: bool) -> Reply {
        let received = Instant::now();
        let budget = Duration::from_millis(env.timeout_ms as u64).min(MAX_REQUEST_TIME);
        let deadline = received + budget;
        let needs_quorum = needs_quorum(&env.request);
        let traced = (env.trace && traceable(&env.request)).then(Traced::default);
        // Stamping starts before the write is proposed and lasts until its stamps are taken.
        let _stamping = traced.as_ref().map(|_| self.metrics.trace.begin());
        let routed = tokio::time::timeout(budget, self.route(env, may_forward, deadline, traced.as_ref()));
        // Losing the majority mid-request (a partition) ends the wait early, so the caller can
        // try the side that still has one.
        let lost = async {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(e) = self.quorum_lost().filter(|_| needs_quorum) {
                    return Error::no_quorum(format!("{}; the request may or may not take effect", e.message));
                }
            }
        };
        let result = tokio::select! {
            r = routed => r.unwrap_or_else(|_| Err(self.timeout_error(budget))),
            e = lost => Err(e),
        };
        let trace = match &traced {
            Some(t) if result.is_ok() => self.trace(t, received).await,
            _ => None,
        };
        Reply { node: self.id, leader: self.leader(), result, trace }
    }

    /// The trace of a write this node handled: built from its own stamps if it led, or the
    /// leader's with this node's time added if it forwarded the write.
    async fn trace(&self, traced: &Traced, received: Instant) -> Option<Trace> {
        let us = |d: Duration| d.as_micros() as u64;
        if let Some(relayed) = traced.relayed.get() {
            let node_us = us(received.elapsed()).saturating_sub(relayed.hold_us);
            return Some(Trace { took: self.id, node_us, ..relayed.clone() });
        }
        let landed = traced.landed.get()?;
        let ready = Instant::now();
        let peers: Vec<NodeId> = {
            let m = self.raft.metrics().borrow().membership_config.clone();
            m.membership().voter_ids().filter(|&v| v != self.id).collect()
        };
        let stamps = self.metrics.trace.take(landed.log_id.index, &peers, TRACE_ACK_WAIT).await;
        Some(trace::led(self.id, landed, &stamps, received, ready))
    }

    async fn route(
        &self,
        env: Envelope,
        may_forward: bool,
        deadline: Instant,
        traced: Option<&Traced>,
    ) -> Result<Response> {
        loop {
            // A node paused mid-request wakes with every timer overdue, and the timeout around
            // this future fires only after it has been polled once more: without this check it
            // would propose or pass on a request its caller has long given up on.
            overdue(deadline)?;
            match self.execute(&env.request, env.id, deadline, traced).await {
                Outcome::Done(r) => return r,
                Outcome::Forward(Some(leader)) if leader != self.id && may_forward => {
                    overdue(deadline)?;
                    let addr = self.addr_of(leader)?;
                    let left = deadline.saturating_duration_since(Instant::now());
                    let timeout_ms = left.as_millis() as u32;
                    let fwd = Envelope { timeout_ms, request: env.request.clone(), id: env.id, trace: env.trace };
                    // If the leader dies mid-request, follow the election instead of waiting
                    // on a connection that will never answer.
                    let waiter = self.raft.wait(Some(left));
                    let changed = waiter.metrics(|m| m.current_leader != Some(leader), "leader changed");
                    tokio::select! {
                        r = self.peers.forward(leader, &addr, fwd) => match r {
                            Ok(reply) => {
                                if let (Some(t), Some(trace)) = (traced, reply.trace) {
                                    let _ = t.relayed.set(trace);
                                }
                                return reply.result;
                            }
                            Err(e) if e.kind == ErrorKind::Unreachable => {
                                self.peers.get(&addr).reset().await;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Err(e) => return Err(e),
                        },
                        _ = changed => {}
                    }
                }
                Outcome::Forward(Some(_)) => {
                    return Err(Error::no_quorum("this node lost leadership while handling the request"))
                }
                Outcome::Forward(None) => self.wait_for_leader(deadline).await?,
            }
        }
    }

    async fn wait_for_leader(&self, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left))
            .metrics(|m| m.current_leader.is_some(), "leader known")
            .await
            .map(|_| ())
            .map_err(|_| Error::no_quorum(format!("no leader elected within {left:?}")))
    }

    fn addr_of(&self, id: NodeId) -> Result<String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .ok_or_else(|| Error::internal(format!("leader n{id} is not in the membership")))
    }

    fn timeout_error(&self, budget: Duration) -> Error {
        let m = self.raft.metrics().borrow().clone();
        let quorum_lost = m.state == ServerState::Leader
            && m.millis_since_quorum_ack.is_none_or(|ms| ms > self.raft.config().election_timeout_max);
        if quorum_lost || m.current_leader.is_none() {
            Error::no_quorum(format!("no majority answered within {budget:?}"))
        } else {
            Error::timeout(format!("no answer within {budget:?}"))
        }
    }

    /// A leader that has not heard from a majority for a while refuses at once rather than
    /// letting callers wait out their timeouts: on the minority side of a partition it cannot
    /// commit anything.
    fn quorum_lost(&self) -> Option<Error> {
        let m = self.raft.metrics().borrow().clone();
        let limit = 3 * self.raft.config().election_timeout_max;
        let age = m.millis_since_quorum_ack.filter(|ms| *ms > limit)?;
        let voters = m.membership_config.membership().voter_ids().count();
        (m.state == ServerState::Leader && voters > 1)
            .then(|| Error::no_quorum(format!("n{} has not heard from a majority for {age} ms", self.id)))
    }

    async fn execute(
        &self,
        req: &Request,
        id: Option<RequestId>,
        deadline: Instant,
        traced: Option<&Traced>,
    ) -> Outcome {
        if let Some(e) = needs_quorum(req).then(|| self.quorum_lost()).flatten() {
            return Outcome::Done(Err(e));
        }
        if let Some(outcome) = self.systems(req, id, deadline).await {
            return outcome;
        }
        match req {
            Request::Put { key, value } => {
                self.write_key_once(Op::Put { key: key.clone(), value: value.clone() }, id, key, None, traced).await
            }
            Request::Del { key } => self.write_key_once(Op::Del { key: key.clone() }, id, key, None, traced).await,
            Request::Cas { key, expected, new } => {
                let op = Op::Cas { key: key.clone(), expected: expected.clone(), new: new.clone() };
                self.write_key_once(op, id, key, None, traced).await
            }
            Request::CacheRead { .. } | Request::CachePut { .. } | Request::CachePoll { .. } => {
                self.cache_request(req).await
            }
            Request::Get { key, stale } => self.read(*stale, || self.store.get(key).map(Response::Value)).await,
            Request::Scan { prefix, limit, stale } => {
                self.read(*stale, || self.store.scan(prefix, *limit as usize).map(Response::Scan)).await
            }
            Request::Status => Outcome::Done(Ok(Response::Status(self.status()))),
            Request::Ping => Outcome::Done(Ok(Response::Pong)),
            Request::Join { id, addr } => self.join(*id, addr).await,
            Request::SetFaults(f) => {
                if self.peers.faults.get() != *f {
                    self.events.push("fault", describe_faults(f));
                }
                self.peers.faults.set(f.clone());
                Outcome::Done(Ok(Response::Faults(f.clone())))
            }
            Request::GetFaults => Outcome::Done(Ok(Response::Faults(self.peers.faults.get()))),
            Request::Merkle | Request::LeafKeys { .. } | Request::Corrupt { .. } | Request::Repair { .. } => {
                self.anti_entropy(req).await
            }
            Request::Metrics => Outcome::Done(Ok(Response::Metrics(self.metrics.snapshot(&self.replication_lag())))),
            Request::Seconds { after } => {
                let now = crate::proto::wall_ms();
                Outcome::Done(Ok(Response::Seconds { now_sec: now / 1000, seconds: self.seconds.since(*after, now) }))
            }
            Request::Events { after, wait_ms } => {
                let events = self.events.after(*after, Duration::from_millis(*wait_ms as u64)).await;
                Outcome::Done(Ok(Response::Events { boot_ms: self.events.boot_ms, events }))
            }
            Request::Record { kind, text } => {
                self.events.push(kind, text.clone());
                Outcome::Done(Ok(Response::Recorded))
            }
            Request::Process(_) => Outcome::Done(Err(Error::usage(
                "crash, restart, pause and resume go to the node's supervisor, not to the node",
            ))),
            _ => Outcome::Done(Err(Error::internal(format!("no handler for {req:?}")))),
        }
    }

    /// On the leader: how many entries each peer has not acknowledged yet.
    fn replication_lag(&self) -> std::collections::BTreeMap<NodeId, u64> {
        let m = self.raft.metrics().borrow().clone();
        let last = m.last_log_index.unwrap_or(0);
        m.replication
            .iter()
            .flatten()
            .map(|(&id, matched)| (id, last.saturating_sub(matched.map_or(0, |l| l.index))))
            .collect()
    }

    /// A write of one key without a request id (a caching client's).
    pub(super) async fn write_key(&self, op: Op, key: &str, writer: Option<u64>) -> Outcome {
        self.write_key_once(op, None, key, writer, None).await
    }

    /// A write of one key: acknowledged only once no client cache still serves the old value.
    async fn write_key_once(
        &self,
        op: Op,
        id: Option<RequestId>,
        key: &str,
        writer: Option<u64>,
        traced: Option<&Traced>,
    ) -> Outcome {
        let outcome = self.write_traced(op, id, traced).await;
        if matches!(outcome, Outcome::Done(Ok(_))) {
            let term = self.raft.metrics().borrow().current_term;
            self.cache.invalidate(term, key, writer).await;
        }
        if let Some(hold) = test_hold_reply(key, id) {
            tokio::time::sleep(hold).await;
        }
        outcome
    }

    /// Proposes `op`, wrapped with its request id when it has one.
    pub(super) async fn write(&self, op: Op, id: Option<RequestId>) -> Outcome {
        self.write_traced(op, id, None).await
    }

    /// `write`, noting where a traced write landed.
    async fn write_traced(&self, op: Op, id: Option<RequestId>, traced: Option<&Traced>) -> Outcome {
        let op = match id {
            Some(id) => Op::Once { id, op: Box::new(op) },
            None => op,
        };
        // Chat sends carry their own message id, so a second copy of one is harmless too.
        let repeatable = matches!(op, Op::Once { .. } | Op::ChatSend { .. });
        let was_leader = self.raft.metrics().borrow().state == ServerState::Leader;
        let (proposed, landed) = self.proposer.propose_landed(op).await;
        if let (Some(t), Some(landed)) = (traced, landed) {
            let _ = t.landed.set(landed);
        }
        match proposed {
            Proposed::Applied(r) => Outcome::Done(r),
            // Proposed while leading, refused for not leading: it may sit in the log and still
            // commit under the next leader. Passing on a copy without an id could apply it twice.
            Proposed::NotLeader(_) if was_leader && !repeatable => Outcome::Done(Err(Error::timeout(format!(
                "n{} lost leadership while proposing this write; it may or may not take effect",
                self.id
            )))),
            Proposed::NotLeader(leader) => Outcome::Forward(leader),
        }
    }

    pub(super) async fn read(&self, stale: bool, read: impl Fn() -> Result<Response>) -> Outcome {
        // A new leader, or one whose peers just restarted, may not hear from a majority on the
        // first try; the caller's deadline (see `handle`) bounds the retries.
        if stale {
            return Outcome::Done(read());
        }
        loop {
            match self.raft.ensure_linearizable().await {
                Ok(_) => break,
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    return Outcome::Forward(f.leader_id)
                }
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Outcome::Done(Err(Error::internal(e.to_string()))),
            }
        }
        Outcome::Done(read())
    }

    async fn join(&self, id: NodeId, addr: &str) -> Outcome {
        let _one_at_a_time = self.join_lock.lock().await;
        // Membership changes need the previous one committed (openraft#1885).
        let ready = self
            .raft
            .wait(Some(Duration::from_secs(5)))
            .metrics(
                |m| {
                    m.state != ServerState::Leader
                        || m.membership_config.log_id().map(|l| l.index) <= m.last_applied.map(|l| l.index)
                },
                "membership committed",
            )
            .await;
        if ready.is_err() {
            return Outcome::Done(Err(Error::timeout("previous membership change did not commit")));
        }
        let voters: std::collections::BTreeSet<NodeId> =
            self.raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        if voters.contains(&id) {
            return Outcome::Done(Ok(Response::Joined));
        }
        if let Err(e) = self.raft.add_learner(id, BasicNode::new(addr), true).await {
            return match e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader { leader_id, .. })) => {
                    Outcome::Forward(leader_id)
                }
                e => Outcome::Done(Err(Error::internal(format!("add learner n{id}: {e}")))),
            };
        }
        let mut members = voters;
        members.insert(id);
        match self.raft.change_membership(members, false).await {
            Ok(_) => Outcome::Done(Ok(Response::Joined)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Outcome::Forward(f.leader_id),
            Err(e) => Outcome::Done(Err(Error::internal(format!("add voter n{id}: {e}")))),
        }
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        NodeStatus {
            id: self.id,
            addr: self.addr.clone(),
            role: role.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: self.log.committed_index().max(self.store.applied_index()),
            applied_index: self.store.applied_index(),
            keys: self.store.keys(),
            bytes_on_disk: dir_size(&self.data_dir),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            recovery_ms: self.recovery.as_millis() as u64,
            voters: m.membership_config.membership().voter_ids().collect(),
            pid: std::process::id(),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
            quorum_ack_ms: m.millis_since_quorum_ack.filter(|_| m.state == ServerState::Leader),
        }
    }
}

fn overdue(deadline: Instant) -> Result<()> {
    if Instant::now() >= deadline {
        return Err(Error::timeout("the request ran out of time on this node; it may or may not have taken effect"));
    }
    Ok(())
}

/// For tests only: `DSH_TEST_HOLD_REPLY_MS=MS` with `DSH_TEST_HOLD_REPLY_KEYS=PREFIX` holds the
/// reply to a write of a key under PREFIX for MS after the write was applied, so a test can
/// pause the node while its client waits for a write that has in fact taken effect. A node holds
/// each request id once: its retries are answered at once, so they cannot pile up holds. Read
/// once; unset (the normal case), nothing is held.
fn test_hold_reply(key: &str, id: Option<RequestId>) -> Option<Duration> {
    type Hold = (Duration, String, std::sync::Mutex<std::collections::HashSet<RequestId>>);
    static HOLD: std::sync::OnceLock<Option<Hold>> = std::sync::OnceLock::new();
    let (hold, prefix, held) = HOLD
        .get_or_init(|| {
            let ms = std::env::var("DSH_TEST_HOLD_REPLY_MS").ok()?.parse().ok()?;
            Some((Duration::from_millis(ms), std::env::var("DSH_TEST_HOLD_REPLY_KEYS").ok()?, Default::default()))
        })
        .as_ref()?;
    let first = id.is_none_or(|id| held.lock().unwrap().insert(id));
    (key.starts_with(prefix.as_str()) && first).then_some(*hold)
}

/// Writes whose journey `--trace` shows: the key writes, which share one path to the log.
fn traceable(req: &Request) -> bool {
    matches!(req, Request::Put { .. } | Request::Del { .. } | Request::Cas { .. })
}

/// Requests that only a leader backed by a majority can answer.
fn needs_quorum(req: &Request) -> bool {
    match req {
        Request::Get { stale, .. } | Request::Scan { stale, .. } => !stale,
        Request::Put { .. } | Request::Del { .. } | Request::Cas { .. } => true,
        Request::ChatSend { .. }
        | Request::LockAcquire { .. }
        | Request::LockRelease { .. }
        | Request::LockList
        | Request::QueuePush { .. }
        | Request::QueuePop { .. }
        | Request::QueueAck { .. }
        | Request::QueueStats => true,
        _ => false,
    }
}

fn describe_faults(f: &crate::proto::Faults) -> String {
    let names = |ids: &[NodeId]| ids.iter().map(|&i| crate::proto::node_name(i)).collect::<Vec<_>>().join(",");
    let mut parts = Vec::new();
    if !f.cut.is_empty() {
        parts.push(format!("cut off from {}", names(&f.cut)));
    }
    for s in &f.slow {
        let to = s.to.map_or("every peer".to_string(), crate::proto::node_name);
        parts.push(format!("link to {to}: +{} ms ±{} ms, {}% loss", s.delay_ms, s.jitter_ms, s.loss_pct));
    }
    if parts.is_empty() {
        "network healed: no fault left".into()
    } else {
        parts.join("; ")
    }
}

/// Bytes of the files under `dir`, the log's directory of segments included (preallocated, so
/// counted at their full size).
fn dir_size(dir: &std::path::Path) -> u64 {
    let size = |e: std::fs::DirEntry| match e.metadata() {
        Ok(m) if m.is_dir() => dir_size(&e.path()),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    };
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(size).sum()).unwrap_or(0)
}
