//! Keys: put, get, del, scan, cas. The writes take `--trace` (`shell/trace.rs`).

use crate::client::{Deleted, Target};
use crate::error::{Error, Result};
use crate::proto::{node_name, Versioned};
use crate::shell::output::{table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::trace;
use crate::shell::Ctx;
use serde_json::Value;

/// The writes' `--trace`: one parameter, so its help reads the same on each.
const TRACE: Param = Param {
    name: "trace",
    kind: Switch,
    help: "show how the write travelled: leader, term, log index, and each stage's time by the nodes' clocks",
};

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "put",
            params: &[
                Param { name: "key", kind: Pos, help: "the key" },
                Param { name: "value", kind: Pos, help: "the value" },
                Param {
                    name: "via",
                    kind: Flag("NODE"),
                    help: "send to this node (a follower forwards to the leader)",
                },
                TRACE,
            ],
            summary: "write a key through Raft; prints its revision and the node that served it",
            example: "put order:1 paid --via n2",
            run: |ctx, a| Box::pin(put(ctx, a)),
        },
        Spec {
            name: "get",
            params: &[
                Param { name: "key", kind: Pos, help: "the key" },
                Param { name: "from", kind: Flag("NODE"), help: "ask this node" },
                Param { name: "stale", kind: Switch, help: "read the node's local copy, without a leader round trip" },
            ],
            summary: "read a key (linearizable unless --stale)",
            example: "get order:1 --from n3 --stale",
            run: |ctx, a| Box::pin(get(ctx, a)),
        },
        Spec {
            name: "del",
            params: &[Param { name: "key", kind: Pos, help: "the key" }, TRACE],
            summary: "delete a key",
            example: "del order:1",
            run: |ctx, a| Box::pin(del(ctx, a)),
        },
        Spec {
            name: "scan",
            params: &[
                Param { name: "prefix", kind: OptPos, help: "only keys starting with this" },
                Param { name: "limit", kind: Flag("N"), help: "at most N keys (default 100)" },
                Param { name: "from", kind: Flag("NODE"), help: "ask this node" },
                Param { name: "stale", kind: Switch, help: "read the node's local copy" },
            ],
            summary: "list keys in order, with values and revisions",
            example: "scan order: --limit 10",
            run: |ctx, a| Box::pin(scan(ctx, a)),
        },
        Spec {
            name: "cas",
            params: &[
                Param { name: "key", kind: Pos, help: "the key" },
                Param { name: "expected", kind: Pos, help: "the value it must have now (`-` for absent)" },
                Param { name: "new", kind: Pos, help: "the value to set" },
                TRACE,
            ],
            summary: "compare-and-swap: set KEY to NEW only if it is EXPECTED",
            example: "cas stock:42 10 9",
            run: |ctx, a| Box::pin(cas(ctx, a)),
        },
    ]
}

fn target(a: &Args, flag: &str) -> Result<Target> {
    Ok(a.node(flag)?.map_or(Target::Leader, Target::Node))
}

async fn put(ctx: &Ctx, a: &Args) -> Result<Output> {
    let (key, value) = (a.req("key")?, a.req("value")?);
    let r = ctx.client.put(target(a, "via")?, key, value, a.switch("trace")).await?;
    let revision = r.value;
    let node = node_name(r.node);
    let out = Output::new("put")
        .field("key", key)
        .field("revision", revision)
        .field("node", node.clone())
        .text(format!("OK revision={revision} node={node}"));
    Ok(trace::attach(out, r.trace.as_ref(), ctx.style))
}

async fn get(ctx: &Ctx, a: &Args) -> Result<Output> {
    let key = a.req("key")?;
    let stale = a.switch("stale");
    let target = target(a, "from")?;
    if stale && target == Target::Leader {
        return Err(Error::usage("get --stale needs --from NODE: whose copy should be read?"));
    }
    let r = ctx.client.get(target, key, stale).await?;
    let node = node_name(r.node);
    let out = Output::new("get").field("key", key);
    Ok(match r.value {
        Some(Versioned { value, revision }) => out
            .field("value", value.clone())
            .field("revision", revision)
            .field("node", node)
            .text(value.clone())
            .returns(value),
        None => out.field("value", Value::Null).field("node", node).text("(not found)").returns(Value::Null),
    })
}

async fn del(ctx: &Ctx, a: &Args) -> Result<Output> {
    let key = a.req("key")?;
    let r = ctx.client.del(key, a.switch("trace")).await?;
    let Deleted { revision, existed } = r.value;
    let out = Output::new("del")
        .field("key", key)
        .field("deleted", existed)
        .field("revision", revision)
        .field("node", node_name(r.node))
        .text(if existed { "OK deleted" } else { "(not found)" });
    Ok(trace::attach(out, r.trace.as_ref(), ctx.style))
}

async fn scan(ctx: &Ctx, a: &Args) -> Result<Output> {
    let prefix = a.get("prefix").unwrap_or("").to_string();
    let limit = a.u64_or("limit", 100)?.min(u32::MAX as u64) as u32;
    let stale = a.switch("stale");
    let r = ctx.client.scan(target(a, "from")?, &prefix, limit, stale).await?;
    let kvs = &r.value;
    let rows: Vec<Value> =
        kvs.iter().map(|kv| serde_json::json!({"key": kv.key, "value": kv.value, "revision": kv.revision})).collect();
    let text = if kvs.is_empty() {
        "(no keys)".to_string()
    } else {
        let cells = kvs.iter().map(|kv| vec![kv.key.clone(), kv.value.clone(), kv.revision.to_string()]).collect();
        table(ctx.style, &["key", "value", "revision"], cells)
    };
    Ok(Output::new("scan")
        .field("keys", Value::Array(rows.clone()))
        .field("count", kvs.len())
        .field("node", node_name(r.node))
        .text(text)
        .returns(Value::Array(rows)))
}

async fn cas(ctx: &Ctx, a: &Args) -> Result<Output> {
    let key = a.req("key")?;
    let expected = Some(a.req("expected")?).filter(|e| *e != "-");
    let new = a.req("new")?;
    let r = ctx.client.cas(key, expected, new, a.switch("trace")).await?;
    let revision = r.value;
    let out = Output::new("cas")
        .field("key", key)
        .field("swapped", true)
        .field("revision", revision)
        .field("node", node_name(r.node))
        .text(format!("OK revision={revision}"));
    Ok(trace::attach(out, r.trace.as_ref(), ctx.style))
}
