//! Commands replicated through the Raft log. The leader stamps each with its wall clock so that
//! applying it is deterministic: every node sees the same `at_ms` for the same entry.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogCommand {
    /// Milliseconds since the Unix epoch on the leader when it proposed the entry.
    pub at_ms: u64,
    pub ops: Vec<Op>,
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
}

impl std::fmt::Display for LogCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ops at {}", self.ops.len(), self.at_ms)
    }
}
