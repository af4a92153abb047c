//! `dsh notes`: the presenter's second screen. It follows the story running under the same
//! `DSH_HOME` through the board the story publishes (`script::board`), woken by the file
//! system (notify) when the board is replaced, plus once a second to move the clocks. On a
//! terminal it redraws one screen — current step, its notes, what comes next, elapsed time, and
//! each step's time now and at the last rehearsal — and leaves on `q` or Ctrl-C, restoring the
//! terminal; off a terminal it prints a line per change. It only reads; it must not touch the
//! cluster.

use crate::cluster::home_dir;
use crate::error::{Error, Result};
use crate::script::board::{board_path, Board};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

enum Wake {
    Changed,
    Quit,
}

/// Follows stories until `q`, Ctrl-C (or, off a terminal, until killed).
pub fn notes() -> Result<i32> {
    let home = home_dir();
    std::fs::create_dir_all(&home).map_err(|e| Error::internal(format!("{}: {e}", home.display())))?;
    let path = board_path(&home);
    let (tx, rx) = mpsc::channel();
    let name = path.file_name().map(|n| n.to_os_string());
    let changed = tx.clone();
    let mut watcher = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
        // Only a replaced or written board: reading it ourselves raises access events too.
        let replaced = |e: &notify::Event| e.kind.is_create() || e.kind.is_modify() || e.kind.is_remove();
        if r.is_ok_and(|e| replaced(&e) && e.paths.iter().any(|p| p.file_name() == name.as_deref())) {
            let _ = changed.send(Wake::Changed);
        }
    })
    .map_err(|e| Error::internal(format!("cannot watch {}: {e}", home.display())))?;
    notify::Watcher::watch(&mut watcher, &home, notify::RecursiveMode::NonRecursive)
        .map_err(|e| Error::internal(format!("cannot watch {}: {e}", home.display())))?;
    if std::io::stdout().is_terminal() {
        on_screen(&path, &home, tx, rx)
    } else {
        as_lines(&path, &home, rx)
    }
}

fn on_screen(path: &Path, home: &Path, tx: mpsc::Sender<Wake>, rx: mpsc::Receiver<Wake>) -> Result<i32> {
    let _raw = Raw::enter();
    // Keys arrive as bytes (no line discipline, no SIGINT): q, Ctrl-C or Ctrl-D leave.
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut byte) {
                Ok(1) if matches!(byte[0], b'q' | b'Q' | 3 | 4) => break,
                Ok(1) => continue,
                _ => break,
            }
        }
        let _ = tx.send(Wake::Quit);
    });
    loop {
        let board = Board::read(path);
        let alive = board.as_ref().is_some_and(|b| alive(b.pid));
        let text = render(board.as_ref(), home, crate::proto::wall_ms(), alive, true);
        let mut out = std::io::stdout().lock();
        // Drawn over the last screen line by line (no clear first), so it does not flicker.
        let _ = write!(out, "\x1b[H{}\x1b[K\x1b[J", text.join("\x1b[K\r\n"));
        let _ = out.flush();
        drop(out);
        // The clocks move once a second; the board wakes us as soon as it changes.
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Wake::Quit) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
            Ok(Wake::Changed) | Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// A line for each change: a new step, a note, a pause, the end.
fn as_lines(path: &Path, home: &Path, rx: mpsc::Receiver<Wake>) -> Result<i32> {
    let mut last = Board::default();
    let mut said = 0;
    if !path.exists() {
        // Said once the watch is set, so whoever waits for this line misses no change.
        println!("no story has run under {} yet; waiting for `dsh run` …", home.display());
    }
    loop {
        if let Some(b) = Board::read(path) {
            let fresh = b.started_ms != last.started_ms || b.pid != last.pid;
            if fresh {
                println!("story {} (pid {})", b.story, b.pid);
                said = 0;
            }
            if b.step != last.step || fresh {
                let next = b.next.as_deref().map_or(String::new(), |n| format!(" (next: {n})"));
                println!("step {}: {}{next}", b.step, b.title);
                said = 0;
            }
            for n in b.notes.iter().skip(said) {
                println!("  note: {n}");
            }
            said = b.notes.len();
            if b.pause != last.pause {
                if let Some(p) = &b.pause {
                    println!("  paused: {p}");
                }
            }
            if b.state != last.state && b.state != "running" {
                println!("{} after {}", b.state, clock(b.total_ms.unwrap_or(0)));
            }
            let _ = std::io::stdout().flush();
            last = b;
        }
        match rx.recv() {
            Ok(Wake::Changed) => {}
            Ok(Wake::Quit) | Err(_) => return Ok(0),
        }
    }
}

