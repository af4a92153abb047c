//! Load: `load OP …` drives a workload and shows throughput, latency percentiles, errors by
//! kind and who served it; `ladder [OP]` runs 10, 100, 1,000 and 10,000 operations, one row
//! each. The runner, recorder, report and progress bar live in `crate::load`; this file only
//! reads flags, shows results and applies the thresholds.

use crate::error::{Error, ErrorKind, Result};
use crate::live::web;
use crate::load::{self, Backend, Etcd, LoadOp, LoadSpec, Progress, Recorder, Summary, Verified};
use crate::shell::output::{table, Output};
use crate::shell::spec::{parse_duration, Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;

const HEADER: [&str; 8] = ["ops", "ops/s", "errors", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"];
const LADDER: [u64; 4] = [10, 100, 1_000, 10_000];

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "load",
            params: &[
                Param {
                    name: "op",
                    kind: Pos,
                    help: "put, get, mixed (alternating put/get), chat (send), lock (acquire+release) or queue (push+pop+ack)",
                },
                Param { name: "count", kind: Flag("N"), help: "operations to run (default 1000 unless --duration)" },
                Param { name: "duration", kind: Flag("D"), help: "run for this long instead of a count" },
                Param {
                    name: "concurrency",
                    kind: Flag("C"),
                    help: "operations in flight at most (default 16; 64 with --rate)",
                },
                Param {
                    name: "rate",
                    kind: Flag("R"),
                    help: "open loop: start R operations per second on a fixed schedule; latency counts from each one's intended start",
                },
                Param { name: "keys", kind: Flag("K"), help: "distinct keys (default 1000)" },
                Param { name: "value-size", kind: Flag("B"), help: "bytes per value (default 64)" },
                Param {
                    name: "report",
                    kind: Flag("FILE"),
                    help: "write the run: JSON (settings, per-second series, summary, errors by kind, faults), or one HTML page when FILE ends in .html",
                },
                Param { name: "max-p99", kind: Flag("D"), help: "fail (exit 1) when p99 is above D" },
                Param { name: "max-errors", kind: Flag("N"), help: "fail (exit 1) when more than N operations fail" },
                Param {
                    name: "verify",
                    kind: Switch,
                    help: "put: read back every acknowledged write at the end; report verified and missing",
                },
                Param {
                    name: "etcd",
                    kind: Flag("ENDPOINTS"),
                    help: "drive etcd at these host:port endpoints instead, for comparison",
                },
            ],
            summary: "run a workload and print ops/s, latency percentiles, errors and who served it",
            example: "load put --count 10000 --concurrency 64",
            run: |ctx, a| Box::pin(run(ctx, a)),
        },
        Spec {
            name: "ladder",
            params: &[
                Param { name: "op", kind: OptPos, help: "put (default), get or mixed" },
                Param { name: "concurrency", kind: Flag("C"), help: "operations in flight (default 16)" },
                Param { name: "keys", kind: Flag("K"), help: "distinct keys (default 1000)" },
                Param { name: "value-size", kind: Flag("B"), help: "bytes per value (default 64)" },
            ],
            summary: "10, 100, 1,000 and 10,000 operations, one row each",
            example: "ladder put --concurrency 32",
            run: |ctx, a| Box::pin(ladder(ctx, a)),
        },
    ]
}

fn base_spec(a: &Args, op: LoadOp, default_concurrency: u64) -> Result<LoadSpec> {
    Ok(LoadSpec {
        op,
        count: None,
        duration: None,
        concurrency: a.u64_or("concurrency", default_concurrency)? as usize,
        rate: None,
        keys: a.u64_or("keys", 1000)?,
        value_size: a.u64_or("value-size", 64)? as usize,
        verify: false,
    })
}

