//! `view()`: the live model's current snapshot as a Rhai map (SPEC §7), so a story can check
//! what the audience sees — `view().nodes`, `view().series`, `view().marks`. The model is the
//! context's one model, started by the first caller; this only reads it.

use super::convert::to_dynamic;
use crate::shell::Ctx;
use rhai::{Dynamic, EvalAltResult};
use std::sync::Arc;
use std::time::Duration;

/// How long a first `view()` waits for the model's first round (each node answers or is given
/// up on within 400 ms).
const FIRST_VIEW: Duration = Duration::from_secs(2);

pub fn register(engine: &mut rhai::Engine, ctx: Arc<Ctx>, handle: tokio::runtime::Handle) {
    engine.register_fn("view", move || -> Result<Dynamic, Box<EvalAltResult>> {
        let model = {
            // The model's task is spawned on the client's runtime, not this script's thread.
            let _on = handle.enter();
            ctx.model()
        };
        let view = handle.block_on(async {
            let mut views = model.subscribe();
            let _ = tokio::time::timeout(FIRST_VIEW, views.wait_for(|v| v.at_ms != 0)).await;
            model.snapshot()
        });
        let json = serde_json::to_value(&*view).map_err(|e| e.to_string())?;
        Ok(to_dynamic(&json))
    });
}
