//! Per-node bookkeeping between rounds: where the model is in each node's event record (a
//! restarted node starts a new one), what it last said about itself (a silent node is drawn
//! where it was last seen), its last faults and metrics, and what one round's answers make of
//! it: a [`NodeView`] and the events it brought. It must not poll or keep cluster-wide history
//! (that is `series` and `timeline`).

use super::poll::{Cursor, Polled, NODE_BUDGET, SILENT_BUDGET};
use super::snapshot::{NodeView, ViewEvent};
use crate::proto::{node_name, Event, Faults, NodeId, NodeMetrics, NodeStatus};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Book {
    nodes: BTreeMap<NodeId, NodeBook>,
}

#[derive(Default)]
struct NodeBook {
    /// The node's run (`boot_ms` of its event record) and the last event taken from it.
    boot: Option<u64>,
    events_after: u64,
    status: Option<NodeStatus>,
    faults: Vec<String>,
    metrics: Option<NodeMetrics>,
    seen_ms: u64,
    state: Option<String>,
}

/// `cut n2,n3` and `slow →n2 +100ms ±20ms 5%`, as `faults` shows them.
pub fn describe(f: &Faults) -> Vec<String> {
    let mut out = Vec::new();
    if !f.cut.is_empty() {
        out.push(format!("cut {}", f.cut.iter().map(|&p| node_name(p)).collect::<Vec<_>>().join(",")));
    }
    for s in &f.slow {
        let to = s.to.map_or("all".into(), node_name);
        out.push(format!("slow →{to} +{}ms ±{}ms {}%", s.delay_ms, s.jitter_ms, s.loss_pct));
    }
    out
}

fn view_event(e: &Event) -> ViewEvent {
    ViewEvent { at_ms: e.at_ms, node: node_name(e.node), kind: e.kind.clone(), text: e.text.clone() }
}

impl Book {
    /// Where to ask `id` from this round.
    pub fn cursor(&self, id: NodeId, seconds_after: u64, metrics: bool) -> Cursor {
        let b = self.nodes.get(&id);
        let events_after = b.map_or(0, |b| b.events_after);
        let silent = b.and_then(|b| b.state.as_deref()).is_some_and(|s| s != "up");
        let budget = if silent { SILENT_BUDGET } else { NODE_BUDGET };
        Cursor { seconds_after, events_after, metrics, budget }
    }

    /// The latest metrics each node gave.
    pub fn metrics(&self, id: NodeId) -> Option<&NodeMetrics> {
        self.nodes.get(&id)?.metrics.as_ref()
    }

