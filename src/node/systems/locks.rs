//! Locks with leases and fencing tokens. Owns the `locks` table (one record per lock: holders,
//! then waiters first come first served) and the cluster-wide fencing counter. A lease ends at
//! log time `granted + ttl`; the deadline index brings every lock back here when its earliest
//! lease or wait is due. A wait that would close a cycle in the wait-for graph is refused with a
//! `deadlock` error naming the cycle. A lease that ran out is remembered for a while (as
//! `lapsed`), so its owner's late release is told `expired` rather than `not_found`.
//!
//! It must not read a clock and must not wait: a queued caller is answered by the node, which
//! watches the applied state until the owner holds the lock or stops waiting.

use super::tables::{dec, enc, Applied, Fatal, Sys, Timer};
use crate::error::{Error, ErrorKind};
use crate::proto::{Holder, LockInfo, Response, Waiter};
use redb::{ReadTransaction, ReadableTable};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default, Serialize, Deserialize)]
struct LockState {
    holders: Vec<Holder>,
    waiters: Vec<Waiter>,
    /// Where this lock sits in the deadline index.
    timer: Option<u64>,
    /// Leases that ran out and were not released since, oldest first.
    #[serde(default)]
    lapsed: Vec<Lapsed>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Lapsed {
    owner: String,
    token: u64,
    /// Log time at which the lease ended.
    at_ms: u64,
}

/// How long (log time) a lapsed lease is remembered, and how many per lock at most.
const LAPSED_FOR_MS: u64 = 10 * 60 * 1000;
const MAX_LAPSED: usize = 64;

/// Where an owner stands with a lock, for the node answering a waiting acquire.
pub(in crate::node) enum Standing {
    Holds(Holder),
    Waits,
    /// Granted, and the lease ran out since.
    Lapsed {
        token: u64,
        at_ms: u64,
    },
    /// Neither holds nor waits; these do.
    None {
        holders: Vec<String>,
    },
}

fn load(sys: &Sys, name: &str) -> Result<LockState, Fatal> {
    sys.locks.get(name)?.map_or(Ok(LockState::default()), |v| dec(v.value()))
}

fn save(sys: &mut Sys, name: &str, mut st: LockState) -> Result<(), Fatal> {
    let due = st
        .holders
        .iter()
        .map(|h| h.expires_ms)
        .chain(st.waiters.iter().map(|w| w.deadline_ms))
        .chain(st.lapsed.iter().map(|l| l.at_ms.saturating_add(LAPSED_FOR_MS)))
        .min();
    sys.reschedule(&Timer::Lock(name.to_string()), st.timer, due)?;
    st.timer = due;
    if st.holders.is_empty() && st.waiters.is_empty() && st.lapsed.is_empty() {
        sys.locks.remove(name)?;
    } else {
        sys.locks.insert(name, enc(&st).as_slice())?;
    }
    Ok(())
}

fn grantable(st: &LockState, shared: bool) -> bool {
    st.holders.is_empty() || (shared && st.holders.iter().all(|h| h.shared))
}

fn grant(
    sys: &mut Sys,
    name: &str,
    st: &mut LockState,
    owner: &str,
    shared: bool,
    ttl_ms: u64,
) -> Result<Holder, Fatal> {
    let token = sys.get_meta::<u64>("fence")?.unwrap_or(0) + 1;
    sys.set_meta("fence", &token)?;
    let holder = Holder {
        owner: owner.to_string(),
        token,
        shared,
        granted_ms: sys.now,
        expires_ms: sys.now.saturating_add(ttl_ms),
    };
    st.holders.push(holder.clone());
    let mode = if shared { "shared" } else { "exclusive" };
    sys.notes.push(("lock", format!("{owner} holds {name} ({mode}, token {token}, lease {ttl_ms} ms)")));
    Ok(holder)
}

/// Grants to the front of the line while it fits: one exclusive, or a run of shared waiters.
fn promote(sys: &mut Sys, name: &str, st: &mut LockState) -> Result<(), Fatal> {
    while st.waiters.first().is_some_and(|w| grantable(st, w.shared)) {
        let w = st.waiters.remove(0);
        grant(sys, name, st, &w.owner, w.shared, w.ttl_ms)?;
    }
    Ok(())
}

fn describe(st: &LockState) -> String {
    let held: Vec<String> = st
        .holders
        .iter()
        .map(|h| format!("{} ({}, token {})", h.owner, if h.shared { "shared" } else { "exclusive" }, h.token))
        .collect();
    held.join(", ")
}

pub(in crate::node) fn acquire(
    sys: &mut Sys,
    name: &str,
    owner: &str,
    shared: bool,
    ttl_ms: u64,
    wait_ms: u64,
) -> Result<Applied, Fatal> {
    let mut st = load(sys, name)?;
    let now = sys.now;
    // Asking again starts afresh: a later release answers for this request, not the old lease.
    st.lapsed.retain(|l| l.owner != owner);
    // Acquiring again (or a retry whose first reply was lost) renews the lease, same token.
    if let Some(h) = st.holders.iter_mut().find(|h| h.owner == owner) {
        if h.shared != shared {
            let mode = if h.shared { "shared" } else { "exclusive" };
            return Ok(Err(Error::new(ErrorKind::Conflict, format!("{owner} already holds {name} {mode}"))));
        }
        h.expires_ms = now.saturating_add(ttl_ms);
        let holder = h.clone();
        save(sys, name, st)?;
        return Ok(Ok(Response::LockGranted { name: name.to_string(), holder }));
    }
    if let Some(i) = st.waiters.iter().position(|w| w.owner == owner) {
        save(sys, name, st)?;
        return Ok(Ok(Response::LockQueued { position: i as u64 + 1 }));
    }
    if st.waiters.is_empty() && grantable(&st, shared) {
        let holder = grant(sys, name, &mut st, owner, shared, ttl_ms)?;
        save(sys, name, st)?;
        return Ok(Ok(Response::LockGranted { name: name.to_string(), holder }));
    }
    if wait_ms == 0 {
        let why = if st.holders.is_empty() { "others are waiting".to_string() } else { describe(&st) };
        save(sys, name, st)?;
        return Ok(Err(Error::new(ErrorKind::Conflict, format!("{name} is held by {why}"))));
    }
    if let Some(cycle) = find_cycle(sys, name, &st, owner)? {
        sys.notes.push(("deadlock", format!("refused {owner}'s wait for {name}: {cycle}")));
        save(sys, name, st)?;
        return Ok(Err(Error::new(ErrorKind::Deadlock, cycle)));
    }
    st.waiters.push(Waiter { owner: owner.to_string(), shared, ttl_ms, deadline_ms: now.saturating_add(wait_ms) });
    let position = st.waiters.len() as u64;
    save(sys, name, st)?;
    Ok(Ok(Response::LockQueued { position }))
}

pub(in crate::node) fn release(sys: &mut Sys, name: &str, owner: &str) -> Result<Applied, Fatal> {
    let mut st = load(sys, name)?;
    let token = if let Some(i) = st.holders.iter().position(|h| h.owner == owner) {
        st.holders.remove(i).token
    } else if let Some(i) = st.waiters.iter().position(|w| w.owner == owner) {
        st.waiters.remove(i);
        0
    } else if let Some(i) = st.lapsed.iter().position(|l| l.owner == owner) {
        let l = st.lapsed.remove(i);
        save(sys, name, st)?;
        return Ok(Err(Error::new(
            ErrorKind::Expired,
            format!("{owner}'s lease on {name} (token {}) ran out at {} before this release", l.token, l.at_ms),
        )));
    } else {
        return Ok(Err(Error::new(ErrorKind::NotFound, format!("{owner} does not hold {name}"))));
    };
    promote(sys, name, &mut st)?;
    let at_ms = sys.now;
    save(sys, name, st)?;
    Ok(Ok(Response::LockReleased { token, at_ms }))
}

/// Called when the lock's earliest deadline is due: drops ended leases and waits, then grants.
pub(in crate::node) fn expire(sys: &mut Sys, name: &str) -> Result<(), Fatal> {
    let mut st = load(sys, name)?;
    let now = sys.now;
    st.timer = None; // the index entry was removed when it fell due
    st.lapsed.retain(|l| l.at_ms.saturating_add(LAPSED_FOR_MS) > now);
    for h in st.holders.iter().filter(|h| h.expires_ms <= now) {
        sys.notes.push(("expired", format!("{}'s lease on {name} ran out (token {})", h.owner, h.token)));
        st.lapsed.retain(|l| l.owner != h.owner);
        st.lapsed.push(Lapsed { owner: h.owner.clone(), token: h.token, at_ms: h.expires_ms });
    }
    let over = st.lapsed.len().saturating_sub(MAX_LAPSED);
    st.lapsed.drain(..over);
    st.holders.retain(|h| h.expires_ms > now);
    st.waiters.retain(|w| w.deadline_ms > now);
    promote(sys, name, &mut st)?;
    save(sys, name, st)
}

/// If `owner` waiting for `name` would close a cycle, says who waits for what held by whom.
fn find_cycle(sys: &Sys, name: &str, st: &LockState, owner: &str) -> Result<Option<String>, Fatal> {
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut waits: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in sys.locks.iter()? {
        let (k, v) = item?;
        let s: LockState = dec(v.value())?;
        holders.insert(k.value().to_string(), s.holders.iter().map(|h| h.owner.clone()).collect());
        for w in s.waiters {
            waits.entry(w.owner).or_default().push(k.value().to_string());
        }
    }
    holders.insert(name.to_string(), st.holders.iter().map(|h| h.owner.clone()).collect());
    let graph = Graph { holders, waits };
    let mut path = Vec::new();
    let mut seen = BTreeSet::new();
    Ok(graph
        .reach(owner, name, owner, &mut path, &mut seen)
        .then(|| path.iter().map(|(w, l, h)| format!("{w} waits for {l} held by {h}")).collect::<Vec<_>>().join(", ")))
}

struct Graph {
    holders: BTreeMap<String, Vec<String>>,
    waits: BTreeMap<String, Vec<String>>,
}

impl Graph {
    /// Depth-first from `waiter` waiting for `lock`: does it lead back to `target`?
    fn reach(
        &self,
        waiter: &str,
        lock: &str,
        target: &str,
        path: &mut Vec<(String, String, String)>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for h in self.holders.get(lock).into_iter().flatten().filter(|h| *h != waiter) {
            path.push((waiter.to_string(), lock.to_string(), h.clone()));
            if h == target {
                return true;
            }
            if seen.insert(h.clone()) {
                for next in self.waits.get(h).into_iter().flatten() {
                    if self.reach(h, next, target, path, seen) {
                        return true;
                    }
                }
            }
            path.pop();
        }
        false
    }
}

/// Locks held or waited for (a lock only remembering lapsed leases is free: not listed).
pub(in crate::node) fn list(tx: &ReadTransaction) -> Result<Vec<LockInfo>, Fatal> {
    let locks = tx.open_table(super::tables::LOCKS)?;
    let mut out = Vec::new();
    for item in locks.iter()? {
        let (k, v) = item?;
        let st: LockState = dec(v.value())?;
        if !st.holders.is_empty() || !st.waiters.is_empty() {
            out.push(LockInfo { name: k.value().to_string(), holders: st.holders, waiters: st.waiters });
        }
    }
    Ok(out)
}

pub(in crate::node) fn standing(tx: &ReadTransaction, name: &str, owner: &str) -> Result<Standing, Fatal> {
    let locks = tx.open_table(super::tables::LOCKS)?;
    let st: LockState = locks.get(name)?.map_or(Ok(LockState::default()), |v| dec(v.value()))?;
    Ok(if let Some(h) = st.holders.iter().find(|h| h.owner == owner) {
        Standing::Holds(h.clone())
    } else if st.waiters.iter().any(|w| w.owner == owner) {
        Standing::Waits
    } else if let Some(l) = st.lapsed.iter().find(|l| l.owner == owner) {
        Standing::Lapsed { token: l.token, at_ms: l.at_ms }
    } else {
        Standing::None { holders: st.holders.iter().map(|h| h.owner.clone()).collect() }
    })
}
