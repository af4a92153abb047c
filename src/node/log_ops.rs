//! What the log store asks of the log's writer thread (`log_writer.rs`), and the small shared
//! vocabulary of the two: encoded entries, the digests that tell an entry held ahead from other
//! bytes under the same id, and the held entries the writer publishes. Types only, no I/O; the
//! writer alone decides how these reach the disk.

use super::types::{LogId, Vote};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

pub(super) type Done = oneshot::Sender<Result<(), String>>;

/// Told the outcome once an append is durable (openraft's `LogFlushed`, in production).
pub(super) type Flushed = Box<dyn FnOnce(Result<(), std::io::Error>) + Send>;

/// Entries that came ahead, are durable and openraft has not appended yet, by index, with the
/// digest of the bytes on disk; shared with the log store.
pub(super) type Held = Arc<Mutex<BTreeMap<u64, (LogId, Digest)>>>;

/// One encoded entry.
pub(super) type Encoded = (LogId, Vec<u8>);

/// SHA-256 of an entry's encoded bytes. An entry held ahead stands in for an appended one only
/// when both id and digest match: a log id alone would let different bytes under a reused id
/// pass as the same entry.
pub(super) type Digest = [u8; 32];

pub(super) fn digest(bytes: &[u8]) -> Digest {
    let mut d = [0; 32];
    d.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    d
}

pub(super) enum WriteOp {
    /// openraft's append, with the commit index to persist alongside and what to call once
    /// the entries are durable. `lead` marks the leader's own append of client writes, the
    /// one the test hook (`HOLD_LEADER_FSYNC`) holds.
    Append(Vec<Encoded>, Option<LogId>, Flushed, bool),
    /// Entries the leader of `term` sent ahead; `prev` precedes the first.
    Ahead {
        term: u64,
        prev: Option<LogId>,
        entries: Vec<Encoded>,
    },
    /// openraft appended these held entries (same ids, same digests); the log store has
    /// answered for them already.
    Claim(Vec<(LogId, Digest)>),
    /// Deletes entries at and after the index.
    Truncate(u64, Done),
    Purge(LogId, Done),
    Vote(Vote, Done),
    /// Ends the writer once everything queued before it is written.
    Stop,
}

impl WriteOp {
    /// Whether the op rides in a batch with its neighbours, under one fsync.
    pub fn batches(&self) -> bool {
        matches!(self, WriteOp::Append(..) | WriteOp::Ahead { .. } | WriteOp::Claim(..))
    }
}

/// Test-only hook, read once per writer: with `DSH_TEST_HOLD_LEADER_FSYNC_MS=N`, a leader's append
/// that carries client writes (and so went ahead to the followers) waits N ms before its write
/// and fsync, and every node announces on stderr the entries it holds that way, so an end-to-end
/// test can SIGKILL the cluster deterministically after the hint and before the leader's fsync
/// (`tests/safety.rs`). Nothing outside tests sets it.
const HOLD_LEADER_FSYNC: &str = "DSH_TEST_HOLD_LEADER_FSYNC_MS";

pub(super) fn hold_from_env() -> Option<Duration> {
    std::env::var(HOLD_LEADER_FSYNC).ok()?.parse().ok().map(Duration::from_millis)
}
