//! The leader's stamps for traced writes (`put --trace`). The stages of a write happen in
//! places that never see the request — openraft's core hands the entry to the log store, the
//! writer thread fsyncs it, the network layer gets each follower's answer, the state machine
//! applies it — so each place stamps the *log indexes* it handles, and the traced request,
//! once it knows its index, takes that index's stamps.
//!
//! Costs nothing when no traced write is in flight: every stamp starts with one relaxed atomic
//! load and returns. While one is, every index the node handles is stamped (the traced write's
//! index is not known until openraft assigns it), at most `KEEP` of them, dropped when the last
//! traced write ends. A stamp missed in a race with that cleanup shows as a missing stage,
//! never as a wrong one.

use super::proposer::Landed;
use crate::proto::{NodeId, Trace, TraceAck};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Most indexes stamped at once; under a burst, the oldest go first.
const KEEP: usize = 4096;

/// How long a traced write's answer waits, once ready, for followers that have not acknowledged
/// its entry yet (a majority has, or it would not be ready); a follower that is down or slower
/// than this is left out of the trace rather than holding the answer longer.
pub const TRACE_ACK_WAIT: Duration = Duration::from_millis(100);

/// What a traced request found out on the node handling it: where its write landed (on the
/// leader), or the leader's trace (on a node that forwarded it).
#[derive(Default)]
pub struct Traced {
    pub landed: OnceLock<Landed>,
    pub relayed: OnceLock<Trace>,
}

/// The trace of a write node `id` led: its stamps as times since the request was `received`;
/// `ready` is when the answer was.
pub fn led(id: NodeId, landed: &Landed, stamps: &Stamps, received: Instant, ready: Instant) -> Trace {
    let at = |i: Instant| i.saturating_duration_since(received).as_micros() as u64;
    let replied_us = at(ready);
    Trace {
        took: id,
        leader: id,
        term: landed.log_id.leader_id.term,
        index: landed.log_id.index,
        proposed_us: at(landed.proposed),
        appended_us: stamps.appended.map(at),
        flushed_us: stamps.flushed.map(at),
        acks: stamps.acks.iter().map(|(&node, &t)| TraceAck { node, at_us: at(t) }).collect(),
        committed_us: stamps.committed.map(at),
        applied_us: stamps.applied.map(at),
        replied_us,
        node_us: replied_us,
        hold_us: ready.elapsed().as_micros() as u64,
        client_us: None,
    }
}

#[derive(Default)]
pub struct Tracer {
    /// Traced writes in flight on this node.
    active: AtomicUsize,
    stamps: Mutex<BTreeMap<u64, Stamps>>,
    /// Woken at each follower acknowledgement, for a traced write waiting for the slow ones.
    acked: Notify,
}

/// What happened to one log index on this node, by its monotonic clock.
#[derive(Debug, Default, Clone)]
pub struct Stamps {
    pub appended: Option<Instant>,
    pub flushed: Option<Instant>,
    pub acks: BTreeMap<NodeId, Instant>,
    pub committed: Option<Instant>,
    pub applied: Option<Instant>,
}

/// A traced write in flight; stamping stops when the last one is dropped.
pub struct Active<'a>(&'a Tracer);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut stamps = self.0.stamps.lock().unwrap();
            if self.0.active.load(Ordering::Acquire) == 0 {
                stamps.clear();
            }
        }
    }
}

