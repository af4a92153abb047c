//! The cluster-wide series: every node's traffic seconds merged into one [`ClusterSecond`] per
//! wall-clock second — requests and errors summed, percentiles from the merged latency
//! histograms (exact across nodes: the nodes ship histogram buckets, not percentiles). A
//! second is shown once every node that answered has finished it; a node heard from late
//! still adds to the seconds it missed, as long as their histograms are kept. It must not
//! poll or know about nodes beyond their ids.

use super::snapshot::{ClusterSecond, HISTORY_SECS};
use crate::proto::{latency_histogram, NodeId, SecondCounts};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};

/// How many of the latest seconds keep their merged histogram, so a node heard from late can
/// still add to them: a little more than a node keeps (`node::seconds::KEEP`).
const MERGEABLE: usize = 130;

#[derive(Default)]
pub struct Series {
    /// Contiguous seconds, oldest first, at most `HISTORY_SECS`.
    slots: VecDeque<Slot>,
    /// The last second received from each node.
    received: BTreeMap<NodeId, u64>,
    /// Seconds up to here are shown.
    shown_through: u64,
}

struct Slot {
    second: ClusterSecond,
    latency: Option<Histogram<u64>>,
}

impl Slot {
    fn empty(sec: u64) -> Slot {
        Slot { second: ClusterSecond { sec, ..Default::default() }, latency: Some(latency_histogram()) }
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

impl Series {
    /// The second to ask `id` for seconds after.
    pub fn after(&self, id: NodeId) -> u64 {
        self.received.get(&id).copied().unwrap_or(0)
    }

    /// Adds the seconds one node completed.
    pub fn add(&mut self, id: NodeId, seconds: &[SecondCounts]) {
        for s in seconds {
            let last = self.received.entry(id).or_default();
            if s.sec <= *last {
                continue;
            }
            *last = s.sec;
            let Some(slot) = self.slot(s.sec) else { continue };
            let c = &mut slot.second;
            c.requests += s.requests;
            for (kind, n) in &s.errors {
                *c.errors_by_kind.entry(kind.clone()).or_default() += n;
                c.errors += n;
            }
            if let Some(h) = &mut slot.latency {
                s.add_latency_to(h);
                (c.p50_ms, c.p95_ms, c.p99_ms) = (ms(h, 0.5), ms(h, 0.95), ms(h, 0.99));
            }
        }
    }

    /// Shows every second through `sec` (the last one every answering node has finished),
    /// seconds without traffic included.
    pub fn complete_through(&mut self, sec: u64) {
        self.shown_through = self.shown_through.max(sec);
        match self.slots.front() {
            None => self.slots.push_back(Slot::empty(sec)),
            // Quiet seconds before the first with traffic are not history worth drawing.
            Some(first) if first.second.sec > sec => {}
            Some(_) => {
                let _ = self.slot(sec);
            }
        }
    }

    /// The seconds shown, oldest first.
    pub fn shown(&self) -> Vec<ClusterSecond> {
        self.slots.iter().take_while(|s| s.second.sec <= self.shown_through).map(|s| s.second.clone()).collect()
    }

    /// The slot of `sec`, made (with every second before it) if it is newer than the last;
    /// `None` for a second older than the history kept.
    fn slot(&mut self, sec: u64) -> Option<&mut Slot> {
        let first = match self.slots.front() {
            Some(s) => s.second.sec,
            None => {
                self.slots.push_back(Slot::empty(sec));
                sec
            }
        };
        // Another node's first answer may reach further back than the first one's did.
        if sec < first {
            if self.slots.len() + (first - sec) as usize > MERGEABLE {
                return None;
            }
            for older in (sec..first).rev() {
                self.slots.push_front(Slot::empty(older));
            }
        }
        while self.slots.back().is_some_and(|s| s.second.sec < sec) {
            let next = self.slots.back().map_or(sec, |s| s.second.sec + 1);
            self.slots.push_back(Slot::empty(next));
            if self.slots.len() > HISTORY_SECS {
                self.slots.pop_front();
            }
            // Old seconds are final: only their figures are kept.
            if let Some(old) = self.slots.len().checked_sub(MERGEABLE + 1).and_then(|i| self.slots.get_mut(i)) {
                old.latency = None;
            }
        }
        let first = self.slots.front()?.second.sec;
        self.slots.get_mut(sec.checked_sub(first)? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(sec: u64, latencies_ms: &[u64], errors: &[(&str, u64)]) -> SecondCounts {
        let mut h = latency_histogram();
        for ms in latencies_ms {
            h.record(ms * 1000).unwrap();
        }
        SecondCounts {
            sec,
            requests: latencies_ms.len() as u64,
            errors: errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            latency: crate::proto::buckets(&h),
        }
    }

    #[test]
    fn nodes_add_up_per_second_and_percentiles_come_from_the_merged_histograms() {
        let mut s = Series::default();
        s.add(1, &[second(100, &[1; 90], &[]), second(101, &[2; 10], &[("timeout", 2)])]);
        s.add(2, &[second(100, &[50; 10], &[("no_quorum", 1)])]);
        s.complete_through(101);
        let shown = s.shown();
        assert_eq!(
            shown.iter().map(|c| (c.sec, c.requests, c.errors)).collect::<Vec<_>>(),
            [(100, 100, 1), (101, 10, 2)]
        );
        assert!((shown[0].p50_ms - 1.0).abs() < 0.02, "{:?}", shown[0]);
        assert!((shown[0].p99_ms - 50.0).abs() < 0.5, "node 2's slow tail shows: {:?}", shown[0]);
        assert_eq!(shown[1].errors_by_kind["timeout"], 2);
        assert_eq!((s.after(1), s.after(2), s.after(3)), (101, 100, 0));
    }

    #[test]
    fn quiet_seconds_show_as_zero_and_unfinished_ones_wait() {
        let mut s = Series::default();
        s.add(1, &[second(10, &[1], &[])]);
        s.complete_through(9);
        assert!(s.shown().is_empty(), "second 10 is not finished everywhere yet");
        s.complete_through(13);
        let shown = s.shown();
        assert_eq!(shown.iter().map(|c| (c.sec, c.requests)).collect::<Vec<_>>(), [(10, 1), (11, 0), (12, 0), (13, 0)]);
    }

    #[test]
    fn a_node_heard_late_still_counts_and_repeats_do_not() {
        let mut s = Series::default();
        s.add(1, &[second(5, &[1; 3], &[])]);
        s.complete_through(6);
        s.add(2, &[second(5, &[1; 4], &[])]);
        s.add(2, &[second(5, &[1; 4], &[])]);
        assert_eq!(s.shown()[0].requests, 7);
        s.add(3, &[second(3, &[1; 2], &[])]);
        assert_eq!(s.shown().iter().map(|c| (c.sec, c.requests)).collect::<Vec<_>>(), [(3, 2), (4, 0), (5, 7), (6, 0)]);
    }

    #[test]
    fn history_is_bounded() {
        let mut s = Series::default();
        for sec in 0..(HISTORY_SECS as u64 + 50) {
            s.add(1, &[second(sec, &[1], &[])]);
        }
        s.complete_through(HISTORY_SECS as u64 + 49);
        let shown = s.shown();
        assert_eq!(shown.len(), HISTORY_SECS);
        assert_eq!(shown[0].sec, 50);
        assert!(shown.iter().all(|c| c.requests == 1));
    }
}
