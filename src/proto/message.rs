//! Client ↔ node messages. One request and one reply per QUIC stream.

use super::systems::{ChatDigest, ChatMessage, Holder, LockInfo, QueueItem, QueueStat};
use super::{NodeId, RequestId, SecondCounts, Trace};
use crate::error::Error;
use serde::{Deserialize, Serialize};

/// A request as sent on the wire, with the time budget the caller still has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub timeout_ms: u32,
    pub request: Request,
    /// For a write (`Request::carries_id`): the same on every retry and every forwarded copy,
    /// so the cluster applies it at most once.
    #[serde(default)]
    pub id: Option<RequestId>,
    /// Asks for the write's `Trace` in the reply (`put --trace`). Left off the wire when false,
    /// so an untraced request is the bytes it always was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trace: bool,
}

impl Envelope {
    /// A request without a request id: a read, or anything the cluster need not deduplicate.
    pub fn new(timeout_ms: u32, request: Request) -> Self {
        Envelope { timeout_ms, request, id: None, trace: false }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    Put {
        key: String,
        value: String,
    },
    /// `stale`: answer from this node's applied state without asking the leader.
    Get {
        key: String,
        stale: bool,
    },
    Del {
        key: String,
    },
    Scan {
        prefix: String,
        limit: u32,
        stale: bool,
    },
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
    Status,
    Ping,
    /// Asks the cluster to add the sender as a voter.
    Join {
        id: NodeId,
        addr: String,
    },
    /// Replaces this node's network faults (admin).
    SetFaults(Faults),
    GetFaults,
    /// This node's Merkle leaves over its own stored keys.
    Merkle,
    /// This node's keys in these Merkle leaves, and the revision its state was read at.
    LeafKeys {
        leaves: Vec<u32>,
    },
    /// Damages this node's stored copy of a key, bypassing Raft (admin, for demos).
    Corrupt {
        key: String,
    },
    /// Restores this node's stored copy of keys from the majority's, bypassing Raft (admin):
    /// `set` and `remove` are the source's state of those keys at its store `revision`. The
    /// node changes a key only where that state is provably what it should hold now.
    Repair {
        set: Vec<KeyValue>,
        remove: Vec<String>,
        revision: u64,
    },
    Metrics,
    /// Events this node recorded after `after` (its own sequence numbers); waits up to
    /// `wait_ms` for one to happen when there are none yet (a long poll).
    Events {
        after: u64,
        wait_ms: u32,
    },
    /// Adds an event to this node's record: something an observer found out about it, such as
    /// `verify` finding its copy different from the majority's.
    Record {
        kind: String,
        text: String,
    },
    /// For a node's supervisor (ALPN `dsh-admin`): act on the node process.
    Process(ProcessAction),
    /// A linearizable read that also registers `client` as holding a copy of `key` (leader).
    CacheRead {
        client: u64,
        key: String,
    },
    /// A write by a caching client, which keeps its own copy (leader).
    CachePut {
        client: u64,
        key: String,
        value: String,
    },
    /// Acknowledges notices up to `ack` and waits up to `wait_ms` for new ones (leader).
    CachePoll {
        client: u64,
        ack: u64,
        wait_ms: u32,
    },
    ChatSend {
        id: u64,
        from: String,
        text: String,
    },
    /// This node's applied chat after `after_seq` (or, with `tail`, its last `limit` messages).
    /// With `wait_ms`, an empty answer waits that long for the next message (long poll).
    ChatLog {
        after_seq: u64,
        limit: u32,
        tail: bool,
        wait_ms: u32,
    },
    /// This node's chat digest, once it has applied `wait_for_seq` or `wait_ms` passed.
    ChatDigest {
        wait_for_seq: u64,
        wait_ms: u32,
    },
    /// Waits (up to `wait_ms`, queued first come first served) until granted; with `queue`,
    /// answers `LockQueued` at once and the owner asks again later for its token.
    LockAcquire {
        name: String,
        owner: String,
        shared: bool,
        ttl_ms: u64,
        wait_ms: u64,
        #[serde(default)]
        queue: bool,
    },
    LockRelease {
        name: String,
        owner: String,
    },
    LockList,
    QueuePush {
        queue: String,
        item: String,
    },
    QueuePop {
        queue: String,
        visibility_ms: u64,
    },
    QueueAck {
        queue: String,
        id: u64,
    },
    QueueStats,
    /// Client traffic per second (`is_traffic`) that this node answered: the completed
    /// seconds after `after` (Unix seconds), for the live model.
    Seconds {
        after: u64,
    },
}

impl Request {
    /// What a user's client asks of the cluster, counted per second for the live model. The
    /// questions watchers, operators and background tasks ask (status, metrics, events,
    /// faults, long polls, pings) are not: a dashboard must not see its own polling.
    pub fn is_traffic(&self) -> bool {
        match self {
            Request::Put { .. }
            | Request::Get { .. }
            | Request::Del { .. }
            | Request::Scan { .. }
            | Request::Cas { .. }
            | Request::CacheRead { .. }
            | Request::CachePut { .. }
            | Request::ChatSend { .. }
            | Request::LockAcquire { .. }
            | Request::LockRelease { .. }
            | Request::LockList
            | Request::QueuePush { .. }
            | Request::QueuePop { .. }
            | Request::QueueAck { .. }
            | Request::QueueStats => true,
            // A read of the chat counts; a long poll (`chat follow`, `chat check`) waits by design.
            Request::ChatLog { wait_ms, .. } | Request::ChatDigest { wait_ms, .. } => *wait_ms == 0,
            Request::Status
            | Request::Ping
            | Request::Join { .. }
            | Request::SetFaults(_)
            | Request::GetFaults
            | Request::Merkle
            | Request::LeafKeys { .. }
            | Request::Corrupt { .. }
            | Request::Repair { .. }
            | Request::Metrics
            | Request::Events { .. }
            | Request::Record { .. }
            | Request::Process(_)
            | Request::CachePoll { .. }
            | Request::Seconds { .. } => false,
        }
    }