/// Runs one workload with a progress bar when output is live on a terminal, until it is done
/// or Ctrl-C (the context's interrupt) stops it with what it measured so far.
async fn drive(
    ctx: &Ctx,
    backend: Backend,
    spec: LoadSpec,
    label: Option<String>,
) -> Result<(Summary, Option<Verified>)> {
    let rec = Arc::new(Recorder::new());
    let op = match &label {
        Some(l) => format!("{} {l}", spec.op.name()),
        None => spec.op.name().to_string(),
    };
    // Watched by the live model's load panel while it runs.
    let _running =
        ctx.loads.register(load::Running { op, count: spec.count, duration: spec.duration, rec: rec.clone() });
    let progress = Progress::start(rec.clone(), spec.count, spec.duration, ctx.live, label);
    let result = load::run(backend, spec, rec, ctx.interrupt.token()).await;
    progress.finish();
    let (s, v) = result?;
    if s.ops == 0 && s.errors > 0 && !s.interrupted {
        return Err(Error::unreachable(format!("every operation failed: {:?}", s.errors_by_kind)));
    }
    Ok((s, v))
}

/// The line that says the figures above are not the whole run.
fn interrupted_line(s: &Summary) -> String {
    format!("interrupted after {:.1} s: partial results", s.elapsed.as_secs_f64())
}

async fn run(ctx: &Ctx, a: &Args) -> Result<Output> {
    let op = LoadOp::parse(a.req("op")?)?;
    let rate = match a.get("rate") {
        None => None,
        Some(r) => Some(
            r.replace('_', "").parse::<f64>().map_err(|_| Error::usage(format!("--rate: `{r}` is not a number")))?,
        ),
    };
    let duration = a.get("duration").map(parse_duration).transpose()?;
    let mut spec = base_spec(a, op, if rate.is_some() { 64 } else { 16 })?;
    spec.count = if duration.is_some() && a.get("count").is_none() { None } else { Some(a.u64_or("count", 1000)?) };
    spec.duration = duration;
    spec.rate = rate;
    spec.verify = a.switch("verify");
    let max_p99 = a.get("max-p99").map(parse_duration).transpose()?;
    let max_errors = a.get("max-errors").map(|_| a.u64_or("max-errors", 0)).transpose()?;
    let backend = match a.get("etcd") {
        Some(eps) => Backend::Etcd(Arc::new(Etcd::new(eps.split(',').map(str::to_string).collect())?)),
        None => Backend::Dsh(ctx.client.clone()),
    };
    // The live model watches the run when it is reported, so the report can shade the faults
    // and mark the elections that happened during it.
    let model = a.get("report").map(|_| ctx.model());
    if let Some(m) = &model {
        // A model that has not yet reached a node counts it down; let it make first contact
        // (bounded, for a node that is really down) so the report shades no crash that was not.
        let mut views = m.subscribe();
        let heard = |v: &Arc<crate::live::View>| !v.nodes.is_empty() && v.nodes.iter().all(|n| n.state == "up");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), views.wait_for(heard)).await;
    }
    let started_ms = crate::proto::wall_ms();
    let (s, v) = drive(ctx, backend, spec.clone(), None).await?;
    if let (Some(path), Some(model)) = (a.get("report"), model) {
        let mut report = load::report_data(&spec, &s, v.as_ref());
        web::with_timeline(&mut report, &model.snapshot(), started_ms, crate::proto::wall_ms());
        web::write_report(Path::new(path), &report)?;
    }
    let fields = load::summary_fields(&s, v.as_ref());
    let mut text = table(ctx.style, &HEADER, vec![row(&fields)]);
    for line in notes(&s, v.as_ref(), rate) {
        text.push('\n');
        text.push_str(&line);
    }
    if s.interrupted {
        text.push('\n');
        text.push_str(&interrupted_line(&s));
    }
    let mut out = Output::new("load").text(text);
    out.fields = fields;
    let mut broken = Vec::new();
    if let Some(limit) = max_p99 {
        let limit_ms = limit.as_secs_f64() * 1000.0;
        if s.ms(0.99) > limit_ms {
            broken.push(format!("p99 {:.2} ms is above --max-p99 {}", s.ms(0.99), a.get("max-p99").unwrap_or("")));
        }
    }
    if let Some(limit) = max_errors {
        if s.errors > limit {
            broken.push(format!("{} errors is above --max-errors {limit}", s.errors));
        }
    }
    if let Some(v) = v.as_ref().filter(|v| v.missing > 0) {
        broken.push(format!("{} acknowledged writes missing", v.missing));
    }
    if !broken.is_empty() {
        out = out.fail(Error::new(ErrorKind::Threshold, broken.join("; ")));
    }
    Ok(out)
}

