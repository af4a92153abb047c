//! `metrics`: each node's request counters, bytes, Raft append and apply latencies, and how
//! replication to it is going as its leader sees it (round trips, timeouts, entries behind).

use crate::client::{Served, Target};
use crate::error::{Error, Result};
use crate::proto::{node_name, NodeId, NodeMetrics, PeerMetrics, Request, Response};
use crate::shell::output::{human_bytes, table, Output};
use crate::shell::spec::{Args, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "metrics",
        params: &[],
        summary:
            "per node: requests, errors, bytes, latencies of requests, Raft appends (fsync), applies and replication",
        example: "metrics",
        run: |ctx, a| Box::pin(metrics(ctx, a)),
    }]
}

async fn metrics(ctx: &Ctx, _: &Args) -> Result<Output> {
    let ids = ctx.client.node_ids();
    let calls = ids.iter().map(|&id| async move {
        match ctx.client.call(Target::Node(id), Request::Metrics).await {
            Ok(Served { value: Response::Metrics(m), leader, .. }) => Some((m, leader)),
            _ => None,
        }
    });
    let all: Vec<Option<(NodeMetrics, Option<NodeId>)>> = futures::future::join_all(calls).await;
    // Replication is measured by the leader, on its links to the others.
    let leader = all.iter().flatten().find_map(|(_, l)| *l);
    let leader_peers: Vec<PeerMetrics> = ids
        .iter()
        .zip(&all)
        .find(|(id, _)| Some(**id) == leader)
        .and_then(|(_, m)| m.as_ref().map(|(m, _)| m.peers.clone()))
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    for (&id, m) in ids.iter().zip(&all) {
        let Some((m, _)) = m else {
            nodes.push(json!({"id": node_name(id), "state": "down"}));
            let mut row = vec![node_name(id), "down".into()];
            row.resize(9, "-".into());
            rows.push(row);
            continue;
        };
        let repl = leader_peers.iter().find(|p| p.id == id);
        let mut v = serde_json::to_value(m).map_err(|e| Error::internal(e.to_string()))?;
        if let Value::Object(o) = &mut v {
            o.insert("id".into(), json!(node_name(id)));
            o.insert("replication".into(), json!(repl));
        }
        nodes.push(v);
        let pair = |a: f64, b: f64| format!("{a:.2} / {b:.2}");
        let repl_text = match repl {
            Some(p) => format!("{} · {} timeouts · {} behind", pair(p.rtt_p50_ms, p.rtt_p99_ms), p.timeouts, p.lag),
            None if Some(id) == leader => "leader".into(),
            None => "-".into(),
        };
        rows.push(vec![
            node_name(id),
            m.requests.to_string(),
            m.errors.to_string(),
            human_bytes(m.bytes_in),
            human_bytes(m.bytes_out),
            pair(m.request_p50_ms, m.request_p99_ms),
            pair(m.append_p50_ms, m.append_p99_ms),
            pair(m.apply_p50_ms, m.apply_p99_ms),
            repl_text,
        ]);
    }
    if all.iter().all(Option::is_none) {
        return Err(Error::unreachable("no node of the cluster answered"));
    }
    let header = [
        "node",
        "requests",
        "errors",
        "in",
        "out",
        "request p50/p99 ms",
        "append p50/p99 ms",
        "apply p50/p99 ms",
        "replication rtt p50/p99 ms",
    ];
    Ok(Output::new("metrics").field("nodes", Value::Array(nodes)).text(table(ctx.style, &header, rows)))
}
