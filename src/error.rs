//! The one error type of the library. It is plain data (a kind and a message) so it can be
//! sent over the wire as-is and rendered the same way at the prompt, in JSON and in Rhai.
//! It must not carry source chains or backtraces: those belong to `anyhow` in `main`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The fixed set of error kinds users see (SPEC §3); documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad command line, unknown command, wrong arguments.
    Usage,
    NotFound,
    /// The cluster cannot reach a majority (or has no leader) right now.
    NoQuorum,
    Timeout,
    /// A node or the whole cluster cannot be reached.
    Unreachable,
    /// A compare-and-swap or similar precondition failed.
    Conflict,
    Deadlock,
    /// A lock wait ended without a grant: the lock is certainly not held by the caller.
    NotGranted,
    /// The lease had already run out: the lock was free before the release arrived.
    Expired,
    /// The node is at a limit (its proposal queue is full); nothing was applied, try again.
    Busy,
    /// A run finished but broke a limit it was given (`load --max-p99`, `--max-errors`).
    Threshold,
    /// Refused: bad certificate, a certificate of the wrong role, malformed or oversized request.
    Denied,
    /// A script failed to parse or run.
    Script,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::NotFound => "not_found",
            ErrorKind::NoQuorum => "no_quorum",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Deadlock => "deadlock",
            ErrorKind::NotGranted => "not_granted",
            ErrorKind::Expired => "expired",
            ErrorKind::Busy => "busy",
            ErrorKind::Threshold => "threshold",
            ErrorKind::Denied => "denied",
            ErrorKind::Script => "script",
            ErrorKind::Internal => "internal",
        }
    }

    /// The process exit status this kind maps to (SPEC §2).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage | ErrorKind::Script => 2,
            ErrorKind::Unreachable => 3,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unreachable, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }
    pub fn no_quorum(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NoQuorum, message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Denied, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(format!("i/o: {e}"))
    }
}

/// Adds what was being done to a low-level error, keeping it an `Error`.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::internal(format!("{what}: {e}")))
    }
}