/// The screen for `board` at `now_ms`.
pub fn render(board: Option<&Board>, home: &Path, now_ms: u64, alive: bool, color: bool) -> Vec<String> {
    let bold = |s: String| if color { format!("\x1b[1m{s}\x1b[0m") } else { s };
    let Some(b) = board else {
        return vec![
            bold("dsh notes".into()),
            String::new(),
            format!("no story has run under {} yet; waiting for `dsh run` …", home.display()),
            String::new(),
            "q leaves".into(),
        ];
    };
    let running = b.state == "running";
    let state = if running && !alive { "stopped (its process is gone)" } else { b.state.as_str() };
    let elapsed = b.total_ms.unwrap_or(now_ms.saturating_sub(b.started_ms));
    let mut out = vec![bold(format!("dsh notes — {}   {state}   elapsed {}", b.story, clock(elapsed))), String::new()];
    if b.step == 0 {
        out.push("before the first step".into());
    } else {
        let this = if running { now_ms.saturating_sub(b.step_started_ms) } else { 0 };
        let planned = b.steps.iter().find(|s| s.n == b.step).and_then(|s| s.rehearsed_ms);
        let mut timing = if running { format!("   this step {}", clock(this)) } else { String::new() };
        if let Some(r) = planned {
            timing.push_str(&format!(" (rehearsed {})", clock(r)));
        }
        let heading = bold(format!("step {}: {}", b.step, b.title));
        out.push(format!("{heading}{timing}"));
    }
    if let Some(p) = &b.pause {
        out.push(format!("paused: {p}"));
    }
    out.push(String::new());
    if b.notes.is_empty() {
        out.push("  (no notes for this step)".into());
    }
    out.extend(b.notes.iter().map(|n| format!("  • {n}")));
    out.push(String::new());
    match (&b.next, running) {
        (Some(n), true) => out.push(format!("next: {n}")),
        (None, true) => out.push("next: (nothing more is known; the last step?)".into()),
        _ => {}
    }
    out.push(String::new());
    let width = b.steps.iter().map(|s| s.title.chars().count() + 5).max().unwrap_or(10).min(50);
    out.push(format!("  {:width$}  {:>6}  {:>9}", "step", "took", "rehearsed"));
    for s in &b.steps {
        let name: String = format!("{}. {}", s.n, s.title).chars().take(width).collect();
        let now = if s.n == b.step && running { "▶" } else { " " };
        let took = s.ms.map_or("—".into(), clock);
        let rehearsed = s.rehearsed_ms.map_or("—".into(), clock);
        out.push(format!("{now} {name:width$}  {took:>6}  {rehearsed:>9}"));
    }
    out.push(String::new());
    out.push("q leaves".into());
    out
}

/// `12.3 s` under a minute, `m:ss` from there.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{}:{:02}", s / 60, s % 60),
    }
}

/// Whether process `pid` still runs.
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The terminal in the notes' mode while it lives: keys unbuffered and unechoed, Ctrl-C a key
/// rather than a signal (so leaving always restores the terminal), the alternate screen, no
/// cursor. Dropping it puts everything back.
struct Raw(Option<libc::termios>);

impl Raw {
    fn enter() -> Raw {
        let fd = libc::STDIN_FILENO;
        let saved = std::io::stdin().is_terminal().then(|| {
            // SAFETY: tcgetattr/tcsetattr on stdin with a termios we own.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd, &mut t) != 0 {
                    return None;
                }
                let saved = t;
                t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
                t.c_cc[libc::VMIN] = 1;
                t.c_cc[libc::VTIME] = 0;
                (libc::tcsetattr(fd, libc::TCSANOW, &t) == 0).then_some(saved)
            }
        });
        print!("\x1b[?1049h\x1b[?25l");
        let _ = std::io::stdout().flush();
        Raw(saved.flatten())
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
        if let Some(t) = &self.0 {
            // SAFETY: restores the settings read in `enter`.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::board::BoardStep;

    #[test]
    fn the_screen_shows_the_step_its_notes_what_comes_next_and_rehearsed_times() {
        let step = |n, title: &str, ms, rehearsed_ms| BoardStep { n, title: title.into(), ms, rehearsed_ms };
        let board = Board {
            story: "talk.rhai".into(),
            pid: std::process::id(),
            started_ms: 1_000,
            state: "running".into(),
            step: 2,
            title: "Crash the leader".into(),
            step_started_ms: 61_000,
            notes: vec!["SIGKILL: no goodbye".into()],
            next: Some("Heal".into()),
            steps: vec![
                step(1, "Warm up", Some(60_000), Some(50_000)),
                step(2, "Crash the leader", None, Some(30_000)),
                step(3, "Heal", None, None),
            ],
            ..Board::default()
        };
        let text = render(Some(&board), Path::new("/h"), 73_500, true, false).join("\n");
        assert!(text.contains("elapsed 1:12"), "{text}");
        assert!(text.contains("step 2: Crash the leader   this step 12.5 s (rehearsed 30.0 s)"), "{text}");
        assert!(text.contains("  • SIGKILL: no goodbye"), "{text}");
        assert!(text.contains("next: Heal"), "{text}");
        assert!(text.contains("  1. Warm up               1:00     50.0 s"), "{text}");
        assert!(text.contains("▶ 2. Crash the leader         —     30.0 s"), "{text}");
        let gone = render(Some(&board), Path::new("/h"), 73_500, false, false).join("\n");
        assert!(gone.contains("stopped (its process is gone)"), "{gone}");
        assert!(render(None, Path::new("/h"), 0, false, false).join("\n").contains("waiting for `dsh run`"));
    }
}