impl Tracer {
    /// Starts stamping, before the traced write is proposed, so its append is seen.
    pub fn begin(&self) -> Active<'_> {
        self.active.fetch_add(1, Ordering::AcqRel);
        Active(self)
    }

    fn on(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Stamps each tracked index in `first..=last` with `stamp`; with `create`, tracks new ones.
    fn each(&self, first: u64, last: u64, create: bool, stamp: impl Fn(&mut Stamps)) {
        let mut stamps = self.stamps.lock().unwrap();
        if create {
            for i in first..=last {
                stamp(stamps.entry(i).or_default());
            }
            while stamps.len() > KEEP {
                stamps.pop_first();
            }
        } else {
            stamps.range_mut(first..=last).for_each(|(_, s)| stamp(s));
        }
    }

    /// openraft handed entries `first..=last` to the log store; `then` (the flush callback) is
    /// wrapped to stamp them durable when the writer reports so.
    pub fn appended<R: 'static>(
        self: &Arc<Self>,
        first: u64,
        last: u64,
        then: Box<dyn FnOnce(R) + Send>,
    ) -> Box<dyn FnOnce(R) + Send> {
        if !self.on() || first > last {
            return then;
        }
        let now = Instant::now();
        self.each(first, last, true, |s| s.appended = Some(now));
        let me = self.clone();
        Box::new(move |r| {
            let now = Instant::now();
            me.each(first, last, false, |s| s.flushed = Some(now));
            then(r)
        })
    }

    /// `peer` answered an AppendEntries carrying `first..=last`: it holds them.
    pub fn acked(&self, peer: NodeId, first: u64, last: u64) {
        if !self.on() {
            return;
        }
        let now = Instant::now();
        self.each(first, last, false, |s| {
            s.acks.entry(peer).or_insert(now);
        });
        self.acked.notify_waiters();
    }

    /// openraft committed everything up to `upto`.
    pub fn committed(&self, upto: u64) {
        if self.on() {
            let now = Instant::now();
            self.each(0, upto, false, |s| {
                s.committed.get_or_insert(now);
            });
        }
    }

    /// The state machine applied everything up to `upto`.
    pub fn applied(&self, upto: u64) {
        if self.on() {
            let now = Instant::now();
            self.each(0, upto, false, |s| {
                s.applied.get_or_insert(now);
            });
        }
    }

    /// Waits until each of `peers` acknowledged `index`, or `limit` passed, then hands over its
    /// stamps. A follower's answer may come after a majority's has committed the write; the wait
    /// lets the trace show every replica.
    pub async fn take(&self, index: u64, peers: &[NodeId], limit: Duration) -> Stamps {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let woken = self.acked.notified();
            let all = {
                let stamps = self.stamps.lock().unwrap();
                stamps.get(&index).is_some_and(|s| peers.iter().all(|p| s.acks.contains_key(p)))
            };
            if all || tokio::time::timeout_at(deadline, woken).await.is_err() {
                break;
            }
        }
        self.stamps.lock().unwrap().remove(&index).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stamps_only_while_a_trace_is_active_and_forgets_after() {
        let t = Arc::new(Tracer::default());
        let flushed = t.appended(1, 1, Box::new(|_: ()| {}));
        flushed(());
        assert!(t.stamps.lock().unwrap().is_empty(), "nothing stamped with no trace active");

        let active = t.begin();
        let (tx, rx) = std::sync::mpsc::channel();
        let flushed = t.appended(5, 6, Box::new(move |r: u8| tx.send(r).unwrap()));
        flushed(7);
        assert_eq!(rx.recv().unwrap(), 7, "the flush callback still runs");
        t.acked(2, 5, 6);
        t.acked(3, 6, 6);
        t.committed(5);
        t.applied(6);
        let s = t.take(5, &[2, 3], Duration::from_millis(20)).await;
        assert!(s.appended <= s.flushed && s.flushed.is_some());
        assert_eq!(s.acks.keys().copied().collect::<Vec<_>>(), [2], "n3 never acknowledged index 5");
        assert!(s.committed.is_some() && s.applied.is_some());
        let s = t.take(6, &[2, 3], Duration::from_secs(5)).await;
        assert_eq!(s.acks.len(), 2);
        assert!(s.committed.is_none(), "committed only up to 5");
        t.acked(2, 7, 7);
        drop(active);
        assert!(t.stamps.lock().unwrap().is_empty());
    }
}
