//! The leader's directory of client caches (`cache get`): which client holds a copy of which
//! key, and the notices each client still has to take — "invalidate k" when k is written, "k is
//! shared now" when a second client fetches it. A write is acknowledged only after every other
//! holder has acknowledged its invalidation or its lease has run out, so no client serves a
//! stale value after a write returns.
//!
//! The directory lives in the leader's memory for one term; a client that finds the term
//! changed drops its whole cache. Leases are short and granted only by a leader a majority
//! acknowledged moments ago, so a deposed leader's clients stop trusting their copies before a
//! new leader can accept a write. This module keeps the directory; it never reads or writes
//! keys itself.

use super::service::{Outcome, Service};
use crate::error::Error;
use crate::proto::{CacheNotice, Op, Request, Response};
use openraft::ServerState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a client trusts its copies after sending a poll that was answered.
pub const LEASE: Duration = Duration::from_millis(40);
/// A poll is held open at most this long, so leases are renewed in time.
pub const POLL_WAIT: Duration = Duration::from_millis(15);
/// A leader grants leases only while a majority acknowledged it this recently: well inside the
/// election timeout, so that no other leader can exist while a lease it granted is valid.
pub const FRESH_QUORUM_MS: u64 = 60;

#[derive(Default)]
struct ClientState {
    /// Sequence number of the last notice queued for this client.
    seq: u64,
    /// The last one it confirmed having applied.
    acked: u64,
    pending: Vec<(u64, CacheNotice)>,
    last_poll: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    term: u64,
    holders: HashMap<String, BTreeSet<u64>>,
    clients: BTreeMap<u64, ClientState>,
}

pub struct Directory {
    inner: Mutex<Inner>,
    /// Bumped whenever a notice is queued or acknowledged.
    changed: watch::Sender<u64>,
}

impl Default for Directory {
    fn default() -> Self {
        Directory { inner: Mutex::default(), changed: watch::Sender::new(0) }
    }
}

impl Inner {
    /// A new term starts an empty directory: copies registered with an earlier leader are
    /// dropped by their clients when they see the term.
    fn at_term(&mut self, term: u64) -> &mut Self {
        if self.term != term {
            *self = Inner { term, ..Default::default() };
        }
        self
    }

    fn notify(&mut self, client: u64, notice: CacheNotice) {
        let c = self.clients.entry(client).or_default();
        c.seq += 1;
        c.pending.push((c.seq, notice));
    }
}

impl Directory {
    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Registers `client` as a holder of `key` before the value is read, so a write that lands
    /// after this point is sure to reach it. Returns the sequence number its invalidations
    /// will start after, and how many clients hold the key now.
    pub fn hold(&self, term: u64, client: u64, key: &str) -> (u64, usize) {
        let held = {
            let mut guard = self.inner.lock().unwrap();
            let inner = guard.at_term(term);
            let seq = inner.clients.entry(client).or_default().seq;
            let holders = inner.holders.entry(key.to_string()).or_default();
            let others: Vec<u64> = holders.iter().copied().filter(|c| *c != client).collect();
            holders.insert(client);
            let count = holders.len();
            // A second holder turns an exclusive copy into a shared one.
            if count == 2 {
                for other in others {
                    inner.notify(other, CacheNotice::Shared { key: key.to_string() });
                }
            }
            (seq, count)
        };
        self.bump();
        held
    }

