//! Running scenarios. A foreground run (`scenario run`) calls the plugin's `run(opts)` — or,
//! for a plugin with only `tick`, ticks it for `duration` — on its own thread and waits. A
//! background run (`scenario start`) gets its own thread and its own engine: `start(opts)`
//! makes the state, `tick(state)` runs again and again (paced by a `rate` option, in ticks per
//! second) and returns the next state, `stop(state)` checks the invariant at the end. A failed
//! tick is counted as an error and the scenario carries on, so traffic keeps flowing through
//! crashes and partitions; a `start` the cluster could not serve is retried the same way. `stop` asks between ticks (a tick is never cut in half, so an
//! invariant is not broken by stopping) and interrupts only a scenario that does not stop.
//! This file owns the stats `scenario status` shows; it must not print anything itself.

use super::catalog::{discover, find, plugin_dirs, Plugin};
use super::engine::plugin_engine;
use crate::error::{Error, ErrorKind, Result};
use crate::shell::stage::checks;
use crate::shell::{Ctx, Interrupt, Listed, Snapshot};
use futures::future::BoxFuture;
use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Map, Scope, AST};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The window `ops_per_sec` is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// What one scenario has done so far; shared between its thread and the shell.
pub struct Stats {
    name: String,
    options: String,
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    ops: u64,
    errors: u64,
    last_error: Option<String>,
    counters: BTreeMap<String, i64>,
    passed: u64,
    failed: u64,
    failures: Vec<String>,
    recent: VecDeque<Instant>,
    running: bool,
    stop_asked: Option<Instant>,
    stopped_in_ms: Option<u64>,
    ended: Option<Instant>,
    result: Value,
    said: Option<String>,
}