    /// Writes whose retries the cluster recognises by the envelope's request id. `chat send` is
    /// not one: its message id, chosen by the sender, already makes a retry harmless.
    pub fn carries_id(&self) -> bool {
        matches!(
            self,
            Request::Put { .. }
                | Request::Del { .. }
                | Request::Cas { .. }
                | Request::LockAcquire { .. }
                | Request::LockRelease { .. }
                | Request::QueuePush { .. }
                | Request::QueuePop { .. }
                | Request::QueueAck { .. }
        )
    }
}

/// What the leader tells a caching client about a key it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheNotice {
    /// The key was written: the copy is stale.
    Invalidate { key: String },
    /// Another client holds the key too.
    Shared { key: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessAction {
    /// SIGKILL.
    Crash,
    /// Start again on the same data.
    Restart,
    /// SIGSTOP.
    Pause,
    /// SIGCONT.
    Resume,
    /// Only report.
    State,
}

/// A node process as its supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// `up`, `down` or `paused`.
    pub state: String,
    pub pid: Option<u32>,
}

/// Environment variable naming a file descriptor on which a starting node writes one line once
/// it serves, then closes it, so whoever started it (the local cluster, a supervisor) knows it
/// came up, or, reading end of file first, that it exited before it did.
pub const READY_FD_ENV: &str = "DSH_READY_FD";

/// Something that happened on a node, as `events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Per node and per process run; starts again at 1 when the node restarts.
    pub seq: u64,
    /// Wall clock on the node, ms since the Unix epoch.
    pub at_ms: u64,
    pub node: NodeId,
    /// A short fixed word: `election`, `leader`, `snapshot`, `caught-up`, `recovery`, `fault`, …
    pub kind: String,
    pub text: String,
}

/// One node's counters since it started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeMetrics {
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub request_p50_ms: f64,
    pub request_p99_ms: f64,
    /// Raft log appends, fsync included.
    pub append_p50_ms: f64,
    pub append_p99_ms: f64,
    pub apply_p50_ms: f64,
    pub apply_p99_ms: f64,
    /// On the leader: replication round trips to each peer.
    pub peers: Vec<PeerMetrics>,
}

/// How replication to one peer is going, seen from the node that sends to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerMetrics {
    pub id: NodeId,
    pub rtt_p50_ms: f64,
    pub rtt_p99_ms: f64,
    /// AppendEntries that got no answer in time (a slow or cut link, a dead peer).
    pub timeouts: u64,
    /// Entries the leader has that the peer has not acknowledged.
    pub lag: u64,
}

/// Network faults one node applies to what it sends to its peers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Peers this node cannot reach (a partition or isolation).
    pub cut: Vec<NodeId>,
    pub slow: Vec<Slow>,
}

