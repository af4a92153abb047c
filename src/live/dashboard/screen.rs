//! The terminal while the dashboard owns it: raw mode, the alternate screen, the cursor
//! hidden — and all of it given back when the `Screen` is dropped, or, on a panic, before the
//! panic's message is printed (a hook installed once per process), so the person is never left
//! in a blank, cursorless terminal. It must not draw.

use crate::error::{Error, Result};
use crossterm::{cursor, execute, terminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// Whether the terminal is ours now; whoever flips it back restores, once.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

pub struct Screen(());

impl Screen {
    /// Takes the terminal. Fails if the terminal cannot be put in raw mode.
    pub fn enter() -> Result<Screen> {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info)
            }));
        });
        terminal::enable_raw_mode().map_err(|e| Error::internal(format!("dashboard: raw mode: {e}")))?;
        ACTIVE.store(true, Ordering::SeqCst);
        let screen = Screen(());
        execute!(std::io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)
            .map_err(|e| Error::internal(format!("dashboard: alternate screen: {e}")))?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Cursor shown, alternate screen left, cooked mode back — if the dashboard holds the terminal.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(std::io::stdout(), cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}
