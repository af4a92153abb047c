//! The read-eval-print loop. A line whose first words name a command runs it; anything else is
//! Rhai, evaluated in a scope (and with functions) that persist between lines. Lines typed while
//! a command ran run next, in order, each shown after its prompt. While a line is being typed
//! the prompt follows the cluster (`watch`). Ctrl-C cancels the line being typed or the command
//! running; Ctrl-D or `exit` leaves.

use super::editor::{open_brackets, DshHelper};
use super::front::PromptFront;
use super::typeahead;
use super::watch::{self, Printer, Shown, View};
use crate::error::{Error, ErrorKind};
use crate::proto::node_name;
use crate::script::prompt_engine;
use crate::shell::line::{did_you_mean, resolve, words};
use crate::shell::{run_line, Ctx};
use rhai::{Dynamic, Engine, EvalAltResult, Scope, AST};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{ColorMode, CompletionType, Config, Editor, ExternalPrinter};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a command may take to wind up after Ctrl-C (a `load` prints what it measured)
/// before the prompt drops it.
const WIND_UP: Duration = Duration::from_secs(1);
/// How long a fresh prompt waits for the nodes' status before it shows what it has.
const FIRST_LOOK: Duration = Duration::from_millis(300);

type Rl = Editor<DshHelper, DefaultHistory>;

struct Session {
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined at the prompt so far.
    functions: AST,
    front: Arc<PromptFront>,
    /// Prints above the line being typed; `None` when the output is not a terminal.
    printer: Option<Printer>,
    shown: Shown,
    color: bool,
    history: PathBuf,
}

/// Runs the prompt until Ctrl-D or `exit`; returns the exit status.
pub fn run_prompt(ctx: Arc<Ctx>, handle: tokio::runtime::Handle, home: &Path, color: bool) -> i32 {
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_dups(true)
        .and_then(|b| b.max_history_size(10_000))
        // rustyline skips every highlighter hook under NO_COLOR, and the prompt follows the
        // cluster through one of them (`highlight_prompt`): the helper decides colours itself.
        .map(|b| b.completion_type(CompletionType::List).color_mode(ColorMode::Forced).build());
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: internal: {e}");
            return 1;
        }
    };
    let mut rl: Rl = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("error: internal: cannot start the line editor: {e}");
            return 1;
        }
    };
    let shown = Shown::default();
    let nodes = ctx.client.node_ids().into_iter().map(node_name).collect();
    rl.set_helper(Some(DshHelper::new(nodes, color, shown.clone())));
    let history = home.join("history");
    let _ = std::fs::create_dir_all(home);
    let _ = rl.load_history(&history);
    let printer: Option<Printer> =
        rl.create_external_printer().ok().map(|p| Arc::new(Mutex::new(Box::new(p) as Box<dyn ExternalPrinter + Send>)));
    let front = Arc::new(PromptFront::new(printer.clone(), handle.clone()));
    front.set_history(rl.history().iter().cloned().collect());
    let _ = ctx.front.set(front.clone());

    ctx.interrupt.on_ctrl_c(&handle);
    let engine = prompt_engine(ctx.clone(), handle.clone());
    let mut s = Session {
        ctx,
        handle,
        engine,
        scope: Scope::new(),
        functions: AST::empty(),
        front,
        printer,
        shown,
        color,
        history,
    };
    println!("dsh — type `help` for commands; other lines are Rhai. Ctrl-D leaves.");
    let status = s.run(&mut rl);
    s.front.stop();
    status
}

impl Session {
    fn run(&mut self, rl: &mut Rl) -> i32 {
        let mut typed_ahead: VecDeque<String> = VecDeque::new();
        let mut eof = false;
        loop {
            let answers = self.handle.block_on(watch::ask_all(&self.ctx.client, FIRST_LOOK));
            let view = View::of(&answers);
            *self.shown.lock().unwrap_or_else(|e| e.into_inner()) = view.clone();
            let waiting = typeahead::take();
            typed_ahead.extend(waiting.lines);
            eof |= waiting.eof;
            if let Some(entry) = next_entry(&mut typed_ahead) {
                crate::shell::screen::line(&format!("{}{entry}", view.prompt(None, self.color)));
                if self.entry(rl, &entry) {
                    return 0;
                }
                // Ctrl-C drops what was typed ahead, as the terminal drops what it still held.
                if self.ctx.interrupt.fired() {
                    typed_ahead.clear();
                }
                continue;
            }
            if eof {
                return 0;
            }
            // An unfinished Rhai block typed ahead is taken up where it stopped.
            let unfinished = typed_ahead.drain(..).collect::<Vec<_>>().join("\n");
            let watcher = self.printer.clone().map(|p| {
                watch::follow(&self.handle, self.ctx.client.clone(), answers, self.shown.clone(), p, self.color)
            });
            let read = rl.readline_with_initial(&view.prompt(None, false), (&unfinished, ""));
            if let Some(w) = watcher {
                w.abort();
            }
            match read {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => {
                    // The line editor showed the prompt and what was typed; a recording
                    // wants them too.
                    crate::shell::screen::echo(&format!("{}{line}\n", view.prompt(None, self.color)));
                    if self.entry(rl, &line) {
                        return 0;
                    }
                }
                Err(ReadlineError::Interrupted) => {}
                Err(ReadlineError::Eof) => return 0,
                Err(e) => {
                    eprintln!("error: internal: {e}");
                    return 1;
                }
            }
        }
    }

