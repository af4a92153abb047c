//! How a story is told: the `Narrate` a story's stage speaks through. It prints what the
//! audience sees (through `shell::stage::Print`, so a recording gets it too), ends each step
//! with the stable `--marks` line, keeps what each step printed and checked and how long it
//! took (for `--rehearse`), and publishes the story's state for `dsh notes` (`board.rs`) at
//! every step, note and pause. It must not pace the talk or count checks (the `Stage` does).

use super::board::{Board, BoardStep, Planned};
use crate::shell::screen;
use crate::shell::stage::{Cue, Narrate, Print};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The line that ends step `n` with `--marks`. Its shape never changes, so tools that drive
/// dsh (VHS `Wait`, tmux, demo-magic) can wait for it: `-- step 3 done: Title`.
pub fn mark_line(n: u64, title: &str) -> String {
    format!("-- step {n} done: {title}")
}

/// What one step of this run printed and took.
#[derive(Debug, Clone, Default)]
pub struct StepRun {
    /// 0 for what was said before the first step.
    pub n: u64,
    pub title: String,
    pub ms: u64,
    pub lines: Vec<String>,
    pub checks: Vec<String>,
    pub notes: Vec<String>,
    start: Duration,
}

pub struct Teller {
    print: Print,
    /// End each step with `mark_line`.
    pub marks: bool,
    started: Instant,
    board: Mutex<Board>,
    /// Where the board is published; `None` publishes nothing.
    board_path: Option<PathBuf>,
    plan: Vec<Planned>,
    steps: Mutex<Vec<StepRun>>,
}

impl Teller {
    pub fn new(print: Print, story: String, plan: Vec<Planned>, board_path: Option<PathBuf>) -> Teller {
        let now = crate::proto::wall_ms();
        let steps = plan
            .iter()
            .enumerate()
            .map(|(i, p)| BoardStep { n: i as u64 + 1, title: p.title.clone(), ms: None, rehearsed_ms: p.rehearsed_ms })
            .collect();
        let board = Board {
            story,
            pid: std::process::id(),
            started_ms: now,
            state: "running".into(),
            step_started_ms: now,
            next: plan.first().map(|p| p.title.clone()),
            steps,
            ..Board::default()
        };
        let teller = Teller {
            print,
            marks: false,
            started: Instant::now(),
            board: Mutex::new(board),
            board_path,
            plan,
            steps: Mutex::new(Vec::new()),
        };
        teller.publish(|_| {});
        teller
    }

    fn publish(&self, change: impl FnOnce(&mut Board)) {
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut board);
        if let Some(path) = &self.board_path {
            if let Err(e) = board.publish(path) {
                tracing::debug!(%e, "story state not published");
            }
        }
    }

    /// Runs `f` on the current step's record (an opening one before the first step).
    fn current<T>(&self, f: impl FnOnce(&mut StepRun) -> T) -> T {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        if steps.is_empty() {
            steps.push(StepRun { title: "(before the first step)".into(), ..StepRun::default() });
        }
        f(steps.last_mut().expect("one at least"))
    }

    /// Closes the step that runs (its time, its `--marks` line).
    fn close(&self, steps: &mut [StepRun]) {
        let Some(last) = steps.last_mut() else { return };
        let at = self.started.elapsed();
        last.ms = at.saturating_sub(last.start).as_millis() as u64;
        if self.marks && last.n > 0 {
            screen::line(&mark_line(last.n, &last.title));
        }
        let (n, ms) = (last.n, last.ms);
        self.publish(|b| {
            if let Some(s) = b.steps.iter_mut().find(|s| s.n == n) {
                s.ms = Some(ms);
            }
        });
    }

    fn note(&self, text: &str) {
        let said = self.current(|s| {
            s.notes.push(text.to_string());
            s.notes.clone()
        });
        let step = self.board.lock().unwrap_or_else(|e| e.into_inner()).step;
        let planned = self.plan.get(step.saturating_sub(1) as usize).filter(|_| step > 0);
        let mut notes = said.clone();
        notes.extend(planned.map_or(&[][..], |p| &p.notes[..]).iter().skip(said.len()).cloned());
        self.publish(|b| {
            b.notes = notes;
            b.pause = None;
        });
    }

    /// The story is over: closes the last step, publishes the outcome, and returns every
    /// step's record.
    pub fn finish(&self, ok: bool) -> Vec<StepRun> {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        self.close(&mut steps);
        let total = self.started.elapsed().as_millis() as u64;
        self.publish(|b| {
            b.state = if ok { "finished" } else { "failed" }.into();
            b.pause = None;
            b.next = None;
            b.total_ms = Some(total);
        });
        steps.clone()
    }

    /// How long the story has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Narrate for Teller {
    fn cue(&self, cue: Cue, text: &str) {
        match cue {
            Cue::Step(n) => {
                let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
                self.close(&mut steps);
                let start = self.started.elapsed();
                steps.push(StepRun { n, title: text.to_string(), start, ..StepRun::default() });
                drop(steps);
                self.print.cue(cue, text);
                let planned = self.plan.get(n as usize - 1);
                let next = self.plan.get(n as usize).map(|p| p.title.clone());
                self.publish(|b| {
                    b.step = n;
                    b.title = text.to_string();
                    b.step_started_ms = crate::proto::wall_ms();
                    b.notes = planned.map(|p| p.notes.clone()).unwrap_or_default();
                    b.next = next;
                    b.pause = None;
                    match b.steps.iter_mut().find(|s| s.n == n) {
                        Some(s) => s.title = text.to_string(),
                        None => b.steps.push(BoardStep { n, title: text.to_string(), ..BoardStep::default() }),
                    }
                });
            }
            Cue::Say => {
                self.print.cue(cue, text);
                self.current(|s| s.lines.extend(text.lines().map(str::to_string)));
            }
            Cue::Check(ok) => {
                self.print.cue(cue, text);
                self.current(|s| s.checks.push(format!("{} {text}", if ok { "✓" } else { "✗" })));
            }
            Cue::Note => {
                self.print.cue(cue, text);
                self.note(text);
            }
        }
    }

    fn aside(&self, text: &str) {
        self.note(text);
    }

    fn pausing(&self, text: &str) {
        self.publish(|b| b.pause = Some(text.to_string()));
    }
}
