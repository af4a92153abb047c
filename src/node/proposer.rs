//! Group commit. openraft's core waits for each log append to be fsynced before it takes the
//! next client write, so one write per entry would cap throughput at one fsync per write. The
//! proposer instead gathers every write that arrives while earlier proposals are in flight into
//! one log entry; a burst of concurrent writes then costs one fsync on each node.

use super::types::Raft;
use crate::error::{Error, Result};
use crate::proto::{LogCommand, NodeId, Op, Response};
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most operations in one entry; keeps entries well under the frame cap.
const MAX_BATCH: usize = 512;
/// Proposals in flight at once: one being appended while the previous one replicates.
const IN_FLIGHT: usize = 2;

/// The outcome of one proposed operation.
pub enum Proposed {
    Applied(Result<Response>),
    /// This node is not the leader; the leader (if known) should get it.
    NotLeader(Option<NodeId>),
}

type Pending = (Op, oneshot::Sender<Proposed>);

#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    /// Starts the batching task; it ends when every `Proposer` handle is dropped.
    pub fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(collect(raft, rx));
        Proposer { tx }
    }

    pub async fn propose(&self, op: Op) -> Proposed {
        let (tx, rx) = oneshot::channel();
        if self.tx.send((op, tx)).is_err() {
            return Proposed::Applied(Err(Error::internal("node is shutting down")));
        }
        rx.await.unwrap_or_else(|_| Proposed::Applied(Err(Error::internal("proposal dropped"))))
    }
}

async fn collect(raft: Raft, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch).await;
            drop(permit);
        });
    }
}

async fn propose(raft: &Raft, batch: Vec<Pending>) {
    let (ops, waiters): (Vec<Op>, Vec<_>) = batch.into_iter().unzip();
    let at_ms = crate::proto::wall_ms();
    match raft.client_write(LogCommand { at_ms, ops }).await {
        Ok(resp) => {
            let mut results = resp.data.into_iter();
            for w in waiters {
                let r = results.next().unwrap_or_else(|| Err(Error::internal("missing result")));
                let _ = w.send(Proposed::Applied(r));
            }
        }
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            for w in waiters {
                let _ = w.send(Proposed::NotLeader(f.leader_id));
            }
        }
        Err(e) => {
            for w in waiters {
                let _ = w.send(Proposed::Applied(Err(Error::internal(e.to_string()))));
            }
        }
    }
}
