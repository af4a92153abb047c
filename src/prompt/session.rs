//! The read-eval-print loop. A line whose first words name a command runs it; anything else is
//! Rhai, evaluated in a scope (and with functions) that persist between lines. Ctrl-C cancels
//! the line being typed or the command running; Ctrl-D leaves.

use super::editor::DshHelper;
use crate::client::EventFeed;
use crate::error::Error;
use crate::proto::node_name;
use crate::script::prompt_engine;
use crate::shell::line::{did_you_mean, resolve, words};
use crate::shell::{annotate_event, event_line, run_line, Ctx};
use rhai::{Dynamic, Engine, Scope, AST};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a command may take to wind up after Ctrl-C (a `load` prints what it measured)
/// before the prompt drops it.
const WIND_UP: Duration = Duration::from_secs(1);

struct Session {
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined at the prompt so far.
    functions: AST,
    /// `events on`: the task printing events above the line being typed.
    live_events: Option<tokio::task::JoinHandle<()>>,
}

/// Runs the prompt until Ctrl-D or `exit`; returns the exit status.
pub fn run_prompt(ctx: Arc<Ctx>, handle: tokio::runtime::Handle, home: &Path, color: bool) -> i32 {
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_dups(true)
        .and_then(|b| b.max_history_size(10_000))
        .map(|b| b.completion_type(CompletionType::List).build());
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: internal: {e}");
            return 1;
        }
    };
    let mut rl: Editor<DshHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("error: internal: cannot start the line editor: {e}");
            return 1;
        }
    };
    let nodes = ctx.client.node_ids().into_iter().map(node_name).collect();
    rl.set_helper(Some(DshHelper::new(nodes, color)));
    let history = home.join("history");
    let _ = std::fs::create_dir_all(home);
    let _ = rl.load_history(&history);

    ctx.interrupt.on_ctrl_c(&handle);
    let engine = prompt_engine(ctx.clone(), handle.clone());
    let mut s = Session { ctx, handle, engine, scope: Scope::new(), functions: AST::empty(), live_events: None };
    println!("dsh — type `help` for commands; other lines are Rhai. Ctrl-D leaves.");
    loop {
        let prompt = s.prompt(color);
        match rl.readline(&prompt) {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => {
                let _ = rl.add_history_entry(line.as_str());
                let _ = rl.save_history(&history);
                let first = line.split_whitespace().next().unwrap_or("");
                match first {
                    "exit" | "quit" => break,
                    "history" => {
                        for (i, h) in rl.history().iter().enumerate() {
                            println!("{:5}  {h}", i + 1);
                        }
                    }
                    "events" if matches!(line.split_whitespace().nth(1), Some("on" | "off")) => {
                        s.live_events(&mut rl, line.split_whitespace().nth(1) == Some("on"))
                    }
                    _ => s.line(&line, rl.helper()),
                }
            }
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: internal: {e}");
                return 1;
            }
        }
    }
    if let Some(task) = s.live_events.take() {
        task.abort();
    }
    0
}

impl Session {
    /// `dsh n1★ 3/3> `: the leader and how many nodes answer.
    fn prompt(&self, color: bool) -> String {
        let all = self.handle.block_on(self.ctx.client.status_all(Duration::from_millis(300)));
        let up = all.iter().filter(|(_, r)| r.is_ok()).count();
        let leader = all.iter().filter_map(|(_, r)| r.as_ref().ok()).find(|s| s.role == "leader");
        let who = leader.map_or("no leader".to_string(), |l| format!("{}★", node_name(l.id)));
        if color {
            format!("\x1b[1mdsh\x1b[0m {who} {up}/{}> ", all.len())
        } else {
            format!("dsh {who} {up}/{}> ", all.len())
        }
    }

    /// Starts or stops printing the cluster's events above the line being typed.
    fn live_events(&mut self, rl: &mut Editor<DshHelper, DefaultHistory>, on: bool) {
        if let Some(task) = self.live_events.take() {
            task.abort();
        }
        if !on {
            println!("live events stopped");
            return;
        }
        let mut printer = match rl.create_external_printer() {
            Ok(p) => p,
            Err(e) => return eprintln!("error: internal: cannot print events live here: {e}"),
        };
        let ctx = self.ctx.clone();
        self.live_events = Some(self.handle.spawn(async move {
            let mut feed = EventFeed::start(ctx.client.clone(), false);
            while let Some(e) = feed.next().await {
                // A whole line: while a command runs the editor writes it as it is, with no
                // line end of its own.
                if printer.print(format!("{}\n", event_line(&annotate_event(&ctx, e).await))).is_err() {
                    return;
                }
            }
        }));
        println!("events on: they print above the prompt; `events off` stops");
    }

    fn line(&mut self, line: &str, helper: Option<&DshHelper>) {
        let command = words(line).ok().filter(|w| resolve(w).is_ok());
        match command {
            Some(w) => {
                if let (Some(h), Some(key)) = (helper, w.get(1)) {
                    if !key.starts_with('-') {
                        h.remember_key(key);
                    }
                }
                self.command(line)
            }
            None => self.rhai(line),
        }
    }

    fn command(&self, line: &str) {
        let ctx = self.ctx.clone();
        let token = ctx.interrupt.fresh();
        let outcome = self.handle.block_on(async {
            tokio::select! {
                r = run_line(&ctx, line) => Some(r),
                _ = async { token.cancelled().await; tokio::time::sleep(WIND_UP).await } => None,
            }
        });
        match outcome {
            Some(Err(_)) if token.is_cancelled() => eprintln!("^C cancelled"),
            Some(Ok(out)) => {
                if !out.text.is_empty() {
                    println!("{}", out.text);
                }
                if let Some(e) = &out.failure {
                    print_error(e);
                }
            }
            Some(Err(e)) => print_error(&e),
            None => eprintln!("^C cancelled"),
        }
    }

    fn rhai(&mut self, line: &str) {
        let ast = match self.engine.compile_with_scope(&self.scope, line) {
            Ok(ast) => ast,
            Err(e) => {
                // A typo of a command reads better as one than as a Rhai syntax error.
                let first = line.split_whitespace().next().unwrap_or("");
                let looks_like_command = line.split_whitespace().count() > 1 || !line.contains(['(', '=', '"']);
                match did_you_mean(first).filter(|_| looks_like_command) {
                    Some(s) => eprintln!("error: usage: unknown command `{first}`; did you mean `{s}`?"),
                    None if looks_like_command && first.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                        eprintln!("error: usage: unknown command `{first}` (try `help`)")
                    }
                    None => eprintln!("error: script: {e}"),
                }
                return;
            }
        };
        let program = self.functions.merge(&ast);
        self.ctx.interrupt.fresh();
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &program);
        self.functions = program.clone_functions_only();
        match result {
            Ok(v) if v.is_unit() => {}
            Ok(v) => println!("{}", show(&v)),
            Err(e) => print_error(&Error::new(crate::error::ErrorKind::Script, e.to_string())),
        }
    }
}

fn show(v: &Dynamic) -> String {
    if v.is_string() {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

fn print_error(e: &Error) {
    eprintln!("error: {}: {}", e.kind.as_str(), e.message);
}
