//! What the shell asks of background work it starts but does not own. Scenario plugins run
//! Rhai, which sits above the shell, so the shell only defines this trait and the data it
//! shows; `plugins` implements it and `main` hands it to the `Ctx`. It must not import
//! `plugins` or `script`.

use super::Ctx;
use crate::error::Result;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Scenarios: found on disk, run in the foreground, or started and stopped in the background.
pub trait Scenarios: Send + Sync {
    /// Every scenario found, by name.
    fn discover(&self) -> Vec<Listed>;
    /// Where scenarios are looked for.
    fn dirs(&self) -> Vec<PathBuf>;
    /// `scenario run NAME key=value…`: waits until it ends (or `ctx.interrupt` fires).
    fn run<'a>(&'a self, ctx: &'a Ctx, name: &'a str, words: &'a [String]) -> BoxFuture<'a, Result<Snapshot>>;
    /// `scenario start NAME key=value…`: returns once it runs.
    fn start(&self, ctx: &Ctx, name: &str, words: &[String]) -> Result<Snapshot>;
    /// `scenario stop NAME|all`: between two ticks, then its invariant.
    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<Snapshot>>>;
    /// Every scenario started here, running or not.
    fn status(&self) -> Vec<Snapshot>;
    /// Ends them all now: the shell is leaving.
    fn halt(&self);
}

/// A shell with no scenarios (a node's `cluster status`, tests).
pub struct NoScenarios;

impl Scenarios for NoScenarios {
    fn discover(&self) -> Vec<Listed> {
        Vec::new()
    }
    fn dirs(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn run<'a>(&'a self, _: &'a Ctx, name: &'a str, _: &'a [String]) -> BoxFuture<'a, Result<Snapshot>> {
        Box::pin(async move { Err(crate::error::Error::usage(format!("no scenario `{name}` here"))) })
    }
    fn start(&self, _: &Ctx, name: &str, _: &[String]) -> Result<Snapshot> {
        Err(crate::error::Error::usage(format!("no scenario `{name}` here")))
    }
    fn stop<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<Snapshot>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn status(&self) -> Vec<Snapshot> {
        Vec::new()
    }
    fn halt(&self) {}
}

/// One scenario as `scenario list` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub about: String,
    /// Parameter names and defaults.
    pub params: Vec<(String, Value)>,
    pub path: PathBuf,
    pub has_run: bool,
    pub has_tick: bool,
}

impl Listed {
    /// `rate=20 accounts=5`
    pub fn params_line(&self) -> String {
        let plain = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.params.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect::<Vec<_>>().join(" ")
    }
}

/// A scenario's stats at one moment: the rows of `scenario status`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub name: String,
    pub options: String,
    pub running: bool,
    pub uptime_ms: u64,
    /// Ticks (or foreground runs) completed.
    pub ops: u64,
    /// Over the last few seconds.
    pub ops_per_sec: f64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub counters: BTreeMap<String, i64>,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub failures: Vec<String>,
    /// Every invariant check held; `None` before the first check.
    pub held: Option<bool>,
    /// From asking the scenario to stop until its last tick ended.
    pub stopped_in_ms: Option<u64>,
    /// What `run` or `stop` returned.
    pub result: Value,
    pub last_said: Option<String>,
}
