//! Commands replicated through the Raft log. The leader stamps each with its wall clock so that
//! applying it is deterministic: every node sees the same `at_ms` for the same entry.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch by this machine's clock: what the leader stamps into the
/// log, and what events and leases are dated with.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Names one mutating request across all its retries: the client that sent it and its number
/// there. The state machine applies a request with a given id at most once and answers a repeat
/// (a client's retry, or a stale copy that a slow node passes on) with the first outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// Chosen at random by each client, so two clients never share a number space.
    pub client: u64,
    /// Counts up from 1 within the client.
    pub seq: u64,
    /// Every request of this client numbered below this has been answered or given up on: the
    /// cluster may forget their outcomes, and refuses any copy of them that turns up later.
    pub done_below: u64,
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}:{}", self.client, self.seq)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogCommand {
    /// Milliseconds since the Unix epoch on the leader when it proposed the entry.
    pub at_ms: u64,
    /// Shared, not copied: the leader hands one entry to its log, the entries sent ahead and
    /// each follower's replication, and openraft clones it for every one of them. Encoded
    /// exactly as a `Vec<Op>`, so logs written before read the same.
    pub ops: std::sync::Arc<[Op]>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    Put {
        key: String,
        value: String,
    },
    Del {
        key: String,
    },
    /// Set `key` to `new` only if its current value is `expected` (`None`: absent).
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
    /// Appends to the chat; a second send with the same `id` returns the first one's seq.
    ChatSend {
        id: u64,
        from: String,
        text: String,
    },
    /// Grants the lock or queues the owner for up to `wait_ms` (0: fail at once if held).
    LockAcquire {
        name: String,
        owner: String,
        shared: bool,
        ttl_ms: u64,
        wait_ms: u64,
    },
    /// Gives the lock up (or stops waiting for it).
    LockRelease {
        name: String,
        owner: String,
    },
    QueuePush {
        queue: String,
        item: String,
    },
    /// Hands out the oldest ready item, invisible to others for `visibility_ms`.
    QueuePop {
        queue: String,
        visibility_ms: u64,
    },
    QueueAck {
        queue: String,
        id: u64,
    },
    /// `op` on behalf of request `id`: applied only if no operation with this id was, otherwise
    /// answered with that one's outcome.
    Once {
        id: RequestId,
        op: Box<Op>,
    },
    /// Does nothing itself: its `at_ms` lets leases, waits and visibility timeouts that are due
    /// expire. The leader proposes one when the earliest deadline has passed.
    Tick,
}

impl std::fmt::Display for LogCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ops at {}", self.ops.len(), self.at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape entries had when logs on disk were written with `ops: Vec<Op>`.
    #[derive(Serialize, Deserialize)]
    struct Written {
        at_ms: u64,
        ops: Vec<Op>,
    }

    #[test]
    fn shared_ops_encode_exactly_as_the_vec_logs_were_written_with() {
        let ops = vec![Op::Put { key: "k".into(), value: "v".into() }, Op::Del { key: "d".into() }, Op::Tick];
        let old = crate::proto::encode(&Written { at_ms: 7, ops: ops.clone() }).unwrap();
        let new = crate::proto::encode(&LogCommand { at_ms: 7, ops: ops.into() }).unwrap();
        assert_eq!(old, new);
        let read: LogCommand = crate::proto::decode_frame(&old).unwrap();
        assert_eq!((read.at_ms, read.ops.len()), (7, 3));
    }
}