    /// Takes one node's answers of a round (`at_ms`): its view, and the events it brought
    /// (its own, and the model's word when it stopped or started answering).
    pub fn take(&mut self, p: Polled, at_ms: u64) -> (NodeView, Vec<ViewEvent>) {
        let b = self.nodes.entry(p.id).or_default();
        let name = node_name(p.id);
        let state = match (p.process.as_deref(), &p.status) {
            (Some("paused"), _) => "paused",
            (Some("down"), _) | (_, None) => "down",
            _ => "up",
        };
        let mut events = Vec::new();
        if let Some((boot, list)) = p.events {
            match b.boot {
                // A restarted node numbers from 1 again and answered only what came after the
                // old position: ask again from its beginning next round.
                Some(old) if old != boot => b.events_after = 0,
                _ => {
                    let from = b.events_after;
                    events.extend(list.iter().filter(|e| e.seq > from).map(view_event));
                    b.events_after = list.last().map_or(from, |e| e.seq.max(from));
                }
            }
            b.boot = Some(boot);
        }
        if let Some(before) = b.state.as_deref().filter(|s| *s != state) {
            let (kind, text) = match (before, state) {
                (_, "paused") => ("paused", "paused (SIGSTOP): alive but silent"),
                (_, "down") if p.process.as_deref() == Some("down") => ("crashed", "process gone: stopped answering"),
                (_, "down") => ("down", "stopped answering"),
                ("paused", _) => ("up", "resumed: answers again"),
                _ => ("up", "answers again"),
            };
            events.push(ViewEvent { at_ms, node: name.clone(), kind: kind.into(), text: text.into() });
        }
        b.state = Some(state.into());
        if let Some(s) = p.status {
            b.status = Some(s);
            b.seen_ms = at_ms;
        }
        match (p.faults, state) {
            (Some(f), _) => b.faults = describe(&f),
            // A crashed node forgets its faults; a paused one still has them when it resumes.
            (None, "down") => b.faults.clear(),
            _ => {}
        }
        if p.metrics.is_some() || state == "down" {
            b.metrics = p.metrics;
        }
        let mut faults = b.faults.clone();
        if state == "paused" {
            faults.push("paused".into());
        }
        let up = state == "up";
        let view = match &b.status {
            Some(s) => NodeView {
                id: name,
                address: s.addr.clone(),
                state: state.into(),
                // A silent node's role is not known; the rest is where it was last seen.
                role: if up { s.role.clone() } else { "unknown".into() },
                term: s.term,
                leader: s.leader.filter(|_| up).map(node_name),
                last_log_index: s.last_log_index,
                commit_index: s.commit_index,
                applied_index: s.applied_index,
                keys: s.keys,
                bytes_on_disk: s.bytes_on_disk,
                faults,
                seen_ms: b.seen_ms,
                uptime_ms: if up { s.uptime_ms } else { 0 },
                last_recovery_ms: s.recovery_ms,
                ..NodeView::default()
            },
            None => NodeView { id: name, state: state.into(), role: "unknown".into(), faults, ..NodeView::default() },
        };
        (view, events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Slow;

    fn status(id: NodeId, role: &str, last: u64) -> NodeStatus {
        NodeStatus { id, role: role.into(), term: 2, last_log_index: last, uptime_ms: 5, ..Default::default() }
    }

    fn event(seq: u64) -> Event {
        Event { seq, at_ms: seq * 10, node: 1, kind: "leader".into(), text: String::new() }
    }

    fn answered(id: NodeId, boot: u64, events: Vec<Event>) -> Polled {
        Polled {
            id,
            status: Some(status(id, "follower", 7)),
            events: Some((boot, events)),
            faults: Some(Faults::default()),
            ..Default::default()
        }
    }

    #[test]
    fn events_are_taken_once_and_a_restart_starts_the_record_again() {
        let mut b = Book::default();
        let (_, e) = b.take(answered(1, 100, vec![event(1), event(2)]), 0);
        assert_eq!(e.len(), 2);
        assert_eq!(b.cursor(1, 0, false).events_after, 2);
        let (_, e) = b.take(answered(1, 100, vec![event(2), event(3)]), 0);
        assert_eq!(e.len(), 1, "event 2 was taken already");
        let (_, e) = b.take(answered(1, 200, vec![event(4)]), 0);
        assert!(e.is_empty(), "a new run is read from its beginning, next round");
        assert_eq!(b.cursor(1, 0, false).events_after, 0);
        let (_, e) = b.take(answered(1, 200, vec![event(1)]), 0);
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn a_silent_node_is_down_where_it_was_last_seen() {
        let mut b = Book::default();
        let (v, _) = b.take(answered(2, 1, vec![]), 1000);
        assert_eq!((v.state.as_str(), v.role.as_str(), v.seen_ms), ("up", "follower", 1000));
        assert_eq!(b.cursor(2, 0, false).budget, NODE_BUDGET);
        let (v, e) = b.take(Polled { id: 2, ..Default::default() }, 2000);
        assert_eq!((v.state.as_str(), v.role.as_str(), v.last_log_index, v.seen_ms), ("down", "unknown", 7, 1000));
        // While it is silent it costs each round only the short budget.
        assert_eq!(b.cursor(2, 0, false).budget, SILENT_BUDGET);
        assert_eq!(e.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["down"]);
        let (v, e) = b.take(Polled { id: 2, process: Some("paused".into()), ..Default::default() }, 3000);
        assert_eq!((v.state.as_str(), v.faults.clone()), ("paused", vec!["paused".to_string()]));
        assert_eq!(e[0].kind, "paused");
        let (v, e) = b.take(answered(2, 1, vec![]), 4000);
        assert_eq!((v.state.as_str(), e[0].text.as_str()), ("up", "resumed: answers again"));
        assert_eq!(b.cursor(2, 0, false).budget, NODE_BUDGET);
    }

    #[test]
    fn faults_read_as_the_faults_command_shows_them() {
        let f = Faults { cut: vec![2, 3], slow: vec![Slow { to: None, delay_ms: 100, jitter_ms: 20, loss_pct: 5.0 }] };
        assert_eq!(describe(&f), ["cut n2,n3", "slow →all +100ms ±20ms 5%"]);
    }
}
