//! What the live model knows at one moment: the data every view draws (the terminal dashboard,
//! the web page, `view()` in Rhai). Plain data with JSON names as in `status`; no I/O and no
//! drawing here.

use serde::Serialize;
use std::collections::BTreeMap;

/// How much history the model keeps, in seconds (SPEC §7: at least 10 minutes).
pub const HISTORY_SECS: usize = 600;

/// The model at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct View {
    /// Wall clock of this snapshot, ms since the Unix epoch.
    pub at_ms: u64,
    /// Since the model started watching.
    pub elapsed_ms: u64,
    /// How many times per second the model refreshed over the last second.
    pub refresh_hz: f64,
    /// One per node of the cluster, in id order.
    pub nodes: Vec<NodeView>,
    /// The leader most nodes agree on, if any.
    pub leader: Option<String>,
    pub term: u64,
    /// Cluster-wide client traffic, one per wall-clock second, oldest first, at most
    /// `HISTORY_SECS`, without gaps; a second appears once every answering node finished it.
    pub series: Vec<ClusterSecond>,
    /// Latest events from every node, oldest first (at most a few hundred).
    pub events: Vec<ViewEvent>,
    /// Events by kind: what the nodes still held when the model first asked, then everything
    /// since (including the model's own `down`/`up`/`paused`/`crashed`).
    pub events_by_kind: BTreeMap<String, u64>,
    /// Fault periods (open ones have no end), oldest first.
    pub faults: Vec<Period>,
    /// Elections, crashes and restarts, oldest first.
    pub marks: Vec<TimelineMark>,
    /// Background scenarios of this dsh process.
    pub scenarios: Vec<ScenarioRow>,
    /// The `load` this dsh process runs, if any.
    pub load: Option<LoadPanel>,
    /// The latest `check` of this dsh process: running, or judged until the next one starts.
    pub check: Option<CheckPanel>,
}

/// One node as the model last saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeView {
    /// `n1`.
    pub id: String,
    pub address: String,
    /// `up`, `down` (stopped answering), `paused` (its process is stopped).
    pub state: String,
    /// `leader`, `follower`, `candidate`, `learner`, or `unknown` when down.
    pub role: String,
    pub term: u64,
    pub leader: Option<String>,
    pub last_log_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Entries behind the leader's last log index (0 on the leader).
    pub lag: u64,
    pub keys: u64,
    pub bytes_on_disk: u64,
    /// Active faults on this node, as `faults` shows them (`cut n2`, `slow 100ms`, `paused`).
    pub faults: Vec<String>,
    /// Replication round trip from the leader to this node, p50 in ms (none on the leader).
    pub rtt_ms: Option<f64>,
    /// When the model last heard from it, ms since the Unix epoch.
    pub seen_ms: u64,
    /// How long its process has served (0 while it does not answer).
    pub uptime_ms: u64,
    /// How long its last start took, from process start to serving.
    pub last_recovery_ms: u64,
}

/// One second of the whole cluster, from the nodes' own counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterSecond {
    /// The second, as Unix seconds.
    pub sec: u64,
    pub requests: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ViewEvent {
    pub at_ms: u64,
    pub node: String,
    pub kind: String,
    pub text: String,
}

/// What kind of fault a period was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Crash,
    Pause,
    Partition,
    Slow,
}

/// A fault on the timeline: from `start_ms` until `end_ms` (open while `None`).
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub kind: Fault,
    /// The nodes it touched.
    pub nodes: Vec<String>,
    pub start_ms: u64,
    pub end_ms: Option<u64>,
}

/// A moment on the timeline: `election` (a new leader, with `node` and `term`), `crash`, `restart`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineMark {
    pub at_ms: u64,
    pub kind: String,
    pub node: String,
    pub term: Option<u64>,
}

/// A background scenario's live line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioRow {
    pub name: String,
    pub running: bool,
    pub ops_per_sec: f64,
    pub errors: u64,
    pub counters: BTreeMap<String, i64>,
    /// Every invariant check held so far; `None` before the first.
    pub held: Option<bool>,
}

/// A running `load` (seed 004's panel).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadPanel {
    pub op: String,
    /// 0.0–1.0 of its count or duration.
    pub progress: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub errors: u64,
    pub p99_ms: f64,
    pub elapsed_ms: u64,
}

/// A `check` (SPEC §8) as it runs, then its verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckPanel {
    /// `kv`, `chat`, `locks`, `queue`.
    pub what: String,
    /// The nemesis's fault kinds, if one runs with it.
    pub nemesis: Option<String>,
    /// Still running (no verdict yet).
    pub running: bool,
    /// 0.0–1.0 of its duration.
    pub progress: f64,
    pub elapsed_ms: u64,
    /// Operations by outcome so far: done, certainly without effect, maybe done.
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Once judged: whether the history held its property…
    pub valid: Option<bool>,
    /// …in one line.
    pub verdict: Option<String>,
}