impl Stats {
    fn new(name: &str, options: String, running: bool) -> Arc<Self> {
        let inner = Inner { running, ..Default::default() };
        Arc::new(Stats { name: name.into(), options, started: Instant::now(), inner: Mutex::new(inner) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn check(&self, ok: bool, what: &str) {
        let mut i = self.lock();
        if ok {
            i.passed += 1;
        } else {
            i.failed += 1;
            if i.failures.len() < 20 {
                i.failures.push(what.to_string());
            }
        }
    }

    pub(super) fn count(&self, name: &str, n: rhai::INT) {
        *self.lock().counters.entry(name.to_string()).or_default() += n;
    }

    pub(super) fn said(&self, text: String) {
        self.lock().said = Some(text);
    }

    fn tick(&self, outcome: std::result::Result<(), String>) {
        let mut i = self.lock();
        match outcome {
            Ok(()) => {
                i.ops += 1;
                let now = Instant::now();
                i.recent.push_back(now);
                while i.recent.front().is_some_and(|t| now.duration_since(*t) > RATE_WINDOW) {
                    i.recent.pop_front();
                }
            }
            Err(e) => {
                i.errors += 1;
                i.last_error = Some(e);
            }
        }
    }

    pub(super) fn error(&self, e: String) {
        let mut i = self.lock();
        i.errors += 1;
        i.last_error = Some(e);
    }

    fn traffic_ended(&self) {
        let mut i = self.lock();
        i.stopped_in_ms = i.stop_asked.map(|t| t.elapsed().as_millis() as u64);
    }

    fn finish(&self, result: Value) {
        let mut i = self.lock();
        i.result = result;
        i.running = false;
        i.ended = Some(Instant::now());
    }

    pub fn snapshot(&self) -> Snapshot {
        let i = self.lock();
        let until = i.ended.unwrap_or_else(Instant::now);
        let uptime = until.duration_since(self.started);
        let window = uptime.min(RATE_WINDOW).as_secs_f64();
        let recent = i.recent.iter().filter(|t| until.duration_since(**t) <= RATE_WINDOW).count();
        let ops_per_sec = if !i.running || window < 0.2 { 0.0 } else { (recent as f64 / window * 10.0).round() / 10.0 };
        Snapshot {
            name: self.name.clone(),
            options: self.options.clone(),
            running: i.running,
            uptime_ms: uptime.as_millis() as u64,
            ops: i.ops,
            ops_per_sec,
            errors: i.errors,
            last_error: i.last_error.clone(),
            counters: i.counters.clone(),
            checks_passed: i.passed,
            checks_failed: i.failed,
            failures: i.failures.clone(),
            held: (i.passed + i.failed > 0).then_some(i.failed == 0),
            stopped_in_ms: i.stopped_in_ms,
            result: i.result.clone(),
            last_said: i.said.clone(),
        }
    }
}

struct Background {
    stats: Arc<Stats>,
    /// Asks the scenario to stop between two ticks.
    stop: CancellationToken,
    /// Cuts its script short, mid-tick.
    interrupt: Interrupt,
    /// Cancelled by its thread as it ends.
    finished: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Waits up to `d` for the thread to end; joins it if it did.
    async fn ended_within(&mut self, d: Duration) -> bool {
        if tokio::time::timeout(d, self.finished.cancelled()).await.is_err() {
            return false;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        true
    }
}

/// The scenarios this shell has started, running or stopped (stopped ones stay for `status`
/// until started again).
#[derive(Default)]
pub struct Scenarios {
    all: Mutex<BTreeMap<String, Background>>,
}

impl Scenarios {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Background>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the named scenarios' threads out (to wait on them without holding the lock).
    fn take(&self, name: &str) -> Result<Vec<Background>> {
        let mut all = self.lock();
        if name != "all" && !all.contains_key(name) {
            let names: Vec<&String> = all.keys().collect();
            return Err(Error::usage(format!("scenario {name} was not started (started: {names:?})")));
        }
        Ok(all
            .iter_mut()
            .filter(|(n, _)| name == "all" || *n == name)
            .map(|(_, b)| Background {
                stats: b.stats.clone(),
                stop: b.stop.clone(),
                interrupt: b.interrupt.clone(),
                finished: b.finished.clone(),
                thread: b.thread.take(),
            })
            .collect())
    }
}

impl crate::shell::Scenarios for Scenarios {
    fn discover(&self) -> Vec<Listed> {
        discover().into_values().map(|p| p.listed()).collect()
    }

    fn dirs(&self) -> Vec<std::path::PathBuf> {
        plugin_dirs()
    }

    fn start(&self, ctx: &Ctx, name: &str, words: &[String]) -> Result<Snapshot> {
        let plugin = find(name)?;
        if !plugin.has_tick {
            return Err(Error::usage(format!(
                "scenario {name} has no tick(state), so it cannot run in the background; try `scenario run {name}`"
            )));
        }
        let opts = plugin.options(words)?;
        let mut all = self.lock();
        if all.get(&plugin.name).is_some_and(|b| b.stats.lock().running) {
            return Err(Error::usage(format!("scenario {} is already running", plugin.name)));
        }
        let stats = Stats::new(&plugin.name, options_line(&opts), true);
        let bg_ctx = Arc::new(ctx.background());
        let (stop, finished, interrupt) =
            (CancellationToken::new(), CancellationToken::new(), bg_ctx.interrupt.clone());
        let handle = tokio::runtime::Handle::current();
        let (s, st, fin) = (stats.clone(), stop.clone(), finished.clone());
        let key = plugin.name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("scenario-{}", plugin.name))
            .spawn(move || {
                let _finished = fin.drop_guard();
                let engine = plugin_engine(bg_ctx, handle.clone(), s.clone(), false);
                let result = drive(&engine, &handle, &plugin, opts, &s, &st, None);
                s.finish(result.unwrap_or_else(|e| {
                    s.error(e);
                    Value::Null
                }));
            })
            .map_err(|e| Error::internal(format!("cannot start a thread: {e}")))?;
        let snap = stats.snapshot();
        all.insert(key, Background { stats, stop, interrupt, finished, thread: Some(thread) });
        Ok(snap)
    }

    /// Asks between ticks and waits for `stop(state)`; a scenario still running after 3 s is
    /// interrupted.
    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<Snapshot>>> {
        Box::pin(async move {
            let mut targets = self.take(name)?;
            for b in &targets {
                if b.thread.is_some() {
                    b.stats.lock().stop_asked = Some(Instant::now());
                    b.stop.cancel();
                }
            }
            let mut out = Vec::new();
            for b in &mut targets {
                if b.thread.is_some() && !b.ended_within(Duration::from_secs(3)).await {
                    b.interrupt.fire();
                    if !b.ended_within(Duration::from_secs(7)).await {
                        return Err(Error::new(ErrorKind::Timeout, format!("scenario {} did not stop", b.stats.name)));
                    }
                }
                out.push(b.stats.snapshot());
            }
            Ok(out)
        })
    }

    /// Interrupts every background scenario mid-tick and waits up to two seconds for their
    /// threads, so none outlives the runtime it blocks on.
    fn halt(&self) {
        let Ok(mut all) = self.take("all") else { return };
        for b in &all {
            b.stop.cancel();
            b.interrupt.fire();
        }
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_time().build() else { return };
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                for b in &mut all {
                    b.ended_within(Duration::from_secs(2)).await;
                }
            })
            .await;
        });
    }

    fn status(&self) -> Vec<Snapshot> {
        self.lock().values().map(|b| b.stats.snapshot()).collect()
    }

    /// In the foreground; `ctx.live` prints the plugin's narration and checks as they happen,
    /// and `ctx.interrupt` (Ctrl-C) cuts it short.
    fn run<'a>(&'a self, ctx: &'a Ctx, name: &'a str, words: &'a [String]) -> BoxFuture<'a, Result<Snapshot>> {
        Box::pin(async move {
            let plugin = find(name)?;
            let opts = plugin.options(words)?;
            let stats = Stats::new(&plugin.name, options_line(&opts), true);
            let mut bg = ctx.background();
            bg.interrupt = ctx.interrupt.clone();
            let interrupt = bg.interrupt.clone();
            // Dropping the command (the prompt gave up waiting) interrupts the script.
            struct OnDrop(Option<Interrupt>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    if let Some(i) = self.0.take() {
                        i.fire();
                    }
                }
            }
            let mut guard = OnDrop(Some(interrupt));
            let (bg_ctx, handle, live) = (Arc::new(bg), tokio::runtime::Handle::current(), ctx.live);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let s = stats.clone();
            std::thread::Builder::new()
                .name(format!("scenario-run-{}", plugin.name))
                .spawn(move || {
                    let engine = plugin_engine(bg_ctx, handle.clone(), s.clone(), live);
                    let never = CancellationToken::new();
                    let deadline = Instant::now() + duration_opt(&opts);
                    let _ = tx.send(drive(&engine, &handle, &plugin, opts, &s, &never, Some(deadline)));
                })
                .map_err(|e| Error::internal(format!("cannot start a thread: {e}")))?;
            let result = rx.await.map_err(|_| Error::internal("the scenario's thread died"))?;
            guard.0 = None;
            // Its ✓ and ✗ were printed among the story's, so they count in the story's summary.
            let (passed, failed) = {
                let i = stats.lock();
                (i.passed, i.failed)
            };
            ctx.stage.count(passed, failed);
            let result = result.map_err(|e| Error::new(ErrorKind::Script, format!("scenario {name}: {e}")))?;
            stats.finish(result);
            let snap = stats.snapshot();
            if snap.checks_failed > 0 {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "scenario {name}: {} of {} failed: {}",
                        snap.checks_failed,
                        checks(snap.checks_passed + snap.checks_failed),
                        snap.failures.join("; ")
                    ),
                ));
            }
            Ok(snap)
        })
    }
}

