//! The prompt as the shell's `Front`: what the table's `history` and `events on|off` reach
//! through `ctx.front`. It keeps a copy of the editor's history (the session refreshes it
//! before each line) and owns the task printing live events above the line being typed; while a
//! full-screen view holds it, those lines wait (the latest few) and print when it lets go. It
//! must not run commands or read the terminal.

use super::watch::Printer;
use crate::client::EventFeed;
use crate::error::{Error, Result};
use crate::shell::{annotate_event, event_line, Ctx, Front};
use std::sync::{Arc, Mutex};

/// How many event lines wait while printing is held; older ones are dropped.
const HELD_LINES: usize = 50;

/// Printing held (`on`) and the lines that came meanwhile. Printing happens under this lock,
/// so once `hold(true)` returns no line is half-way out.
#[derive(Default)]
struct Held {
    on: bool,
    waiting: std::collections::VecDeque<String>,
}

impl Held {
    /// Prints `line` now, or keeps it while held; `false` once the printer is gone.
    fn print(&mut self, line: String, printer: &Printer) -> bool {
        if self.on {
            if self.waiting.len() == HELD_LINES {
                self.waiting.pop_front();
            }
            self.waiting.push_back(line);
            return true;
        }
        // The editor prints it above the line being typed; a recording gets it here.
        crate::shell::screen::echo(&line);
        printer.lock().unwrap_or_else(|e| e.into_inner()).print(line).is_ok()
    }

    /// Holds, or lets go and prints what waited.
    fn set(&mut self, on: bool, printer: Option<&Printer>) {
        self.on = on;
        let waiting: Vec<String> = if on { vec![] } else { self.waiting.drain(..).collect() };
        if let Some(printer) = printer {
            for line in waiting {
                self.print(line, printer);
            }
        }
    }
}

pub struct PromptFront {
    history: Mutex<Vec<String>>,
    printer: Option<Printer>,
    held: Arc<Mutex<Held>>,
    live: Mutex<Option<tokio::task::JoinHandle<()>>>,
    handle: tokio::runtime::Handle,
}

impl PromptFront {
    pub fn new(printer: Option<Printer>, handle: tokio::runtime::Handle) -> Self {
        PromptFront { history: Mutex::default(), printer, held: Arc::default(), live: Mutex::default(), handle }
    }

    pub fn set_history(&self, lines: Vec<String>) {
        *self.history.lock().unwrap_or_else(|e| e.into_inner()) = lines;
    }

    /// Stops printing live events (the prompt is leaving).
    pub fn stop(&self) {
        if let Some(task) = self.live.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

impl Front for PromptFront {
    fn history(&self) -> Vec<String> {
        self.history.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn live_events(&self, ctx: &Ctx, on: bool) -> Result<String> {
        self.stop();
        if !on {
            return Ok("live events stopped".into());
        }
        let printer = self
            .printer
            .clone()
            .ok_or_else(|| Error::usage("events cannot print live here: the output is not a terminal"))?;
        // Its own context: the task outlives the command that started it.
        let ctx = Arc::new(ctx.background());
        let held = self.held.clone();
        let task = self.handle.spawn(async move {
            let mut feed = EventFeed::start(ctx.client.clone(), false);
            while let Some(e) = feed.next().await {
                // A whole line: while a command runs the editor writes it as it is, with no
                // line end of its own.
                let line = format!("{}\n", event_line(&annotate_event(&ctx, e).await));
                if !held.lock().unwrap_or_else(|e| e.into_inner()).print(line, &printer) {
                    return;
                }
            }
        });
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok("events on: they print above the prompt; `events off` stops".into())
    }

    fn hold(&self, on: bool) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).set(on, self.printer.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::ExternalPrinter;

    struct Lines(Arc<Mutex<Vec<String>>>);

    impl ExternalPrinter for Lines {
        fn print(&mut self, msg: String) -> rustyline::Result<()> {
            self.0.lock().unwrap().push(msg);
            Ok(())
        }
    }

    #[test]
    fn held_lines_wait_and_print_in_order_when_let_go() {
        let printed = Arc::new(Mutex::new(Vec::new()));
        let printer: Printer = Arc::new(Mutex::new(Box::new(Lines(printed.clone()))));
        let mut held = Held::default();
        assert!(held.print("a".into(), &printer));
        held.set(true, Some(&printer));
        for i in 0..HELD_LINES + 2 {
            held.print(format!("w{i}"), &printer);
        }
        assert_eq!(*printed.lock().unwrap(), ["a"], "nothing prints while held");
        held.set(false, Some(&printer));
        let all = printed.lock().unwrap().clone();
        assert_eq!(all.len(), 1 + HELD_LINES, "the latest {HELD_LINES} waited");
        assert_eq!((all[1].as_str(), all[HELD_LINES].as_str()), ("w2", format!("w{}", HELD_LINES + 1).as_str()));
        held.print("b".into(), &printer);
        assert_eq!(printed.lock().unwrap().last().unwrap(), "b", "prints at once again");
    }
}
