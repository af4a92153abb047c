//! `table(rows)` and `table(rows, ["node", "role"])` for scripts: prints rows of maps as a
//! table. Which columns and how they read is the shell's (`shell::records`); this file only
//! turns Rhai values into its rows and its errors into Rhai's.

use crate::shell::output::Style;
use crate::shell::records::records;
use rhai::{Array, EvalAltResult, Position};

/// Adds both forms of `table` to `engine`.
pub fn register(engine: &mut rhai::Engine, style: Style) {
    engine.register_fn("table", move |rows: Array| show(style, &rows, None));
    engine.register_fn("table", move |rows: Array, columns: Array| {
        let names: Vec<String> = columns.iter().map(super::convert::to_word).collect();
        show(style, &rows, Some(&names))
    });
}

fn show(style: Style, rows: &Array, columns: Option<&[String]>) -> Result<(), Box<EvalAltResult>> {
    let rows: Vec<serde_json::Value> = rows.iter().map(super::to_json).collect();
    let text = records(style, &rows, columns)
        .map_err(|e| Box::new(EvalAltResult::ErrorRuntime(e.to_string().into(), Position::NONE)))?;
    println!("{text}");
    Ok(())
}
