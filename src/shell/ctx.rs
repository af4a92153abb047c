//! What a command runs against: the cluster client, the node processes it may act on, and how
//! output is shown.

use super::output::Style;
use super::stage::{Print, Silent, Stage};
use super::{Front, Interrupt, Scenarios};
use crate::check::{Hands, Nemesis};
use crate::client::{Cache, Client};
use crate::cluster::LocalCluster;
use crate::error::Result;
use crate::live::web::WebServer;
use crate::live::{CheckPanel, LoadPanel, Model, ScenarioRow, Sources};
use crate::proto::{node_name, NodeId, ProcessAction, ProcessInfo};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex, OnceLock};

pub struct Ctx {
    pub client: Arc<Client>,
    pub style: Style,
    /// The node processes this machine runs, when the cluster is the local one.
    pub local: Option<Local>,
    /// Print what happens while a command runs (followed events, progress) as it happens:
    /// text output on a terminal or pipe, not `--json` or `-q`.
    pub live: bool,
    /// This shell's coherent cache (`cache get`).
    pub cache: Cache,
    /// Scenarios started from this shell (`scenario start`), shared with every `background()`.
    pub scenarios: Arc<dyn Scenarios>,
    /// Ctrl-C for what runs in the foreground of this context.
    pub interrupt: Interrupt,
    /// Where `say`, `step`, `note` and checks go, and how a talk is paced.
    pub stage: Arc<Stage>,
    /// The interactive front end this context serves, once it has put itself here (`history`,
    /// `events on`); empty for `-c`, pipes and background work.
    pub front: OnceLock<Arc<dyn Front>>,
    /// The loads running in this process (`load`), shared with every derived context, for the
    /// live model's load panel.
    pub loads: crate::load::Loads,
    /// The latest `check` of this process, running or judged, likewise shared, for the live
    /// model's check panel.
    pub checks: crate::check::Checks,
    /// The live model (SPEC §7), started by the first view that asks for it and shared with
    /// every context derived from this one.
    model: Arc<OnceLock<Arc<Model>>>,
    /// The page `web` serves in the background (at the prompt, in a story), shared likewise so
    /// `web stop` from any of them reaches it.
    pub web: Arc<Mutex<Option<Arc<WebServer>>>>,
    /// The nemesis `nemesis start` left running, shared with every derived context.
    pub nemesis: Arc<tokio::sync::Mutex<Option<Nemesis>>>,
}

/// The local cluster's processes, for the fault commands.
#[derive(Clone)]
pub struct Local {
    pub cluster: LocalCluster,
    /// Ephemeral nodes die with this process; restarted ones must too.
    pub tied_to_parent: bool,
}

impl Ctx {
    pub fn new(
        client: Arc<Client>,
        style: Style,
        local: Option<Local>,
        live: bool,
        scenarios: Arc<dyn Scenarios>,
    ) -> Self {
        let cache = Cache::new(client.clone());
        let stage = match live {
            true => Stage::new(Arc::new(Print { bold: style == Style::Terminal })),
            false => Stage::new(Arc::new(Silent)),
        };
        let (interrupt, stage, front) = (Interrupt::default(), Arc::new(stage), OnceLock::new());
        let (model, loads, web, nemesis) = (Arc::default(), Default::default(), Arc::default(), Arc::default());
        let checks = Default::default();
        Ctx {
            cache,
            client,
            style,
            local,
            live,
            scenarios,
            interrupt,
            stage,
            front,
            loads,
            checks,
            model,
            web,
            nemesis,
        }
    }

    /// A context for a script on another thread (a scenario): the same client, processes and
    /// scenarios, its own cache and interrupt (Ctrl-C at the prompt does not reach it), and
    /// nothing printed live.
    pub fn background(&self) -> Ctx {
        let mut ctx = self.on_stage(Stage::new(Arc::new(Silent)));
        ctx.live = false;
        ctx.interrupt = Interrupt::default();
        // A background script has no prompt to clear or leave.
        ctx.front = OnceLock::new();
        ctx
    }

    /// The same context (cluster, processes, scenarios, Ctrl-C) on another stage: a story's
    /// pacing and tally, or a plugin's stats.
    pub fn on_stage(&self, stage: Stage) -> Ctx {
        Ctx {
            cache: Cache::new(self.client.clone()),
            client: self.client.clone(),
            style: self.style,
            local: self.local.clone(),
            live: self.live,
            scenarios: self.scenarios.clone(),
            interrupt: self.interrupt.clone(),
            stage: Arc::new(stage),
            front: self.front.clone(),
            loads: self.loads.clone(),
            checks: self.checks.clone(),
            model: self.model.clone(),
            web: self.web.clone(),
            nemesis: self.nemesis.clone(),
        }
    }

