//! Locks with leases and fencing tokens. Owns the `locks` table (one record per lock: holders,
//! then waiters first come first served) and the cluster-wide fencing counter. A lease ends at
//! log time `granted + ttl`; the deadline index brings every lock back here when its earliest
//! lease or wait is due. A wait that would close a cycle in the wait-for graph is refused with a
//! `deadlock` error naming the cycle.
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
}

fn load(sys: &Sys, name: &str) -> Result<LockState, Fatal> {
    sys.locks.get(name)?.map_or(Ok(LockState::default()), |v| dec(v.value()))
}

fn save(sys: &mut Sys, name: &str, mut st: LockState) -> Result<(), Fatal> {
    let due = st.holders.iter().map(|h| h.expires_ms).chain(st.waiters.iter().map(|w| w.deadline_ms)).min();
    sys.reschedule(&Timer::Lock(name.to_string()), st.timer, due)?;
    st.timer = due;
    if st.holders.is_empty() && st.waiters.is_empty() {
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
        return Ok(Ok(Response::LockQueued { position: i as u64 + 1 }));
    }
    if st.waiters.is_empty() && grantable(&st, shared) {
        let holder = grant(sys, name, &mut st, owner, shared, ttl_ms)?;
        save(sys, name, st)?;
        return Ok(Ok(Response::LockGranted { name: name.to_string(), holder }));
    }
    if wait_ms == 0 {
        let why = if st.holders.is_empty() { "others are waiting".to_string() } else { describe(&st) };
        return Ok(Err(Error::new(ErrorKind::Conflict, format!("{name} is held by {why}"))));
    }
    if let Some(cycle) = find_cycle(sys, name, &st, owner)? {
        sys.notes.push(("deadlock", format!("refused {owner}'s wait for {name}: {cycle}")));
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
    for h in st.holders.iter().filter(|h| h.expires_ms <= now) {
        sys.notes.push(("expired", format!("{}'s lease on {name} ran out (token {})", h.owner, h.token)));
    }
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

pub(in crate::node) fn list(tx: &ReadTransaction) -> Result<Vec<LockInfo>, Fatal> {
    let locks = tx.open_table(super::tables::LOCKS)?;
    let mut out = Vec::new();
    for item in locks.iter()? {
        let (k, v) = item?;
        let st: LockState = dec(v.value())?;
        out.push(LockInfo { name: k.value().to_string(), holders: st.holders, waiters: st.waiters });
    }
    Ok(out)
}

pub(in crate::node) fn info(tx: &ReadTransaction, name: &str) -> Result<LockInfo, Fatal> {
    let locks = tx.open_table(super::tables::LOCKS)?;
    let st: LockState = locks.get(name)?.map_or(Ok(LockState::default()), |v| dec(v.value()))?;
    Ok(LockInfo { name: name.to_string(), holders: st.holders, waiters: st.waiters })
}
