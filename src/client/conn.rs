//! Request routing and failover.
//!
//! A request for the leader goes to the current leader hint (or any node, which forwards).
//! While waiting, a watchdog pings the node on a separate stream; a node that stops answering
//! pings (killed, paused, cut off) is abandoned within a few hundred milliseconds and the next
//! node is tried, so a dead leader costs about one election, not one long timeout.
//!
//! Failover resends a write that may already have taken effect, so every write carries a
//! `RequestId` that stays the same across its retries: the cluster applies it at most once and
//! answers a retry with the first outcome.

use super::ClusterFile;
use crate::error::{Error, ErrorKind, Result};
use crate::net::{Endpoint, Peer, TlsFiles, ALPN_ADMIN, ALPN_CLIENT};
use crate::proto::{
    node_name, Envelope, NodeId, NodeStatus, ProcessAction, ProcessInfo, Reply, Request, RequestId, Response, Trace,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROBE_AFTER: Duration = Duration::from_millis(60);
const PROBE_TIMEOUT: Duration = Duration::from_millis(120);
/// Below this, another attempt is not worth starting once one has failed.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);
/// For a request pinned to one node there is nowhere else to go, so only a node that is
/// really gone (not merely busy) should cut it short.
const PINNED_PROBE_TIMEOUT: Duration = Duration::from_millis(1000);
/// A node that just failed is tried last for this long.
const SUSPECT_FOR: Duration = Duration::from_secs(2);

/// Where a request should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The leader, wherever it is now.
    Leader,
    /// This node only: no failover.
    Node(NodeId),
}

/// A result and who produced it.
#[derive(Debug, Clone)]
pub struct Served<T> {
    pub node: NodeId,
    pub leader: Option<NodeId>,
    pub value: T,
    /// How a traced write travelled (`call_traced`), with the client's own timing added.
    pub trace: Option<Trace>,
}

pub struct Client {
    nodes: Vec<(NodeId, Arc<Peer>)>,
    /// Supervisors of nodes that run under one (nodes on other machines).
    supervisors: Vec<(NodeId, Arc<Peer>)>,
    /// 0 when unknown.
    leader_hint: AtomicU64,
    suspects: Mutex<HashMap<NodeId, Instant>>,
    timeout: Duration,
    endpoint: Endpoint,
    writes: Writes,
    /// What this client was built from, so a caller can open another connection as a
    /// separate process would (`check kv`'s clients).
    cluster: ClusterFile,
}

/// Numbers this client's writes (see `RequestId`) and knows which are still open, so each id
/// can tell the cluster below which number it may forget outcomes.
struct Writes {
    client: u64,
    next: AtomicU64,
    open: Mutex<BTreeSet<u64>>,
}

/// One write from its first attempt until its caller has the answer or gives up (dropped).
struct OpenWrite<'a> {
    writes: &'a Writes,
    seq: u64,
}

impl Writes {
    fn new() -> Self {
        Writes { client: random_u64(), next: AtomicU64::new(1), open: Mutex::default() }
    }

    fn open(&self) -> OpenWrite<'_> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap().insert(seq);
        OpenWrite { writes: self, seq }
    }
}

impl OpenWrite<'_> {
    /// Read at each attempt: a retry may tell the cluster more writes are done than the first
    /// attempt did, never fewer, and never this one.
    fn id(&self) -> RequestId {
        let done_below = self.writes.open.lock().unwrap().first().copied().unwrap_or(self.seq);
        RequestId { client: self.writes.client, seq: self.seq, done_below }
    }
}

impl Drop for OpenWrite<'_> {
    fn drop(&mut self) {
        self.writes.open.lock().unwrap().remove(&self.seq);
    }
}

/// A client id from the system's random source: two shells, or two runs of one, never share it.
fn random_u64() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // The system RNG does not fail on Linux; the clock and pid are a fallback unique enough.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
    }
    u64::from_le_bytes(b)
}

impl Drop for Client {
    fn drop(&mut self) {
        self.endpoint.close();
    }
}