/// A slow or lossy link: to one peer, or (`to: None`) to all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slow {
    pub to: Option<NodeId>,
    pub delay_ms: u64,
    pub jitter_ms: u64,
    pub loss_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: String,
    /// The cluster revision at which this value was written.
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub revision: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Written {
        revision: u64,
    },
    Deleted {
        revision: u64,
        existed: bool,
    },
    /// `swapped == false` carries the value that made the swap fail.
    Cas {
        revision: u64,
        swapped: bool,
        current: Option<String>,
    },
    Value(Option<Versioned>),
    Scan(Vec<KeyValue>),
    Status(NodeStatus),
    Pong,
    Joined,
    Faults(Faults),
    Merkle {
        leaves: Vec<[u8; 32]>,
        keys: u64,
    },
    Damaged {
        value: String,
    },
    /// The keys of some Merkle leaves, read at this store revision (the number of key writes
    /// applied), which says exactly how far the copy is.
    LeafKeys {
        revision: u64,
        keys: Vec<KeyValue>,
    },
    /// `fixed`: keys restored from the source; `kept`: keys left alone because this node's copy
    /// carries a later revision; `unsure`: keys left alone because the node was not at a point
    /// where the source's copy is provably current (repair again once it is).
    Repaired {
        fixed: u32,
        kept: u32,
        unsure: u32,
    },
    Metrics(NodeMetrics),
    /// `boot_ms` identifies the node's process run, so a watcher notices a restart.
    Events {
        boot_ms: u64,
        events: Vec<Event>,
    },
    Recorded,
    Process(ProcessInfo),
    /// `seq`: notices for this client after this number concern this copy; `holders`: how
    /// many clients hold the key now.
    Cached {
        term: u64,
        seq: u64,
        holders: u32,
        value: Option<Versioned>,
    },
    /// Notices to apply, from the leader of `term`, and with `lease` a lease on the client's
    /// copies (refused when the leader could not confirm a majority in time: the notices still
    /// count, and are acknowledged, so writes need not wait the lease out).
    CacheNotices {
        term: u64,
        notices: Vec<(u64, CacheNotice)>,
        #[serde(default)]
        lease: bool,
    },
    ChatSent {
        seq: u64,
        at_ms: u64,
        /// A retried send: already applied, this is its original seq.
        duplicate: bool,
    },
    ChatLog {
        messages: Vec<ChatMessage>,
        last_seq: u64,
    },
    ChatDigest(ChatDigest),
    LockGranted {
        name: String,
        holder: Holder,
    },
    /// The owner waits in line at `position` (1: next); the node turns this into a grant or a
    /// timeout before answering the client.
    LockQueued {
        position: u64,
    },
    LockReleased {
        token: u64,
        at_ms: u64,
    },
    Locks(Vec<LockInfo>),
    QueuePushed {
        id: u64,
    },
    /// `None`: nothing ready.
    QueueItem(Option<QueueItem>),
    QueueAcked {
        id: u64,
    },
    QueueStats(Vec<QueueStat>),
    Ticked,
    /// `now_sec`: the node's current second; every second before it that is not listed had no
    /// traffic.
    Seconds {
        now_sec: u64,
        seconds: Vec<SecondCounts>,
    },
}

/// What a node says back: who answered, who it believes leads, and the outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub node: NodeId,
    pub leader: Option<NodeId>,
    pub result: Result<Response, Error>,
    /// How the write travelled, when the envelope asked (`Envelope::trace`) and it was a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

impl Reply {
    pub fn new(node: NodeId, leader: Option<NodeId>, result: Result<Response, Error>) -> Self {
        Reply { node, leader, result, trace: None }
    }
}

/// One node's view of itself, as shown by `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub addr: String,
    pub role: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub keys: u64,
    pub bytes_on_disk: u64,
    pub uptime_ms: u64,
    /// How long the last start took from process start to serving.
    pub recovery_ms: u64,
    pub voters: Vec<NodeId>,
    pub pid: u32,
    /// Last entry covered by this node's snapshot (0: none).
    pub snapshot_index: u64,
    /// Entries up to here were removed from the log behind the snapshot.
    pub purged_index: u64,
    /// On a leader: how long since a majority last acknowledged it.
    pub quorum_ack_ms: Option<u64>,
}
