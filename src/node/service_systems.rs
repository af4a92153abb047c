//! The service side of chat, locks and queues: their writes go through the proposer like keys;
//! what this file adds is waiting on the applied state. A queued lock request is answered when
//! the owner holds the lock or its wait ran out; `chat follow` and `chat check` long-poll this
//! node's own history. It never decides anything the log does not: grants, expiries and
//! sequence numbers come from apply.
//!
//! A lock wait answers what the caller can rely on: granted; `not_granted` when the wait ended
//! without the lock; `expired` when it was granted but the lease ran out before the answer;
//! `timeout` only when the request ran out while still in line (it may yet be granted).

use super::service::{Outcome, Service};
use crate::error::{Error, ErrorKind, Result};
use crate::node::systems::locks::Standing;
use crate::proto::{Op, Request, RequestId, Response};
use std::time::{Duration, Instant};

impl Service {
    /// Handles the systems' requests; `None` for anything else.
    /// Writes carry the request `rid`, except `chat send`, whose message id does that job (and,
    /// unlike request ids, is kept for good: `chat check` and a retry days later rely on it).
    pub(super) async fn systems(&self, req: &Request, rid: Option<RequestId>, deadline: Instant) -> Option<Outcome> {
        Some(match req {
            Request::ChatSend { id, from, text } => {
                self.write(Op::ChatSend { id: *id, from: from.clone(), text: text.clone() }, None).await
            }
            Request::ChatLog { after_seq, limit, tail, wait_ms } => {
                let until = wait_until(deadline, *wait_ms);
                let r = self
                    .wait_applied(until, || {
                        let (messages, last_seq) = self.store.chat_log(*after_seq, *limit as usize, *tail)?;
                        Ok((!messages.is_empty()).then_some(Response::ChatLog { messages, last_seq }))
                    })
                    .await
                    .and_then(|r| match r {
                        Some(r) => Ok(r),
                        None => self
                            .store
                            .chat_log(*after_seq, 0, false)
                            .map(|(_, last_seq)| Response::ChatLog { messages: vec![], last_seq }),
                    });
                Outcome::Done(r)
            }
            Request::ChatDigest { wait_for_seq, wait_ms } => {
                let until = wait_until(deadline, *wait_ms);
                let r = self
                    .wait_applied(until, || {
                        let d = self.store.chat_digest()?;
                        Ok((d.last_seq >= *wait_for_seq).then_some(d))
                    })
                    .await
                    .and_then(|d| d.map_or_else(|| self.store.chat_digest(), Ok))
                    .map(Response::ChatDigest);
                Outcome::Done(r)
            }
            Request::LockAcquire { name, owner, shared, ttl_ms, wait_ms, queue } => {
                let op = Op::LockAcquire {
                    name: name.clone(),
                    owner: owner.clone(),
                    shared: *shared,
                    ttl_ms: *ttl_ms,
                    wait_ms: *wait_ms,
                };
                match self.write(op, rid).await {
                    Outcome::Done(Ok(Response::LockQueued { .. })) if !queue => {
                        Outcome::Done(self.wait_for_grant(name, owner, *wait_ms, deadline).await)
                    }
                    other => other,
                }
            }
            Request::LockRelease { name, owner } => {
                self.write(Op::LockRelease { name: name.clone(), owner: owner.clone() }, rid).await
            }
            Request::LockList => self.read(false, || self.store.lock_list().map(Response::Locks)).await,
            Request::QueuePush { queue, item } => {
                self.write(Op::QueuePush { queue: queue.clone(), item: item.clone() }, rid).await
            }
            Request::QueuePop { queue, visibility_ms } => {
                self.write(Op::QueuePop { queue: queue.clone(), visibility_ms: *visibility_ms }, rid).await
            }
            Request::QueueAck { queue, id } => self.write(Op::QueueAck { queue: queue.clone(), id: *id }, rid).await,
            Request::QueueStats => self.read(false, || self.store.queue_stats().map(Response::QueueStats)).await,
            _ => return None,
        })
    }

    /// Re-evaluates `check` each time this node applies something, until it yields or `until`.
    async fn wait_applied<T>(&self, until: Instant, check: impl Fn() -> Result<Option<T>>) -> Result<Option<T>> {
        let mut applied = self.store.applied_tx.subscribe();
        loop {
            if let Some(v) = check()? {
                return Ok(Some(v));
            }
            tokio::select! {
                changed = applied.changed() => changed.map_err(|_| Error::internal("node is shutting down"))?,
                _ = tokio::time::sleep_until(until.into()) => return Ok(None),
            }
        }
    }

    /// The owner is in line: answer once it holds the lock, or when its wait ended without.
    async fn wait_for_grant(&self, name: &str, owner: &str, wait_ms: u64, deadline: Instant) -> Result<Response> {
        let outcome = self
            .wait_applied(deadline, || {
                Ok(match self.store.lock_standing(name, owner)? {
                    Standing::Holds(holder) => Some(Ok(Response::LockGranted { name: name.to_string(), holder })),
                    Standing::Waits => None,
                    Standing::Lapsed { token, at_ms } => Some(Err(Error::new(
                        ErrorKind::Expired,
                        format!("{owner} was granted {name} (token {token}) but the lease ran out at {at_ms} before the answer"),
                    ))),
                    Standing::None { holders } => {
                        let by = if holders.is_empty() { String::new() } else { format!("; held by {}", holders.join(", ")) };
                        Some(Err(Error::new(
                            ErrorKind::NotGranted,
                            format!("{owner} waited {wait_ms} ms for {name} without getting it{by}"),
                        )))
                    }
                })
            })
            .await?;
        // Still in line when the request ran out: the grant may yet come, so this is in doubt.
        outcome.unwrap_or_else(|| Err(Error::timeout(format!("{owner} still waits for {name}; the request ran out"))))
    }
}

fn wait_until(deadline: Instant, wait_ms: u32) -> Instant {
    // Answer a little before the caller gives up, so it hears "nothing new" rather than a timeout.
    let latest = deadline.checked_sub(Duration::from_millis(100)).unwrap_or(deadline);
    (Instant::now() + Duration::from_millis(wait_ms as u64)).min(latest)
}
