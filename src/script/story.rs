//! `dsh run FILE.rhai`: a story told to an audience. Adds the presenter's helpers to the engine,
//! runs the script, prints a summary of its checks, and maps the outcome to an exit status:
//! 0 every check held, 1 a check or command failed, 2 the script does not parse.

use super::build_engine;
use crate::shell::output::{table, Style};
use crate::shell::spec::parse_duration;
use crate::shell::{run_line, Ctx};
use rhai::{Array, Dynamic, EvalAltResult, Map, Position};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct StoryOptions {
    pub no_pause: bool,
    pub seed: u64,
    /// Sleeps and durations are divided by this.
    pub speed: f64,
    pub notes: bool,
}

#[derive(Default)]
struct Tally {
    passed: AtomicU64,
    failed: AtomicU64,
    step: AtomicU64,
}

/// Runs a story to the end; returns the exit status. Call from a plain thread, not a tokio worker.
pub fn run_story(
    path: &Path,
    opts: StoryOptions,
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    interrupted: Arc<AtomicBool>,
) -> i32 {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: usage: cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let style = ctx.style;
    let scenarios = ctx.scenarios.clone();
    let (ctx_for_pause, handle_for_pause) = (ctx.clone(), handle.clone());
    let mut engine = build_engine(ctx, handle, interrupted.clone());
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(dir));
    let tally = Arc::new(Tally::default());
    register_helpers(&mut engine, &opts, style, tally.clone(), interrupted, (ctx_for_pause, handle_for_pause));

    let ast = match engine.compile(&source) {
        Ok(ast) => ast,
        Err(e) => {
            eprintln!("{}", locate(path, &source, e.position(), &e.to_string()));
            return 2;
        }
    };
    let started = Instant::now();
    let outcome = engine.run_ast(&ast);
    // A scenario run in the foreground printed its own ✓ and ✗ among the story's.
    let (scenario_passed, scenario_failed) = scenarios.foreground_checks();
    let passed = tally.passed.load(Ordering::Relaxed) + scenario_passed;
    let failed = tally.failed.load(Ordering::Relaxed) + scenario_failed;
    let elapsed = started.elapsed().as_secs_f64();
    match outcome {
        Err(e) => {
            let message = match &*e {
                EvalAltResult::ErrorTerminated(..) => "interrupted".to_string(),
                EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
                other => other.to_string(),
            };
            eprintln!("{}", locate(path, &source, e.position(), &message));
            eprintln!("story stopped after {elapsed:.1} s: {} passed, {failed} failed", checks(passed));
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

/// `1 check`, `2 checks`.
fn checks(n: u64) -> String {
    format!("{n} check{}", if n == 1 { "" } else { "s" })
}

/// An engine for the interactive prompt: every command plus the presenter's helpers.
pub fn prompt_engine(ctx: Arc<Ctx>, handle: tokio::runtime::Handle, interrupted: Arc<AtomicBool>) -> rhai::Engine {
    let style = ctx.style;
    let (ctx_for_pause, handle_for_pause) = (ctx.clone(), handle.clone());
    let mut engine = build_engine(ctx, handle, interrupted.clone());
    let opts = StoryOptions { no_pause: false, seed: 1, speed: 1.0, notes: true };
    register_helpers(&mut engine, &opts, style, Arc::default(), interrupted, (ctx_for_pause, handle_for_pause));
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

fn register_helpers(
    engine: &mut rhai::Engine,
    opts: &StoryOptions,
    style: Style,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    cluster: (Arc<Ctx>, tokio::runtime::Handle),
) {
    let tty = style == Style::Terminal;
    engine.register_fn("say", |text: Dynamic| println!("{text}"));
    let t = tally.clone();
    engine.register_fn("step", move |title: &str| {
        let n = t.step.fetch_add(1, Ordering::Relaxed) + 1;
        if tty {
            println!("\n\x1b[1m── {n}. {title} ──\x1b[0m");
        } else {
            println!("\n── {n}. {title} ──");
        }
    });
    let notes = opts.notes;
    engine.register_fn("note", move |text: &str| {
        if notes {
            println!("  [note] {text}");
        }
    });
    let interactive = !opts.no_pause && std::io::stdin().is_terminal();
    let (ctx, handle) = cluster;
    // SPEC names two things `pause`: `pause NODE` freezes a node, `pause [TEXT]` waits for
    // the presenter. A lone node name means the first.
    let pause = move |text: &str| -> Result<Dynamic, Box<EvalAltResult>> {
        if text.starts_with(['n', 'N']) && crate::proto::parse_node(text).is_ok() {
            let out = handle.block_on(run_line(&ctx, &format!("pause {text}"))).map_err(|e| e.to_string())?;
            return Ok(super::convert::to_dynamic(&out.rhai_value()));
        }
        if interactive {
            print!("{} ⏎ ", if text.is_empty() { "…" } else { text });
            let _ = std::io::stdout().flush();
            let _ = std::io::stdin().lock().read_line(&mut String::new());
        }
        Ok(Dynamic::UNIT)
    };
    let p = pause.clone();
    engine.register_fn("pause", move || p(""));
    engine.register_fn("pause", pause);

    let speed = opts.speed;
    let sleep = move |d: Duration| -> Result<(), Box<EvalAltResult>> {
        let until = Instant::now() + d.div_f64(speed);
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(20)));
        }
        Ok(())
    };
    let s = sleep.clone();
    engine.register_fn("sleep", move |d: &str| s(parse_duration(d).map_err(|e| e.to_string())?));
    let s = sleep.clone();
    engine.register_fn("sleep", move |secs: rhai::INT| s(Duration::from_secs(secs.max(0) as u64)));
    engine.register_fn("sleep", move |secs: rhai::FLOAT| sleep(Duration::from_secs_f64(secs.max(0.0))));

    engine.register_fn("check", move |ok: bool, what: &str| {
        if ok {
            tally.passed.fetch_add(1, Ordering::Relaxed);
            println!("  ✓ {what}");
        } else {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            println!("  ✗ {what}");
        }
        ok
    });
    engine.register_fn("table", move |rows: Array| println!("{}", table_of(style, &rows)));

    let rng = Arc::new(Mutex::new(SplitMix(opts.seed)));
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

/// Rows of maps as a table; columns in the order the first row names them.
fn table_of(style: Style, rows: &Array) -> String {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Some(m) = row.read_lock::<Map>() {
            for k in m.keys() {
                if !columns.iter().any(|c| c == k.as_str()) {
                    columns.push(k.to_string());
                }
            }
        }
    }
    let cells = rows
        .iter()
        .map(|row| match row.read_lock::<Map>() {
            Some(m) => columns.iter().map(|c| m.get(c.as_str()).map_or(String::new(), |v| v.to_string())).collect(),
            None => vec![row.to_string()],
        })
        .collect();
    let header: Vec<&str> = columns.iter().map(String::as_str).collect();
    table(style, &header, cells)
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

/// The presenter's helpers for a plugin's engine (`sleep`, `rand_int`, `now_ms`, …), at normal
/// speed and never waiting at `pause`; `plugins` then replaces `check`, `say` and friends.
pub(crate) fn register_plugin_helpers(
    engine: &mut rhai::Engine,
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let opts = StoryOptions { no_pause: true, seed, speed: 1.0, notes: false };
    let style = ctx.style;
    register_helpers(engine, &opts, style, Arc::default(), stop, (ctx, handle));
}
