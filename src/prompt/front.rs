//! The prompt as the shell's `Front`: what the table's `history` and `events on|off` reach
//! through `ctx.front`. It keeps a copy of the editor's history (the session refreshes it
//! before each line) and owns the task printing live events above the line being typed. It
//! must not run commands or read the terminal.

use super::watch::Printer;
use crate::client::EventFeed;
use crate::error::{Error, Result};
use crate::shell::{annotate_event, event_line, Ctx, Front};
use std::sync::{Arc, Mutex};

pub struct PromptFront {
    history: Mutex<Vec<String>>,
    printer: Option<Printer>,
    live: Mutex<Option<tokio::task::JoinHandle<()>>>,
    handle: tokio::runtime::Handle,
}

impl PromptFront {
    pub fn new(printer: Option<Printer>, handle: tokio::runtime::Handle) -> Self {
        PromptFront { history: Mutex::default(), printer, live: Mutex::default(), handle }
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
        let task = self.handle.spawn(async move {
            let mut feed = EventFeed::start(ctx.client.clone(), false);
            while let Some(e) = feed.next().await {
                // A whole line: while a command runs the editor writes it as it is, with no
                // line end of its own.
                let line = format!("{}\n", event_line(&annotate_event(&ctx, e).await));
                if printer.lock().unwrap_or_else(|e| e.into_inner()).print(line).is_err() {
                    return;
                }
            }
        });
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok("events on: they print above the prompt; `events off` stops".into())
    }
}
