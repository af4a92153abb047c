//! Entries sent ahead of replication. openraft 0.9's core waits for the leader's own log fsync
//! before it starts AppendEntries, so a write would pay the leader's fsync and then a
//! follower's, one after the other. Instead the leader's log store hands each append to this
//! task as its fsync begins, the task sends the entries to every other voter, and a follower
//! persists them at once (`log_writer.rs`). When the AppendEntries for them arrives they are on
//! disk already and the follower answers without a second fsync.
//!
//! This is only a hint: it never changes what is acknowledged or committed (that still takes
//! AppendEntries), a lost or late one merely forgoes the overlap, and a follower keeps one only
//! where it extends its log exactly. It must not dial peers or wait on a slow one.

use super::network::{PeerRequest, Peers};
use super::types::{Entry, LogId, Raft};
use crate::net::Verdict;
use crate::proto::{self, NodeId};
use openraft::RaftLogId;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Entries the leader `from` of `term` is appending after `prev`.
#[derive(Serialize, Deserialize)]
pub struct Ahead {
    pub from: NodeId,
    pub term: u64,
    pub prev: Option<LogId>,
    pub entries: Vec<Entry>,
}

/// How long one follower may hold up a hint before it is skipped for that follower.
const SEND_BUDGET: Duration = Duration::from_millis(10);

/// Sends what the log store queues to the other voters until `shutdown`.
pub async fn run(
    raft: Raft,
    peers: Peers,
    mut queued: mpsc::UnboundedReceiver<Ahead>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut ahead = tokio::select! {
            a = queued.recv() => match a { Some(a) => a, None => return },
            _ = shutdown.changed() => return,
        };
        // Appends that queued up meanwhile travel in one message.
        while let Ok(next) = queued.try_recv() {
            if next.term == ahead.term && next.prev == ahead.entries.last().map(|e| *e.get_log_id()) {
                ahead.entries.extend(next.entries);
            } else {
                send(&raft, &peers, std::mem::replace(&mut ahead, next)).await;
            }
        }
        send(&raft, &peers, ahead).await;
    }
}

async fn send(raft: &Raft, peers: &Peers, ahead: Ahead) {
    let from = ahead.from;
    let Ok(frame) = proto::encode(&PeerRequest::Ahead(ahead)) else { return };
    let targets: Vec<(NodeId, String)> = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter(|v| *v != from)
            .filter_map(|v| membership.get_node(&v).map(|n| (v, n.addr.clone())))
            .collect()
    };
    for (peer, addr) in targets {
        // A cut or slowed link carries no hints, so faults shape replication exactly as before.
        if !matches!(peers.faults.judge(peer), Verdict::Send) {
            continue;
        }
        let link = peers.get(&addr);
        let _ = tokio::time::timeout(SEND_BUDGET, link.hint(&frame)).await;
    }
}