    /// The live model of this process, started on first use (on the current tokio runtime).
    pub fn model(&self) -> Arc<Model> {
        self.model
            .get_or_init(|| {
                let sources = CtxSources {
                    client: self.client.clone(),
                    local: self.local.clone(),
                    scenarios: self.scenarios.clone(),
                    loads: self.loads.clone(),
                    checks: self.checks.clone(),
                };
                Model::start(self.client.clone(), Arc::new(sources))
            })
            .clone()
    }

    /// Acts on a node process: directly when this machine runs the local cluster, otherwise
    /// through the node's supervisor.
    pub async fn process(&self, id: NodeId, action: ProcessAction) -> Result<ProcessInfo> {
        act(&self.client, self.local.as_ref(), id, action).await
    }

    /// The fault commands' process actions, lent to the check layer's nemesis.
    pub fn hands(&self) -> Arc<dyn Hands> {
        Arc::new(CtxHands { client: self.client.clone(), local: self.local.clone() })
    }

    /// The process state of a node, when someone here can tell (the local cluster or the
    /// node's supervisor); `None` otherwise.
    pub async fn process_state(&self, id: NodeId) -> Option<ProcessInfo> {
        process_state(&self.client, self.local.as_ref(), id).await
    }
}

async fn act(client: &Client, local: Option<&Local>, id: NodeId, action: ProcessAction) -> Result<ProcessInfo> {
    match local {
        // Blocking (a restart waits until the node serves): off the runtime's threads.
        Some(l) => {
            let l = l.clone();
            tokio::task::spawn_blocking(move || l.cluster.act(&node_name(id), action, l.tied_to_parent))
                .await
                .map_err(|e| crate::error::Error::internal(e.to_string()))?
        }
        None => client.supervise(id, action).await,
    }
}

async fn process_state(client: &Client, local: Option<&Local>, id: NodeId) -> Option<ProcessInfo> {
    if local.is_none() && !client.has_supervisor(id) {
        return None;
    }
    act(client, local, id, ProcessAction::State).await.ok()
}

struct CtxHands {
    client: Arc<Client>,
    local: Option<Local>,
}

impl Hands for CtxHands {
    fn process(&self, id: NodeId, action: ProcessAction) -> BoxFuture<'_, Result<ProcessInfo>> {
        Box::pin(act(&self.client, self.local.as_ref(), id, action))
    }
}

/// What the live model learns from this shell rather than from the nodes.
struct CtxSources {
    client: Arc<Client>,
    local: Option<Local>,
    scenarios: Arc<dyn Scenarios>,
    loads: crate::load::Loads,
    checks: crate::check::Checks,
}

impl Sources for CtxSources {
    fn process_state(&self, id: NodeId) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move { process_state(&self.client, self.local.as_ref(), id).await.map(|p| p.state) })
    }

    fn scenarios(&self) -> Vec<ScenarioRow> {
        let rows = self.scenarios.status().into_iter();
        rows.map(|s| ScenarioRow {
            name: s.name,
            running: s.running,
            ops_per_sec: s.ops_per_sec,
            errors: s.errors,
            counters: s.counters,
            held: s.held,
        })
        .collect()
    }

    fn load(&self) -> Option<LoadPanel> {
        let run = self.loads.current()?;
        let (l, progress) = run.live();
        Some(LoadPanel {
            op: run.op.clone(),
            progress,
            ops: l.ops,
            ops_per_sec: l.ops_per_sec,
            errors: l.errors,
            p99_ms: l.p99_ms,
            elapsed_ms: l.elapsed.as_millis() as u64,
        })
    }

    fn check(&self) -> Option<CheckPanel> {
        let c = self.checks.latest()?;
        let (ok, fail, info) = c.tally.counts();
        let verdict = c.verdict();
        Some(CheckPanel {
            what: c.what.clone(),
            nemesis: c.nemesis.clone(),
            running: verdict.is_none(),
            progress: c.fraction(),
            elapsed_ms: c.elapsed().as_millis() as u64,
            ok,
            fail,
            info,
            valid: verdict.as_ref().map(|v| v.valid),
            verdict: verdict.map(|v| v.summary),
        })
    }
}