    /// Records and runs one entry; says whether the prompt should leave.
    fn entry(&mut self, rl: &mut Rl, line: &str) -> bool {
        let _ = rl.add_history_entry(line);
        let _ = rl.save_history(&self.history);
        self.front.set_history(rl.history().iter().cloned().collect());
        let command = words(line).ok().filter(|w| resolve(w).is_ok());
        match command {
            Some(w) => {
                if let (Some(h), Some(key)) = (rl.helper(), w.get(1)) {
                    if !key.starts_with('-') {
                        h.remember_key(key);
                    }
                }
                self.command(line)
            }
            None => {
                self.rhai(line);
                false
            }
        }
    }

    /// Runs a command; says whether it was `exit`.
    fn command(&self, line: &str) -> bool {
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
                    crate::shell::screen::line(&out.text);
                }
                if let Some(e) = &out.failure {
                    print_error(e);
                }
                return out.cmd == "exit";
            }
            Some(Err(e)) => print_error(&e),
            None => eprintln!("^C cancelled"),
        }
        false
    }

    fn rhai(&mut self, line: &str) {
        let first = line.split_whitespace().next().unwrap_or("");
        let ast = match self.engine.compile_with_scope(&self.scope, line) {
            Ok(ast) => ast,
            Err(e) => {
                // A typo of a command reads better as one than as a Rhai syntax error.
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
            Ok(v) => crate::shell::screen::line(&show(&v)),
            Err(e) => match unknown_name(&e).and_then(|name| did_you_mean(name).map(|s| (name, s))) {
                // `stauts` parses as a variable and `stauts()` as a call: both are typos of a
                // command when the line starts with them.
                Some((name, s)) if leading_name(line) == name => {
                    eprintln!("error: usage: unknown command `{name}`; did you mean `{s}`?")
                }
                Some((_, s)) => eprintln!("error: script: {e}; did you mean `{s}`?"),
                None => print_error(&Error::new(ErrorKind::Script, e.to_string())),
            },
        }
    }
}

/// The next whole entry typed ahead: one command line, or Rhai lines up to where their
/// brackets close. `None` when nothing waits, or only the start of an unfinished block.
fn next_entry(typed: &mut VecDeque<String>) -> Option<String> {
    while typed.front().is_some_and(|l| l.trim().is_empty()) {
        typed.pop_front();
    }
    let first = typed.front()?;
    if words(first).ok().is_some_and(|w| resolve(&w).is_ok()) {
        return typed.pop_front();
    }
    let mut text = String::new();
    for (i, line) in typed.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(line);
        if open_brackets(&text) <= 0 {
            typed.drain(..=i);
            return Some(text);
        }
    }
    None
}

/// The variable or function a Rhai error says does not exist.
fn unknown_name(e: &EvalAltResult) -> Option<&str> {
    match e {
        EvalAltResult::ErrorVariableNotFound(name, _) => Some(name),
        // The signature: `stauts ()`, `stauts (&str | ImmutableString)`.
        EvalAltResult::ErrorFunctionNotFound(sig, _) => sig.split([' ', '(']).next(),
        _ => None,
    }
}

/// The identifier a line starts with.
fn leading_name(line: &str) -> &str {
    let line = line.trim_start();
    let end = line.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(line.len());
    &line[..end]
}

fn show(v: &Dynamic) -> String {
    if v.is_string() {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// On stderr, and in a recording: the audience saw it.
fn print_error(e: &Error) {
    crate::shell::screen::err_line(&format!("error: {}: {}", e.kind.as_str(), e.message));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(lines: &[&str]) -> VecDeque<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn typed_ahead_entries_are_whole_commands_or_closed_blocks() {
        let mut q = queue(&["put a 1", "", "fn f(x) {", "  x", "}", "let y = ["]);
        assert_eq!(next_entry(&mut q).as_deref(), Some("put a 1"));
        assert_eq!(next_entry(&mut q).as_deref(), Some("fn f(x) {\n  x\n}"));
        assert_eq!(next_entry(&mut q), None, "an unfinished block waits for the rest");
        assert_eq!(q, queue(&["let y = ["]));
    }

    #[test]
    fn a_typo_names_what_was_typed() {
        assert_eq!(leading_name("stauts()"), "stauts");
        assert_eq!(leading_name("  stauts"), "stauts");
        let e = EvalAltResult::ErrorFunctionNotFound("stauts ()".into(), rhai::Position::NONE);
        assert_eq!(unknown_name(&e), Some("stauts"));
    }
}
