//! Wire shapes of the replicated systems (chat, locks, queues) as nodes report them. Pure data:
//! the rules that produce them live in `node::systems`, how they are shown in `shell`.

use serde::{Deserialize, Serialize};

/// One chat message as applied: `seq` is dense from 1 and the same on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub seq: u64,
    /// Chosen by the sender so that a retried send is applied once.
    pub id: u64,
    pub from: String,
    pub text: String,
    /// Log time (the leader's clock when it proposed the entry).
    pub at_ms: u64,
}

/// A summary of one node's applied chat history, cheap to compare between nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatDigest {
    pub count: u64,
    pub last_seq: u64,
    /// Sequence numbers in 1..=last_seq this node does not hold.
    pub gaps: u64,
    /// A hash chained over every message in order: equal hashes, equal histories.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub owner: String,
    pub token: u64,
    pub shared: bool,
    pub granted_ms: u64,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    pub owner: String,
    pub shared: bool,
    /// The lease it gets when granted.
    pub ttl_ms: u64,
    /// Log time after which it stops waiting.
    pub deadline_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub name: String,
    pub holders: Vec<Holder>,
    /// First come, first served.
    pub waiters: Vec<Waiter>,
}

/// A delivered queue item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    pub id: u64,
    pub item: String,
    /// 1 on first delivery; more when it came back after a visibility timeout.
    pub deliveries: u64,
    /// Log time at which it is delivered again unless acked.
    pub visible_at_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStat {
    pub queue: String,
    pub ready: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub redelivered: u64,
    pub acked: u64,
}
