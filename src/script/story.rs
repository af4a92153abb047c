//! `dsh run FILE.rhai`: a story told to an audience. Adds the presenter's helpers to the engine,
//! runs the script, prints a summary of its checks, and maps the outcome to an exit status:
//! 0 every check held, 1 a check or command failed, 2 the script does not parse.

use super::build_engine;
use crate::shell::output::Style;
use crate::shell::stage::{checks, Print, Stage};
use crate::shell::Ctx;
use rhai::{EvalAltResult, Position};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct StoryOptions {
    pub no_pause: bool,
    pub seed: u64,
    /// Sleeps and durations are divided by this.
    pub speed: f64,
    pub notes: bool,
}

/// Runs a story to the end; returns the exit status. Call from a plain thread, not a tokio
/// worker. Ctrl-C (`ctx.interrupt`) stops it, also at a pause.
pub fn run_story(path: &Path, opts: StoryOptions, ctx: Arc<Ctx>, handle: tokio::runtime::Handle) -> i32 {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: usage: cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let mut stage = Stage::new(Arc::new(Print { bold: ctx.style == Style::Terminal }));
    stage.speed = opts.speed;
    stage.pauses = !opts.no_pause && std::io::stdin().is_terminal();
    stage.notes = opts.notes;
    let ctx = Arc::new(ctx.on_stage(stage));
    let mut engine = build_engine(ctx.clone(), handle);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(dir));
    super::present::register(&mut engine, &ctx, opts.seed);

    let ast = match engine.compile(&source) {
        Ok(ast) => ast,
        Err(e) => {
            eprintln!("{}", locate(path, &source, e.position(), &e.to_string()));
            return 2;
        }
    };
    let started = Instant::now();
    let outcome = engine.run_ast(&ast);
    let (passed, failed) = ctx.stage.tally();
    let elapsed = started.elapsed().as_secs_f64();
    match outcome {
        Err(e) => {
            let message = match &*e {
                EvalAltResult::ErrorTerminated(..) => "interrupted".to_string(),
                EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
                other => other.to_string(),
            };
            eprintln!("{}", locate(path, &source, e.position(), &message));
            println!("\n✗ story stopped after {elapsed:.1} s: {} passed, {failed} failed", checks(passed));
            1
        }
        Ok(()) if failed > 0 => {
            println!("\n✗ {failed} of {} failed ({elapsed:.1} s)", checks(passed + failed));
            1
        }
        Ok(()) if passed == 0 => {
            println!("\n✓ finished, without checks ({elapsed:.1} s)");
            0
        }
        Ok(()) if passed == 1 => {
            println!("\n✓ the one check passed ({elapsed:.1} s)");
            0
        }
        Ok(()) => {
            println!("\n✓ all {} passed ({elapsed:.1} s)", checks(passed));
            0
        }
    }
}

/// An engine for the interactive prompt: every command plus the presenter's helpers.
pub fn prompt_engine(ctx: Arc<Ctx>, handle: tokio::runtime::Handle) -> rhai::Engine {
    let mut engine = build_engine(ctx.clone(), handle);
    super::present::register(&mut engine, &ctx, 1);
    engine
}

/// `file:line:col: message`, then the line and a caret under the column.
fn locate(path: &Path, source: &str, pos: Position, message: &str) -> String {
    let (Some(line), col) = (pos.line(), pos.position().unwrap_or(1)) else {
        return format!("{}: {message}", path.display());
    };
    let text = source.lines().nth(line - 1).unwrap_or("");
    let gutter = format!("{line} | ");
    format!(
        "{}:{line}:{col}: {message}\n{gutter}{text}\n{}^",
        path.display(),
        " ".repeat(gutter.len() + col.saturating_sub(1))
    )
}
