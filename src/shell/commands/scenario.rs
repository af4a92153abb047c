//! Scenarios (plugins, SPEC §4): list, run in the foreground, start and stop in the background,
//! and the live status of what runs. The work is in `crate::plugins`; this file parses and
//! shows.

use crate::error::Result;
use crate::shell::fit::{self, Column};
use crate::shell::follow::{follow, heading};
use crate::shell::output::{human_ms, table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::{Ctx, Snapshot};
use serde_json::{json, Value};

pub fn specs() -> Vec<Spec> {
    const NAMED: &[Param] = &[
        Param { name: "name", kind: Pos, help: "the scenario (see `scenario list`)" },
        Param { name: "options", kind: Rest, help: "key=value parameters, e.g. rate=50" },
    ];
    vec![
        Spec {
            name: "scenario list",
            params: &[],
            summary: "the scenario plugins found, with their parameters and defaults",
            example: "scenario list",
            run: |ctx, a| Box::pin(list(ctx, a)),
        },
        Spec {
            name: "scenario run",
            params: NAMED,
            summary: "run a scenario in the foreground until it ends; fails if its invariant broke",
            example: "scenario run bank transfers=50",
            run: |ctx, a| Box::pin(run(ctx, a)),
        },
        Spec {
            name: "scenario start",
            params: NAMED,
            summary: "start a scenario's traffic in the background and return to the prompt",
            example: "scenario start twitter rate=20",
            run: |ctx, a| Box::pin(start(ctx, a)),
        },
        Spec {
            name: "scenario stop",
            params: &[Param { name: "name", kind: Pos, help: "a running scenario, or `all`" }],
            summary: "stop background scenarios (between two ticks) and check their invariants",
            example: "scenario stop all",
            run: |ctx, a| Box::pin(stop(ctx, a)),
        },
        Spec {
            name: "scenario status",
            params: super::cluster::FOLLOW,
            summary: "live ops/s, errors, counters and invariant of each background scenario",
            example: "scenario status --follow",
            run: |ctx, a| Box::pin(status(ctx, a)),
        },
    ]
}

fn words(a: &Args) -> Vec<String> {
    a.get("options").unwrap_or("").split_whitespace().map(str::to_string).collect()
}

async fn list(ctx: &Ctx, _: &Args) -> Result<Output> {
    let all = ctx.scenarios.discover();
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for p in &all {
        let params: serde_json::Map<String, Value> = p.params.iter().cloned().collect();
        let modes = match (p.has_run, p.has_tick) {
            (true, true) => "run, start",
            (true, false) => "run",
            (false, true) => "run, start",
            (false, false) => "—",
        };
        items.push(json!({"name": p.name, "about": p.about, "params": params, "modes": modes,
            "path": p.path.display().to_string()}));
        rows.push(vec![p.name.clone(), p.about.clone(), p.params_line(), modes.to_string()]);
    }
    let dirs: Vec<String> = ctx.scenarios.dirs().iter().map(|d| d.display().to_string()).collect();
    let text = if rows.is_empty() {
        format!("no scenarios (looked in: {})", dirs.join(", "))
    } else {
        // A cut description still says what the scenario is; the parameters (with their
        // defaults) are what a person types next, so they are cut last.
        let columns = [
            Column::new("scenario", 0),
            Column::new("description", 2).shrink(24),
            Column::new("parameters", 1).shrink(16),
            Column::new("modes", 3),
        ];
        fit::render(ctx.style, &columns, rows)
    };
    Ok(Output::new("scenario list")
        .field("scenarios", Value::Array(items.clone()))
        .field("dirs", dirs)
        .text(text)
        .returns(Value::Array(items)))
}

async fn run(ctx: &Ctx, a: &Args) -> Result<Output> {
    let snap = ctx.scenarios.run(ctx, a.req("name")?, &words(a)).await?;
    let text = format!("scenario {}: {} ({})", snap.name, invariant(&snap), human_ms(snap.uptime_ms));
    let text = match result_line(&snap.result) {
        Some(r) => format!("{text}\n  {r}"),
        None => text,
    };
    Ok(one("scenario run", &snap).text(text))
}

async fn start(ctx: &Ctx, a: &Args) -> Result<Output> {
    let snap = ctx.scenarios.start(ctx, a.req("name")?, &words(a))?;
    let text =
        format!("scenario {} started in the background ({}); `scenario status` shows it", snap.name, snap.options);
    Ok(one("scenario start", &snap).text(text))
}

async fn stop(ctx: &Ctx, a: &Args) -> Result<Output> {
    let name = a.req("name")?;
    let snaps = ctx.scenarios.stop(name).await?;
    let lines: Vec<String> = snaps
        .iter()
        .map(|s| {
            let when = s.stopped_in_ms.map_or("already stopped".into(), |ms| format!("stopped in {ms} ms"));
            let mut line = format!("{}: {when}; {} ops, {} errors; {}", s.name, s.ops, s.errors, invariant(s));
            if let Some(r) = result_line(&s.result) {
                line.push_str(&format!("\n  {r}"));
            }
            line
        })
        .collect();
    let text = if lines.is_empty() { "no scenario was started".into() } else { lines.join("\n") };
    let all: Vec<Value> = snaps.iter().map(to_value).collect();
    Ok(match (name, snaps.first()) {
        ("all", _) | (_, None) => {
            Output::new("scenario stop").field("scenarios", Value::Array(all.clone())).returns(Value::Array(all))
        }
        (_, Some(s)) => one("scenario stop", s),
    }
    .text(text))
}

async fn status(ctx: &Ctx, a: &Args) -> Result<Output> {
    if a.switch("follow") {
        // Redrawn at the live model's rate, from the same registry the model reads.
        follow(ctx, a, "scenario status", |view| format!("{}\n{}", heading(view), status_table(ctx).0)).await?;
    }
    let (text, snaps) = status_table(ctx);
    let text = if a.switch("follow") { String::new() } else { text };
    let all: Vec<Value> = snaps.iter().map(to_value).collect();
    Ok(Output::new("scenario status")
        .field("scenarios", Value::Array(all.clone()))
        .text(text)
        .returns(Value::Array(all)))
}

/// The `scenario status` table, and the scenarios it shows.
fn status_table(ctx: &Ctx) -> (String, Vec<Snapshot>) {
    let snaps = ctx.scenarios.status();
    let rows = snaps
        .iter()
        .map(|s| {
            let counters: Vec<String> = s.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                s.name.clone(),
                if s.running { "running".into() } else { "stopped".into() },
                human_ms(s.uptime_ms),
                s.ops.to_string(),
                format!("{:.1}", s.ops_per_sec),
                s.errors.to_string(),
                counters.join(" "),
                invariant(s),
            ]
        })
        .collect();
    let text = if snaps.is_empty() {
        "no scenario started (scenario start NAME)".into()
    } else {
        table(ctx.style, &["scenario", "state", "uptime", "ops", "ops/s", "errors", "counters", "invariant"], rows)
    };
    (text, snaps)
}

fn to_value(s: &Snapshot) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

fn one(cmd: &str, s: &Snapshot) -> Output {
    let mut out = Output::new(cmd);
    if let Value::Object(m) = to_value(s) {
        out.fields = m;
    }
    out
}

/// `✓ held (3 checks)`, `✗ broken: total balance constant`, `no check yet`.
fn invariant(s: &Snapshot) -> String {
    match s.held {
        None => "no check yet".into(),
        Some(true) if s.checks_passed == 1 => "✓ held (1 check)".into(),
        Some(true) => format!("✓ held ({} checks)", s.checks_passed),
        Some(false) => format!("✗ broken: {}", s.failures.join("; ")),
    }
}

/// `accounts=5 total=5000 transfers=120`
fn result_line(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) if !m.is_empty() => Some(
            m.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}