    /// After a write of `key`: queues an invalidation for every holder but `writer`, forgets
    /// them as holders, and waits until each has acknowledged or its lease has lapsed.
    pub async fn invalidate(&self, term: u64, key: &str, writer: Option<u64>) {
        let waits: Vec<(u64, u64)> = {
            let mut inner = self.inner.lock().unwrap();
            let inner = inner.at_term(term);
            let Some(holders) = inner.holders.remove(key) else { return };
            let mut waits = Vec::new();
            for client in holders.into_iter().filter(|c| Some(*c) != writer) {
                inner.notify(client, CacheNotice::Invalidate { key: key.to_string() });
                waits.push((client, inner.clients[&client].seq));
            }
            waits
        };
        if waits.is_empty() {
            return;
        }
        self.bump();
        let mut rx = self.changed.subscribe();
        loop {
            let next_expiry = {
                let inner = self.inner.lock().unwrap();
                let mut next = None::<Instant>;
                let mut done = true;
                for (client, seq) in &waits {
                    let Some(c) = inner.clients.get(client) else { continue };
                    if c.acked >= *seq {
                        continue;
                    }
                    let expires = c.last_poll.map(|t| t + LEASE + Duration::from_millis(5));
                    if let Some(e) = expires.filter(|e| *e > Instant::now()) {
                        done = false;
                        next = Some(next.map_or(e, |n| n.min(e)));
                    }
                }
                if done {
                    return;
                }
                next
            };
            let until = next_expiry.map_or(LEASE, |e| e.saturating_duration_since(Instant::now()));
            let _ = tokio::time::timeout(until, rx.changed()).await;
        }
    }

    /// A client's poll: records its acknowledgement, then returns the notices it has not
    /// acknowledged (waiting up to `wait` for one). The caller grants the lease.
    pub async fn poll(&self, term: u64, client: u64, ack: u64, wait: Duration) -> Vec<(u64, CacheNotice)> {
        let mut rx = self.changed.subscribe();
        let received = Instant::now();
        let deadline = received + wait;
        {
            let mut inner = self.inner.lock().unwrap();
            let c = inner.at_term(term).clients.entry(client).or_default();
            c.last_poll = Some(received);
            if ack > c.acked {
                c.acked = ack;
                c.pending.retain(|(s, _)| *s > ack);
            }
        }
        self.bump();
        loop {
            let pending = {
                let inner = self.inner.lock().unwrap();
                inner.clients.get(&client).map(|c| c.pending.clone()).unwrap_or_default()
            };
            if !pending.is_empty() || Instant::now() >= deadline {
                return pending;
            }
            let _ = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), rx.changed()).await;
        }
    }
}

impl Service {
    /// The cache requests: all are the leader's, since the directory is.
    pub(super) async fn cache_request(&self, req: &Request) -> Outcome {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            return Outcome::Forward(m.current_leader);
        }
        let term = m.current_term;
        match req {
            Request::CacheRead { client, key } => {
                let (seq, holders) = self.cache.hold(term, *client, key);
                let read = |value| Response::Cached { term, seq, holders: holders as u32, value };
                self.read(false, || self.store.get(key).map(read)).await
            }
            Request::CachePut { client, key, value } => {
                let op = Op::Put { key: key.clone(), value: value.clone() };
                match self.write_key(op, key, Some(*client)).await {
                    Outcome::Done(Ok(Response::Written { revision })) => {
                        let (seq, holders) = self.cache.hold(term, *client, key);
                        let value = Some(crate::proto::Versioned { value: value.clone(), revision });
                        Outcome::Done(Ok(Response::Cached { term, seq, holders: holders as u32, value }))
                    }
                    other => other,
                }
            }
            Request::CachePoll { client, ack, wait_ms } => {
                let wait = Duration::from_millis(*wait_ms as u64).min(POLL_WAIT);
                let notices = self.cache.poll(term, *client, *ack, wait).await;
                // The lease is only as good as this node's claim to lead right now.
                let m = self.raft.metrics().borrow().clone();
                let fresh = m.millis_since_quorum_ack.is_some_and(|ms| ms < FRESH_QUORUM_MS);
                let alone = m.membership_config.membership().voter_ids().count() == 1;
                if m.state != ServerState::Leader || m.current_term != term || !(fresh || alone) {
                    return Outcome::Done(Err(Error::no_quorum("not a leader a majority acknowledged just now")));
                }
                Outcome::Done(Ok(Response::CacheNotices { term, notices }))
            }
            _ => Outcome::Done(Err(Error::internal("not a cache request"))),
        }
    }
}
