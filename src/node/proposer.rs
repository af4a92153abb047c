//! Group commit. openraft's core waits for each log append to be fsynced before it takes the
//! next client write, so one write per entry would cap throughput at one fsync per write. The
//! proposer instead gathers every write that arrives while earlier proposals are in flight into
//! one log entry; a burst of concurrent writes then costs one fsync on each node.
//!
//! It is also where sizes are enforced: an operation over the key or value cap is refused before
//! it is queued, an entry is cut by encoded bytes as well as by count so it always fits one
//! AppendEntries frame, and the queue is bounded in operations and bytes, answering `busy` when
//! full rather than growing.

use super::types::{LogId, Raft};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::{limits, LogCommand, NodeId, Op, Response};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// Most operations in one entry.
const MAX_BATCH: usize = 512;
/// Most bytes of operations in one entry; a single larger operation (up to the value cap) goes
/// alone. Together with the value cap this keeps every entry far under the frame cap.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Proposals in flight at once: one being appended while the previous one replicates.
const IN_FLIGHT: usize = 2;
/// Operations waiting for a batch, at most…
const QUEUE_OPS: usize = 8192;
/// …and their bytes, at most.
const QUEUE_BYTES: usize = 64 << 20;
/// How long a stopping node waits for proposals already handed to Raft to come back.
const DRAIN: Duration = Duration::from_secs(2);

/// The outcome of one proposed operation.
pub enum Proposed {
    Applied(Result<Response>),
    /// This node is not the leader; the leader (if known) should get it.
    NotLeader(Option<NodeId>),
}

/// Where an applied proposal went in the log and when it was handed to openraft, for a traced
/// write (`node/trace.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Landed {
    pub log_id: LogId,
    pub proposed: Instant,
}

struct Pending {
    op: Op,
    bytes: usize,
    reply: oneshot::Sender<(Proposed, Option<Landed>)>,
    /// Its share of `QUEUE_BYTES`, given back when it leaves the queue.
    _queued: OwnedSemaphorePermit,
}

#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
    queue_bytes: Arc<Semaphore>,
    max_value: usize,
}

impl Proposer {
    /// Starts the batching task; it ends when `shutdown` fires (once the proposals it handed
    /// to Raft have answered, or `DRAIN` has passed) or every `Proposer` handle is dropped.
    /// Values over `max_value` bytes are refused.
    pub fn start(raft: Raft, max_value: usize, shutdown: watch::Receiver<bool>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_OPS);
        let task = tokio::spawn(collect(raft, rx, shutdown));
        (Proposer { tx, queue_bytes: Arc::new(Semaphore::new(QUEUE_BYTES)), max_value }, task)
    }

    pub async fn propose(&self, op: Op) -> Proposed {
        self.propose_landed(op).await.0
    }

    /// `propose`, also saying where the operation landed when it was applied.
    pub async fn propose_landed(&self, op: Op) -> (Proposed, Option<Landed>) {
        if let Err(e) = limits::check_op(&op, self.max_value) {
            return (Proposed::Applied(Err(e)), None);
        }
        let bytes = limits::op_bytes(&op);
        let busy = || Proposed::Applied(Err(Error::new(ErrorKind::Busy, "the node's write queue is full; try again")));
        let Ok(queued) = self.queue_bytes.clone().try_acquire_many_owned(bytes as u32) else {
            return (busy(), None);
        };
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Pending { op, bytes, reply, _queued: queued }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return (busy(), None),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return (Proposed::Applied(Err(Error::internal("node is shutting down"))), None)
            }
        }
        rx.await.unwrap_or_else(|_| (Proposed::Applied(Err(Error::internal("proposal dropped"))), None))
    }
}

async fn collect(raft: Raft, mut rx: mpsc::Receiver<Pending>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // The operation that did not fit the previous entry starts the next one.
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => tokio::select! {
                p = rx.recv() => match p {
                    Some(p) => p,
                    None => break,
                },
                _ = shutdown.changed() => break,
            },
        };
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.changed() => break,
        };
        let batch = fill(first, &mut rx, &mut carried);
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch).await;
            drop(permit);
        });
    }
    // What is still queued is dropped (its callers hear "proposal dropped"); what Raft has
    // gets its answer first, so that the caller learns the outcome rather than a doubt.
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(IN_FLIGHT as u32)).await;
}

