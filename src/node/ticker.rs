//! The leader's clock tick. Leases, lock waits and visibility timeouts expire only when an entry
//! whose log time is past their deadline is applied; when no traffic brings one, the leader
//! proposes an `Op::Tick` as soon as the earliest deadline has passed on its clock. Followers
//! never tick: time enters the state only through the log.

use super::proposer::Proposer;
use super::state_machine::Store;
use super::types::Raft;
use crate::proto::Op;
use openraft::ServerState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How late an expiry may be, at most, beyond the time a tick takes to commit.
const POLL: Duration = Duration::from_millis(25);

pub async fn run(raft: Raft, store: Arc<Store>, proposer: Proposer, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        let leading = raft.metrics().borrow().state == ServerState::Leader;
        let now = crate::proto::wall_ms();
        if !leading || store.next_deadline().is_none_or(|due| due > now) {
            continue;
        }
        // Waiting for the tick to apply keeps one in flight at a time; a failure (no majority)
        // is retried on the next poll.
        tokio::select! {
            _ = proposer.propose(Op::Tick) => {}
            _ = shutdown.changed() => return,
        }
    }
}