/// A foreground tick-only run lasts `duration` (default 3 s).
fn duration_opt(opts: &Map) -> Duration {
    opts.get("duration")
        .and_then(|d| crate::shell::spec::parse_duration(&d.to_string()).ok())
        .unwrap_or(Duration::from_secs(3))
}

fn options_line(opts: &Map) -> String {
    opts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn message(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        EvalAltResult::ErrorInFunctionCall(f, _, inner, _) => format!("in {f}(): {}", message(inner)),
        EvalAltResult::ErrorTerminated(..) => "interrupted".into(),
        other => other.to_string(),
    }
}

/// Whether a plugin failed because the cluster could not serve it (no leader, a node down, a
/// full queue) rather than because of its own code. Library errors reach a script as their
/// `kind: message` text.
fn cluster_will_recover(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => cluster_will_recover(inner),
        EvalAltResult::ErrorRuntime(v, _) => {
            let text = v.to_string();
            [ErrorKind::NoQuorum, ErrorKind::Unreachable, ErrorKind::Timeout, ErrorKind::Busy]
                .iter()
                .any(|k| text.starts_with(&format!("{}: ", k.as_str())))
        }
        _ => false,
    }
}

/// Runs a plugin: `run(opts)` when `deadline` is set and it has one; otherwise start, ticks
/// until `stop` is set or the deadline passes, then stop. Returns what run or stop returned.
fn drive(
    engine: &Engine,
    handle: &tokio::runtime::Handle,
    plugin: &Plugin,
    opts: Map,
    stats: &Stats,
    stop: &CancellationToken,
    deadline: Option<Instant>,
) -> std::result::Result<Value, String> {
    let source = std::fs::read_to_string(&plugin.path).map_err(|e| format!("{}: {e}", plugin.path.display()))?;
    let ast: AST = engine.compile(&source).map_err(|e| format!("{}: {e}", plugin.path.display()))?;
    let mut scope = Scope::new();
    engine.run_ast_with_scope(&mut scope, &ast).map_err(|e| message(&e))?;
    let has = |f: &str| ast.iter_functions().any(|d| d.name == f);
    let call = |scope: &mut Scope, f: &str, arg: Dynamic| {
        engine.call_fn_with_options::<Dynamic>(CallFnOptions::new().eval_ast(false), scope, &ast, f, (arg,))
    };
    let opts_value = Dynamic::from_map(opts.clone());
    if deadline.is_some() && has("run") {
        let r = call(&mut scope, "run", opts_value).map_err(|e| message(&e))?;
        stats.tick(Ok(()));
        return Ok(crate::script::to_json(&r));
    }
    let over = || stop.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d);
    // Until `until`, the deadline or a stop, whichever comes first.
    let nap = |until: Instant| {
        let until = deadline.map_or(until, |d| d.min(until));
        handle.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = stop.cancelled() => {}
            }
        })
    };
    // A scenario started while the cluster has no leader sets up once it has one, rather than
    // ending before its first tick. A broken plugin still ends at once, and one stopped before
    // it could set up ends without `stop`, which would audit state that was never made.
    let mut state = opts_value.clone();
    let mut backoff = Duration::from_millis(100);
    while has("start") {
        match call(&mut scope, "start", opts_value.clone()) {
            Ok(v) => {
                state = v;
                break;
            }
            Err(e) if cluster_will_recover(&e) && !over() => {
                stats.error(message(&e));
                nap(Instant::now() + backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(message(&e)),
        }
    }
    if state.is_unit() {
        state = Dynamic::from_map(opts.clone());
    }
    let rate = opts.get("rate").and_then(|r| r.as_float().ok().or_else(|| r.as_int().ok().map(|i| i as f64)));
    let interval = rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
    let mut next = Instant::now();
    while !over() {
        match call(&mut scope, "tick", state.clone()).map_err(|e| message(&e)) {
            Ok(v) => {
                if !v.is_unit() {
                    state = v;
                }
                stats.tick(Ok(()));
            }
            Err(e) if e == "interrupted" => return Err(e),
            Err(e) => {
                stats.tick(Err(e));
                // Do not spin while the cluster is unavailable.
                nap(Instant::now() + Duration::from_millis(100));
            }
        }
        if let Some(every) = interval {
            next += every;
            let now = Instant::now();
            if next + Duration::from_secs(1) < now {
                next = now;
            }
            nap(next);
        }
    }
    stats.traffic_ended();
    if has("stop") {
        let r = call(&mut scope, "stop", state).map_err(|e| message(&e))?;
        return Ok(crate::script::to_json(&r));
    }
    Ok(Value::Null)
}
