//! The shell's coherent cache: `cache get` serves this shell's copy while the leader's lease
//! holds, `cache put` writes through and keeps the copy, `cache stats` shows hits, misses,
//! invalidations and each key's MESI state.

use crate::error::Result;
use crate::shell::output::{table, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "cache get",
            params: &[Param { name: "key", kind: Pos, help: "the key" }],
            summary: "read through this shell's cache: a hit is served locally, never stale",
            example: "cache get product:7",
            run: |ctx, a| Box::pin(get(ctx, a)),
        },
        Spec {
            name: "cache put",
            params: &[
                Param { name: "key", kind: Pos, help: "the key" },
                Param { name: "value", kind: Pos, help: "the value" },
            ],
            summary: "write through the cache: other shells' copies are invalidated, this one is modified",
            example: "cache put product:7 'in stock'",
            run: |ctx, a| Box::pin(put(ctx, a)),
        },
        Spec {
            name: "cache stats",
            params: &[],
            summary: "hits, misses, invalidations, and each cached key's state (modified/exclusive/shared/invalid)",
            example: "cache stats",
            run: |ctx, _| Box::pin(stats(ctx)),
        },
    ]
}

async fn get(ctx: &Ctx, a: &Args) -> Result<Output> {
    let key = a.req("key")?;
    let r = ctx.cache.get(key).await?;
    let value = r.value.as_ref().map(|v| v.value.clone());
    let how = if r.hit { "hit" } else { "miss" };
    let shown = value.clone().unwrap_or_else(|| "(not found)".into());
    Ok(Output::new("cache get")
        .field("key", key)
        .field("value", value.clone())
        .field("hit", r.hit)
        .field("state", r.state.as_str())
        .text(format!("{shown}  ({how}, {})", r.state.as_str()))
        .returns(json!({"key": key, "value": value, "hit": r.hit, "state": r.state.as_str()})))
}

async fn put(ctx: &Ctx, a: &Args) -> Result<Output> {
    let (key, value) = (a.req("key")?, a.req("value")?);
    let (v, state) = ctx.cache.put(key, value).await?;
    Ok(Output::new("cache put")
        .field("key", key)
        .field("revision", v.revision)
        .field("state", state.as_str())
        .text(format!("OK revision={} ({})", v.revision, state.as_str())))
}

async fn stats(ctx: &Ctx) -> Result<Output> {
    let s = ctx.cache.stats();
    let keys: Vec<Value> = s
        .entries
        .iter()
        .map(|(k, e)| json!({"key": k, "state": e.state.as_str(), "value": e.value.as_ref().map(|v| v.value.clone())}))
        .collect();
    let rows = s
        .entries
        .iter()
        .map(|(k, e)| {
            let v = e.value.as_ref().map_or("(absent)".to_string(), |v| v.value.clone());
            vec![k.clone(), e.state.as_str().to_string(), v]
        })
        .collect();
    let text = format!(
        "hits {}  misses {}  invalidations {}\n{}",
        s.hits,
        s.misses,
        s.invalidations,
        table(ctx.style, &["key", "state", "value"], rows)
    );
    Ok(Output::new("cache stats")
        .field("hits", s.hits)
        .field("misses", s.misses)
        .field("invalidations", s.invalidations)
        .field("keys", Value::Array(keys))
        .text(text))
}
