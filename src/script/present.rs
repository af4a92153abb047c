//! The presenter's Rhai-only helpers: `check`, `table`, `rand_int`, `rand_choice`, `now_ms`.
//! `say`, `step`, `note`, `pause` and `sleep` are commands of the table and reach Rhai with the
//! rest; all of them speak through the context's `Stage`, so a story, the prompt and a plugin
//! share one definition and differ only in where the words go.

use crate::shell::Ctx;
use rhai::{Array, Dynamic};
use std::sync::{Arc, Mutex};

/// Registers the helpers against `ctx`; `seed` makes `rand_int` and `rand_choice` replay.
pub fn register(engine: &mut rhai::Engine, ctx: &Arc<Ctx>, seed: u64) {
    let c = ctx.clone();
    engine.register_fn("check", move |ok: bool, what: &str| c.stage.check(ok, what));
    super::table::register(engine, ctx);
    let rng = Arc::new(Mutex::new(SplitMix(seed)));
    let r = rng.clone();
    engine.register_fn("rand_int", move |lo: rhai::INT, hi: rhai::INT| {
        let span = (hi - lo).max(0) as u64 + 1;
        lo + (r.lock().unwrap().next() % span) as rhai::INT
    });
    engine.register_fn("rand_choice", move |items: Array| {
        if items.is_empty() {
            return Dynamic::UNIT;
        }
        let i = rng.lock().unwrap().next() as usize % items.len();
        items[i].clone()
    });
    engine.register_fn("now_ms", || crate::proto::wall_ms() as rhai::INT);
}

/// A small seeded generator: stories must replay the same with the same `--seed`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
