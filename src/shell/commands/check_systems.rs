//! `check chat`, `check locks`, `check queue`: each system's property checked on a history
//! recorded under the nemesis (the check layer records and judges; this file says it).

use super::nemesis::{faults_table, plan, seed};
use crate::check::{run_chat, run_locks, run_queue, Injected, Progress, SystemOptions, SystemRun, Verdict};
use crate::error::{Error, ErrorKind, Result};
use crate::shell::output::Output;
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PARAMS: &[Param] = &[
    Param { name: "duration", kind: Flag("D"), help: "how long the clients run (default 20s)" },
    Param { name: "clients", kind: Flag("N"), help: "concurrent clients, each its own connection (default 4)" },
    Param { name: "nemesis", kind: Flag("LIST"), help: "faults meanwhile, e.g. crash,pause,partition" },
    Param { name: "every", kind: Flag("D"), help: "one fault per this long (default 5s)" },
    Param { name: "seed", kind: Flag("N"), help: "the same seed gives the same faults" },
    Param { name: "timeout", kind: Flag("D"), help: "per operation (default 1s)" },
];

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "check chat",
            params: PARAMS,
            summary: "chat under faults: one order on every node, no gaps, each acknowledged message once",
            example: "check chat --duration 20s --nemesis crash,partition",
            run: |ctx, a| Box::pin(system(ctx, a, "chat")),
        },
        Spec {
            name: "check locks",
            params: PARAMS,
            summary: "a lock under faults: never two holders at once, tokens rising with grants",
            example: "check locks --duration 20s --nemesis crash,pause",
            run: |ctx, a| Box::pin(system(ctx, a, "locks")),
        },
        Spec {
            name: "check queue",
            params: PARAMS,
            summary: "a queue under faults: every acknowledged push delivered, no acked item back",
            example: "check queue --duration 20s --nemesis crash,partition",
            run: |ctx, a| Box::pin(system(ctx, a, "queue")),
        },
    ]
}

async fn system(ctx: &Ctx, a: &Args, which: &str) -> Result<Output> {
    let nemesis = a.get("nemesis").map(|_| plan(a, "nemesis", "")).transpose()?;
    let duration = a.duration_or("duration", Duration::from_secs(20))?;
    let progress = Arc::new(Progress::new(which, a.get("nemesis").map(str::to_string), duration));
    let opts = SystemOptions {
        duration,
        clients: a.u64_or("clients", 4)?.clamp(1, 64) as usize,
        seed: nemesis.as_ref().map_or_else(|| seed(a), |p| Ok(p.seed))?,
        nemesis,
        op_timeout: a.duration_or("timeout", Duration::from_secs(1))?,
        progress: progress.clone(),
    };
    ctx.checks.begin(progress.clone());
    let (client, hands, stop) = (ctx.client.clone(), ctx.hands(), ctx.interrupt.token());
    let run = match which {
        "chat" => run_chat(client, hands, opts, stop).await,
        "locks" => run_locks(client, hands, opts, stop).await,
        _ => run_queue(client, hands, opts, stop).await,
    };
    let run = run.inspect_err(|e| progress.land_error(e))?;
    progress.land(Verdict {
        valid: run.valid(),
        summary: match run.problems.first() {
            None => format!("the {which} property held"),
            Some(p) => p.clone(),
        },
    });
    Ok(report(ctx, &format!("check {which}"), &run))
}

fn report(ctx: &Ctx, cmd: &str, run: &SystemRun) -> Output {
    let (ok, fail, info) = run.outcomes;
    let ops = ok + fail + info;
    let mut text = vec![
        format!("{ops} ops in {:.1} s: ok {ok} · fail {fail} · info {info}", run.elapsed.as_secs_f64()),
        format!("judged: {}", run.judged),
    ];
    if !run.faults.is_empty() {
        text.push(format!("faults injected ({}):\n{}", run.faults.len(), faults_table(ctx, &run.faults)));
    }
    text.extend(run.problems.iter().map(|p| format!("  ✗ {p}")));
    text.push(match run.valid() {
        true => format!("valid: the {} property held", run.system),
        false => format!("INVALID: the {} property broke", run.system),
    });
    let out = Output::new(cmd)
        .field("valid", run.valid())
        .field("ops", ops)
        .field("outcomes", json!({"ok": ok, "fail": fail, "info": info}))
        .field("faults", Value::Array(run.faults.iter().map(Injected::to_json).collect()))
        .field("problems", json!(run.problems))
        .field("judged", run.judged.clone())
        .text(text.join("\n"));
    match run.problems.first() {
        None => out,
        Some(p) => out.answer_no(Error::new(ErrorKind::Conflict, p.clone())),
    }
}
