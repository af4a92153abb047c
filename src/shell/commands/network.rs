//! Network faults inside the nodes' transport: partition, isolate, slow links, heal, faults.
//! Each node is told what to drop or delay on its way out; clients still reach every node.

use crate::client::Target;
use crate::error::{Error, Result};
use crate::proto::{node_name, parse_node, Faults, NodeId, Request, Response, Slow};
use crate::shell::output::{table, Output};
use crate::shell::screen::mark;
use crate::shell::spec::{parse_duration, Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "partition",
            params: &[Param { name: "groups", kind: Rest, help: "groups of nodes separated by |, e.g. n1 | n2,n3" }],
            summary: "cut the network between groups of nodes (peer traffic across the cut is dropped)",
            example: "partition n1 | n2,n3",
            run: |ctx, a| Box::pin(partition(ctx, a)),
        },
        Spec {
            name: "isolate",
            params: &[Param { name: "node", kind: Pos, help: "the node to cut off from its peers" }],
            summary: "cut one node off from every other node",
            example: "isolate n2",
            run: |ctx, a| Box::pin(isolate(ctx, a)),
        },
        Spec {
            name: "slow",
            params: &[
                Param { name: "node", kind: Pos, help: "a node (n3) or a link (n1-n2)" },
                Param { name: "delay", kind: Flag("D"), help: "added to every message, e.g. 100ms" },
                Param { name: "jitter", kind: Flag("D"), help: "± this much at random" },
                Param { name: "loss", kind: Flag("P%"), help: "drop this share of messages, e.g. 5%" },
            ],
            summary: "make a node's or a link's peer traffic slow or lossy",
            example: "slow n3 --delay 200ms --jitter 20ms --loss 5%",
            run: |ctx, a| Box::pin(slow(ctx, a)),
        },
        Spec {
            name: "heal",
            params: &[],
            summary: "clear every network fault on every node",
            example: "heal",
            run: |ctx, _| Box::pin(heal(ctx)),
        },
        Spec {
            name: "faults",
            params: &[],
            summary: "what network faults are active, per node",
            example: "faults",
            run: |ctx, _| Box::pin(list(ctx)),
        },
    ]
}

async fn get_faults(ctx: &Ctx, node: NodeId) -> Result<Faults> {
    match ctx.client.call(Target::Node(node), Request::GetFaults).await?.value {
        Response::Faults(f) => Ok(f),
        other => Err(crate::client::unexpected(other)),
    }
}

/// Applies `change` to each node's faults; nodes that cannot be reached are reported, not
/// fatal. A refusal (a certificate without the admin role) is the command's answer.
async fn update(ctx: &Ctx, nodes: &[NodeId], change: impl Fn(NodeId, &mut Faults)) -> Result<Vec<String>> {
    let mut missed = Vec::new();
    for &n in nodes {
        let r = async {
            let mut f = get_faults(ctx, n).await?;
            change(n, &mut f);
            ctx.client.call(Target::Node(n), Request::SetFaults(f)).await
        };
        match r.await {
            Ok(_) => {}
            Err(e) if e.kind == crate::error::ErrorKind::Denied => return Err(e),
            Err(_) => missed.push(node_name(n)),
        }
    }
    Ok(missed)
}

fn suffix(missed: &[String]) -> String {
    if missed.is_empty() {
        String::new()
    } else {
        format!(" (not reached: {}; they keep their old settings)", missed.join(", "))
    }
}

fn parse_groups(text: &str, all: &[NodeId]) -> Result<Vec<BTreeSet<NodeId>>> {
    let groups = text
        .split('|')
        .map(|g| g.split([',', ' ']).filter(|w| !w.is_empty()).map(parse_node).collect::<Result<BTreeSet<_>>>())
        .collect::<Result<Vec<_>>>()?;
    if groups.len() < 2 || groups.iter().any(|g| g.is_empty()) {
        return Err(Error::usage("partition: give two or more groups, e.g. `partition n1 | n2,n3`"));
    }
    let named: BTreeSet<NodeId> = groups.iter().flatten().copied().collect();
    if named.len() != groups.iter().map(|g| g.len()).sum::<usize>() {
        return Err(Error::usage("partition: a node is in two groups"));
    }
    if let Some(n) = named.iter().find(|n| !all.contains(n)) {
        return Err(Error::usage(format!("partition: no node {} in this cluster", node_name(*n))));
    }
    if let Some(n) = all.iter().find(|n| !named.contains(n)) {
        return Err(Error::usage(format!("partition: say which side {} is on", node_name(*n))));
    }
    Ok(groups)
}

