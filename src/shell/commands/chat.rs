//! Chat: totally ordered messages through the Raft log, each node's applied history, following
//! it live, and comparing every node's history with the leader's.

use crate::client::unexpected;
use crate::client::Target;
use crate::error::{Error, Result};
use crate::proto::{node_name, ChatDigest, ChatMessage, NodeId, Request, Response};
use crate::shell::output::{table, Output, Style};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "chat send",
            params: &[
                Param { name: "text", kind: Rest, help: "the message" },
                Param { name: "as", kind: Flag("NAME"), help: "sender name (default: $USER)" },
                Param { name: "via", kind: Flag("NODE"), help: "send through this node (a follower forwards)" },
            ],
            summary: "send a chat message through the Raft log; prints its sequence number",
            example: "chat send hello everyone --as alice --via n2",
            run: |ctx, a| Box::pin(send(ctx, a)),
        },
        Spec {
            name: "chat log",
            params: &[
                Param { name: "from", kind: Flag("NODE"), help: "read this node's own applied history" },
                Param { name: "last", kind: Flag("N"), help: "the last N messages (default 20)" },
            ],
            summary: "the chat history as one node has applied it",
            example: "chat log --from n3 --last 10",
            run: |ctx, a| Box::pin(log(ctx, a)),
        },
        Spec {
            name: "chat follow",
            params: &[
                Param { name: "from", kind: Flag("NODE"), help: "follow this node's applied history" },
                Param { name: "for", kind: Flag("D"), help: "stop after this long (default: until Ctrl-C)" },
            ],
            summary: "print messages as a node applies them; returns those seen",
            example: "chat follow --from n2 --for 10s",
            run: |ctx, a| Box::pin(follow(ctx, a)),
        },
        Spec {
            name: "chat check",
            params: &[],
            summary:
                "per node: message count, last seq, gaps, identical to the leader (a node that does not answer is not)",
            example: "chat check",
            run: |ctx, a| Box::pin(check(ctx, a)),
        },
    ]
}

/// The sender name when `--as` is not given.
pub fn default_name() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "anon".into())
}

fn target(a: &Args, flag: &str) -> Result<Target> {
    Ok(a.node(flag)?.map_or(Target::Leader, Target::Node))
}

fn line(m: &ChatMessage) -> String {
    format!("[seq={}] {}: {}", m.seq, m.from, m.text)
}

fn message_json(m: &ChatMessage) -> Value {
    json!({"seq": m.seq, "from": m.from, "text": m.text, "at_ms": m.at_ms})
}

async fn send(ctx: &Ctx, a: &Args) -> Result<Output> {
    let text = a.get("text").unwrap_or("").to_string();
    if text.is_empty() {
        return Err(Error::usage("chat send: missing TEXT\nusage: chat send TEXT… [--as NAME] [--via NODE]"));
    }
    let from = a.get("as").map_or_else(default_name, str::to_string);
    // One id for every retry of this send, so a retry after a lost reply is applied once.
    let id = random_id();
    let req = Request::ChatSend { id, from: from.clone(), text: text.clone() };
    let r = ctx.client.call(target(a, "via")?, req).await?;
    let Response::ChatSent { seq, at_ms, .. } = r.value else {
        return Err(unexpected(r.value));
    };
    let node = node_name(r.node);
    Ok(Output::new("chat send")
        .field("seq", seq)
        .field("from", from.clone())
        .field("text", text.clone())
        .field("at_ms", at_ms)
        .field("node", node.clone())
        .text(format!("[seq={seq}] {from}: {text}   (via {node})")))
}

fn random_id() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    // The system RNG does not fail on Linux; a clock-derived id is an acceptable fallback.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
    }
    u64::from_le_bytes(b)
}

async fn chat_log(
    ctx: &Ctx,
    to: Target,
    after_seq: u64,
    limit: u32,
    tail: bool,
    wait: Duration,
) -> Result<(Vec<ChatMessage>, u64, NodeId)> {
    let req = Request::ChatLog { after_seq, limit, tail, wait_ms: wait.as_millis() as u32 };
    let r = ctx.client.call_within(to, req, ctx.client.timeout() + wait).await?;
    let Response::ChatLog { messages, last_seq } = r.value else {
        return Err(unexpected(r.value));
    };
    Ok((messages, last_seq, r.node))
}

async fn log(ctx: &Ctx, a: &Args) -> Result<Output> {
    let last = a.u64_or("last", 20)?.min(100_000) as u32;
    let (messages, last_seq, node) = chat_log(ctx, target(a, "from")?, 0, last, true, Duration::ZERO).await?;
    let rows: Vec<Value> = messages.iter().map(message_json).collect();
    let node = node_name(node);
    let mut text: Vec<String> = messages.iter().map(line).collect();
    if text.is_empty() {
        text.push("(no messages)".into());
    }
    text.push(format!("— {node}: {} shown, last seq {last_seq}", messages.len()));
    Ok(Output::new("chat log")
        .field("messages", Value::Array(rows.clone()))
        .field("last_seq", last_seq)
        .field("node", node)
        .text(text.join("\n"))
        .returns(Value::Array(rows)))
}

