//! Queues with at-least-once delivery: push, pop with a visibility timeout, ack, and counters
//! per queue.

use crate::error::{Error, Result};
use crate::proto::node_name;
use crate::shell::output::{table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Map, Value};
use std::time::Duration;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "queue push",
            params: &[
                Param { name: "queue", kind: Pos, help: "the queue" },
                Param { name: "item", kind: Rest, help: "the item" },
            ],
            summary: "append an item to a queue",
            example: "queue push jobs resize photo-17",
            run: |ctx, a| Box::pin(push(ctx, a)),
        },
        Spec {
            name: "queue pop",
            params: &[
                Param { name: "queue", kind: Pos, help: "the queue" },
                Param {
                    name: "visibility",
                    kind: Flag("D"),
                    help: "delivered again unless acked within this long (default 30s)",
                },
            ],
            summary: "take the oldest ready item; prints its id, item and delivery count",
            example: "queue pop jobs --visibility 10s",
            run: |ctx, a| Box::pin(pop(ctx, a)),
        },
        Spec {
            name: "queue ack",
            params: &[
                Param { name: "queue", kind: Pos, help: "the queue" },
                Param { name: "id", kind: Pos, help: "the id `queue pop` gave" },
            ],
            summary: "confirm an item is done; it is never delivered again",
            example: "queue ack jobs 17",
            run: |ctx, a| Box::pin(ack(ctx, a)),
        },
        Spec {
            name: "queue stats",
            params: &[],
            summary: "per queue: ready, in flight, delivered, redelivered, acked",
            example: "queue stats",
            run: |ctx, a| Box::pin(stats(ctx, a)),
        },
    ]
}

async fn push(ctx: &Ctx, a: &Args) -> Result<Output> {
    let queue = a.req("queue")?;
    let item = a.get("item").unwrap_or("").to_string();
    let r = ctx.client.queue_push(queue, &item).await?;
    let id = r.value;
    let node = node_name(r.node);
    Ok(Output::new("queue push")
        .field("queue", queue)
        .field("id", id)
        .field("item", item)
        .field("node", node.clone())
        .text(format!("{queue}: pushed id={id} (node {node})")))
}

async fn pop(ctx: &Ctx, a: &Args) -> Result<Output> {
    let queue = a.req("queue")?;
    let visibility = a.duration_or("visibility", Duration::from_secs(30))?;
    let r = ctx.client.queue_pop(queue, visibility).await?;
    let node = node_name(r.node);
    let out = Output::new("queue pop").field("queue", queue);
    Ok(match r.value {
        None => {
            out.field("item", Value::Null).field("node", node).text(format!("{queue}: (empty)")).returns(Value::Null)
        }
        Some(it) => out
            .field("id", it.id)
            .field("item", it.item.clone())
            .field("deliveries", it.deliveries)
            .field("visible_at_ms", it.visible_at_ms)
            .field("node", node.clone())
            .text(format!("{queue}: id={} {:?} deliveries={} (node {node})", it.id, it.item, it.deliveries)),
    })
}

async fn ack(ctx: &Ctx, a: &Args) -> Result<Output> {
    let queue = a.req("queue")?;
    let raw = a.req("id")?;
    let id: u64 = raw.parse().map_err(|_| Error::usage(format!("queue ack: `{raw}` is not an item id")))?;
    let r = ctx.client.queue_ack(queue, id).await?;
    let id = r.value;
    let node = node_name(r.node);
    Ok(Output::new("queue ack")
        .field("queue", queue)
        .field("id", id)
        .field("node", node.clone())
        .text(format!("{queue}: acked id={id} (node {node})")))
}

async fn stats(ctx: &Ctx, _: &Args) -> Result<Output> {
    let r = ctx.client.queue_stats().await?;
    let all = &r.value;
    let mut by_name = Map::new();
    let mut rows_json = Vec::new();
    let mut rows = Vec::new();
    for s in all {
        let v = json!({"queue": s.queue, "ready": s.ready, "in_flight": s.in_flight, "delivered": s.delivered,
            "redelivered": s.redelivered, "acked": s.acked});
        by_name.insert(s.queue.clone(), v.clone());
        rows_json.push(v);
        let cells = [s.ready, s.in_flight, s.delivered, s.redelivered, s.acked].map(|n| n.to_string());
        rows.push(std::iter::once(s.queue.clone()).chain(cells).collect());
    }
    let text = if rows.is_empty() {
        "(no queues)".into()
    } else {
        table(ctx.style, &["queue", "ready", "in flight", "delivered", "redelivered", "acked"], rows)
    };
    Ok(Output::new("queue stats")
        .field("queues", Value::Array(rows_json))
        .field("node", node_name(r.node))
        .text(text)
        .returns(Value::Object(by_name)))
}
