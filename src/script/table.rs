//! `table(rows)` and `table(rows, ["node", "role"])` for scripts: prints rows of maps as a
//! table. Which columns and how they read is the shell's (`shell::records`); this file only
//! turns Rhai values into its rows and its errors into Rhai's.

use crate::shell::records::records;
use crate::shell::Ctx;
use rhai::{Array, EvalAltResult, Position};
use std::sync::Arc;

/// Adds both forms of `table` to `engine`; the table is said on the context's stage, so a
/// plugin's goes where its narration goes.
pub fn register(engine: &mut rhai::Engine, ctx: &Arc<Ctx>) {
    let c = ctx.clone();
    engine.register_fn("table", move |rows: Array| show(&c, &rows, None));
    let c = ctx.clone();
    engine.register_fn("table", move |rows: Array, columns: Array| {
        let names: Vec<String> = columns.iter().map(super::convert::to_word).collect();
        show(&c, &rows, Some(&names))
    });
}

fn show(ctx: &Ctx, rows: &Array, columns: Option<&[String]>) -> Result<(), Box<EvalAltResult>> {
    let rows: Vec<serde_json::Value> = rows.iter().map(super::to_json).collect();
    let text = records(ctx.style, &rows, columns)
        .map_err(|e| Box::new(EvalAltResult::ErrorRuntime(e.to_string().into(), Position::NONE)))?;
    ctx.stage.say(&text);
    Ok(())
}
