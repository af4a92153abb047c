//! The leader's directory of client caches (`cache get`): which client holds a copy of which
//! key, and the notices each client still has to take — "invalidate k" when k is written, "k is
//! shared now" when a second client fetches it. A write is acknowledged only after every other
//! holder has acknowledged its invalidation or its lease has run out, so no client serves a
//! stale value after a write returns.
//!
//! A client that writes through its cache is registered as a holder *before* its write is
//! proposed, and stays one while the write is in flight: a concurrent write that lands after it
//! then invalidates its copy, instead of finding no holder and letting the older value be kept
//! and served as a hit.
//!
//! The directory lives in the leader's memory for one term; a client that finds the term
//! changed drops its whole cache. A poll is answered with a lease only after a heartbeat round
//! a majority acknowledged *after the poll arrived* (openraft's read-index check; without one
//! in time the notices go out without a lease, so they are still acknowledged), not on
//! openraft's `millis_since_quorum_ack` metric, which is computed when metrics are published
//! and so stays small while the core is stalled (an fsync). The client counts its 40 ms lease
//! from sending the poll, and no follower that acknowledged that round votes for another leader
//! within the election timeout (at least 100 ms), so a deposed leader's clients stop trusting
//! their copies before a new leader can accept a write. This module keeps the directory; it
//! never reads or writes keys itself.

use super::service::{Outcome, Service};
use super::types::Raft;
use crate::error::Error;
use crate::proto::{CacheNotice, Op, Request, Response};
use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::ServerState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a client trusts its copies after sending a poll that was answered.
pub const LEASE: Duration = Duration::from_millis(40);
/// A poll is held open at most this long, so leases are renewed in time.
pub const POLL_WAIT: Duration = Duration::from_millis(15);
/// How long a poll may wait for the heartbeat round that backs its lease: a lease answered
/// later than this after the poll arrived would have run out on arrival anyway.
const CONFIRM_WITHIN: Duration = LEASE;
/// Test-only: a cache put waits this many milliseconds after its write applied before it is
/// answered, so other writes of the key reliably land in between (tests/cache.rs). Read
/// nowhere else.
const TEST_PUT_PAUSE: &str = "DSH_TEST_CACHE_PUT_PAUSE_MS";

#[derive(Default)]
struct ClientState {
    /// Sequence number of the last notice queued for this client.
    seq: u64,
    /// The last one it confirmed having applied.
    acked: u64,
    pending: Vec<(u64, CacheNotice)>,
    /// When the last poll answered with a lease arrived: the client's lease ends 40 ms after
    /// it sent that poll, so no later than 40 ms after this.
    granted: Option<Instant>,
    /// When the polls being answered now arrived (a retried poll may overlap the first): each
    /// may grant a lease, so writes wait on them too until they are answered. A refused poll
    /// grants nothing and so holds no write up.
    answering: BTreeMap<Instant, u32>,
}

impl ClientState {
    fn lease_from(&self) -> Option<Instant> {
        self.granted.max(self.answering.keys().next_back().copied())
    }
}

#[derive(Default)]
struct Inner {
    term: u64,
    holders: HashMap<String, BTreeSet<u64>>,
    /// Per key, the clients with a cache put of it in flight (and how many).
    writing: HashMap<String, BTreeMap<u64, u32>>,
    clients: BTreeMap<u64, ClientState>,
}

pub struct Directory {
    inner: Mutex<Inner>,
    /// Bumped whenever a notice is queued or acknowledged.
    changed: watch::Sender<u64>,
    /// One leadership confirmation runs at a time, shared by every poll that arrived before it
    /// started, so many caching clients cost one heartbeat round, not one each.
    round: tokio::sync::Mutex<()>,
    /// When the last round a majority acknowledged started.
    confirmed: Mutex<Option<Instant>>,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            inner: Mutex::default(),
            changed: watch::Sender::new(0),
            round: tokio::sync::Mutex::new(()),
            confirmed: Mutex::new(None),
        }
    }
}

impl Inner {
    /// A new term starts an empty directory: copies registered with an earlier leader are
    /// dropped by their clients when they see the term. A request that began in an earlier
    /// term works on the current directory rather than wiping it.
    fn at_term(&mut self, term: u64) -> &mut Self {
        if term > self.term {
            *self = Inner { term, ..Default::default() };
        }
        self
    }

    /// Registers `client` as holding `key`; returns the sequence number its invalidations
    /// will start after, and how many clients hold the key now.
    fn hold(&mut self, client: u64, key: &str) -> (u64, usize) {
        let seq = self.clients.entry(client).or_default().seq;
        let holders = self.holders.entry(key.to_string()).or_default();
        let others: Vec<u64> = holders.iter().copied().filter(|c| *c != client).collect();
        holders.insert(client);
        let count = holders.len();
        // A second holder turns an exclusive copy into a shared one.
        if count == 2 {
            for other in others {
                self.notify(other, CacheNotice::Shared { key: key.to_string() });
            }
        }
        (seq, count)
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
        let held = self.inner.lock().unwrap().at_term(term).hold(client, key);
        self.bump();
        held
    }

