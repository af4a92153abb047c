//! Looking at the cluster: status, leader, wait.

use crate::error::{Error, Result};
use crate::live::NodeView;
use crate::proto::{node_name, NodeStatus};
use crate::shell::fit::{self, Column};
use crate::shell::follow::{follow, heading};
use crate::shell::output::{human_bytes, human_ms, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};
use std::time::Duration;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "status",
            params: FOLLOW,
            summary: "one row per node: state, role, term, leader, log indexes, keys, disk, uptime, recovery",
            example: "status --follow",
            run: |ctx, a| Box::pin(status(ctx, a)),
        },
        Spec {
            name: "leader",
            params: &[],
            summary: "which node leads, and in which term (waits out an election under way)",
            example: "leader",
            run: |ctx, a| Box::pin(leader(ctx, a)),
        },
        Spec {
            name: "wait",
            params: &[
                Param {
                    name: "what",
                    kind: Pos,
                    help: "leader, healthy (every node up and following one leader) or caught-up",
                },
                Param { name: "timeout", kind: Flag("D"), help: "give up after this long (default 10s)" },
            ],
            summary: "wait until the cluster has a leader, is healthy, or has caught up",
            example: "wait leader --timeout 5s",
            run: |ctx, a| Box::pin(wait(ctx, a)),
        },
    ]
}

const STATUS_TIMEOUT: Duration = Duration::from_millis(800);

/// `--follow` and `--for`, as `status` and `scenario status` take them.
pub(super) const FOLLOW: &[Param] = &[
    Param {
        name: "follow",
        kind: Switch,
        help:
            "redraw the table in place at the live model's rate until Ctrl-C (off a terminal: a plain copy each second)",
    },
    Param { name: "for", kind: Flag("D"), help: "with --follow: stop after this long" },
];

/// `up`, `down` or `paused`: from the process when this machine or a supervisor can tell, else
/// from whether the node answered.
async fn state(ctx: &Ctx, id: u64, answered: bool) -> &'static str {
    match ctx.process_state(id).await.map(|p| p.state) {
        Some(s) if s == "paused" => "paused",
        Some(s) if s == "down" => "down",
        _ if answered => "up",
        _ => "down",
    }
}

fn row_json(id: u64, addr: &str, state: &str, s: Option<&NodeStatus>) -> Value {
    match s {
        Some(s) => json!({
            "id": node_name(id), "address": s.addr, "state": state, "role": s.role, "term": s.term,
            "leader": s.leader.map(node_name), "last_log_index": s.last_log_index,
            "commit_index": s.commit_index, "applied_index": s.applied_index, "keys": s.keys,
            "bytes_on_disk": s.bytes_on_disk, "uptime_ms": s.uptime_ms, "last_recovery_ms": s.recovery_ms,
            "pid": is_local(&s.addr).then_some(s.pid), "quorum_ack_ms": s.quorum_ack_ms,
        }),
        None => json!({"id": node_name(id), "address": addr, "state": state}),
    }
}

fn is_local(addr: &str) -> bool {
    addr.starts_with("127.") || addr.starts_with("localhost") || addr.starts_with("[::1]")
}

async fn status(ctx: &Ctx, a: &Args) -> Result<Output> {
    if a.switch("follow") {
        return follow_status(ctx, a).await;
    }
    let all = ctx.client.status_all(STATUS_TIMEOUT).await;
    let states = futures::future::join_all(all.iter().map(|(id, r)| state(ctx, *id, r.is_ok()))).await;
    if all.iter().all(|(_, r)| r.as_ref().is_err_and(|e| e.kind == crate::error::ErrorKind::Unreachable)) {
        return Err(Error::unreachable("no node of the cluster answered"));
    }
    let mut nodes = Vec::new();
    let mut rows = Vec::new();
    for ((id, r), st) in all.iter().zip(states) {
        let addr = ctx.client.addr_of(*id).unwrap_or("?");
        let s = r.as_ref().ok();
        nodes.push(row_json(*id, addr, st, s));
        rows.push(match s {
            Some(s) => vec![
                node_name(*id),
                s.addr.clone(),
                st.into(),
                if s.role == "leader" { "leader ★".into() } else { s.role.clone() },
                s.term.to_string(),
                s.leader.map(node_name).unwrap_or_else(|| "-".into()),
                s.last_log_index.to_string(),
                s.commit_index.to_string(),
                s.applied_index.to_string(),
                s.keys.to_string(),
                human_bytes(s.bytes_on_disk),
                human_ms(s.uptime_ms),
                human_ms(s.recovery_ms),
            ],
            None => {
                let mut r = vec![node_name(*id), addr.to_string(), st.into()];
                r.resize(13, "-".into());
                r
            }
        });
    }
    Ok(Output::new("status")
        .field("nodes", Value::Array(nodes.clone()))
        .text(fit::render(ctx.style, &columns(), rows))
        .returns(Value::Array(nodes)))
}

/// What a presenter points at stays longest on a narrow terminal: who leads and what each
/// node has committed; the address and timings go first.
fn columns() -> [Column; 13] {
    [
        Column::new("node", 0),
        Column::new("address", 7),
        Column::new("state", 1),
        Column::new("role", 1),
        Column::new("term", 2),
        Column::new("leader", 2),
        Column::new("last log", 5),
        Column::new("commit", 3),
        Column::new("applied", 3),
        Column::new("keys", 4),
        Column::new("disk", 5),
        Column::new("uptime", 6),
        Column::new("recovery", 6),
    ]
}

