//! Load: drive many operations and report throughput and latency percentiles.

use crate::error::{Error, Result};
use crate::load::{self, Backend, Etcd, LoadOp, LoadSpec};
use crate::proto::node_name;
use crate::shell::output::{table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "load",
        params: &[
            Param { name: "op", kind: Pos, help: "put or get" },
            Param { name: "count", kind: Flag("N"), help: "operations to run (default 1000 unless --duration)" },
            Param { name: "duration", kind: Flag("D"), help: "run for this long instead of a count" },
            Param { name: "concurrency", kind: Flag("C"), help: "operations in flight at once (default 16)" },
            Param { name: "keys", kind: Flag("K"), help: "distinct keys (default 1000)" },
            Param { name: "value-size", kind: Flag("B"), help: "bytes per value (default 64)" },
            Param {
                name: "etcd",
                kind: Flag("ENDPOINTS"),
                help: "drive etcd at these host:port endpoints instead, for comparison",
            },
        ],
        summary: "run a closed-loop workload and print ops/s and latency percentiles",
        example: "load put --count 10000 --concurrency 64",
        run: |ctx, a| Box::pin(run(ctx, a)),
    }]
}

async fn run(ctx: &Ctx, a: &Args) -> Result<Output> {
    let duration = a.get("duration").map(crate::shell::spec::parse_duration).transpose()?;
    let spec = LoadSpec {
        op: LoadOp::parse(a.req("op")?)?,
        count: if duration.is_some() && a.get("count").is_none() { None } else { Some(a.u64_or("count", 1000)?) },
        duration,
        concurrency: a.u64_or("concurrency", 16)? as usize,
        keys: a.u64_or("keys", 1000)?,
        value_size: a.u64_or("value-size", 64)? as usize,
    };
    let backend = match a.get("etcd") {
        Some(eps) => Backend::Etcd(Arc::new(Etcd::new(eps.split(',').map(str::to_string).collect())?)),
        None => Backend::Dsh(ctx.client.clone()),
    };
    let s = load::run(backend, spec).await?;
    if s.ops == 0 && s.errors > 0 {
        return Err(Error::unreachable(format!("every operation failed: {:?}", s.errors_by_kind)));
    }
    let errors: Map<String, Value> = s.errors_by_kind.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let by_node: Map<String, Value> = s.by_node.iter().map(|(k, v)| (node_name(*k), json!(v))).collect();
    let f = |x: f64| (x * 1000.0).round() / 1000.0;
    let row = vec![
        s.ops.to_string(),
        format!("{:.0}", s.ops_per_sec()),
        s.errors.to_string(),
        format!("{:.2}", s.ms(0.50)),
        format!("{:.2}", s.ms(0.95)),
        format!("{:.2}", s.ms(0.99)),
        format!("{:.2}", s.ms(0.999)),
        format!("{:.2}", s.max_ms()),
    ];
    let header = ["ops", "ops/s", "errors", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"];
    Ok(Output::new("load")
        .field("ops", s.ops)
        .field("ops_per_sec", f(s.ops_per_sec()))
        .field("errors", s.errors)
        .field("p50_ms", f(s.ms(0.50)))
        .field("p95_ms", f(s.ms(0.95)))
        .field("p99_ms", f(s.ms(0.99)))
        .field("p999_ms", f(s.ms(0.999)))
        .field("max_ms", f(s.max_ms()))
        .field("elapsed_ms", s.elapsed.as_millis() as u64)
        .field("errors_by_kind", Value::Object(errors))
        .field("by_node", Value::Object(by_node))
        .text(table(ctx.style, &header, vec![row])))
}
