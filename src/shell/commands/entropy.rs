//! Damaged disks and anti-entropy: corrupt, verify, repair. `verify` compares every node's
//! Merkle tree against the majority's; `repair` copies the majority's version of the differing
//! ranges onto the damaged node.

use crate::client::Target;
use crate::error::{Error, Result};
use crate::proto::merkle::{differing, hex, range_name, root, Hash};
use crate::proto::{node_name, parse_node, KeyValue, NodeId, Request, Response};
use crate::shell::output::{table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "corrupt",
            params: &[
                Param { name: "node", kind: Pos, help: "whose disk to damage" },
                Param { name: "key", kind: Pos, help: "the key whose stored copy is damaged" },
            ],
            summary: "damage one node's stored copy of a key behind Raft's back",
            example: "corrupt n2 order:7",
            run: |ctx, a| Box::pin(corrupt(ctx, a)),
        },
        Spec {
            name: "verify",
            params: &[],
            summary: "Merkle roots of every node's keys, and the ranges that differ",
            example: "verify",
            run: |ctx, _| Box::pin(verify(ctx)),
        },
        Spec {
            name: "repair",
            params: &[],
            summary: "heal damaged nodes from the majority's copy (anti-entropy)",
            example: "repair",
            run: |ctx, _| Box::pin(repair(ctx)),
        },
    ]
}

async fn corrupt(ctx: &Ctx, a: &Args) -> Result<Output> {
    let node = parse_node(a.req("node")?)?;
    let key = a.req("key")?;
    let r = ctx.client.call(Target::Node(node), Request::Corrupt { key: key.into() }).await?;
    let Response::Damaged { value } = r.value else { return Err(super::keys::unexpected(r.value)) };
    Ok(Output::new("corrupt")
        .field("node", node_name(node))
        .field("key", key)
        .field("value", value.clone())
        .text(format!("{}'s copy of {key} is now {value:?} (Raft knows nothing)", node_name(node))))
}

/// One node's view, and where it departs from the majority.
struct NodeView {
    id: NodeId,
    tree: Option<(Vec<Hash>, u64)>,
    /// Differing leaves and, per leaf, the keys that differ.
    differing: Vec<(usize, Vec<String>)>,
    /// This node's and the majority's keys in the differing leaves, kept for `repair`.
    mine: BTreeMap<String, KeyValue>,
    theirs: BTreeMap<String, KeyValue>,
}

async fn leaf_keys(ctx: &Ctx, node: NodeId, leaves: &[usize]) -> Result<BTreeMap<String, KeyValue>> {
    let leaves = leaves.iter().map(|l| *l as u32).collect();
    match ctx.client.call(Target::Node(node), Request::LeafKeys { leaves }).await?.value {
        Response::Scan(kvs) => Ok(kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect()),
        other => Err(super::keys::unexpected(other)),
    }
}