    /// Before a cache put of `key` is proposed: registers `client` as a holder, and as writing
    /// the key until `end_write`, so that a write landing meanwhile invalidates it without
    /// forgetting it. Returns the sequence number its invalidations will start after.
    pub fn begin_write(&self, term: u64, client: u64, key: &str) -> u64 {
        let seq = {
            let mut guard = self.inner.lock().unwrap();
            let inner = guard.at_term(term);
            *inner.writing.entry(key.to_string()).or_default().entry(client).or_default() += 1;
            inner.hold(client, key).0
        };
        self.bump();
        seq
    }

    /// After a cache put was answered (or failed): how many clients hold `key` now.
    pub fn end_write(&self, term: u64, client: u64, key: &str) -> usize {
        let mut guard = self.inner.lock().unwrap();
        let inner = guard.at_term(term);
        if let Some(w) = inner.writing.get_mut(key) {
            if let Some(n) = w.get_mut(&client) {
                *n -= 1;
                if *n == 0 {
                    w.remove(&client);
                }
            }
            if w.is_empty() {
                inner.writing.remove(key);
            }
        }
        inner.holders.get(key).map_or(0, BTreeSet::len)
    }

    /// After a write of `key`: queues an invalidation for every holder but `writer`, forgets
    /// them as holders (except those with a cache put of the key still in flight, which keep
    /// the copy they are about to write), and waits until each has acknowledged or its lease
    /// has lapsed.
    pub async fn invalidate(&self, term: u64, key: &str, writer: Option<u64>) {
        let waits: Vec<(u64, u64)> = {
            let mut inner = self.inner.lock().unwrap();
            let inner = inner.at_term(term);
            let Some(holders) = inner.holders.remove(key) else { return };
            let writing: BTreeSet<u64> =
                inner.writing.get(key).map(|w| w.keys().copied().collect()).unwrap_or_default();
            let mut waits = Vec::new();
            for &client in &holders {
                if Some(client) != writer {
                    inner.notify(client, CacheNotice::Invalidate { key: key.to_string() });
                    waits.push((client, inner.clients[&client].seq));
                }
            }
            let kept: BTreeSet<u64> = holders.intersection(&writing).copied().collect();
            if !kept.is_empty() {
                inner.holders.insert(key.to_string(), kept);
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
                    let expires = c.lease_from().map(|t| t + LEASE + Duration::from_millis(5));
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

    /// A client's poll, which arrived at `received`: records its acknowledgement, then returns
    /// the notices it has not acknowledged (waiting up to `wait` for one). The caller decides
    /// whether to grant the lease and says so with `answered`.
    pub async fn poll(
        &self,
        term: u64,
        client: u64,
        ack: u64,
        received: Instant,
        wait: Duration,
    ) -> Vec<(u64, CacheNotice)> {
        let mut rx = self.changed.subscribe();
        let deadline = received + wait;
        {
            let mut inner = self.inner.lock().unwrap();
            let c = inner.at_term(term).clients.entry(client).or_default();
            *c.answering.entry(received).or_default() += 1;
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

impl Directory {
    /// Whether a heartbeat round that started at or after `since` was acknowledged by a
    /// majority within `CONFIRM_WITHIN`: the last confirmed round if it qualifies, else one this
    /// call runs (after any round already running), tried again while time remains.
    async fn confirmed_since(&self, raft: &Raft, since: Instant) -> bool {
        let deadline = tokio::time::Instant::from_std(since + CONFIRM_WITHIN);
        let qualifies = || self.confirmed.lock().unwrap().is_some_and(|started| started >= since);
        loop {
            if qualifies() {
                return true;
            }
            let Ok(_one_at_a_time) = tokio::time::timeout_at(deadline, self.round.lock()).await else { return false };
            if qualifies() {
                return true;
            }
            let started = Instant::now();
            match tokio::time::timeout_at(deadline, raft.get_read_log_id()).await {
                Ok(Ok(_)) => {
                    let mut c = self.confirmed.lock().unwrap();
                    *c = (*c).max(Some(started));
                    return true;
                }
                // Not enough answers in time: try again while the budget lasts.
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {}
                _ => return false,
            }
        }
    }

    /// The poll that arrived at `received` was answered, with a lease or without.
    pub fn answered(&self, term: u64, client: u64, received: Instant, lease: bool) {
        {
            let mut inner = self.inner.lock().unwrap();
            let c = inner.at_term(term).clients.entry(client).or_default();
            if lease {
                c.granted = c.granted.max(Some(received));
            }
            if let Some(n) = c.answering.get_mut(&received) {
                *n -= 1;
                if *n == 0 {
                    c.answering.remove(&received);
                }
            }
        }
        self.bump();
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
                let seq = self.cache.begin_write(term, *client, key);
                let op = Op::Put { key: key.clone(), value: value.clone() };
                let outcome = self.write_key(op, key, Some(*client)).await;
                if let Some(ms) = std::env::var(TEST_PUT_PAUSE).ok().and_then(|v| v.parse().ok()) {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let holders = self.cache.end_write(term, *client, key);
                match outcome {
                    Outcome::Done(Ok(Response::Written { revision })) => {
                        let value = Some(crate::proto::Versioned { value: value.clone(), revision });
                        Outcome::Done(Ok(Response::Cached { term, seq, holders: holders as u32, value }))
                    }
                    other => other,
                }
            }
            Request::CachePoll { client, ack, wait_ms } => {
                let wait = Duration::from_millis(*wait_ms as u64).min(POLL_WAIT);
                // The lease is only as good as this node's claim to lead after the poll arrived:
                // a heartbeat round a majority acknowledged since (see the module doc). It runs
                // while the poll waits for notices, so it costs the client no time.
                let received = Instant::now();
                let (notices, confirmed) = tokio::join!(
                    self.cache.poll(term, *client, *ack, received, wait),
                    self.cache.confirmed_since(&self.raft, received)
                );
                let m = self.raft.metrics().borrow().clone();
                let leading = m.state == ServerState::Leader && m.current_term == term;
                let lease = confirmed && leading;
                self.cache.answered(term, *client, received, lease);
                if !leading {
                    return Outcome::Done(Err(Error::no_quorum("no longer the leader of this term")));
                }
                // Without a lease the notices still go out, so the client can acknowledge them.
                Outcome::Done(Ok(Response::CacheNotices { term, notices, lease }))
            }
            _ => Outcome::Done(Err(Error::internal("not a cache request"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    const A: u64 = 1;
    const B: u64 = 2;

    fn invalidations(notices: &[(u64, CacheNotice)]) -> Vec<u64> {
        notices.iter().filter(|(_, n)| matches!(n, CacheNotice::Invalidate { .. })).map(|(s, _)| *s).collect()
    }

    async fn pending(d: &Directory, client: u64) -> Vec<(u64, CacheNotice)> {
        d.poll(1, client, 0, Instant::now(), Duration::ZERO).await
    }

    #[tokio::test]
    async fn a_write_landing_during_a_cache_put_invalidates_the_writer_and_keeps_it_a_holder() {
        let d = Directory::default();
        let seq = d.begin_write(1, A, "k");
        // Another client's write of k lands before A's own: A's copy-to-be is older.
        d.invalidate(1, "k", None).await;
        d.invalidate(1, "k", Some(A)).await;
        assert_eq!(d.end_write(1, A, "k"), 1, "A still holds k");
        let first = invalidations(&pending(&d, A).await);
        assert_eq!(first.len(), 1);
        assert!(first[0] > seq, "the invalidation comes after the put's sequence number, so the copy is stale");
        // And a write after the put reaches A too.
        d.invalidate(1, "k", None).await;
        assert_eq!(invalidations(&pending(&d, A).await).len(), 2);
    }

    #[tokio::test]
    async fn a_writer_is_not_told_about_its_own_write_but_other_holders_are() {
        let d = Directory::default();
        d.hold(1, B, "k");
        d.begin_write(1, A, "k");
        d.invalidate(1, "k", Some(A)).await;
        assert_eq!(d.end_write(1, A, "k"), 1, "B was forgotten, A kept");
        assert!(invalidations(&pending(&d, A).await).is_empty());
        assert_eq!(invalidations(&pending(&d, B).await).len(), 1);
    }

    #[tokio::test]
    async fn a_write_waits_out_a_granted_lease_but_not_a_refused_one() {
        let d = Directory::default();
        d.hold(1, B, "k");
        // B's poll was refused a lease: nothing to wait for.
        let at = Instant::now();
        d.poll(1, B, 0, at, Duration::ZERO).await;
        d.answered(1, B, at, false);
        assert!(d.invalidate(1, "k", None).now_or_never().is_some(), "a refused poll holds no write up");
        // B's poll is granted a lease (dated far ahead, so it cannot lapse during the test).
        d.hold(1, B, "k");
        let later = Instant::now() + Duration::from_secs(60);
        d.answered(1, B, later, true);
        assert!(d.invalidate(1, "k", None).now_or_never().is_none(), "the write waits for B");
        // A poll still being answered may grant one: it holds writes up as well.
        let d = Directory::default();
        d.hold(1, B, "k");
        let mut answering = Box::pin(d.poll(1, B, 0, later, Duration::ZERO));
        assert!(answering.as_mut().now_or_never().is_none(), "the poll waits for notices");
        assert!(d.invalidate(1, "k", None).now_or_never().is_none());
    }

    #[tokio::test]
    async fn a_request_from_an_earlier_term_does_not_wipe_the_directory() {
        let d = Directory::default();
        d.hold(5, B, "k");
        d.begin_write(4, A, "k");
        d.invalidate(5, "k", None).await;
        assert_eq!(invalidations(&pending(&d, B).await).len(), 1, "B's registration survived");
        d.hold(6, B, "k");
        assert!(pending(&d, B).await.is_empty(), "a new term starts afresh");
    }
}
