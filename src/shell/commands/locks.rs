//! Locks: acquire (exclusive or shared, with a lease and optionally waiting in line), release,
//! and what every lock looks like now. The owner defaults to `$USER@PID`: stable for one shell
//! process, different between two shells.

use crate::client::Acquired;
use crate::error::Result;
use crate::proto::{node_name, Holder, LockInfo};
use crate::shell::output::{human_ms, table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};
use std::time::Duration;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "lock acquire",
            params: &[
                Param { name: "name", kind: Pos, help: "the lock" },
                Param { name: "ttl", kind: Flag("D"), help: "lease length (default 10s)" },
                Param { name: "shared", kind: Switch, help: "a shared (read) lock; shared holders coexist" },
                Param {
                    name: "wait",
                    kind: Flag("D"),
                    help: "wait in line this long if it is held (default: fail at once with conflict); \
                           a wait that ends without the lock fails with not_granted",
                },
                Param { name: "as", kind: Flag("OWNER"), help: "owner name (default: $USER@PID of this shell)" },
                Param {
                    name: "queue",
                    kind: Switch,
                    help:
                        "join the line (for --wait, default 30s) and return at once; acquire again later for the token",
                },
            ],
            summary: "take a lock with a lease; prints its fencing token",
            example: "lock acquire orders --ttl 10s --wait 5s --as alice",
            run: |ctx, a| Box::pin(acquire(ctx, a)),
        },
        Spec {
            name: "lock release",
            params: &[
                Param { name: "name", kind: Pos, help: "the lock" },
                Param { name: "as", kind: Flag("OWNER"), help: "owner name (default: $USER@PID of this shell)" },
            ],
            summary: "give a lock up (or stop waiting for it); expired if the lease had already run out",
            example: "lock release orders --as alice",
            run: |ctx, a| Box::pin(release(ctx, a)),
        },
        Spec {
            name: "lock list",
            params: &[],
            summary: "every lock: holders, mode, token, lease expiry, waiters",
            example: "lock list",
            run: |ctx, a| Box::pin(list(ctx, a)),
        },
    ]
}

/// The owner when `--as` is not given: one per shell process.
pub fn default_owner() -> String {
    format!("{}@{}", super::chat::default_name(), std::process::id())
}

fn owner(a: &Args) -> String {
    a.get("as").map_or_else(default_owner, str::to_string)
}

fn mode(shared: bool) -> &'static str {
    if shared {
        "shared"
    } else {
        "exclusive"
    }
}

/// How long `--queue` stays in line when no `--wait` says.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

async fn acquire(ctx: &Ctx, a: &Args) -> Result<Output> {
    let name = a.req("name")?;
    let owner = owner(a);
    let ttl = a.duration_or("ttl", Duration::from_secs(10))?;
    let queue = a.switch("queue");
    // Joining the line means waiting in it for some time; without --wait, half a minute.
    let wait = a.duration_or("wait", if queue { QUEUE_WAIT } else { Duration::ZERO })?;
    let shared = a.switch("shared");
    let r = ctx.client.lock_acquire(name, &owner, shared, ttl, wait, queue).await?;
    let node = node_name(r.node);
    let holder = match r.value {
        Acquired::Granted(holder) => holder,
        Acquired::Queued(position) => {
            return Ok(Output::new("lock acquire")
                .field("name", name)
                .field("owner", owner.clone())
                .field("token", Value::Null)
                .field("queued", true)
                .field("position", position)
                .field("node", node.clone())
                .text(format!("{name}: {owner} waits in line at position {position} (node {node})")))
        }
    };
    Ok(Output::new("lock acquire")
        .field("name", name)
        .field("owner", owner.clone())
        .field("token", holder.token)
        .field("mode", mode(holder.shared))
        .field("granted_ms", holder.granted_ms)
        .field("expires_ms", holder.expires_ms)
        .field("node", node.clone())
        .text(format!(
            "{name}: granted to {owner}, {}, token {}, lease {} (node {node})",
            mode(holder.shared),
            holder.token,
            human_ms(holder.expires_ms.saturating_sub(holder.granted_ms))
        )))
}

async fn release(ctx: &Ctx, a: &Args) -> Result<Output> {
    let name = a.req("name")?;
    let owner = owner(a);
    let r = ctx.client.lock_release(name, &owner).await?;
    let (token, at_ms) = r.value;
    let node = node_name(r.node);
    let what = if token == 0 { "stopped waiting".to_string() } else { format!("released token {token}") };
    Ok(Output::new("lock release")
        .field("name", name)
        .field("owner", owner.clone())
        .field("token", token)
        .field("at_ms", at_ms)
        .field("node", node.clone())
        .text(format!("{name}: {owner} {what} (node {node})")))
}

fn holder_json(h: &Holder) -> Value {
    json!({"owner": h.owner, "token": h.token, "mode": mode(h.shared), "granted_ms": h.granted_ms,
        "expires_ms": h.expires_ms})
}

fn lock_json(l: &LockInfo) -> Value {
    let waiters: Vec<Value> = l
        .waiters
        .iter()
        .map(|w| json!({"owner": w.owner, "mode": mode(w.shared), "deadline_ms": w.deadline_ms}))
        .collect();
    let lock_mode = l.holders.first().map_or("free", |h| mode(h.shared));
    json!({"name": l.name, "mode": lock_mode, "holders": l.holders.iter().map(holder_json).collect::<Vec<_>>(),
        "waiters": waiters})
}

async fn list(ctx: &Ctx, _: &Args) -> Result<Output> {
    let r = ctx.client.lock_list().await?;
    let locks = &r.value;
    let now = crate::proto::wall_ms();
    let rows: Vec<Vec<String>> = locks
        .iter()
        .map(|l| {
            let holders: Vec<String> = l.holders.iter().map(|h| format!("{} #{}", h.owner, h.token)).collect();
            let expiry: Vec<String> =
                l.holders.iter().map(|h| format!("in {}", human_ms(h.expires_ms.saturating_sub(now)))).collect();
            let waiters: Vec<String> = l.waiters.iter().map(|w| format!("{} ({})", w.owner, mode(w.shared))).collect();
            vec![
                l.name.clone(),
                l.holders.first().map_or("free", |h| mode(h.shared)).into(),
                holders.join(", "),
                expiry.join(", "),
                if waiters.is_empty() { "-".into() } else { waiters.join(", ") },
            ]
        })
        .collect();
    let json_rows: Vec<Value> = locks.iter().map(lock_json).collect();
    let text = if rows.is_empty() {
        "(no locks held)".into()
    } else {
        table(ctx.style, &["lock", "mode", "holders (token)", "expires", "waiters"], rows)
    };
    Ok(Output::new("lock list")
        .field("locks", Value::Array(json_rows.clone()))
        .field("node", node_name(r.node))
        .text(text)
        .returns(Value::Array(json_rows)))
}