impl Client {
    /// Builds a client; connections are made on first use. Must be called inside a tokio runtime.
    pub fn new(cluster: &ClusterFile, timeout: Duration) -> Result<Self> {
        let tls = TlsFiles::load(&cluster.cert_paths())?;
        let endpoint = Endpoint::client(&tls)?;
        let nodes = cluster
            .nodes
            .iter()
            .map(|n| Ok((n.node_id()?, Arc::new(Peer::new(endpoint.clone(), n.addr.clone(), ALPN_CLIENT)))))
            .collect::<Result<_>>()?;
        let supervisors = cluster
            .nodes
            .iter()
            .filter_map(|n| Some((n.node_id().ok()?, n.supervisor.clone()?)))
            .map(|(id, addr)| (id, Arc::new(Peer::new(endpoint.clone(), addr, ALPN_ADMIN))))
            .collect();
        Ok(Client {
            nodes,
            supervisors,
            leader_hint: AtomicU64::new(0),
            suspects: Mutex::default(),
            timeout,
            endpoint,
            writes: Writes::new(),
            cluster: cluster.clone(),
        })
    }

    pub fn cluster_file(&self) -> &ClusterFile {
        &self.cluster
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|(id, _)| *id).collect()
    }

    pub fn addr_of(&self, id: NodeId) -> Option<&str> {
        self.nodes.iter().find(|(n, _)| *n == id).map(|(_, p)| p.addr())
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn leader_hint(&self) -> Option<NodeId> {
        Some(self.leader_hint.load(Ordering::Relaxed)).filter(|&l| l != 0)
    }

    fn peer(&self, id: NodeId) -> Result<&Arc<Peer>> {
        self.nodes
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, p)| p)
            .ok_or_else(|| Error::usage(format!("no node {} in this cluster", node_name(id))))
    }

    /// Sends `request` to `target`, failing over between nodes for `Target::Leader`.
    pub async fn call(&self, target: Target, request: Request) -> Result<Served<Response>> {
        self.call_within(target, request, self.timeout).await
    }

    pub async fn call_within(&self, target: Target, request: Request, timeout: Duration) -> Result<Served<Response>> {
        self.call_as(target, request, timeout, false).await
    }

    /// `call`, asking a write for its `Trace` when `trace` is set.
    pub async fn call_traced(&self, target: Target, request: Request, trace: bool) -> Result<Served<Response>> {
        self.call_as(target, request, self.timeout, trace).await
    }

    async fn call_as(
        &self,
        target: Target,
        request: Request,
        timeout: Duration,
        trace: bool,
    ) -> Result<Served<Response>> {
        // What no node can accept is refused here, at once; the node's own cap decides the rest.
        crate::proto::limits::check_request(&request, crate::proto::limits::MAX_VALUE_LIMIT)?;
        let deadline = Instant::now() + timeout;
        let write = request.carries_id().then(|| self.writes.open());
        let order = match target {
            Target::Node(id) => vec![id],
            Target::Leader => {
                let hint = self.leader_hint();
                let suspects = self.suspects.lock().unwrap();
                let now = Instant::now();
                let suspect = |id: &NodeId| suspects.get(id).is_some_and(|until| *until > now);
                let mut ids = self.node_ids();
                ids.sort_by_key(|id| (suspect(id), Some(*id) != hint));
                ids
            }
        };
        let mut backoff = Duration::from_millis(10);
        let mut last_err = Error::unreachable("no node answered");
        loop {
            for (i, &id) in order.iter().enumerate() {
                let left = deadline.saturating_duration_since(Instant::now());
                // A sliver of budget can only end in a timeout, which would hide why the
                // earlier attempts failed (a refused certificate, a dead node).
                let tried = i > 0 || backoff > Duration::from_millis(10);
                if left.is_zero() || (tried && left < MIN_ATTEMPT) {
                    return Err(self.give_up(last_err, timeout));
                }
                let probe = if target == Target::Leader { PROBE_TIMEOUT } else { PINNED_PROBE_TIMEOUT };
                let env = Envelope {
                    timeout_ms: left.as_millis().min(u32::MAX as u128) as u32,
                    request: request.clone(),
                    id: write.as_ref().map(OpenWrite::id),
                    trace,
                };
                let sent = Instant::now();
                match self.attempt(id, env, left, probe).await {
                    // A leader cut off from the majority says so at once; another node may
                    // already follow a newer leader.
                    Ok(Reply { result: Err(e), .. }) if e.kind == ErrorKind::NoQuorum && target == Target::Leader => {
                        if self.leader_hint() == Some(id) {
                            self.leader_hint.store(0, Ordering::Relaxed);
                        }
                        self.suspects.lock().unwrap().insert(id, Instant::now() + SUSPECT_FOR);
                        last_err = e;
                    }
                    Ok(reply) => {
                        self.suspects.lock().unwrap().remove(&id);
                        if let Some(l) = reply.leader {
                            self.leader_hint.store(l, Ordering::Relaxed);
                        }
                        // The attempt that answered, not the ones that failed before it: the
                        // trace is of this one's journey.
                        let client_us = Some(sent.elapsed().as_micros() as u64);
                        let trace = reply.trace.map(|t| Trace { client_us, ..t });
                        return reply.result.map(|value| Served {
                            node: reply.node,
                            leader: reply.leader,
                            value,
                            trace,
                        });
                    }
                    // A refused certificate is refused by every node alike, and what was refused
                    // before it left (too large to frame) no node would take.
                    Err(e) if e.kind == ErrorKind::Denied => return Err(e),
                    Err(e) => {
                        if self.leader_hint() == Some(id) {
                            self.leader_hint.store(0, Ordering::Relaxed);
                        }
                        self.suspects.lock().unwrap().insert(id, Instant::now() + SUSPECT_FOR);
                        last_err = e;
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || target != Target::Leader {
                return Err(self.give_up(last_err, timeout));
            }
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    fn give_up(&self, last: Error, timeout: Duration) -> Error {
        match last.kind {
            ErrorKind::Unreachable | ErrorKind::NoQuorum => last,
            _ => Error::timeout(format!("no answer within {timeout:?} ({last})")),
        }
    }

    /// One node, one try. Transport failures come back as `Err`; a node's own verdict (even an
    /// error) comes back as `Ok(Reply)`.
    async fn attempt(&self, id: NodeId, env: Envelope, left: Duration, probe: Duration) -> Result<Reply> {
        let peer = self.peer(id)?;
        let call = async {
            // Leave the node time to say "timeout" itself before we give up on the stream, but
            // not so much that a caller polling with a short budget waits on a dead node.
            let grace = left + (left / 4).min(Duration::from_millis(200));
            match tokio::time::timeout(grace, peer.call::<_, Reply>(&env)).await {
                Ok(r) => r,
                Err(_) => Err(Error::timeout(format!("{} did not answer", node_name(id)))),
            }
        };
        tokio::select! {
            r = call => r,
            e = watchdog(peer, probe) => {
                peer.reset().await;
                Err(e)
            }
        }
    }

    pub fn has_supervisor(&self, id: NodeId) -> bool {
        self.supervisors.iter().any(|(n, _)| *n == id)
    }

    /// Asks a node's supervisor to act on the node process.
    pub async fn supervise(&self, id: NodeId, action: ProcessAction) -> Result<ProcessInfo> {
        let peer = self.supervisors.iter().find(|(n, _)| *n == id).map(|(_, p)| p).ok_or_else(|| {
            Error::usage(format!("{} has no supervisor in the cluster file (`supervisor = ADDR`)", node_name(id)))
        })?;
        let env = Envelope::new(5000, Request::Process(action));
        let reply = match tokio::time::timeout(Duration::from_secs(5), peer.call::<_, Reply>(&env)).await {
            Ok(r) => r,
            Err(_) => Err(Error::timeout(format!("the supervisor of {} did not answer", node_name(id)))),
        };
        if reply.is_err() {
            peer.reset().await;
        }
        match reply?.result? {
            Response::Process(info) => Ok(info),
            other => Err(Error::internal(format!("unexpected reply {other:?}"))),
        }
    }

    /// Asks every node for its status at once; a node that does not answer is reported as such.
    pub async fn status_all(&self, timeout: Duration) -> Vec<(NodeId, Result<NodeStatus>)> {
        let calls = self.nodes.iter().map(|(id, _)| async move {
            let r = self.call_within(Target::Node(*id), Request::Status, timeout).await;
            let r = r.and_then(|s| match s.value {
                Response::Status(st) => Ok(st),
                other => Err(Error::internal(format!("unexpected reply {other:?}"))),
            });
            (*id, r)
        });
        let all = futures::future::join_all(calls).await;
        let leaders = all.iter().filter_map(|(_, r)| r.as_ref().ok()).filter(|s| s.role == "leader");
        if let Some(l) = leaders.max_by_key(|s| s.term) {
            self.leader_hint.store(l.id, Ordering::Relaxed);
        }
        all
    }
}

/// Resolves when the node stops answering pings.
async fn watchdog(peer: &Peer, timeout: Duration) -> Error {
    tokio::time::sleep(PROBE_AFTER).await;
    loop {
        let ping = Envelope::new(timeout.as_millis() as u32, Request::Ping);
        match tokio::time::timeout(timeout, peer.call::<_, Reply>(&ping)).await {
            Ok(Ok(_)) => tokio::time::sleep(PROBE_AFTER).await,
            Ok(Err(e)) => return e,
            Err(_) => return Error::unreachable(format!("{} stopped answering", peer.addr())),
        }
    }
}
