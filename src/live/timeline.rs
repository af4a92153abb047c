//! What happened, in order: the nodes' events (a bounded ring, and counts by kind), fault
//! periods (open while the fault is on, closed when it is gone) and marks (a new leader or
//! term, a node going down or coming back). It judges from one round's node views at a time;
//! it must not poll, and what it is fed is all it knows.

use super::snapshot::{Fault, NodeView, Period, TimelineMark, ViewEvent};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Recent events kept for the views.
pub const EVENTS_KEPT: usize = 300;
/// Marks and closed periods kept (a long demo with a fault every few seconds still fits).
pub const MARKS_KEPT: usize = 500;

#[derive(Default)]
pub struct Timeline {
    events: VecDeque<ViewEvent>,
    by_kind: BTreeMap<String, u64>,
    periods: VecDeque<Period>,
    marks: VecDeque<TimelineMark>,
    /// The leader and term last seen with a leader.
    leader: Option<(String, u64)>,
    /// Each node's state last round.
    states: BTreeMap<String, String>,
}

/// A fault is one period per node for process faults (each crash is its own story) and one for
/// the cluster for network faults (a partition touches both sides at once).
fn key(p: &Period) -> (Fault, Option<&str>) {
    match p.kind {
        Fault::Crash | Fault::Pause => (p.kind, p.nodes.first().map(String::as_str)),
        Fault::Partition | Fault::Slow => (p.kind, None),
    }
}

impl Timeline {
    /// Takes events in (oldest first within a node); the ring is kept in time order.
    pub fn events(&mut self, new: Vec<ViewEvent>) {
        if new.is_empty() {
            return;
        }
        for e in new {
            *self.by_kind.entry(e.kind.clone()).or_default() += 1;
            // Nodes answer in any order: an event goes after the last one not later than it.
            let at = self.events.iter().rposition(|x| x.at_ms <= e.at_ms).map_or(0, |i| i + 1);
            self.events.insert(at, e);
        }
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
    }

    /// Judges one round: marks for leader and state changes, fault periods opened and closed.
    pub fn observe(&mut self, at_ms: u64, nodes: &[NodeView], leader: Option<&str>, term: u64) {
        let first = self.states.is_empty();
        for n in nodes {
            let before = self.states.insert(n.id.clone(), n.state.clone());
            let kind = match (before.as_deref(), n.state.as_str()) {
                (Some("up" | "paused"), "down") => "crash",
                (Some("down"), "up") => "restart",
                _ => continue,
            };
            self.mark(TimelineMark { at_ms, kind: kind.into(), node: n.id.clone(), term: None });
        }
        if let Some(l) = leader {
            let now = (l.to_string(), term);
            if self.leader.as_ref() != Some(&now) {
                if !first {
                    self.mark(TimelineMark { at_ms, kind: "election".into(), node: now.0.clone(), term: Some(term) });
                }
                self.leader = Some(now);
            }
        }
        self.periods(at_ms, nodes);
    }

    fn mark(&mut self, m: TimelineMark) {
        self.marks.push_back(m);
        if self.marks.len() > MARKS_KEPT {
            self.marks.pop_front();
        }
    }

    fn periods(&mut self, at_ms: u64, nodes: &[NodeView]) {
        let mut want: Vec<(Fault, Vec<String>)> = Vec::new();
        let (mut cut, mut slow) = (BTreeSet::new(), BTreeSet::new());
        for n in nodes {
            match n.state.as_str() {
                "down" => want.push((Fault::Crash, vec![n.id.clone()])),
                "paused" => want.push((Fault::Pause, vec![n.id.clone()])),
                _ => {}
            }
            if n.faults.iter().any(|f| f.starts_with("cut")) {
                cut.insert(n.id.clone());
            }
            if n.faults.iter().any(|f| f.starts_with("slow")) {
                slow.insert(n.id.clone());
            }
        }
        for (kind, set) in [(Fault::Partition, cut), (Fault::Slow, slow)] {
            if !set.is_empty() {
                want.push((kind, set.into_iter().collect()));
            }
        }
        // Close what is no longer on.
        for p in self.periods.iter_mut().filter(|p| p.end_ms.is_none()) {
            let on = want.iter().any(|(kind, nodes)| {
                key(p) == key(&Period { kind: *kind, nodes: nodes.clone(), start_ms: 0, end_ms: None })
            });
            if !on {
                p.end_ms = Some(at_ms);
            }
        }
        // Open what is new; a network fault that spreads to more nodes stays one period.
        for (kind, nodes) in want {
            let new = Period { kind, nodes, start_ms: at_ms, end_ms: None };
            match self.periods.iter_mut().find(|p| p.end_ms.is_none() && key(p) == key(&new)) {
                Some(open) => {
                    for n in new.nodes {
                        if !open.nodes.contains(&n) {
                            open.nodes.push(n);
                        }
                    }
                }
                None => self.periods.push_back(new),
            }
        }
        while self.periods.len() > MARKS_KEPT {
            match self.periods.iter().position(|p| p.end_ms.is_some()) {
                Some(i) => drop(self.periods.remove(i)),
                None => break,
            }
        }
    }

