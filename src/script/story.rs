//! `dsh run FILE.rhai`: a story told to an audience. Adds the presenter's helpers to the engine,
//! runs the script, prints a summary of its checks, and maps the outcome to an exit status:
//! 0 every check held, 1 a check or command failed, 2 the script does not parse. The story is
//! told through a `Teller` (marks, step records, the board `dsh notes` follows); with
//! `--record` the screen is taped from the first line to the summary; with `--rehearse` the
//! steps are compared with the last rehearsal and saved for the next.

use super::board::{scan_plan, Planned};
use super::build_engine;
use super::rehearsal;
use super::teller::Teller;
use crate::shell::output::Style;
use crate::shell::screen::{self, Tape};
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
    /// Time each step, compare with the last rehearsal and save this one beside the story.
    pub rehearse: bool,
    /// End each step with a stable line (`teller::mark_line`).
    pub marks: bool,
    /// Where the story publishes its state for `dsh notes` (`board::board_path`).
    pub board: Option<PathBuf>,
}

/// Runs a story to the end; returns the exit status. Call from a plain thread, not a tokio
/// worker. Ctrl-C (`ctx.interrupt`) stops it, also at a pause.
/// With `tape`, the screen is recorded while the story runs.
pub fn run_story(
    path: &Path,
    opts: StoryOptions,
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    tape: Option<Box<dyn Tape>>,
) -> i32 {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: usage: cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let last = rehearsal::load(path);
    let plan: Vec<Planned> = match &last {
        Some(r) => r
            .steps
            .iter()
            .filter(|t| t.n > 0)
            .map(|t| Planned { title: t.title.clone(), notes: t.notes.clone(), rehearsed_ms: Some(t.ms) })
            .collect(),
        None => scan_plan(&source),
    };
    let print = Print { bold: ctx.style == Style::Terminal };
    let mut teller = Teller::new(print, path.display().to_string(), plan, opts.board.clone());
    teller.marks = opts.marks;
    let teller = Arc::new(teller);
    let mut stage = Stage::new(teller.clone());
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
            teller.finish(false);
            return 2;
        }
    };
    if let Some(tape) = tape {
        if let Err(e) = screen::start(tape) {
            eprintln!("error: {e}");
            return 2;
        }
    }
    let started = Instant::now();
    let outcome = engine.run_ast(&ast);
    let (passed, failed) = ctx.stage.tally();
    let steps = teller.finish(outcome.is_ok() && failed == 0);
    let elapsed = started.elapsed().as_secs_f64();
    let code = summary(path, &source, outcome, passed, failed, elapsed);
    if opts.rehearse {
        let now = rehearsal::rehearsal(path, crate::proto::wall_ms(), teller.elapsed().as_millis() as u64, &steps);
        // A run that failed or was interrupted is no timing to rehearse against.
        let saved = (code == 0).then(|| rehearsal::save(path, &now));
        match saved {
            Some(Ok(saved)) => screen::line(&rehearsal::report(last.as_ref(), &now, path, Some(&saved))),
            Some(Err(e)) => screen::err_line(&format!("error: {e}")),
            None => screen::line(&rehearsal::report(last.as_ref(), &now, path, None)),
        }
    }
    match screen::stop() {
        Some(Ok(said)) => eprintln!("{said}"),
        Some(Err(e)) => eprintln!("error: {e}"),
        None => {}
    }
    code
}

/// The story's last lines: where it stopped, or how its checks went; returns the exit status.
fn summary(
    path: &Path,
    source: &str,
    outcome: Result<(), Box<EvalAltResult>>,
    passed: u64,
    failed: u64,
    elapsed: f64,
) -> i32 {
    match outcome {
        Err(e) => {
            let message = match &*e {
                EvalAltResult::ErrorTerminated(..) => "interrupted".to_string(),
                EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
                other => other.to_string(),
            };
            screen::err_line(&locate(path, source, e.position(), &message));
            screen::line(&format!(
                "\n✗ story stopped after {elapsed:.1} s: {} passed, {failed} failed",
                checks(passed)
            ));
            1
        }
        Ok(()) if failed > 0 => {
            screen::line(&format!("\n✗ {failed} of {} failed ({elapsed:.1} s)", checks(passed + failed)));
            1
        }
        Ok(()) if passed == 0 => {
            screen::line(&format!("\n✓ finished, without checks ({elapsed:.1} s)"));
            0
        }
        Ok(()) if passed == 1 => {
            screen::line(&format!("\n✓ the one check passed ({elapsed:.1} s)"));
            0
        }
        Ok(()) => {
            screen::line(&format!("\n✓ all {} passed ({elapsed:.1} s)", checks(passed)));
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
