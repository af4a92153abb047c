//! A plugin's Rhai engine: every dsh command (through the same `Ctx` and client as the shell,
//! never `node`), the presenter's helpers, and the plugin's own: `check(cond, what)` records an
//! invariant check in the scenario's stats, `count(name, n)` bumps a live counter, `fail(why)` counts an error without ending the tick
//! (so a tick can keep its state when one operation of several failed). In the
//! background nothing is printed (the presenter is typing): `say` only remembers its text.

use super::runner::Stats;
use crate::shell::Ctx;
use rhai::{Dynamic, Engine, INT};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// `live`: print narration and checks as they happen (a foreground run on a text output).
pub(super) fn plugin_engine(
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    interrupted: Arc<AtomicBool>,
    stats: Arc<Stats>,
    live: bool,
) -> Engine {
    let mut engine = crate::script::build_engine(ctx.clone(), handle.clone(), interrupted.clone());
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    crate::script::register_plugin_helpers(&mut engine, ctx, handle, interrupted, seed);

    let s = stats.clone();
    engine.register_fn("check", move |ok: bool, what: &str| {
        s.check(ok, what);
        if live {
            println!("  {} {what}", if ok { "✓" } else { "✗" });
        }
        ok
    });
    let s = stats.clone();
    engine.register_fn("count", move |name: &str, n: INT| s.count(name, n));
    let s = stats.clone();
    engine.register_fn("count", move |name: &str| s.count(name, 1));
    let s = stats.clone();
    engine.register_fn("fail", move |what: Dynamic| s.error(what.to_string()));
    let s = stats.clone();
    engine.register_fn("say", move |text: Dynamic| {
        if live {
            println!("{text}");
        }
        s.said(text.to_string());
    });
    engine.register_fn("step", move |title: &str| {
        if live {
            println!("\n── {title} ──");
        }
    });
    engine.register_fn("note", |_: &str| {});
    if !live {
        engine.register_fn("table", |_: rhai::Array| {});
    }
    engine
}