async fn follow(ctx: &Ctx, a: &Args) -> Result<Output> {
    let to = target(a, "from")?;
    let until = a.get("for").map(crate::shell::spec::parse_duration).transpose()?.map(|d| Instant::now() + d);
    let live = ctx.style == Style::Terminal;
    let (_, mut after, mut node) = chat_log(ctx, to, 0, 0, true, Duration::ZERO).await?;
    if live {
        crate::shell::screen::line(&format!("following {} from seq {} …", node_name(node), after + 1));
    }
    let mut seen = Vec::new();
    loop {
        let left = until.map_or(Duration::from_secs(1), |u| u.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            break;
        }
        let (messages, _, n) = chat_log(ctx, to, after, 1000, false, left.min(Duration::from_secs(1))).await?;
        node = n;
        for m in messages {
            if live {
                crate::shell::screen::line(&line(&m));
            }
            after = m.seq;
            seen.push(m);
        }
    }
    let rows: Vec<Value> = seen.iter().map(message_json).collect();
    let node = node_name(node);
    let text = if live || seen.is_empty() {
        format!("{} messages from {node}", seen.len())
    } else {
        seen.iter().map(line).collect::<Vec<_>>().join("\n")
    };
    Ok(Output::new("chat follow")
        .field("messages", Value::Array(rows.clone()))
        .field("count", seen.len())
        .field("node", node)
        .text(text)
        .returns(Value::Array(rows)))
}

async fn digest(ctx: &Ctx, id: NodeId, wait_for_seq: u64, wait: Duration) -> Result<ChatDigest> {
    let req = Request::ChatDigest { wait_for_seq, wait_ms: wait.as_millis() as u32 };
    let r = ctx.client.call_within(Target::Node(id), req, wait + Duration::from_secs(1)).await?;
    match r.value {
        Response::ChatDigest(d) => Ok(d),
        other => Err(unexpected(other)),
    }
}

async fn check(ctx: &Ctx, _: &Args) -> Result<Output> {
    let all = ctx.client.status_all(Duration::from_millis(800)).await;
    let live: Vec<NodeId> = all.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect();
    let down: Vec<String> = all.iter().filter(|(_, r)| r.is_err()).map(|(id, _)| node_name(*id)).collect();
    let leader = all
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .filter(|s| s.role == "leader")
        .max_by_key(|s| s.term)
        .map(|s| s.id)
        .ok_or_else(|| Error::no_quorum("no node is leader right now; nothing to compare with"))?;
    // Give every node a moment to apply what the most advanced one has, so a follower a few
    // milliseconds behind is not reported as different.
    let first = futures::future::join_all(live.iter().map(|&id| digest(ctx, id, 0, Duration::ZERO))).await;
    let target = first.iter().filter_map(|d| d.as_ref().ok()).map(|d| d.last_seq).max().unwrap_or(0);
    let wait = Duration::from_secs(2);
    let digests = futures::future::join_all(live.iter().map(|&id| digest(ctx, id, target, wait))).await;
    let reference = live.iter().zip(&digests).find(|(id, _)| **id == leader).and_then(|(_, d)| d.as_ref().ok());
    let reference =
        reference.ok_or_else(|| Error::unreachable(format!("leader {} did not answer", node_name(leader))))?;
    let mut nodes = Vec::new();
    let mut rows = Vec::new();
    for (id, _) in &all {
        // A node whose copy could not be read was not compared: it is listed, and not identical.
        let Some(d) = live.iter().position(|l| l == id).and_then(|i| digests[i].as_ref().ok()) else {
            nodes.push(json!({"id": node_name(*id), "count": null, "last_seq": null, "gaps": null,
                "identical": false, "hash": null}));
            rows.push([node_name(*id), "-".into(), "-".into(), "-".into(), "no answer".into(), "-".into()].to_vec());
            continue;
        };
        let identical = d == reference;
        nodes.push(json!({"id": node_name(*id), "count": d.count, "last_seq": d.last_seq, "gaps": d.gaps,
            "identical": identical, "hash": d.hash}));
        let name = if *id == leader { format!("{} ★", node_name(*id)) } else { node_name(*id) };
        let same = if identical { "yes" } else { "NO" };
        let row = [name, d.count.to_string(), d.last_seq.to_string(), d.gaps.to_string(), same.into(), d.hash.clone()];
        rows.push(row.to_vec());
    }
    let all_same = nodes.iter().all(|n| n["identical"] == true && n["gaps"] == 0);
    let mut text = table(ctx.style, &["node", "count", "last seq", "gaps", "identical", "hash"], rows);
    if !down.is_empty() {
        text.push_str(&format!("\nnot answering: {}", down.join(", ")));
    }
    Ok(Output::new("chat check")
        .field("nodes", Value::Array(nodes))
        .field("identical", all_same)
        .field("leader", node_name(leader))
        .field("down", down)
        .text(text))
}
