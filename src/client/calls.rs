//! Typed calls: each request the front ends make, with the reply it gets, so that `put`
//! returns a revision and `lock acquire` a grant or a place in line, and no caller matches a
//! generic `Response` again. The wire shapes are `proto`'s; this file only names them.

use super::conn::{Client, Served, Target};
use crate::error::{Error, Result};
use crate::proto::{Holder, KeyValue, LockInfo, QueueItem, QueueStat, Request, Response, Versioned};
use std::time::Duration;

/// What `lock acquire` got.
#[derive(Debug, Clone)]
pub enum Acquired {
    Granted(Holder),
    /// Waiting in line at this position (1: next).
    Queued(u64),
}

/// A delete: the revision it wrote and whether the key was there.
#[derive(Debug, Clone, Copy)]
pub struct Deleted {
    pub revision: u64,
    pub existed: bool,
}

/// Unwraps the one reply shape a request has, or says what came instead.
macro_rules! expect {
    ($served:expr, $pat:pat => $out:expr) => {{
        let s = $served;
        match s.value {
            $pat => Ok(Served { node: s.node, leader: s.leader, value: $out, trace: s.trace }),
            other => Err(unexpected(other)),
        }
    }};
}

pub fn unexpected(r: Response) -> Error {
    Error::internal(format!("unexpected reply from node: {r:?}"))
}

impl Client {
    /// Writes `key`; the revision it got, and with `trace` how the write travelled.
    pub async fn put(&self, target: Target, key: &str, value: &str, trace: bool) -> Result<Served<u64>> {
        let req = Request::Put { key: key.into(), value: value.into() };
        expect!(self.call_traced(target, req, trace).await?, Response::Written { revision } => revision)
    }

    /// Reads `key`: linearizable through the leader, or a node's own copy with `stale`.
    pub async fn get(&self, target: Target, key: &str, stale: bool) -> Result<Served<Option<Versioned>>> {
        expect!(self.call(target, Request::Get { key: key.into(), stale }).await?, Response::Value(v) => v)
    }

    pub async fn del(&self, key: &str, trace: bool) -> Result<Served<Deleted>> {
        let r = self.call_traced(Target::Leader, Request::Del { key: key.into() }, trace).await?;
        expect!(r, Response::Deleted { revision, existed } => Deleted { revision, existed })
    }

    pub async fn scan(&self, target: Target, prefix: &str, limit: u32, stale: bool) -> Result<Served<Vec<KeyValue>>> {
        let req = Request::Scan { prefix: prefix.into(), limit, stale };
        expect!(self.call(target, req).await?, Response::Scan(kvs) => kvs)
    }

    /// Sets `key` to `new` if it holds `expected` (`None`: absent); a swap that did not happen
    /// is a `conflict` error naming the current value.
    pub async fn cas(&self, key: &str, expected: Option<&str>, new: &str, trace: bool) -> Result<Served<u64>> {
        let req = Request::Cas { key: key.into(), expected: expected.map(String::from), new: new.into() };
        expect!(self.call_traced(Target::Leader, req, trace).await?, Response::Cas { revision, .. } => revision)
    }

    /// Takes `name` for `owner`; `wait` in line if held, or with `queue` join the line and
    /// return at once.
    pub async fn lock_acquire(
        &self,
        name: &str,
        owner: &str,
        shared: bool,
        ttl: Duration,
        wait: Duration,
        queue: bool,
    ) -> Result<Served<Acquired>> {
        let req = Request::LockAcquire {
            name: name.into(),
            owner: owner.into(),
            shared,
            ttl_ms: ttl.as_millis() as u64,
            wait_ms: wait.as_millis() as u64,
            queue,
        };
        let r = self.call_within(Target::Leader, req, self.timeout() + wait).await?;
        match r.value {
            Response::LockGranted { holder, .. } => {
                Ok(Served { node: r.node, leader: r.leader, value: Acquired::Granted(holder), trace: None })
            }
            Response::LockQueued { position } => {
                Ok(Served { node: r.node, leader: r.leader, value: Acquired::Queued(position), trace: None })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Releases `name` held by `owner`: the token it had and when (log time) it was released.
    pub async fn lock_release(&self, name: &str, owner: &str) -> Result<Served<(u64, u64)>> {
        let req = Request::LockRelease { name: name.into(), owner: owner.into() };
        expect!(self.call(Target::Leader, req).await?, Response::LockReleased { token, at_ms } => (token, at_ms))
    }

    pub async fn lock_list(&self) -> Result<Served<Vec<LockInfo>>> {
        expect!(self.call(Target::Leader, Request::LockList).await?, Response::Locks(l) => l)
    }

    /// Appends `item`; its id.
    pub async fn queue_push(&self, queue: &str, item: &str) -> Result<Served<u64>> {
        let req = Request::QueuePush { queue: queue.into(), item: item.into() };
        expect!(self.call(Target::Leader, req).await?, Response::QueuePushed { id } => id)
    }

    /// The next ready item, invisible to others for `visibility`; `None` when none is ready.
    pub async fn queue_pop(&self, queue: &str, visibility: Duration) -> Result<Served<Option<QueueItem>>> {
        let req = Request::QueuePop { queue: queue.into(), visibility_ms: visibility.as_millis() as u64 };
        expect!(self.call(Target::Leader, req).await?, Response::QueueItem(item) => item)
    }

    pub async fn queue_ack(&self, queue: &str, id: u64) -> Result<Served<u64>> {
        let req = Request::QueueAck { queue: queue.into(), id };
        expect!(self.call(Target::Leader, req).await?, Response::QueueAcked { id } => id)
    }

    pub async fn queue_stats(&self) -> Result<Served<Vec<QueueStat>>> {
        expect!(self.call(Target::Leader, Request::QueueStats).await?, Response::QueueStats(s) => s)
    }
}
