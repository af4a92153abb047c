//! How one write travelled (`put --trace`, SPEC §9): which node took it, which led, the log
//! position it got, and when each stage happened by the leader's own monotonic clock. Nodes
//! fill it in; the client adds what only it can see (the whole round trip). Times are
//! microseconds since the leader received the request, so one clock orders them all; a stage
//! the leader did not see (a stamp lost to a concurrent burst, see `node/trace.rs`) is `None`.

use super::NodeId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The node the client sent the request to.
    pub took: NodeId,
    pub leader: NodeId,
    pub term: u64,
    pub index: u64,
    /// Handed to openraft, after waiting in the proposer for a batch.
    pub proposed_us: u64,
    /// openraft handed the entry to the log store, which passed it to the writer thread.
    pub appended_us: Option<u64>,
    /// The writer reported the entry durable (its fsync done).
    pub flushed_us: Option<u64>,
    /// Each follower's acknowledgement of the entry (an AppendEntries answer), as the leader
    /// received it; a follower that had not answered within the wait is missing.
    pub acks: Vec<TraceAck>,
    /// openraft saw the entry held by a majority.
    pub committed_us: Option<u64>,
    /// The state machine finished applying it.
    pub applied_us: Option<u64>,
    /// The leader's answer was ready.
    pub replied_us: u64,
    /// Time the node that took the request spent on it, from receiving to answering (the hop to
    /// the leader included when it forwarded). `hold_us` is not part of it.
    pub node_us: u64,
    /// How long the leader held the answer back, after it was ready, waiting for the followers'
    /// acknowledgements still missing; only a traced write waits, and no stage counts it.
    pub hold_us: u64,
    /// The whole call as the client timed it, from sending to the answer (hold included).
    pub client_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceAck {
    pub node: NodeId,
    pub at_us: u64,
}

impl Trace {
    /// The network between client and the node that took it, both ways: what the client waited
    /// for that no node accounts for.
    pub fn network_us(&self) -> Option<u64> {
        self.client_us.map(|c| c.saturating_sub(self.node_us + self.hold_us))
    }

    /// The call as the client would have seen it without the trace's hold.
    pub fn total_us(&self) -> Option<u64> {
        self.client_us.map(|c| c.saturating_sub(self.hold_us))
    }

    /// The hop from the node that took the request to the leader and back, when they differ.
    pub fn forward_us(&self) -> Option<u64> {
        (self.took != self.leader).then(|| self.node_us.saturating_sub(self.replied_us))
    }
}
