//! The live model's engine: one task per dsh process that polls every node several times a
//! second and publishes a fresh [`View`] to whoever watches (the dashboard, the web page,
//! `view()` in Rhai, `status --follow`). Each round asks every node at once (`poll`), each
//! within its budget, and feeds the answers to the bookkeeping (`book`), the series (`series`)
//! and the timeline (`timeline`). It owns the round and its timing; it must not draw, and it
//! sees what this dsh process runs (process states, scenarios, a load) only through
//! [`Sources`], which the shell implements.

use super::book::Book;
use super::poll::{poll_node, Polled};
use super::series::Series;
use super::snapshot::{CheckPanel, LoadPanel, NodeView, ScenarioRow, View};
use super::timeline::Timeline;
use crate::client::Client;
use crate::proto::{node_name, NodeId};
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the model refreshes (SPEC §7: at least 4 times a second).
pub const REFRESH: Duration = Duration::from_millis(200);
/// Metrics (replication round trips over a 5 s window) are asked for every this many rounds.
const METRICS_EVERY: u64 = 5;

/// What this dsh process knows that the nodes do not.
pub trait Sources: Send + Sync {
    /// `up`, `down` or `paused` when this machine or a supervisor can tell; `None` otherwise.
    fn process_state(&self, id: NodeId) -> BoxFuture<'_, Option<String>>;
    /// Background scenarios started here.
    fn scenarios(&self) -> Vec<ScenarioRow>;
    /// The `load` running here, if any.
    fn load(&self) -> Option<LoadPanel>;
    /// The latest `check` run here, running or judged.
    fn check(&self) -> Option<CheckPanel>;
}

/// The running model. Dropping the last handle stops its task.
pub struct Model {
    views: watch::Receiver<Arc<View>>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Model {
    /// Starts polling on the current tokio runtime.
    pub fn start(client: Arc<Client>, sources: Arc<dyn Sources>) -> Arc<Model> {
        let (tx, views) = watch::channel(Arc::new(View::default()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(client, sources, tx, stop.clone()));
        Arc::new(Model { views, stop, task: std::sync::Mutex::new(Some(task)) })
    }

    /// Every new view as it is published.
    pub fn subscribe(&self) -> watch::Receiver<Arc<View>> {
        self.views.clone()
    }

    /// The latest view.
    pub fn snapshot(&self) -> Arc<View> {
        self.views.borrow().clone()
    }

    /// Stops the task and waits for it.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Everything the model remembers between rounds.
#[derive(Default)]
struct State {
    book: Book,
    series: Series,
    timeline: Timeline,
    round: u64,
}

async fn run(client: Arc<Client>, sources: Arc<dyn Sources>, tx: watch::Sender<Arc<View>>, stop: CancellationToken) {
    let started = Instant::now();
    let mut ticks = tokio::time::interval(REFRESH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut refreshes: VecDeque<Instant> = Default::default();
    let mut state = State::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let round = tokio::select! {
            _ = stop.cancelled() => return,
            r = poll_all(&client, sources.as_ref(), &state) => r,
        };
        let mut view = state.take(round, crate::proto::wall_ms());
        view.scenarios = sources.scenarios();
        view.load = sources.load();
        view.check = sources.check();
        let now = Instant::now();
        refreshes.push_back(now);
        while refreshes.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1)) {
            refreshes.pop_front();
        }
        view.elapsed_ms = started.elapsed().as_millis() as u64;
        view.refresh_hz = refreshes.len() as f64;
        if tx.send(Arc::new(view)).is_err() {
            return;
        }
    }
}

/// One round: every node at once, each within its budget.
async fn poll_all(client: &Client, sources: &dyn Sources, state: &State) -> Vec<Polled> {
    let metrics = state.round.is_multiple_of(METRICS_EVERY);
    let polls = client.node_ids().into_iter().map(|id| {
        let cursor = state.book.cursor(id, state.series.after(id), metrics);
        poll_node(client, sources, id, cursor)
    });
    futures::future::join_all(polls).await
}

impl State {
    /// Folds one round's answers into the model and draws the view of this moment.
    fn take(&mut self, round: Vec<Polled>, at_ms: u64) -> View {
        self.round += 1;
        let mut finished: Option<u64> = None;
        let mut nodes = Vec::with_capacity(round.len());
        let mut events = Vec::new();
        for mut p in round {
            if let Some((now_sec, seconds)) = p.seconds.take() {
                self.series.add(p.id, &seconds);
                let done = now_sec.saturating_sub(1);
                finished = Some(finished.map_or(done, |f| f.min(done)));
            }
            let (view, new) = self.book.take(p, at_ms);
            nodes.push(view);
            events.extend(new);
        }
        // With no node answering, the quiet seconds still pass.
        self.series.complete_through(finished.unwrap_or((at_ms / 1000).saturating_sub(1)));
        self.fill_in(&mut nodes);
        let leader = nodes.iter().filter(|n| n.role == "leader").max_by_key(|n| n.term).map(|n| n.id.clone());
        let term = nodes.iter().filter(|n| n.state == "up").map(|n| n.term).max().unwrap_or(0);
        self.timeline.events(events);
        self.timeline.observe(at_ms, &nodes, leader.as_deref(), term);
        View {
            at_ms,
            nodes,
            leader,
            term,
            series: self.series.shown(),
            events: self.timeline.recent_events(),
            events_by_kind: self.timeline.by_kind(),
            faults: self.timeline.faults(),
            marks: self.timeline.marks(),
            ..View::default()
        }
    }

