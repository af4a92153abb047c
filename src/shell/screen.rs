//! The terminal as the audience sees it. What a story, a command's result and the prompt print
//! to stdout goes through `line`/`out` here, and only here is a copy handed to the recording
//! (`record start`, `dsh run --record`), so a recording holds exactly what was printed, in the
//! order it was printed, without a second printing path. It also carries the recording's
//! chapter markers (steps, pauses, faults) and the time a pause waited, which the recording
//! shortens. It owns the one recording slot of the process (stdout is one per process); it must
//! not know the file format (`cast.rs`) or what a story is.

use crate::error::{Error, Result};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Where a copy of the screen goes while recording.
pub trait Tape: Send {
    /// The recording starts now (its clock's zero).
    fn begin(&mut self) {}
    /// Bytes the terminal received.
    fn output(&mut self, data: &str);
    /// A chapter mark (`step 2: Title`, `pause: …`, `fault: crash n1`).
    fn marker(&mut self, label: &str);
    /// Time spent waiting (a pause) that the recording should not replay in full.
    fn skip(&mut self, waited: Duration);
    /// Ends the recording; says what was written.
    fn finish(&mut self) -> Result<String>;
}

static TAPE: Mutex<Option<Box<dyn Tape>>> = Mutex::new(None);

fn tape<T>(f: impl FnOnce(&mut dyn Tape) -> T) -> Option<T> {
    let mut slot = TAPE.lock().unwrap_or_else(|e| e.into_inner());
    slot.as_mut().map(|t| f(t.as_mut()))
}

/// Prints `text` as it is (no newline added) and flushes, so the audience and the recording
/// see it at the same moment. The lock is held across both, so two threads printing cannot
/// interleave differently on screen and on tape.
pub fn out(text: &str) {
    let mut slot = TAPE.lock().unwrap_or_else(|e| e.into_inner());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    if let Some(t) = slot.as_mut() {
        t.output(text);
    }
}

/// Prints `text` and a newline.
pub fn line(text: &str) {
    out(&format!("{text}\n"));
}

/// An error line on stderr; the audience sees it too, so it is recorded.
pub fn err_line(text: &str) {
    let mut slot = TAPE.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("{text}");
    if let Some(t) = slot.as_mut() {
        t.output(&format!("{text}\n"));
    }
}

/// What the terminal showed without us printing it (the line a person typed, echoed by the
/// line editor or the tty): recorded only.
pub fn echo(text: &str) {
    tape(|t| t.output(text));
}

/// A chapter mark in the recording, if one runs.
pub fn mark(label: &str) {
    tape(|t| t.marker(label));
}

/// A pause waited this long; the recording keeps only a short gap for it.
pub fn skip(waited: Duration) {
    tape(|t| t.skip(waited));
}

/// Starts recording into `t`; refused while another recording runs.
pub fn start(t: Box<dyn Tape>) -> Result<()> {
    let mut slot = TAPE.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Err(Error::usage("a recording is already running (record stop ends it)"));
    }
    let mut t = t;
    t.begin();
    *slot = Some(t);
    Ok(())
}

/// Stops the running recording; says what was written, or `None` when nothing was recording.
pub fn stop() -> Option<Result<String>> {
    let taken = TAPE.lock().unwrap_or_else(|e| e.into_inner()).take();
    taken.map(|mut t| t.finish())
}

/// Whether a recording runs.
pub fn recording() -> bool {
    TAPE.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}
