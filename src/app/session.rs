//! A session on a cluster: which cluster the flags name (a cluster file, a throwaway one, or the
//! local one, started if needed), the client and its runtime, and the command context every
//! front end runs in. Ephemeral nodes stop when the session ends; background scenarios are
//! halted first.

use crate::client::{Client, ClusterFile};
use crate::cluster::{self, Ephemeral, HomeLock};
use crate::error::{Error, Result};
use crate::shell::output::Style;
use crate::shell::{Ctx, Local};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the global flags say about a session.
#[derive(Debug, Clone)]
pub struct Session {
    /// A cluster file (default: the local cluster).
    pub cluster: Option<PathBuf>,
    /// A throwaway local cluster that dies with this process.
    pub ephemeral: bool,
    pub json: bool,
    pub quiet: bool,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Session {
    /// Tables on a terminal; plain text when piped or with --json.
    pub fn style(&self) -> Style {
        if self.json || !std::io::stdout().is_terminal() {
            Style::Plain
        } else {
            Style::Terminal
        }
    }

    /// A client for `file`, bound to `rt` (its endpoint needs a runtime to exist in).
    pub fn client(&self, rt: &tokio::runtime::Runtime, file: &ClusterFile) -> Result<Arc<Client>> {
        let _enter = rt.enter();
        Ok(Arc::new(Client::new(file, self.timeout)?))
    }
}

/// The client's runtime: one worker thread, which the prompt, scripts and background scenarios
/// reach through its handle from their own threads. Without the LIFO slot, a task that writes a
/// request no longer makes the QUIC connection driver run (and send) straight after it, so the
/// requests of many tasks woken together leave in shared datagrams.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1).enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build().map_err(|e| Error::internal(format!("cannot start a runtime: {e}")))
}

/// Connects to the cluster `s` names (starting the local one if needed) and runs `f` with a
/// command context; returns what `f` returns, an exit status.
pub fn with_cluster(s: &Session, f: impl FnOnce(Arc<Ctx>, tokio::runtime::Handle) -> Result<i32>) -> Result<i32> {
    // Processes are spawned here, on the calling thread, so an ephemeral cluster's nodes (tied
    // to the thread that spawned them) live exactly as long as this process.
    let (file, local, ephemeral, lock): (ClusterFile, Option<Local>, Option<Ephemeral>, Option<HomeLock>) =
        if let Some(path) = &s.cluster {
            (ClusterFile::load(path)?, None, None, None)
        } else if s.ephemeral {
            let e = Ephemeral::start(3)?;
            let local = Local { cluster: e.cluster.clone(), tied_to_parent: true };
            (e.cluster.file.clone(), Some(local), Some(e), None)
        } else {
            let (c, lock) = cluster::ensure_running(&cluster::home_dir())?;
            (c.file.clone(), Some(Local { cluster: c, tied_to_parent: false }), None, lock)
        };
    let voters = local.as_ref().map_or(0, |l| l.cluster.size());
    let rt = runtime()?;
    let client = s.client(&rt, &file)?;
    if ephemeral.is_some() || lock.is_some() {
        rt.block_on(cluster::wait_ready(&client, voters, Duration::from_secs(30)))?;
    }
    drop(lock);
    let scenarios = Arc::new(crate::plugins::Scenarios::default());
    let ctx = Arc::new(Ctx::new(client, s.style(), local, !s.json && !s.quiet, scenarios));
    let code = f(ctx.clone(), rt.handle().clone());
    // A page served in the background ends with the session, its streams closed and joined.
    let web = ctx.web.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(web) = web {
        rt.block_on(web.stop());
    }
    // A nemesis outlives nothing: left running, its faults would stay on the cluster after dsh
    // is gone (a partition nobody heals), so it is stopped and everything healed.
    if let Some(nemesis) = rt.block_on(async { ctx.nemesis.lock().await.take() }) {
        rt.block_on(nemesis.stop());
        if !s.quiet {
            eprintln!("nemesis stopped with the session: every node resumed, restarted and healed");
        }
    }
    ctx.scenarios.halt();
    rt.shutdown_timeout(Duration::from_millis(200));
    drop(ephemeral);
    code
}

/// `dsh run FILE`: the story on its own thread (Rhai blocks on the runtime from there);
/// Ctrl-C stops it.
/// With `record`, the screen is recorded there; a file that cannot be written fails here,
/// before a cluster is started or a line told. It publishes its state under `DSH_HOME` for
/// `dsh notes`.
pub fn story(
    s: &Session,
    file: PathBuf,
    mut opts: crate::script::StoryOptions,
    record: Option<PathBuf>,
) -> Result<i32> {
    if opts.speed <= 0.0 || !opts.speed.is_finite() {
        return Err(Error::usage("--speed must be above 0"));
    }
    if !file.is_file() {
        return Err(Error::usage(format!("cannot read {}: no such story file", file.display())));
    }
    let tape: Option<Box<dyn crate::shell::screen::Tape>> = match &record {
        Some(path) => Some(Box::new(crate::shell::cast::Cast::create(path, &format!("dsh run {}", file.display()))?)),
        None => None,
    };
    // A rehearsal runs straight through.
    opts.no_pause |= opts.rehearse;
    opts.board = Some(crate::script::board::board_path(&cluster::home_dir()));
    with_cluster(s, |ctx, handle| {
        ctx.interrupt.on_ctrl_c(&handle);
        let story = std::thread::spawn(move || crate::script::run_story(&file, opts, ctx, handle, tape));
        Ok(story.join().unwrap_or(1))
    })
}

/// Commands from `-c`, a pipe or `dsh COMMAND`: each line as it arrives, so that another
/// program can converse with dsh; stops at the first failure unless `keep_going`.
pub fn lines(s: &Session, lines: impl Iterator<Item = String> + Send, keep_going: bool) -> Result<i32> {
    let json = s.json;
    with_cluster(s, move |ctx, handle| Ok(handle.block_on(crate::shell::run_lines(&ctx, lines, json, keep_going))))
}

/// The interactive prompt.
pub fn prompt(s: &Session, color: bool) -> Result<i32> {
    with_cluster(s, move |ctx, handle| Ok(crate::prompt::run_prompt(ctx, handle, &cluster::home_dir(), color)))
}