async fn cut(ctx: &Ctx, groups: Vec<BTreeSet<NodeId>>) -> Result<Output> {
    let all = ctx.client.node_ids();
    let side = |n: NodeId| groups.iter().position(|g| g.contains(&n));
    let missed =
        update(ctx, &all, |n, f| f.cut = all.iter().copied().filter(|p| side(*p) != side(n)).collect()).await?;
    let shown: Vec<String> =
        groups.iter().map(|g| g.iter().map(|n| node_name(*n)).collect::<Vec<_>>().join(",")).collect();
    mark(&format!("fault: partition {}", shown.join(" | ")));
    let groups_json: Vec<Vec<String>> = groups.iter().map(|g| g.iter().map(|n| node_name(*n)).collect()).collect();
    Ok(Output::new("partition").field("groups", json!(groups_json)).field("not_reached", json!(missed)).text(format!(
        "partitioned: {}{}",
        shown.join(" | "),
        suffix(&missed)
    )))
}

async fn partition(ctx: &Ctx, a: &Args) -> Result<Output> {
    let groups = parse_groups(a.get("groups").unwrap_or(""), &ctx.client.node_ids())?;
    cut(ctx, groups).await
}

async fn isolate(ctx: &Ctx, a: &Args) -> Result<Output> {
    let node = parse_node(a.req("node")?)?;
    let rest: BTreeSet<NodeId> = ctx.client.node_ids().into_iter().filter(|n| *n != node).collect();
    let mut out = cut(ctx, vec![BTreeSet::from([node]), rest]).await?;
    out.cmd = "isolate".into();
    Ok(out)
}

fn percent(s: &str) -> Result<f64> {
    let v: f64 =
        s.trim_end_matches('%').parse().map_err(|_| Error::usage(format!("--loss: `{s}` is not a percentage")))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::usage("--loss must be between 0% and 100%"))
    }
}

async fn slow(ctx: &Ctx, a: &Args) -> Result<Output> {
    let target = a.req("node")?;
    let ms = |flag| -> Result<u64> {
        Ok(a.get(flag).map(parse_duration).transpose()?.unwrap_or(Duration::ZERO).as_millis() as u64)
    };
    let (delay_ms, jitter_ms) = (ms("delay")?, ms("jitter")?);
    let loss_pct = a.get("loss").map(percent).transpose()?.unwrap_or(0.0);
    if delay_ms == 0 && jitter_ms == 0 && loss_pct == 0.0 {
        return Err(Error::usage("slow: give --delay, --jitter or --loss"));
    }
    // A link `n1-n2` slows both directions; a node slows everything it sends.
    let (ends, link): (Vec<NodeId>, Option<(NodeId, NodeId)>) = match target.split_once('-') {
        Some((x, y)) => {
            let (x, y) = (parse_node(x)?, parse_node(y)?);
            (vec![x, y], Some((x, y)))
        }
        None => (vec![parse_node(target)?], None),
    };
    let missed = update(ctx, &ends, |n, f| {
        let to = link.map(|(x, y)| if n == x { y } else { x });
        f.slow.retain(|s| s.to != to);
        f.slow.push(Slow { to, delay_ms, jitter_ms, loss_pct });
    })
    .await?;
    mark(&format!("fault: slow {target}"));
    Ok(Output::new("slow")
        .field("target", target)
        .field("delay_ms", delay_ms)
        .field("jitter_ms", jitter_ms)
        .field("loss_pct", loss_pct)
        .text(format!("{target}: +{delay_ms} ms ± {jitter_ms} ms, {loss_pct}% loss{}", suffix(&missed))))
}

async fn heal(ctx: &Ctx) -> Result<Output> {
    let missed = update(ctx, &ctx.client.node_ids(), |_, f| *f = Faults::default()).await?;
    mark("fault: heal");
    Ok(Output::new("heal").field("not_reached", json!(missed)).text(format!("healed{}", suffix(&missed))))
}

async fn list(ctx: &Ctx) -> Result<Output> {
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    for n in ctx.client.node_ids() {
        let (cut, slow) = match get_faults(ctx, n).await {
            Ok(f) => (
                f.cut.iter().map(|p| node_name(*p)).collect::<Vec<_>>().join(","),
                f.slow
                    .iter()
                    .map(|s| {
                        let to = s.to.map_or("all".into(), node_name);
                        format!("→{to} +{}ms ±{}ms {}%", s.delay_ms, s.jitter_ms, s.loss_pct)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(e) => ("?".into(), format!("({})", e.kind.as_str())),
        };
        nodes.push(json!({"id": node_name(n), "cut": cut, "slow": slow}));
        rows.push(vec![
            node_name(n),
            if cut.is_empty() { "-".into() } else { cut },
            if slow.is_empty() { "-".into() } else { slow },
        ]);
    }
    Ok(Output::new("faults").field("nodes", json!(nodes)).text(table(ctx.style, &["node", "cut from", "slow"], rows)))
}
