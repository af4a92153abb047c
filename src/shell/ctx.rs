//! What a command runs against: the cluster client, the node processes it may act on, and how
//! output is shown.

use super::output::Style;
use super::stage::{Print, Silent, Stage};
use super::{Front, Interrupt, Scenarios};
use crate::client::{Cache, Client};
use crate::cluster::LocalCluster;
use crate::error::Result;
use crate::proto::{node_name, NodeId, ProcessAction, ProcessInfo};
use std::sync::{Arc, OnceLock};

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
        Ctx { cache, client, style, local, live, scenarios, interrupt, stage, front }
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
        }
    }

    /// Acts on a node process: directly when this machine runs the local cluster, otherwise
    /// through the node's supervisor.
    pub async fn process(&self, id: NodeId, action: ProcessAction) -> Result<ProcessInfo> {
        match &self.local {
            // Blocking (a restart waits until the node serves): off the runtime's threads.
            Some(l) => {
                let l = l.clone();
                tokio::task::spawn_blocking(move || l.cluster.act(&node_name(id), action, l.tied_to_parent))
                    .await
                    .map_err(|e| crate::error::Error::internal(e.to_string()))?
            }
            None => self.client.supervise(id, action).await,
        }
    }

    /// The process state of a node, when someone here can tell (the local cluster or the
    /// node's supervisor); `None` otherwise.
    pub async fn process_state(&self, id: NodeId) -> Option<ProcessInfo> {
        if self.local.is_none() && !self.client.has_supervisor(id) {
            return None;
        }
        self.process(id, ProcessAction::State).await.ok()
    }
}
