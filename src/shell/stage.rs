//! Where a presenter's words go and how a talk is paced. `say`, `step`, `note`, `pause`,
//! `sleep` and Rhai's `check` are defined once (`commands/present.rs`, `script::present`) and
//! all speak through the `Stage` of their `Ctx`: at the prompt and in a story it prints (and a
//! story counts checks), in a background scenario it records into the scenario's stats. It owns
//! the step counter and the tally of checks; it must not know what a story or a plugin is.

use super::screen;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What is being said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    Say,
    /// A numbered heading.
    Step(u64),
    /// A speaker note (only said when notes are shown).
    Note,
    /// A check and whether it held.
    Check(bool),
}

/// Receives what the presenter's helpers say.
pub trait Narrate: Send + Sync {
    fn cue(&self, cue: Cue, text: &str);
    /// A speaker note the audience is not shown (no `--notes`): the presenter's own screen
    /// (`dsh notes`) may still want it.
    fn aside(&self, _text: &str) {}
    /// The talk stops at a `pause` with this text (whether or not it waits for Enter).
    fn pausing(&self, _text: &str) {}
}

/// Prints to stdout through the screen (so a recording sees it): bold steps on a terminal,
/// plain otherwise. Each step is a chapter marker in a recording.
pub struct Print {
    pub bold: bool,
}

impl Narrate for Print {
    fn cue(&self, cue: Cue, text: &str) {
        match cue {
            Cue::Say => screen::line(text),
            Cue::Step(n) => {
                screen::mark(&format!("step {n}: {text}"));
                match self.bold {
                    true => screen::line(&format!("\n\x1b[1m── {n}. {text} ──\x1b[0m")),
                    false => screen::line(&format!("\n── {n}. {text} ──")),
                }
            }
            Cue::Note => screen::line(&format!("  [note] {text}")),
            Cue::Check(ok) => screen::line(&format!("  {} {text}", if ok { "✓" } else { "✗" })),
        }
    }
}

/// Says nothing (JSON output, a quiet shell).
pub struct Silent;

impl Narrate for Silent {
    fn cue(&self, _: Cue, _: &str) {}
}

pub struct Stage {
    /// Sleeps are divided by this.
    pub speed: f64,
    /// `pause` waits for Enter (a person at a terminal, not `--no-pause`).
    pub pauses: bool,
    /// Speaker notes are shown.
    pub notes: bool,
    sink: Arc<dyn Narrate>,
    steps: AtomicU64,
    passed: AtomicU64,
    failed: AtomicU64,
}

impl Stage {
    pub fn new(sink: Arc<dyn Narrate>) -> Self {
        Stage {
            speed: 1.0,
            pauses: false,
            notes: false,
            sink,
            steps: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    pub fn say(&self, text: &str) {
        self.sink.cue(Cue::Say, text);
    }

    pub fn step(&self, title: &str) -> u64 {
        let n = self.steps.fetch_add(1, Ordering::Relaxed) + 1;
        self.sink.cue(Cue::Step(n), title);
        n
    }

    pub fn note(&self, text: &str) {
        if self.notes {
            self.sink.cue(Cue::Note, text);
        } else {
            self.sink.aside(text);
        }
    }

    /// A `pause` with this text is reached.
    pub fn pausing(&self, text: &str) {
        self.sink.pausing(text);
    }

    pub fn check(&self, ok: bool, what: &str) -> bool {
        let count = if ok { &self.passed } else { &self.failed };
        count.fetch_add(1, Ordering::Relaxed);
        self.sink.cue(Cue::Check(ok), what);
        ok
    }

    /// Checks made and shown elsewhere (a scenario run in the foreground) join the tally.
    pub fn count(&self, passed: u64, failed: u64) {
        self.passed.fetch_add(passed, Ordering::Relaxed);
        self.failed.fetch_add(failed, Ordering::Relaxed);
    }

    /// Checks (passed, failed) so far.
    pub fn tally(&self) -> (u64, u64) {
        (self.passed.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

/// `1 check`, `3 checks`.
pub fn checks(n: u64) -> String {
    format!("{n} check{}", if n == 1 { "" } else { "s" })
}
