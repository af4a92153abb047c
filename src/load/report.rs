//! The results of a run as data: the summary fields every front end shows (SPEC §3 names:
//! `ops`, `ops_per_sec`, `errors`, `p50_ms` … `max_ms`, `verified`, `missing`) and the
//! `--report` file (settings, per-second series, summary, errors by kind). The printed table,
//! `--json` and the report are all built from `summary_fields`, so they cannot disagree. It
//! must not run operations or decide thresholds.

use super::record::Summary;
use super::verify::Verified;
use super::workload::LoadSpec;
use crate::error::{Context, Result};
use crate::proto::node_name;
use serde_json::{json, Map, Value};
use std::path::Path;

/// Milliseconds to the microsecond, so JSON stays short but exact to what was measured.
fn ms3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The summary as named fields, in the order they are shown.
pub fn summary_fields(s: &Summary, v: Option<&Verified>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ops".into(), json!(s.ops));
    m.insert("ops_per_sec".into(), json!((s.ops_per_sec() * 10.0).round() / 10.0));
    m.insert("errors".into(), json!(s.errors));
    m.insert("p50_ms".into(), json!(ms3(s.ms(0.50))));
    m.insert("p95_ms".into(), json!(ms3(s.ms(0.95))));
    m.insert("p99_ms".into(), json!(ms3(s.ms(0.99))));
    m.insert("p999_ms".into(), json!(ms3(s.ms(0.999))));
    m.insert("max_ms".into(), json!(ms3(s.max_ms())));
    m.insert("elapsed_ms".into(), json!(s.elapsed.as_millis() as u64));
    m.insert("late".into(), json!(s.late));
    m.insert("interrupted".into(), json!(s.interrupted));
    let errors: Map<String, Value> = s.errors_by_kind.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    m.insert("errors_by_kind".into(), Value::Object(errors));
    let by_node: Map<String, Value> = s.by_node.iter().map(|(k, v)| (node_name(*k), json!(v))).collect();
    m.insert("by_node".into(), Value::Object(by_node));
    if let Some(v) = v {
        m.insert("verified".into(), json!(v.verified));
        m.insert("missing".into(), json!(v.missing));
        m.insert("missing_keys".into(), json!(v.examples));
    }
    m
}

pub fn settings(spec: &LoadSpec) -> Value {
    json!({
        "op": spec.op.name(),
        "count": spec.count,
        "duration_ms": spec.duration.map(|d| d.as_millis() as u64),
        "concurrency": spec.concurrency,
        "rate": spec.rate,
        "loop": if spec.rate.is_some() { "open" } else { "closed" },
        "keys": spec.keys,
        "value_size": spec.value_size,
        "verify": spec.verify,
    })
}

/// Writes the `--report` file as JSON: `{settings, summary, errors_by_kind, series}`.
pub fn write_report(path: &Path, spec: &LoadSpec, s: &Summary, v: Option<&Verified>) -> Result<()> {
    let text = serde_json::to_string_pretty(&report_data(spec, s, v)).context("report")?;
    std::fs::write(path, text + "\n").context(format!("write {}", path.display()))
}

/// The `--report` data: `{settings, summary, errors_by_kind, series}`; `series` has one entry
/// per second of the run (`second` from 0, `ops`, `errors`, `p50_ms`, `p99_ms`).
pub fn report_data(spec: &LoadSpec, s: &Summary, v: Option<&Verified>) -> Value {
    let series: Vec<Value> = s
        .series
        .iter()
        .map(|p| {
            json!({"second": p.second, "sec": p.sec, "ops": p.ops, "errors": p.errors,
                   "p50_ms": ms3(p.p50_ms), "p99_ms": ms3(p.p99_ms)})
        })
        .collect();
    json!({
        "settings": settings(spec),
        "summary": Value::Object(summary_fields(s, v)),
        "errors_by_kind": s.errors_by_kind,
        "series": series,
    })
}
