//! Large AppendEntries. openraft cuts AppendEntries by entry count only, and gives each one a
//! heartbeat interval (50 ms) before it gives up and sends it again. Large entries would then
//! never arrive over a slow link or on a busy machine; and as openraft sends no heartbeat to a
//! follower while entries are in flight to it, the follower would call an election meanwhile
//! and the leader would count it as silent. So `network.rs` sends at most `MAX_APPEND_BYTES`
//! per AppendEntries (at least one entry), and one carrying more than `TRANSFER_OVER` runs here
//! as a `Transfer`: on a task of its own that openraft's timeout does not cancel and that
//! openraft's retries wait on. While it travels, each of openraft's calls that finds no answer
//! yet sends an empty AppendEntries from the same starting point and, when the follower accepts
//! it, answers openraft with a partial success up to that point: the follower's election timer
//! and the leader's count of acknowledgements keep going, and nothing claims more than the
//! follower said.
//!
//! It never answers for the follower: every answer is the follower's own reply to a request
//! sent during the call it answers, or to the transfer that call joined (same leader, same
//! starting point).

use super::metrics::Metrics;
use super::network::{apply_faults, PeerReply, PeerRequest};
use super::types::{Entry, LogId, TypeConfig, Vote};
use crate::error::{Error, Result};
use crate::net::{FaultFilter, Peer};
use crate::proto::{limits, NodeId};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::EntryPayload;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of entries in one AppendEntries at most (a single larger entry goes alone, and the
/// value cap keeps that far under the frame cap).
const MAX_APPEND_BYTES: usize = 1 << 20;
/// An AppendEntries carrying more bytes than this runs as a `Transfer`.
pub(super) const TRANSFER_OVER: usize = 64 << 10;
/// How long a `Transfer` may take before it is given up.
const TRANSFER_TTL: Duration = Duration::from_secs(10);

/// Roughly what an entry adds to an encoded AppendEntries (never much less).
pub(super) fn entry_bytes(e: &Entry) -> usize {
    const LOG_ID: usize = 64;
    LOG_ID
        + match &e.payload {
            EntryPayload::Blank => 0,
            EntryPayload::Normal(cmd) => cmd.ops.iter().map(limits::op_bytes).sum(),
            EntryPayload::Membership(m) => m.nodes().map(|(_, n)| 64 + n.addr.len()).sum(),
        }
}

/// How many of `entries`, from the first, to send in one AppendEntries: at least one.
pub(super) fn fitting(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    let n = entries.iter().take_while(|e| {
        bytes += entry_bytes(e);
        bytes <= MAX_APPEND_BYTES
    });
    n.count().max(1)
}

/// Where a transfer goes and what it reports to.
#[derive(Clone)]
pub(super) struct Link {
    pub peer: Arc<Peer>,
    pub faults: Arc<FaultFilter>,
    pub metrics: Arc<Metrics>,
    pub target: NodeId,
}

/// One large AppendEntries on its way.
pub(super) struct Transfer {
    vote: Vote,
    prev: Option<LogId>,
    last: Option<LogId>,
    link: Link,
    /// An empty AppendEntries from the same starting point.
    heartbeat: PeerRequest,
    task: tokio::task::JoinHandle<Result<PeerReply>>,
}

impl Transfer {
    pub fn start(link: Link, rpc: AppendEntriesRequest<TypeConfig>) -> Self {
        let (vote, prev, last) = (rpc.vote, rpc.prev_log_id, rpc.entries.last().map(|e| e.log_id));
        let heartbeat = PeerRequest::Append(AppendEntriesRequest {
            vote,
            prev_log_id: prev,
            leader_commit: rpc.leader_commit,
            entries: vec![],
        });
        let request = PeerRequest::Append(rpc);
        let Link { peer, faults, metrics, target } = link.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let send = async {
                apply_faults(&faults, target, TRANSFER_TTL).await?;
                peer.call::<_, PeerReply>(&request).await
            };
            let r = tokio::time::timeout(TRANSFER_TTL, send)
                .await
                .unwrap_or_else(|_| Err(Error::timeout("AppendEntries transfer timed out")));
            let took = started.elapsed();
            metrics.replication(target, took, r.is_ok());
            tracing::debug!(peer = target, ms = took.as_millis() as u64, ok = r.is_ok(), "AppendEntries transfer");
            r
        });
        Transfer { vote, prev, last, link, heartbeat, task }
    }

    /// Whether `rpc` is answered by this transfer: same leader and starting point, and it
    /// covers no fewer entries (its answer is then a partial success for `rpc`).
    pub fn answers(&self, rpc: &AppendEntriesRequest<TypeConfig>) -> bool {
        self.vote == rpc.vote && self.prev == rpc.prev_log_id && self.last <= rpc.entries.last().map(|e| e.log_id)
    }

    /// The follower's answer for a request ending at `last`: the transfer's reply if it comes
    /// within `pace`, else that of an empty AppendEntries sent then (as a partial success up to
    /// the starting point). Also says whether the transfer is over. If the caller is dropped
    /// meanwhile the transfer goes on, for the next call to wait on.
    pub async fn reply(&mut self, last: Option<LogId>, pace: Duration) -> (Result<PeerReply>, bool) {
        let Transfer { prev, last: sent, link, heartbeat, task, .. } = self;
        let beat = async {
            tokio::time::sleep(pace).await;
            apply_faults(&link.faults, link.target, pace).await?;
            link.peer.call::<_, PeerReply>(heartbeat).await
        };
        tokio::select! {
            biased;
            done = task => {
                let r = done.map_err(|e| Error::internal(format!("AppendEntries transfer: {e}"))).and_then(|r| r);
                let r = r.map(|reply| match reply {
                    PeerReply::Append(Ok(AppendEntriesResponse::Success)) if *sent < last => {
                        PeerReply::Append(Ok(AppendEntriesResponse::PartialSuccess(*sent)))
                    }
                    other => other,
                });
                (r, true)
            }
            r = beat => {
                let r = r.and_then(|reply| match reply {
                    // openraft takes no partial success that matches nothing: to a follower with
                    // an empty log the heartbeat only keeps its election timer going.
                    PeerReply::Append(Ok(AppendEntriesResponse::Success)) if prev.is_none() => {
                        Err(Error::timeout("the first entries are still on their way"))
                    }
                    PeerReply::Append(Ok(AppendEntriesResponse::Success)) => {
                        Ok(PeerReply::Append(Ok(AppendEntriesResponse::PartialSuccess(*prev))))
                    }
                    other => Ok(other),
                });
                (r, false)
            }
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{LogCommand, Op};

    fn entry(index: u64, value: usize) -> Entry {
        let ops = vec![Op::Put { key: "k".into(), value: "v".repeat(value) }];
        Entry {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(LogCommand { at_ms: 0, ops: ops.into() }),
        }
    }

    #[test]
    fn appends_are_cut_by_bytes_but_always_carry_one_entry() {
        let large: Vec<Entry> = (1..=64).map(|i| entry(i, 900_000)).collect();
        assert_eq!(fitting(&large), 1, "one 900 KB entry per AppendEntries");
        let big = vec![entry(1, 3 << 20), entry(2, 10)];
        assert_eq!(fitting(&big), 1, "an entry over the budget still goes, alone");
        let small: Vec<Entry> = (1..=64).map(|i| entry(i, 100)).collect();
        assert_eq!(fitting(&small), 64);
        let mixed: Vec<Entry> = (1..=10).map(|i| entry(i, 300_000)).collect();
        assert_eq!(fitting(&mixed), 3);
        for e in &mixed {
            let encoded = crate::proto::encode(e).unwrap().len();
            assert!(entry_bytes(e) >= encoded, "the estimate never undercounts");
        }
    }
}
