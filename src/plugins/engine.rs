//! A plugin's Rhai engine: every dsh command (through the same `Ctx` and client as the shell,
//! never `node`), the presenter's helpers, and the plugin's own: `check(cond, what)` records an
//! invariant check in the scenario's stats, `count(name, n)` bumps a live counter, `fail(why)` counts an error without ending the tick
//! (so a tick can keep its state when one operation of several failed). In the
//! background nothing is printed (the presenter is typing): `say` only remembers its text.

use super::runner::Stats;
use crate::shell::stage::{Cue, Narrate, Print, Stage};
use crate::shell::Ctx;
use rhai::{Dynamic, Engine, INT};
use std::sync::Arc;

/// A plugin's words: into its stats, and printed too when `live`.
struct Recorded {
    stats: Arc<Stats>,
    live: Option<Print>,
}

impl Narrate for Recorded {
    fn cue(&self, cue: Cue, text: &str) {
        match cue {
            Cue::Check(ok) => self.stats.check(ok, text),
            Cue::Say => self.stats.said(text.to_string()),
            Cue::Step(_) | Cue::Note => {}
        }
        if let Some(p) = &self.live {
            p.cue(cue, text);
        }
    }
}

/// `live`: print narration and checks as they happen (a foreground run on a text output).
/// `ctx` is the plugin's own (see `Ctx::background`).
pub(super) fn plugin_engine(ctx: Arc<Ctx>, handle: tokio::runtime::Handle, stats: Arc<Stats>, live: bool) -> Engine {
    let live = live.then_some(Print { bold: false });
    let ctx = Arc::new(ctx.on_stage(Stage::new(Arc::new(Recorded { stats: stats.clone(), live }))));
    let mut engine = crate::script::build_engine(ctx.clone(), handle);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    crate::script::register_helpers(&mut engine, &ctx, seed);
    let s = stats.clone();
    engine.register_fn("count", move |name: &str, n: INT| s.count(name, n));
    let s = stats.clone();
    engine.register_fn("count", move |name: &str| s.count(name, 1));
    engine.register_fn("fail", move |what: Dynamic| stats.error(what.to_string()));
    engine
}