/// A table row from the summary fields, so the table shows exactly what JSON and reports say.
fn row(f: &Map<String, Value>) -> Vec<String> {
    let n = |k: &str| f.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    vec![
        format!("{}", n("ops") as u64),
        format!("{:.0}", n("ops_per_sec")),
        format!("{}", n("errors") as u64),
        format!("{:.2}", n("p50_ms")),
        format!("{:.2}", n("p95_ms")),
        format!("{:.2}", n("p99_ms")),
        format!("{:.2}", n("p999_ms")),
        format!("{:.2}", n("max_ms")),
    ]
}

/// The lines under the table: who served, errors by kind, lateness, and what `--verify` found.
fn notes(s: &Summary, v: Option<&Verified>, rate: Option<f64>) -> Vec<String> {
    let mut lines = Vec::new();
    if !s.by_node.is_empty() {
        let parts: Vec<String> =
            s.by_node.iter().map(|(n, c)| format!("{} {c}", crate::proto::node_name(*n))).collect();
        lines.push(format!("served by: {}", parts.join(", ")));
    }
    if !s.errors_by_kind.is_empty() {
        let parts: Vec<String> = s.errors_by_kind.iter().map(|(k, c)| format!("{k} {c}")).collect();
        lines.push(format!("errors: {}", parts.join(", ")));
    }
    if let Some(r) = rate {
        lines.push(format!(
            "open loop at {r}/s: {} operations started late (their wait counts in the latencies)",
            s.late
        ));
    }
    if let Some(v) = v {
        lines.push(format!(
            "verify: {} keys read back with their last acknowledged write, {} missing",
            v.verified, v.missing
        ));
        for e in &v.examples {
            lines.push(format!("  missing {e}"));
        }
    }
    lines
}

async fn ladder(ctx: &Ctx, a: &Args) -> Result<Output> {
    let op = LoadOp::parse(a.get("op").unwrap_or("put"))?;
    let mut rows = Vec::new();
    let mut text_rows = Vec::new();
    let mut stopped = None;
    for (rung, count) in LADDER.into_iter().enumerate() {
        let mut spec = base_spec(a, op, 16)?;
        spec.count = Some(count);
        let label = format!("rung {}/{}: {count} ops", rung + 1, LADDER.len());
        let (s, _) = drive(ctx, Backend::Dsh(ctx.client.clone()), spec, Some(label)).await?;
        if s.interrupted {
            // A rung cut short is not comparable with the others: only finished rows are shown.
            let secs = s.elapsed.as_secs_f64();
            stopped =
                Some(format!("interrupted after {secs:.1} s into the {count}-operation rung: the rows above finished"));
            break;
        }
        let fields = load::summary_fields(&s, None);
        let mut r = row(&fields);
        r.insert(0, count.to_string());
        text_rows.push(r);
        let mut f = Map::new();
        f.insert("count".into(), count.into());
        f.extend(fields);
        rows.push(Value::Object(f));
    }
    let mut header = vec!["count"];
    header.extend(HEADER);
    let mut text = if text_rows.is_empty() { String::new() } else { table(ctx.style, &header, text_rows) };
    if let Some(line) = &stopped {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
    Ok(Output::new("ladder")
        .field("op", op.name())
        .field("rows", Value::Array(rows.clone()))
        .field("interrupted", stopped.is_some())
        .returns(Value::Array(rows))
        .text(text))
}
