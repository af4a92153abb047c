//! An asciicast v2 recording (the format asciinema plays): a header line with the terminal's
//! size, then one JSON array per event — `[seconds, "o", bytes]` for output and
//! `[seconds, "m", label]` for a marker a player offers as a chapter. Each event is written and
//! flushed as it happens, so a talk cut short still leaves a playable file. A pause is kept as a
//! short gap (`PAUSE_GAP`) rather than the minutes the presenter talked. On a terminal the tty
//! turns each `\n` into `\r\n` (onlcr) on its way to the screen; the recording does the same,
//! since that is what the audience's terminal received and what a player needs. Written to a
//! file or pipe the bytes are kept as printed. It owns the file; it must not print.

use super::screen::Tape;
use crate::error::{Error, Result};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a pause lasts in the recording.
pub const PAUSE_GAP: Duration = Duration::from_millis(500);

pub struct Cast {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    start: Instant,
    /// Waiting cut out of the timeline so far.
    skipped: Duration,
    /// The last event's time: events never go back, even one written during a pause.
    last: f64,
    crlf: bool,
    events: u64,
    failed: Option<String>,
}

impl Cast {
    /// Creates the file and writes the header; fails here (before anything runs) when the file
    /// cannot be written. The clock starts when the recording does (`screen::start`).
    pub fn create(path: &Path, title: &str) -> Result<Cast> {
        let file = std::fs::File::create(path)
            .map_err(|e| Error::usage(format!("cannot record to {}: {e}", path.display())))?;
        let (width, height) = size();
        let env = json!({
            "SHELL": std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
            "TERM": std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()),
        });
        let header = json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": crate::proto::wall_ms() / 1000,
            "title": title,
            "env": env,
        });
        let mut cast = Cast {
            path: path.to_path_buf(),
            file: std::io::BufWriter::new(file),
            start: Instant::now(),
            skipped: Duration::ZERO,
            last: 0.0,
            crlf: std::io::stdout().is_terminal(),
            events: 0,
            failed: None,
        };
        cast.write(&header.to_string());
        match cast.failed.take() {
            Some(e) => Err(Error::usage(format!("cannot record to {}: {e}", path.display()))),
            None => Ok(cast),
        }
    }

    fn write(&mut self, line: &str) {
        let r = writeln!(self.file, "{line}").and_then(|_| self.file.flush());
        if let Err(e) = r {
            self.failed.get_or_insert(e.to_string());
        }
    }

    fn event(&mut self, kind: &str, data: &str) {
        let t = self.start.elapsed().saturating_sub(self.skipped).as_secs_f64().max(self.last);
        self.last = t;
        self.events += 1;
        let line = json!([(t * 1e6).round() / 1e6, kind, data]).to_string();
        self.write(&line);
    }
}

impl Tape for Cast {
    fn begin(&mut self) {
        self.start = Instant::now();
    }

    fn output(&mut self, data: &str) {
        if self.crlf {
            self.event("o", &data.replace('\n', "\r\n"));
        } else {
            self.event("o", data);
        }
    }

    fn marker(&mut self, label: &str) {
        self.event("m", label);
    }

    fn skip(&mut self, waited: Duration) {
        self.skipped += waited.saturating_sub(PAUSE_GAP);
    }

    fn finish(&mut self) -> Result<String> {
        if let Some(e) = &self.failed {
            return Err(Error::internal(format!("the recording {} is incomplete: {e}", self.path.display())));
        }
        Ok(format!("recorded {} events, {:.1} s, to {}", self.events, self.last, self.path.display()))
    }
}

/// The terminal's columns (as tables are fitted to them) and rows; 80×24 off a terminal.
fn size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ fills a winsize and touches nothing else.
    let rows = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0).then_some(ws.ws_row)
    };
    let lines = std::env::var("LINES").ok().and_then(|s| s.trim().parse().ok());
    (super::fit::terminal_width().unwrap_or(80), rows.map(usize::from).or(lines).unwrap_or(24))
}