/// `status --follow`: the same table, from the live model, until Ctrl-C.
async fn follow_status(ctx: &Ctx, a: &Args) -> Result<Output> {
    let last = follow(ctx, a, "status", |view| {
        let rows = view.nodes.iter().map(view_row).collect();
        format!("{}\n{}", heading(view), fit::render(ctx.style, &columns(), rows))
    })
    .await?;
    let nodes = serde_json::to_value(&last.nodes).unwrap_or(Value::Null);
    Ok(Output::new("status").field("nodes", nodes.clone()).returns(nodes))
}

/// A row of the `status` table from the live model's view of a node.
fn view_row(n: &NodeView) -> Vec<String> {
    if n.state != "up" {
        let mut r =
            vec![n.id.clone(), if n.address.is_empty() { "?".into() } else { n.address.clone() }, n.state.clone()];
        r.resize(13, "-".into());
        return r;
    }
    vec![
        n.id.clone(),
        n.address.clone(),
        n.state.clone(),
        if n.role == "leader" { "leader ★".into() } else { n.role.clone() },
        n.term.to_string(),
        n.leader.clone().unwrap_or_else(|| "-".into()),
        n.last_log_index.to_string(),
        n.commit_index.to_string(),
        n.applied_index.to_string(),
        n.keys.to_string(),
        human_bytes(n.bytes_on_disk),
        human_ms(n.uptime_ms),
        human_ms(n.last_recovery_ms),
    ]
}

/// How long `leader` waits for an election under way: a story that asks right after a crash or
/// a restart (which can start an election) wants the answer, not an error in between.
const ELECTION_WAIT: Duration = Duration::from_secs(3);

async fn leader(ctx: &Ctx, _: &Args) -> Result<Output> {
    let started = std::time::Instant::now();
    let leader = loop {
        let all = ctx.client.status_all(STATUS_TIMEOUT).await;
        let found = all.into_iter().filter_map(|(_, r)| r.ok()).filter(|s| s.role == "leader").max_by_key(|s| s.term);
        match found {
            Some(l) => break l,
            None if started.elapsed() >= ELECTION_WAIT => {
                return Err(Error::no_quorum(format!("no node became leader within {ELECTION_WAIT:?}")))
            }
            None => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    };
    let name = node_name(leader.id);
    Ok(Output::new("leader")
        .field("leader", name.clone())
        .field("term", leader.term)
        .field("node", name.clone())
        .text(format!("{name} (term {})", leader.term))
        .returns(name))
}

/// What `wait` waits for, judged from every node's status.
fn settled(what: &str, all: &[(u64, Result<NodeStatus>)], waited: Duration) -> Result<Option<(u64, u64)>> {
    let up: Vec<&NodeStatus> = all.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    // A leader counts while a majority keeps acknowledging its heartbeats (every 50 ms): right
    // after a partition the old leader still calls itself one, but its last acknowledgement
    // only ages. Looking for at least 150 ms lets replies in flight at the cut drain first.
    let fresh = |ms: u64| ms < 100 && waited >= Duration::from_millis(150);
    let leader = up.iter().filter(|s| s.role == "leader" && s.quorum_ack_ms.is_some_and(fresh)).max_by_key(|s| s.term);
    let Some(l) = leader else { return Ok(None) };
    let agreed = up.iter().filter(|s| s.leader == Some(l.id) && s.term == l.term).count();
    let ok = match what {
        "leader" => agreed * 2 > all.len(),
        "healthy" => up.len() == all.len() && agreed == all.len(),
        "caught-up" => agreed * 2 > all.len() && up.iter().all(|s| s.applied_index >= l.commit_index),
        other => return Err(Error::usage(format!("wait: `{other}`? (leader, healthy, caught-up)"))),
    };
    Ok(ok.then_some((l.id, l.term)))
}

async fn wait(ctx: &Ctx, a: &Args) -> Result<Output> {
    let what = a.req("what")?;
    let timeout = a.duration_or("timeout", Duration::from_secs(10))?;
    let started = std::time::Instant::now();
    loop {
        // Measured before asking, so an acknowledgement counts only if it came after the wait began.
        let asked_at = started.elapsed();
        // A dead node never answers, and each round waits for every node: a short limit keeps
        // the rounds (and so what `waited_ms` reports) close to when the cluster settled.
        let all = ctx.client.status_all(Duration::from_millis(150)).await;
        // A process that runs (as this machine or its supervisor can tell) but did not answer
        // (just resumed, busy catching up) has not caught up yet, though only answering nodes
        // are compared.
        let silent =
            futures::future::join_all(all.iter().filter(|(_, r)| r.is_err()).map(|(id, _)| ctx.process_state(*id)))
                .await
                .into_iter()
                .any(|p| p.is_some_and(|p| p.state == "up"));
        let settled = settled(what, &all, asked_at)?.filter(|_| what != "caught-up" || !silent);
        if let Some((leader, term)) = settled {
            let ms = started.elapsed().as_millis() as u64;
            return Ok(Output::new("wait")
                .field("what", what)
                .field("leader", node_name(leader))
                .field("term", term)
                .field("waited_ms", ms)
                .text(format!("{what}: leader {} (term {term}) after {ms} ms", node_name(leader))));
        }
        if started.elapsed() >= timeout {
            return Err(Error::timeout(format!("cluster not {what} within {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
