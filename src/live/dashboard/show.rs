//! The dashboard on the terminal: it takes the screen (`Screen`), draws the latest `View`
//! whenever the model publishes one or the terminal is resized — never on a timer — and leaves
//! on `q`, Esc or Ctrl-C (a key in raw mode, not a signal), when `--for` runs out, or when the
//! caller's stop token fires. It must not poll the cluster; the model does.

use super::draw::draw;
use super::look::Look;
use super::screen::Screen;
use crate::error::{Error, Result};
use crate::live::View;
use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct Options {
    /// Leave after this long; `None` waits for a key.
    pub duration: Option<Duration>,
    pub look: Look,
}

/// Why the dashboard left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `q` or Esc.
    Quit,
    /// Ctrl-C, as a key or through the stop token.
    Interrupted,
    /// `--for` ran out.
    Elapsed,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Quit => "quit",
            Ended::Interrupted => "interrupted",
            Ended::Elapsed => "elapsed",
        }
    }
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("dashboard: {e}"))
}

/// Shows the dashboard until a key, the duration or `stop` ends it; the terminal is restored
/// on every way out, errors and panics included.
pub async fn show(mut views: watch::Receiver<Arc<View>>, opts: Options, stop: CancellationToken) -> Result<Ended> {
    let screen = Screen::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(io)?;
    let mut keys = EventStream::new();
    let deadline = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut view = views.borrow_and_update().clone();
    let ended = loop {
        // `draw` resizes to the terminal first, so a resize needs only a redraw.
        term.draw(|f| draw(f, &view, opts.look)).map_err(io)?;
        // Test hook: a panic while the dashboard owns the terminal (tests/dashboard.rs).
        if std::env::var_os("DSH_TEST_DASHBOARD_PANIC").is_some() {
            panic!("DSH_TEST_DASHBOARD_PANIC: a panic while the dashboard is up");
        }
        tokio::select! {
            changed = views.changed() => match changed {
                Ok(()) => view = views.borrow_and_update().clone(),
                Err(_) => return Err(Error::internal("dashboard: the live model stopped")),
            },
            event = keys.next() => match event {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => match k.code {
                    KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => break Ended::Quit,
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => break Ended::Interrupted,
                    _ => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(io(e)),
                // The terminal went away: nobody is looking.
                None => break Ended::Interrupted,
            },
            _ = &mut deadline => break Ended::Elapsed,
            _ = stop.cancelled() => break Ended::Interrupted,
        }
    };
    drop(term);
    drop(screen);
    Ok(ended)
}
