//! Damaged disks and anti-entropy at the prompt: corrupt, verify, repair. The coordinator (survey,
//! vote, diff, plan) is `client::entropy`; this file parses arguments and renders. `verify`
//! and a `repair` that leaves copies different answer "no": exit status 1, `ok: false` in
//! JSON with the data still there, and the data (not an error) in a script.

use crate::client::entropy::{self, differ_error, Survey};
use crate::client::Target;
use crate::error::Result;
use crate::proto::merkle::{hex, range_name, root};
use crate::proto::{node_name, parse_node, Request, Response};
use crate::shell::output::{table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};

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
            summary: "Merkle roots of every node's keys, and the ranges that differ (exit status 1 if any)",
            example: "verify",
            run: |ctx, _| Box::pin(verify(ctx)),
        },
        Spec {
            name: "repair",
            params: &[],
            summary: "heal damaged nodes from the majority's copy, never undoing a newer write (anti-entropy)",
            example: "repair",
            run: |ctx, _| Box::pin(repair(ctx)),
        },
    ]
}

async fn corrupt(ctx: &Ctx, a: &Args) -> Result<Output> {
    let node = parse_node(a.req("node")?)?;
    let key = a.req("key")?;
    let r = ctx.client.call(Target::Node(node), Request::Corrupt { key: key.into() }).await?;
    let Response::Damaged { value } = r.value else { return Err(crate::client::unexpected(r.value)) };
    crate::shell::screen::mark(&format!("fault: corrupt {} {key}", node_name(node)));
    Ok(Output::new("corrupt")
        .field("node", node_name(node))
        .field("key", key)
        .field("value", value.clone())
        .text(format!("{}'s copy of {key} is now {value:?} (Raft knows nothing)", node_name(node))))
}

fn report(cmd: &str, ctx: &Ctx, survey: &Survey) -> Output {
    let equal = survey.equal();
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    for n in &survey.nodes {
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
    let unsettled: Vec<String> = survey.unsettled.iter().map(|l| range_name(*l)).collect();
    let mut verdict = if equal { "all roots equal".to_string() } else { "DIFFERENT: see the differing ranges".into() };
    if !unsettled.is_empty() {
        verdict += &format!(
            "\nno majority agrees in range {} (writes in flight, or more than one copy damaged)",
            unsettled.join(", ")
        );
    }
    Output::new(cmd)
        .field("equal", equal)
        .field("nodes", Value::Array(nodes))
        .field("unsettled", json!(unsettled))
        .text(format!("{}\n{verdict}", table(ctx.style, &["node", "keys", "root", "differing"], rows)))
}

async fn verify(ctx: &Ctx) -> Result<Output> {
    let survey = entropy::verify(&ctx.client).await?;
    let out = report("verify", ctx, &survey);
    Ok(if survey.equal() { out } else { out.answer_no(differ_error("copies differ", &survey)) })
}

async fn repair(ctx: &Ctx) -> Result<Output> {
    let run = entropy::repair(&ctx.client).await?;
    let mut out = report("repair", ctx, &run.after);
    let repaired: Vec<String> = run.repairs.iter().filter(|r| r.fixed > 0).map(|r| node_name(r.id)).collect();
    let details: Vec<Value> = run
        .repairs
        .iter()
        .map(|r| json!({"node": node_name(r.id), "fixed": r.fixed, "kept": r.kept, "unsure": r.unsure}))
        .collect();
    out.fields.insert("repaired".into(), json!(repaired));
    out.fields.insert("repairs".into(), Value::Array(details));
    let mut lines = Vec::new();
    if !repaired.is_empty() {
        lines.push(format!("repaired {} from the majority's copy", repaired.join(", ")));
    }
    for r in run.repairs.iter().filter(|r| r.kept + r.unsure > 0) {
        lines.push(format!(
            "{}: {} keys newer than the majority's view kept, {} not comparable yet (writes in flight): repair again later",
            node_name(r.id),
            r.kept,
            r.unsure
        ));
    }
    lines.push(std::mem::take(&mut out.text));
    out.text = lines.join("\n");
    Ok(if run.after.equal() { out } else { out.answer_no(differ_error("copies still differ", &run.after)) })
}
