//! `nemesis start|stop|status`: the check layer's fault schedule run in the background of this
//! shell (held in `Ctx::nemesis`), and how it is shown.

use crate::check::schedule::{parse_kinds, schedule};
use crate::check::{Injected, Nemesis, Plan};
use crate::error::{Error, Result};
use crate::shell::output::{table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};
use std::time::Duration;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "nemesis start",
            params: &[
                Param {
                    name: "faults",
                    kind: Flag("LIST"),
                    help: "crash,pause,partition,slow,corrupt,kill-all (default crash,pause,partition)",
                },
                Param { name: "every", kind: Flag("D"), help: "one fault per this long (default 5s)" },
                Param { name: "seed", kind: Flag("N"), help: "the same seed gives the same schedule" },
            ],
            summary: "inject faults on a random schedule drawn from a seed, in the background",
            example: "nemesis start --faults crash,partition --every 5s --seed 7",
            run: |ctx, a| Box::pin(start(ctx, a)),
        },
        Spec {
            name: "nemesis stop",
            params: &[],
            summary: "stop the nemesis: heal, restart and resume everything",
            example: "nemesis stop",
            run: |ctx, _| Box::pin(stop(ctx)),
        },
        Spec {
            name: "nemesis status",
            params: &[],
            summary: "the running nemesis: its plan, what it injected, what comes next",
            example: "nemesis status",
            run: |ctx, _| Box::pin(status(ctx)),
        },
    ]
}

/// `--faults`, `--every`, `--seed` (a seed from the clock when not given, shown so the run can
/// be repeated).
pub(super) fn plan(a: &Args, faults_flag: &str, default: &str) -> Result<Plan> {
    let kinds = parse_kinds(a.get(faults_flag).unwrap_or(default))?;
    let every = a.duration_or("every", Duration::from_secs(5))?;
    if every < Duration::from_millis(200) {
        return Err(Error::usage("--every must be at least 200ms"));
    }
    Ok(Plan { seed: seed(a)?, kinds, every })
}

pub(super) fn seed(a: &Args) -> Result<u64> {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    a.u64_or("seed", clock.as_millis() as u64 % 1_000_000)
}

fn plan_json(p: &Plan) -> Value {
    json!({"seed": p.seed, "faults": p.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "every_ms": p.every.as_millis() as u64})
}

pub(super) fn faults_table(ctx: &Ctx, injected: &[Injected]) -> String {
    let secs = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
    let rows = injected
        .iter()
        .map(|f| {
            vec![
                secs(f.at_ms),
                f.fault.clone(),
                f.healed_ms.map_or("-".into(), secs),
                f.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(ctx.style, &["at", "fault", "healed", "note"], rows)
}

async fn start(ctx: &Ctx, a: &Args) -> Result<Output> {
    let plan = plan(a, "faults", "crash,pause,partition")?;
    let mut slot = ctx.nemesis.lock().await;
    if slot.is_some() {
        return Err(Error::usage("a nemesis is already running: `nemesis stop` first"));
    }
    let nodes = ctx.client.node_ids();
    let first: Vec<String> = schedule(plan.seed, &plan.kinds, plan.every, &nodes)
        .take(plan.kinds.len())
        .map(|s| format!("{:.1}s {}", s.at.as_secs_f64(), s.fault.describe()))
        .collect();
    let out = Output::new("nemesis start").field("plan", plan_json(&plan)).field("next", json!(first)).text(format!(
        "nemesis started (seed {}, every {:?}): {}",
        plan.seed,
        plan.every,
        first.join(", ")
    ));
    *slot = Some(Nemesis::start(ctx.client.clone(), ctx.hands(), plan));
    Ok(out)
}

async fn stop(ctx: &Ctx) -> Result<Output> {
    let Some(n) = ctx.nemesis.lock().await.take() else {
        return Err(Error::usage("no nemesis is running"));
    };
    let plan = n.plan.clone();
    let injected = n.stop().await;
    Ok(Output::new("nemesis stop")
        .field("plan", plan_json(&plan))
        .field("faults", Value::Array(injected.iter().map(Injected::to_json).collect()))
        .text(format!(
            "{}\nnemesis stopped after {} faults: healed, restarted and resumed everything",
            faults_table(ctx, &injected),
            injected.len()
        )))
}

async fn status(ctx: &Ctx) -> Result<Output> {
    let slot = ctx.nemesis.lock().await;
    let Some(n) = slot.as_ref() else {
        return Ok(Output::new("nemesis status").field("running", false).text("no nemesis is running"));
    };
    let s = n.status();
    let active = s.injected.last().filter(|f| f.healed_ms.is_none()).map(|f| f.fault.clone());
    Ok(Output::new("nemesis status")
        .field("running", true)
        .field("plan", plan_json(&s.plan))
        .field("running_ms", s.running_ms)
        .field("active", active.clone())
        .field("faults", Value::Array(s.injected.iter().map(Injected::to_json).collect()))
        .text(format!(
            "nemesis running for {:.1}s (seed {}); now: {}\n{}",
            s.running_ms as f64 / 1000.0,
            s.plan.seed,
            active.unwrap_or_else(|| "healthy".into()),
            faults_table(ctx, &s.injected)
        )))
}