/// `first` and what is queued after it, up to the count and byte limits of one entry; the first
/// operation that does not fit is `carried` over to start the next.
fn fill(first: Pending, rx: &mut mpsc::Receiver<Pending>, carried: &mut Option<Pending>) -> Vec<Pending> {
    let mut bytes = first.bytes;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) if bytes + p.bytes > MAX_BATCH_BYTES => {
                *carried = Some(p);
                break;
            }
            Ok(p) => {
                bytes += p.bytes;
                batch.push(p);
            }
            Err(_) => break,
        }
    }
    batch
}

async fn propose(raft: &Raft, batch: Vec<Pending>) {
    let (ops, waiters): (Vec<Op>, Vec<_>) = batch.into_iter().map(|p| (p.op, p.reply)).unzip();
    let at_ms = crate::proto::wall_ms();
    let proposed = Instant::now();
    match raft.client_write(LogCommand { at_ms, ops: ops.into() }).await {
        Ok(resp) => {
            let landed = Landed { log_id: resp.log_id, proposed };
            let mut results = resp.data.into_iter();
            for w in waiters {
                let r = results.next().unwrap_or_else(|| Err(Error::internal("missing result")));
                let _ = w.send((Proposed::Applied(r), Some(landed)));
            }
        }
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            for w in waiters {
                let _ = w.send((Proposed::NotLeader(f.leader_id), None));
            }
        }
        Err(e) => {
            for w in waiters {
                let _ = w.send((Proposed::Applied(Err(Error::internal(e.to_string()))), None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_value: usize) -> (Proposer, mpsc::Receiver<Pending>) {
        let (tx, rx) = mpsc::channel(QUEUE_OPS);
        (Proposer { tx, queue_bytes: Arc::new(Semaphore::new(QUEUE_BYTES)), max_value }, rx)
    }

    fn put(size: usize) -> Op {
        Op::Put { key: "k".into(), value: "v".repeat(size) }
    }

    /// What `propose` queues for `op`.
    fn pending(op: Op) -> Pending {
        let bytes = limits::op_bytes(&op);
        let queued = Arc::new(Semaphore::new(bytes)).try_acquire_many_owned(bytes as u32).unwrap();
        Pending { op, bytes, reply: oneshot::channel().0, _queued: queued }
    }

    #[test]
    fn entries_are_cut_by_bytes_and_count() {
        let (p, mut rx) = queue(limits::DEFAULT_MAX_VALUE);
        let ops = (0..5).map(|_| put(400_000)).chain((0..600).map(|_| put(10)));
        for op in ops {
            assert!(p.tx.try_send(pending(op)).is_ok());
        }
        let mut carried = None;
        let mut sizes = Vec::new();
        while let Some(first) = carried.take().or_else(|| rx.try_recv().ok()) {
            let batch = fill(first, &mut rx, &mut carried);
            assert!(batch.iter().map(|p| p.bytes).sum::<usize>() <= MAX_BATCH_BYTES);
            sizes.push(batch.len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), 605, "nothing lost: {sizes:?}");
        assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
        assert_eq!(sizes[..2], [2, 2], "two 400 KB writes per entry: {sizes:?}");
    }

    #[tokio::test]
    async fn an_over_cap_value_is_denied_and_a_full_queue_answers_busy() {
        let (p, _rx) = queue(1000);
        let Proposed::Applied(Err(e)) = p.propose(put(1001)).await else { panic!("accepted") };
        assert_eq!(e.kind, ErrorKind::Denied);
        assert!(e.message.contains("1000-byte cap"), "{e}");

        while p.tx.try_send(pending(put(1))).is_ok() {}
        let Proposed::Applied(Err(e)) = p.propose(put(1)).await else { panic!("queued past the bound") };
        assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    }
}
