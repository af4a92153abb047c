//! `check kv` and `check history`: a recorded history of concurrent operations under an
//! optional nemesis, checked for linearizability (the check layer does the work; this file
//! parses flags, picks the stale reads' node and says the verdict).

use super::nemesis::{faults_table, plan, seed};
use crate::check::history::{from_jsonl, to_jsonl, Op};
use crate::check::kv::check_all;
use crate::check::linear::KeyVerdict;
use crate::check::report::{key_json, kv_json, timeline};
use crate::check::{run_kv, KvOptions, Progress, Verdict};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::{node_name, NodeId};
use crate::shell::output::Output;
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub fn specs() -> Vec<Spec> {
    let mut all = vec![
        Spec {
            name: "check kv",
            params: &[
                Param { name: "duration", kind: Flag("D"), help: "how long the clients run (default 30s)" },
                Param {
                    name: "clients",
                    kind: Flag("N"),
                    help: "concurrent clients, each its own connection (default 5)",
                },
                Param { name: "keys", kind: Flag("N"), help: "keys they share (default 5)" },
                Param { name: "nemesis", kind: Flag("LIST"), help: "faults meanwhile, e.g. crash,pause,partition" },
                Param { name: "every", kind: Flag("D"), help: "one fault per this long (default 5s)" },
                Param { name: "seed", kind: Flag("N"), help: "the same seed gives the same operations and faults" },
                Param { name: "history", kind: Flag("FILE"), help: "write the history as Jepsen-style JSON lines" },
                Param { name: "stale", kind: Switch, help: "read a follower's local copy: the broken variant" },
                Param { name: "from", kind: Flag("NODE"), help: "with --stale: whose copy (default a follower)" },
                Param {
                    name: "timeout",
                    kind: Flag("D"),
                    help: "per operation; past it the op is `info` (default 1s)",
                },
            ],
            summary: "concurrent reads, writes and cas under faults, checked for linearizability",
            example: "check kv --duration 30s --nemesis crash,pause,partition --seed 7",
            run: |ctx, a| Box::pin(kv(ctx, a)),
        },
        Spec {
            name: "check history",
            params: &[Param { name: "file", kind: Pos, help: "Jepsen-style JSON lines (`check kv --history`)" }],
            summary: "check a recorded key-value history for linearizability",
            example: "check history run.jsonl",
            run: |ctx, a| Box::pin(history(ctx, a)),
        },
    ];
    all.extend(super::check_systems::specs());
    all
}

/// The follower whose copy `--stale` reads: the one named, else the highest-numbered node
/// that does not lead.
async fn stale_node(ctx: &Ctx, a: &Args) -> Result<Option<NodeId>> {
    if !a.switch("stale") {
        return Ok(None);
    }
    if let Some(n) = a.node("from")? {
        return Ok(Some(n));
    }
    let all = ctx.client.status_all(Duration::from_millis(800)).await;
    let leader = all.iter().filter_map(|(_, r)| r.as_ref().ok()).find(|s| s.role == "leader").map(|s| s.id);
    let follower = all.iter().filter(|(id, r)| r.is_ok() && Some(*id) != leader).map(|(id, _)| *id).max();
    follower.map(Some).ok_or_else(|| Error::no_quorum("check kv --stale: no follower answered"))
}