    pub fn recent_events(&self) -> Vec<ViewEvent> {
        self.events.iter().cloned().collect()
    }

    pub fn by_kind(&self) -> BTreeMap<String, u64> {
        self.by_kind.clone()
    }

    /// Fault periods by start, open ones included.
    pub fn faults(&self) -> Vec<Period> {
        self.periods.iter().cloned().collect()
    }

    pub fn marks(&self) -> Vec<TimelineMark> {
        self.marks.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, state: &str, faults: &[&str]) -> NodeView {
        NodeView {
            id: id.into(),
            state: state.into(),
            faults: faults.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    fn ev(at_ms: u64, kind: &str) -> ViewEvent {
        ViewEvent { at_ms, node: "n1".into(), kind: kind.into(), text: String::new() }
    }

    #[test]
    fn a_crash_and_a_new_leader_leave_marks_and_a_closed_period() {
        let mut t = Timeline::default();
        let up = [node("n1", "up", &[]), node("n2", "up", &[])];
        t.observe(1000, &up, Some("n1"), 1);
        assert!(t.marks().is_empty(), "what was there when the model started is no news");
        t.observe(2000, &[node("n1", "down", &[]), node("n2", "up", &[])], None, 1);
        t.observe(3000, &[node("n1", "down", &[]), node("n2", "up", &[])], Some("n2"), 2);
        t.observe(4000, &up, Some("n2"), 2);
        let marks: Vec<_> = t.marks().iter().map(|m| (m.at_ms, m.kind.clone(), m.node.clone(), m.term)).collect();
        assert_eq!(
            marks,
            [
                (2000, "crash".into(), "n1".into(), None),
                (3000, "election".into(), "n2".into(), Some(2)),
                (4000, "restart".into(), "n1".into(), None)
            ]
        );
        let f = t.faults();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].nodes.clone(), f[0].start_ms, f[0].end_ms),
            (Fault::Crash, vec!["n1".to_string()], 2000, Some(4000))
        );
    }

    #[test]
    fn a_partition_is_one_period_while_any_node_has_a_cut() {
        let mut t = Timeline::default();
        t.observe(0, &[node("n1", "up", &[]), node("n2", "up", &[])], Some("n1"), 1);
        t.observe(100, &[node("n1", "up", &["cut n2"]), node("n2", "up", &[])], Some("n1"), 1);
        t.observe(
            200,
            &[node("n1", "up", &["cut n2"]), node("n2", "up", &["cut n1", "slow →all +100ms"])],
            Some("n1"),
            1,
        );
        let open = t.faults();
        assert_eq!(open.len(), 2);
        assert_eq!((open[0].kind, open[0].nodes.len(), open[0].end_ms), (Fault::Partition, 2, None));
        assert_eq!((open[1].kind, open[1].start_ms), (Fault::Slow, 200));
        t.observe(300, &[node("n1", "up", &[]), node("n2", "up", &[])], Some("n1"), 1);
        assert!(t.faults().iter().all(|p| p.end_ms == Some(300)), "{:?}", t.faults());
        t.observe(400, &[node("n1", "paused", &[]), node("n2", "up", &[])], Some("n1"), 1);
        assert_eq!(t.faults().last().map(|p| (p.kind, p.end_ms)), Some((Fault::Pause, None)));
    }

    #[test]
    fn events_stay_in_time_order_bounded_and_counted() {
        let mut t = Timeline::default();
        t.events(vec![ev(10, "leader"), ev(30, "fault")]);
        t.events(vec![ev(20, "election")]);
        assert_eq!(t.recent_events().iter().map(|e| e.at_ms).collect::<Vec<_>>(), [10, 20, 30]);
        t.events((0..EVENTS_KEPT as u64).map(|i| ev(100 + i, "fault")).collect());
        assert_eq!(t.recent_events().len(), EVENTS_KEPT);
        assert_eq!(t.recent_events()[0].at_ms, 100);
        assert_eq!(t.by_kind()["fault"], EVENTS_KEPT as u64 + 1);
    }
}