/// Waits (briefly) until every node that answers has applied what the leader had committed
/// when we started, so trees are compared at the same point of the log, not mid-replication.
async fn settle(ctx: &Ctx) {
    let until = Instant::now() + Duration::from_secs(3);
    let mut target = None;
    while Instant::now() < until {
        let all = ctx.client.status_all(Duration::from_millis(500)).await;
        let up: Vec<_> = all.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        if target.is_none() {
            target = up.iter().filter(|s| s.role == "leader").max_by_key(|s| s.term).map(|l| l.commit_index);
        }
        match target {
            Some(t) if up.iter().all(|s| s.applied_index >= t) => return,
            None => return,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Every node's tree and, for nodes that depart from the majority's, what differs.
async fn survey(ctx: &Ctx) -> Result<Vec<NodeView>> {
    settle(ctx).await;
    let mut nodes = Vec::new();
    for id in ctx.client.node_ids() {
        let tree = match ctx.client.call(Target::Node(id), Request::Merkle).await {
            Ok(r) => match r.value {
                Response::Merkle { leaves, keys } => Some((leaves, keys)),
                other => return Err(super::keys::unexpected(other)),
            },
            Err(_) => None,
        };
        nodes.push(NodeView { id, tree, differing: vec![], mine: BTreeMap::new(), theirs: BTreeMap::new() });
    }
    let mut votes: BTreeMap<Hash, Vec<NodeId>> = BTreeMap::new();
    for n in &nodes {
        if let Some((leaves, _)) = &n.tree {
            votes.entry(root(leaves)).or_default().push(n.id);
        }
    }
    let majority = votes.values().find(|ids| ids.len() * 2 > nodes.len()).and_then(|ids| ids.first().copied());
    let Some(reference) = majority else {
        return if votes.len() <= 1 {
            Ok(nodes)
        } else {
            Err(Error::no_quorum("no majority of nodes agrees on one Merkle root; nothing to repair from"))
        };
    };
    let ref_leaves =
        nodes.iter().find(|n| n.id == reference).and_then(|n| n.tree.clone()).map(|t| t.0).unwrap_or_default();
    for n in &mut nodes {
        let Some((leaves, _)) = &n.tree else { continue };
        let diff = differing(leaves, &ref_leaves);
        if diff.is_empty() {
            continue;
        }
        n.mine = leaf_keys(ctx, n.id, &diff).await?;
        n.theirs = leaf_keys(ctx, reference, &diff).await?;
        for leaf in diff {
            let all: BTreeSet<&String> = n.mine.keys().chain(n.theirs.keys()).collect();
            let keys = all
                .into_iter()
                .filter(|k| crate::proto::merkle::leaf_of(k) == leaf && n.mine.get(*k) != n.theirs.get(*k))
                .cloned()
                .collect();
            n.differing.push((leaf, keys));
        }
    }
    Ok(nodes)
}

fn report(cmd: &str, ctx: &Ctx, views: &[NodeView]) -> Output {
    let equal = views.iter().all(|n| n.tree.is_some() && n.differing.is_empty());
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    for n in views {
        let differing: Vec<Value> =
            n.differing.iter().map(|(leaf, keys)| json!({"range": range_name(*leaf), "keys": keys})).collect();
        let shown = n
            .differing
            .iter()
            .map(|(leaf, keys)| format!("range {} ({})", range_name(*leaf), keys.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        match &n.tree {
            Some((leaves, keys)) => {
                let r = hex(&root(leaves));
                nodes.push(json!({"id": node_name(n.id), "keys": keys, "root": r, "differing": differing}));
                rows.push(vec![
                    node_name(n.id),
                    keys.to_string(),
                    r,
                    if shown.is_empty() { "-".into() } else { shown },
                ]);
            }
            None => {
                nodes.push(json!({"id": node_name(n.id), "keys": null, "root": null, "differing": []}));
                rows.push(vec![node_name(n.id), "-".into(), "(unreachable)".into(), "-".into()]);
            }
        }
    }
    let verdict = if equal { "all roots equal" } else { "DIFFERENT: see the differing ranges" };
    Output::new(cmd)
        .field("equal", equal)
        .field("nodes", Value::Array(nodes))
        .text(format!("{}\n{verdict}", table(ctx.style, &["node", "keys", "root", "differing"], rows)))
}

async fn verify(ctx: &Ctx) -> Result<Output> {
    let views = survey(ctx).await?;
    // The damaged node's own record says what was found, for `events` watchers.
    for n in views.iter().filter(|n| !n.differing.is_empty()) {
        let ranges: Vec<String> = n.differing.iter().map(|(leaf, _)| range_name(*leaf)).collect();
        let text = format!("verify: differs from the majority in range {}", ranges.join(", "));
        let _ = ctx.client.call(Target::Node(n.id), Request::Record { kind: "divergence".into(), text }).await;
    }
    Ok(report("verify", ctx, &views))
}

async fn repair(ctx: &Ctx) -> Result<Output> {
    let before = survey(ctx).await?;
    let mut repaired = Vec::new();
    for n in before.iter().filter(|n| !n.differing.is_empty()) {
        let (good, bad) = (&n.theirs, &n.mine);
        let set: Vec<KeyValue> = good.values().filter(|kv| bad.get(&kv.key) != Some(*kv)).cloned().collect();
        let remove: Vec<String> = bad.keys().filter(|k| !good.contains_key(*k)).cloned().collect();
        ctx.client.call(Target::Node(n.id), Request::Repair { set, remove }).await?;
        repaired.push(node_name(n.id));
    }
    let after = survey(ctx).await?;
    let mut out = report("repair", ctx, &after);
    out.fields.insert("repaired".into(), json!(repaired));
    if !repaired.is_empty() {
        out.text = format!("repaired {} from the majority's copy\n{}", repaired.join(", "), out.text);
    }
    Ok(out)
}
