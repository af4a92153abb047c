//! `metrics`: each node's request counters, bytes, Raft append and apply latencies, and how
//! replication to it is going as its leader sees it (round trips, timeouts, entries behind).

use crate::client::{Served, Target};
use crate::error::{Error, Result};
use crate::proto::{node_name, NodeId, NodeMetrics, PeerMetrics, Request, Response};
use crate::shell::fit::{self, Column};
use crate::shell::output::{human_bytes, Output};
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
            row.resize(11, "-".into());
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
        let (repl_ms, timeouts, behind) = match repl {
            Some(p) => (pair(p.rtt_p50_ms, p.rtt_p99_ms), p.timeouts.to_string(), p.lag.to_string()),
            None if Some(id) == leader => ("leader".into(), "-".into(), "-".into()),
            None => ("-".into(), "-".into(), "-".into()),
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
            repl_ms,
            timeouts,
            behind,
        ]);
    }
    if all.iter().all(Option::is_none) {
        return Err(Error::unreachable("no node of the cluster answered"));
    }
    // On a narrow terminal the byte counts go first, then apply latency and timeouts; requests,
    // errors, request and fsync latency and how far each follower is behind stay.
    let columns = [
        Column::new("node", 0),
        Column::new("requests", 1),
        Column::new("errors", 1),
        Column::new("in", 6),
        Column::new("out", 6),
        Column::new("request ms\np50/p99", 2),
        Column::new("append ms\np50/p99", 3),
        Column::new("apply ms\np50/p99", 5),
        Column::new("repl. ms\np50/p99", 4),
        Column::new("timeouts", 5),
        Column::new("behind", 3),
    ];
    Ok(Output::new("metrics").field("nodes", Value::Array(nodes)).text(fit::render(ctx.style, &columns, rows)))
}

/// `0.29/1.40`: two latencies in milliseconds, as many decimals as their size leaves room for.
fn pair(a: f64, b: f64) -> String {
    format!("{}/{}", short_ms(a), short_ms(b))
}

fn short_ms(ms: f64) -> String {
    match ms {
        x if x < 10.0 => format!("{x:.2}"),
        x if x < 100.0 => format!("{x:.1}"),
        x => format!("{x:.0}"),
    }
}