async fn kv(ctx: &Ctx, a: &Args) -> Result<Output> {
    let nemesis = a.get("nemesis").map(|_| plan(a, "nemesis", "")).transpose()?;
    let duration = a.duration_or("duration", Duration::from_secs(30))?;
    let progress = Arc::new(Progress::new("kv", a.get("nemesis").map(str::to_string), duration));
    let opts = KvOptions {
        duration,
        clients: a.u64_or("clients", 5)?.clamp(1, 256) as usize,
        keys: a.u64_or("keys", 5)?.clamp(1, 1000) as usize,
        seed: nemesis.as_ref().map_or_else(|| seed(a), |p| Ok(p.seed))?,
        nemesis,
        stale: stale_node(ctx, a).await?,
        op_timeout: a.duration_or("timeout", Duration::from_secs(1))?,
        progress: progress.clone(),
    };
    ctx.checks.begin(progress.clone());
    let seed = opts.seed;
    let stale = opts.stale;
    let run = run_kv(ctx.client.clone(), ctx.hands(), opts, ctx.interrupt.token()).await;
    let run = run.inspect_err(|e| progress.land_error(e))?;
    progress.land(kv_verdict(&run.keys));
    if let Some(file) = a.get("history") {
        std::fs::write(file, to_jsonl(&run.ops)).map_err(|e| Error::internal(format!("--history {file}: {e}")))?;
    }
    let mut out = Output::new("check kv");
    let Value::Object(fields) = kv_json(&run) else { unreachable!() };
    for (k, v) in fields {
        out = out.field(&k, v);
    }
    out = out.field("seed", seed).field("stale_from", stale.map(node_name));
    let (ok, fail, info) = run.outcomes(None);
    let (p50, p99, max) = run.latency_ms();
    let secs = run.elapsed.as_secs_f64();
    let mut text = vec![
        format!(
            "{} ops in {secs:.1} s ({:.0}/s), {} clients, seed {seed}{}",
            run.ops.len(),
            run.ops.len() as f64 / secs.max(1e-9),
            a.u64_or("clients", 5)?,
            stale.map_or(String::new(), |n| format!(", reads from {}'s local copy (--stale)", node_name(n)))
        ),
        format!("outcomes: ok {ok} · fail {fail} · info {info}    {}", by_kind(&run.ops)),
        format!("latency of ok ops: p50 {p50:.1} ms · p99 {p99:.1} ms · max {max:.1} ms"),
    ];
    if !run.faults.is_empty() {
        text.push(format!("faults injected ({}):\n{}", run.faults.len(), faults_table(ctx, &run.faults)));
    }
    text.push(verdict_text(&run.keys));
    let out = out.text(text.join("\n"));
    Ok(judge(out, &run.keys))
}

fn by_kind(ops: &[Op]) -> String {
    ["read", "write", "cas"]
        .iter()
        .map(|f| {
            let of = ops.iter().filter(|o| o.f() == *f);
            let n = |k: &str| of.clone().filter(|o| o.outcome_name() == k).count();
            format!("{f} {}/{}/{}", n("ok"), n("fail"), n("info"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// One line per key, then for each violation its window as a timeline.
fn verdict_text(keys: &[KeyVerdict]) -> String {
    let mut lines = Vec::new();
    for k in keys {
        lines.push(format!(
            "  {} {:<24} {:>6} ops  {}",
            if k.valid { "✓" } else { "✗" },
            k.key,
            k.ops,
            if k.valid { "linearizable" } else { "NOT linearizable" }
        ));
    }
    for k in keys.iter().filter(|k| !k.valid) {
        lines.push(format!(
            "\n{}: these {} operations cannot be linearized (smallest window found):\n{}",
            k.key,
            k.window.len(),
            timeline(&k.window[k.window.len().saturating_sub(16)..], 48)
        ));
    }
    let valid = keys.iter().all(|k| k.valid);
    lines.push(if valid {
        "valid: every key is linearizable".into()
    } else {
        "INVALID: a key is not linearizable".into()
    });
    lines.join("\n")
}

/// The verdict in one line, for the live views.
fn kv_verdict(keys: &[KeyVerdict]) -> Verdict {
    match keys.iter().find(|k| !k.valid) {
        None => Verdict { valid: true, summary: format!("linearizable: all {} keys", keys.len()) },
        Some(k) => Verdict { valid: false, summary: format!("{} is NOT linearizable", k.key) },
    }
}

/// Invalid is the answer to the question asked, not a failure to ask it.
fn judge(out: Output, keys: &[KeyVerdict]) -> Output {
    match keys.iter().find(|k| !k.valid) {
        None => out,
        Some(k) => out.answer_no(Error::new(ErrorKind::Conflict, format!("{} is not linearizable", k.key))),
    }
}

async fn history(_ctx: &Ctx, a: &Args) -> Result<Output> {
    let file = a.req("file")?;
    let src = std::fs::read_to_string(file).map_err(|e| Error::usage(format!("{file}: {e}")))?;
    let ops = from_jsonl(&src)?;
    let n = ops.len();
    let counted = |k: &str| ops.iter().filter(|o| o.outcome_name() == k).count();
    let outcomes = serde_json::json!({"ok": counted("ok"), "fail": counted("fail"), "info": counted("info")});
    let keys = tokio::task::spawn_blocking(move || check_all(&ops))
        .await
        .map_err(|e| Error::internal(format!("checker: {e}")))?;
    let out = Output::new("check history")
        .field("file", file)
        .field("valid", keys.iter().all(|k| k.valid))
        .field("ops", n)
        .field("outcomes", outcomes)
        .field("keys", Value::Array(keys.iter().map(key_json).collect()))
        .text(format!("{file}: {n} ops\n{}", verdict_text(&keys)));
    Ok(judge(out, &keys))
}
