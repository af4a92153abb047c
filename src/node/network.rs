//! openraft's network: Raft RPCs to peers over QUIC (ALPN `dsh-raft`), one stream per RPC.
//! The same peer connection also carries requests a follower forwards to the leader, so a
//! partition cuts forwarding exactly as it cuts replication.
//!
//! AppendEntries are also cut by bytes, the prefix that fits sent and answered to openraft as a
//! partial success, and large ones go as a `Transfer` (see `transfer.rs`).

use super::ahead::Ahead;
use super::events::Events;
use super::metrics::Metrics;
use super::transfer::{self, Transfer};
use super::types::TypeConfig;
use crate::error::{Error, ErrorKind};
use crate::net::{Endpoint, FaultFilter, Peer, Verdict, ALPN_RAFT};
use crate::proto::{Envelope, NodeId, Reply};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Serialize, Deserialize)]
pub enum PeerRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client request a follower hands to the leader.
    Forward(Envelope),
    /// Entries sent ahead of replication; answered with nothing.
    Ahead(Ahead),
}

impl PeerRequest {
    /// The node that sent a Raft RPC (forwarded client requests do not say).
    pub fn sender(&self) -> Option<NodeId> {
        match self {
            PeerRequest::Append(r) => r.vote.leader_id().voted_for(),
            PeerRequest::Vote(r) => r.vote.leader_id().voted_for(),
            PeerRequest::Snapshot(r) => r.vote.leader_id().voted_for(),
            PeerRequest::Forward(_) => None,
            PeerRequest::Ahead(a) => Some(a.from),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub enum PeerReply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Forward(Reply),
    /// The request could not be read (bad frame) or was of the wrong kind.
    Refused(Error),
}

/// One connection per peer address, shared by Raft replication and forwarding.
#[derive(Clone)]
pub struct Peers {
    endpoint: Endpoint,
    by_addr: Arc<Mutex<HashMap<String, Arc<Peer>>>>,
    pub faults: Arc<FaultFilter>,
    metrics: Arc<Metrics>,
    events: Arc<Events>,
}

impl Peers {
    pub fn new(endpoint: Endpoint, metrics: Arc<Metrics>, events: Arc<Events>) -> Self {
        Peers { endpoint, by_addr: Arc::default(), faults: Arc::default(), metrics, events }
    }

    pub fn get(&self, addr: &str) -> Arc<Peer> {
        let mut map = self.by_addr.lock().unwrap();
        map.entry(addr.to_string())
            .or_insert_with(|| Arc::new(Peer::new(self.endpoint.clone(), addr, ALPN_RAFT)))
            .clone()
    }

    /// Sends a client request to the leader `id` at `addr` and returns its reply.
    pub async fn forward(&self, id: NodeId, addr: &str, env: Envelope) -> crate::error::Result<Reply> {
        let timeout = Duration::from_millis(env.timeout_ms as u64);
        let (peer, req) = (self.get(addr), PeerRequest::Forward(env));
        let call = async {
            apply_faults(&self.faults, id, timeout).await?;
            peer.call::<_, PeerReply>(&req).await
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => {
                peer.reset().await;
                Err(Error::timeout(format!("leader at {addr} did not answer in {timeout:?}")))
            }
            Ok(Ok(PeerReply::Forward(r))) => Ok(r),
            Ok(Ok(PeerReply::Refused(e))) => Err(e),
            Ok(Ok(_)) => Err(Error::internal("leader answered a forward with the wrong reply")),
            Ok(Err(e)) => Err(e),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Peers {
    type Network = PeerLink;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerLink {
        PeerLink {
            target,
            peer: self.get(&node.addr),
            faults: self.faults.clone(),
            metrics: self.metrics.clone(),
            events: self.events.clone(),
            transfer: None,
        }
    }
}

pub struct PeerLink {
    target: NodeId,
    peer: Arc<Peer>,
    faults: Arc<FaultFilter>,
    metrics: Arc<Metrics>,
    events: Arc<Events>,
    transfer: Option<Transfer>,
}

/// Holds a message back as the fault filter says; a dropped one never gets an answer, so the
/// caller waits out its own timeout exactly as with a real lost packet.
pub(super) async fn apply_faults(faults: &FaultFilter, peer: NodeId, ttl: Duration) -> crate::error::Result<()> {
    match faults.judge(peer) {
        Verdict::Send => Ok(()),
        Verdict::Delay(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Verdict::Drop => {
            tokio::time::sleep(ttl).await;
            Err(Error::timeout("dropped by a network fault"))
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl PeerLink {
    async fn send<E: std::error::Error>(&self, req: PeerRequest, option: &RPCOption) -> Result<PeerReply, RpcErr<E>> {
        let call = async {
            apply_faults(&self.faults, self.target, option.hard_ttl()).await?;
            self.peer.call::<_, PeerReply>(&req).await
        };
        match tokio::time::timeout(option.hard_ttl(), call).await {
            Err(_) => Err(RPCError::Network(NetworkError::new(&Error::timeout("peer RPC timed out")))),
            Ok(r) => classify(r),
        }
    }

    fn remote<E: std::error::Error>(&self, e: RaftError<NodeId, E>) -> RpcErr<E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }

    /// Sends a large AppendEntries as a `Transfer`, or waits on the one under way that
    /// answers it; `pace` is how long before a heartbeat answers instead.
    async fn transfer(&mut self, rpc: AppendEntriesRequest<TypeConfig>, pace: Duration) -> Result<PeerReply, RpcErr> {
        let last = rpc.entries.last().map(|e| e.log_id);
        if !self.transfer.as_ref().is_some_and(|t| t.answers(&rpc)) {
            let link = transfer::Link {
                peer: self.peer.clone(),
                faults: self.faults.clone(),
                metrics: self.metrics.clone(),
                target: self.target,
            };
            self.transfer = Some(Transfer::start(link, rpc));
        }
        let t = self.transfer.as_mut().expect("a transfer is under way");
        let (reply, over) = t.reply(last, pace).await;
        if over {
            self.transfer = None;
        }
        classify(reply)
    }
}

/// Sorts a peer call's outcome into what openraft expects of a network.
fn classify<E: std::error::Error>(r: crate::error::Result<PeerReply>) -> Result<PeerReply, RpcErr<E>> {
    match r {
        Err(e) if e.kind == ErrorKind::Unreachable => Err(RPCError::Unreachable(Unreachable::new(&e))),
        Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        Ok(PeerReply::Refused(e)) => Err(RPCError::Network(NetworkError::new(&e))),
        Ok(r) => Ok(r),
    }
}

/// Records one replication round trip when dropped, also when openraft gives up on the call
/// (drops its future at the timeout): that is exactly the case a slow link produces.
struct RoundTrip<'a> {
    metrics: &'a Metrics,
    peer: NodeId,
    started: Instant,
    ok: bool,
}

impl Drop for RoundTrip<'_> {
    fn drop(&mut self) {
        self.metrics.replication(self.peer, self.started.elapsed(), self.ok);
    }
}

fn mismatch<E: std::error::Error>() -> RpcErr<E> {
    RPCError::Network(NetworkError::new(&Error::internal("peer answered with the wrong reply kind")))
}

impl RaftNetwork<TypeConfig> for PeerLink {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let keep = transfer::fitting(&rpc.entries);
        let cut = keep < rpc.entries.len();
        rpc.entries.truncate(keep);
        let last_sent = rpc.entries.last().map(|e| e.log_id);
        let first_sent = rpc.entries.first().map(|e| e.log_id.index);
        let bytes: usize = rpc.entries.iter().map(transfer::entry_bytes).sum();
        // Heartbeats (no entries) go on their own while a transfer is under way.
        let sent = if !rpc.entries.is_empty() && (bytes > transfer::TRANSFER_OVER || self.transfer.is_some()) {
            self.transfer(rpc, option.hard_ttl() / 5).await
        } else {
            let mut rtt = RoundTrip { metrics: &self.metrics, peer: self.target, started: Instant::now(), ok: false };
            let sent = self.send(PeerRequest::Append(rpc), &option).await;
            rtt.ok = sent.is_ok();
            sent
        };
        let sent = sent?;
        if let (PeerReply::Append(Ok(AppendEntriesResponse::Success)), Some(first), Some(last)) =
            (&sent, first_sent, last_sent)
        {
            self.metrics.trace.acked(self.target, first, last.index);
        }
        match sent {
            // openraft sends the rest next, from the last entry the follower now holds.
            PeerReply::Append(Ok(AppendEntriesResponse::Success)) if cut => {
                Ok(AppendEntriesResponse::PartialSuccess(last_sent))
            }
            PeerReply::Append(r) => r.map_err(|e| self.remote(e)),
            _ => Err(mismatch()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        if rpc.offset == 0 {
            let name = crate::proto::node_name(self.target);
            self.events.push(
                "snapshot",
                format!("sending the snapshot at index {} to {name}", rpc.meta.last_log_id.map_or(0, |l| l.index)),
            );
        }
        match self.send(PeerRequest::Snapshot(rpc), &option).await? {
            PeerReply::Snapshot(r) => r.map_err(|e| self.remote(e)),
            _ => Err(mismatch()),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self.send(PeerRequest::Vote(rpc), &option).await? {
            PeerReply::Vote(r) => r.map_err(|e| self.remote(e)),
            _ => Err(mismatch()),
        }
    }

    fn backoff(&self) -> Backoff {
        // A restarted node should be caught up within a demo's attention span.
        Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}
