//! `metrics`: each node's request counters, bytes, and Raft append and apply latencies.

use crate::client::Target;
use crate::error::{Error, Result};
use crate::proto::{node_name, Request, Response};
use crate::shell::output::{human_bytes, table, Output};
use crate::shell::spec::{Args, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "metrics",
        params: &[],
        summary: "per node: requests, errors, bytes, request latency, Raft append (fsync) and apply latency",
        example: "metrics",
        run: |ctx, a| Box::pin(metrics(ctx, a)),
    }]
}

async fn metrics(ctx: &Ctx, _: &Args) -> Result<Output> {
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    let mut answered = 0;
    for id in ctx.client.node_ids() {
        let m = match ctx.client.call(Target::Node(id), Request::Metrics).await {
            Ok(r) => match r.value {
                Response::Metrics(m) => Some(m),
                other => return Err(super::keys::unexpected(other)),
            },
            Err(_) => None,
        };
        let Some(m) = m else {
            nodes.push(json!({"id": node_name(id), "state": "down"}));
            let mut row = vec![node_name(id), "down".into()];
            row.resize(8, "-".into());
            rows.push(row);
            continue;
        };
        answered += 1;
        let mut v = serde_json::to_value(&m).map_err(|e| Error::internal(e.to_string()))?;
        if let Value::Object(o) = &mut v {
            o.insert("id".into(), json!(node_name(id)));
        }
        nodes.push(v);
        let pair = |a: f64, b: f64| format!("{a:.2} / {b:.2}");
        rows.push(vec![
            node_name(id),
            m.requests.to_string(),
            m.errors.to_string(),
            human_bytes(m.bytes_in),
            human_bytes(m.bytes_out),
            pair(m.request_p50_ms, m.request_p99_ms),
            pair(m.append_p50_ms, m.append_p99_ms),
            pair(m.apply_p50_ms, m.apply_p99_ms),
        ]);
    }
    if answered == 0 {
        return Err(Error::unreachable("no node of the cluster answered"));
    }
    let header =
        ["node", "requests", "errors", "in", "out", "request p50/p99 ms", "append p50/p99 ms", "apply p50/p99 ms"];
    Ok(Output::new("metrics").field("nodes", Value::Array(nodes)).text(table(ctx.style, &header, rows)))
}