    /// What one node's view needs from another's: lag behind the leader's log, and the
    /// replication round trip the leader measures to each follower.
    fn fill_in(&self, nodes: &mut [NodeView]) {
        let leader = nodes.iter().filter(|n| n.role == "leader").max_by_key(|n| n.term);
        let leader_last = leader.map(|l| l.last_log_index);
        let peers = leader
            .and_then(|l| crate::proto::parse_node(&l.id).ok())
            .and_then(|id| self.book.metrics(id))
            .map(|m| m.peers.iter().map(|p| (node_name(p.id), p.rtt_p50_ms)).collect::<Vec<_>>())
            .unwrap_or_default();
        for n in nodes {
            n.lag = leader_last.map_or(0, |l| l.saturating_sub(n.last_log_index));
            n.rtt_ms = peers.iter().find(|(id, _)| *id == n.id).map(|(_, ms)| *ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Event, Faults, NodeMetrics, NodeStatus, PeerMetrics, SecondCounts};

    fn answered(id: NodeId, role: &str, term: u64, last: u64, now_sec: u64, seconds: Vec<SecondCounts>) -> Polled {
        Polled {
            id,
            status: Some(NodeStatus { id, role: role.into(), term, last_log_index: last, ..Default::default() }),
            seconds: Some((now_sec, seconds)),
            events: Some((1, vec![])),
            faults: Some(Faults::default()),
            metrics: None,
            process: Some("up".into()),
        }
    }

    fn sec(sec: u64, requests: u64) -> SecondCounts {
        let mut h = crate::proto::latency_histogram();
        h.record_n(1000, requests).unwrap();
        SecondCounts { sec, requests, latency: crate::proto::buckets(&h), ..Default::default() }
    }

    #[test]
    fn a_round_makes_one_view_with_lag_rtt_series_and_marks() {
        let mut s = State::default();
        let mut leader = answered(1, "leader", 3, 10, 101, vec![sec(100, 5)]);
        leader.metrics = Some(NodeMetrics {
            peers: vec![PeerMetrics { id: 2, rtt_p50_ms: 0.4, ..Default::default() }],
            ..Default::default()
        });
        leader.events = Some((1, vec![Event { seq: 1, at_ms: 5, node: 1, kind: "leader".into(), text: "".into() }]));
        let round = vec![
            leader,
            answered(2, "follower", 3, 7, 101, vec![sec(100, 2)]),
            answered(3, "follower", 3, 10, 100, vec![]),
        ];
        let v = s.take(round, 100_500);
        assert_eq!(v.leader.as_deref(), Some("n1"));
        assert_eq!(v.nodes.iter().map(|n| n.lag).collect::<Vec<_>>(), [0, 3, 0]);
        assert_eq!(v.nodes[1].rtt_ms, Some(0.4));
        assert!(v.series.is_empty(), "n3 has not finished second 100 yet");
        assert_eq!(v.events_by_kind["leader"], 1);

        let mut n1 = answered(1, "leader", 3, 10, 102, vec![]);
        n1.process = Some("down".into());
        n1.status = None;
        let round =
            vec![n1, answered(2, "leader", 4, 11, 102, vec![]), answered(3, "follower", 4, 11, 102, vec![sec(101, 1)])];
        let v = s.take(round, 101_700);
        assert_eq!(v.nodes[0].state, "down");
        assert_eq!((v.leader.as_deref(), v.term), (Some("n2"), 4));
        assert_eq!(v.series.iter().map(|c| (c.sec, c.requests)).collect::<Vec<_>>(), [(100, 7), (101, 1)]);
        let marks: Vec<_> = v.marks.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(marks, ["crash", "election"]);
        assert_eq!(v.faults.len(), 1);
        assert!(v.events.iter().any(|e| e.kind == "crashed" && e.node == "n1"));
    }
}
