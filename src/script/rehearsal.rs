//! `dsh run FILE --rehearse`: what one rehearsal took, step by step, kept beside the story as
//! `FILE.rehearsal.json`, and how the next rehearsal compares with it. A step's printed lines
//! and checks are compared with every word that holds a digit masked (numbers, node names,
//! revisions, hashes, run ids), and runs of spaces or rule characters collapsed, so the values
//! one run draws anew do not count as changes while an edited `say` or check does. It owns the
//! file and the comparison; it must not print (the story runner shows the report).

use super::teller::StepRun;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rehearsal {
    pub story: String,
    /// Wall clock when it ran, milliseconds since the epoch.
    pub at_ms: u64,
    pub total_ms: u64,
    pub steps: Vec<Take>,
}

/// One step as rehearsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Take {
    pub n: u64,
    pub title: String,
    pub ms: u64,
    /// SHA-256 (first 16 hex digits) of the masked title, lines and checks.
    pub digest: String,
    /// Printed lines, masked.
    pub lines: Vec<String>,
    /// Checks as `✓ what` / `✗ what`, masked.
    pub checks: Vec<String>,
    /// The notes as said (for `dsh notes`).
    pub notes: Vec<String>,
}

/// `FILE.rehearsal.json` beside the story.
pub fn path_for(story: &Path) -> PathBuf {
    let mut name = story.file_name().unwrap_or_default().to_os_string();
    name.push(".rehearsal.json");
    story.with_file_name(name)
}

/// The last rehearsal of `story`, if there is one that reads.
pub fn load(story: &Path) -> Option<Rehearsal> {
    serde_json::from_slice(&std::fs::read(path_for(story)).ok()?).ok()
}

/// Saves `r` beside `story`, whole (a temporary file renamed into place).
pub fn save(story: &Path, r: &Rehearsal) -> Result<PathBuf> {
    let path = path_for(story);
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(r).map_err(|e| Error::internal(e.to_string()))?;
    std::fs::write(&tmp, body)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// A rehearsal from what the teller saw.
pub fn rehearsal(story: &Path, at_ms: u64, total_ms: u64, steps: &[StepRun]) -> Rehearsal {
    let steps = steps.iter().map(take).collect();
    Rehearsal { story: story.display().to_string(), at_ms, total_ms, steps }
}

fn take(s: &StepRun) -> Take {
    let lines: Vec<String> = s.lines.iter().map(|l| mask(l)).filter(|l| !l.is_empty()).collect();
    let checks: Vec<String> = s.checks.iter().map(|l| mask(l)).collect();
    let mut all = mask(&s.title);
    for l in lines.iter().chain(&checks) {
        all.push('\n');
        all.push_str(l);
    }
    let sum = ring::digest::digest(&ring::digest::SHA256, all.as_bytes());
    let digest = sum.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    Take { n: s.n, title: s.title.clone(), ms: s.ms, digest, lines, checks, notes: s.notes.clone() }
}

/// Every word holding a digit becomes `#`; runs of one non-alphanumeric character (spaces,
/// table rules) become one.
pub fn mask(line: &str) -> String {
    let wordy = |c: char| c.is_alphanumeric() || "_.:-%/".contains(c);
    let mut masked = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if wordy(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut masked);
            if !masked.ends_with(c) {
                masked.push(c);
            }
        }
    }
    flush(&mut word, &mut masked);
    masked.trim().to_string()
}

fn secs(ms: u64) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

fn diff(now: u64, then: u64) -> String {
    let d = now as f64 / 1000.0 - then as f64 / 1000.0;
    format!("{}{:.2} s", if d >= 0.0 { "+" } else { "−" }, d.abs())
}

/// What changed between `old` and `new`, for the presenter: the whole time, then per step its
/// time, the difference, and whether its title, checks or printed lines changed.
/// `saved` is where it was kept; `None` for a run that failed, which keeps the last one.
pub fn report(old: Option<&Rehearsal>, new: &Rehearsal, story: &Path, saved: Option<&Path>) -> String {
    let mut out = String::new();
    let width = new.steps.iter().map(|s| s.title.chars().count() + 5).max().unwrap_or(10).min(48);
    match old {
        None => {
            let _ = writeln!(out, "\nfirst rehearsal: {} steps, {}", new.steps.len(), secs(new.total_ms));
        }
        Some(o) => {
            let _ = writeln!(
                out,
                "\nrehearsal: {} steps, {} (last time {}, {})",
                new.steps.len(),
                secs(new.total_ms),
                secs(o.total_ms),
                diff(new.total_ms, o.total_ms)
            );
        }
    }
    for s in &new.steps {
        let name: String = format!("{}. {}", s.n, s.title).chars().take(width).collect();
        let before = old.and_then(|o| o.steps.iter().find(|t| t.n == s.n));
        let _ = match before {
            None if old.is_some() => writeln!(out, "  {name:width$}  {:>7}   new step", secs(s.ms)),
            None => writeln!(out, "  {name:width$}  {:>7}", secs(s.ms)),
            Some(b) => {
                let _ = write!(out, "  {name:width$}  {:>7}  {:>8}", secs(s.ms), diff(s.ms, b.ms));
                writeln!(out, "{}", changes(b, s))
            }
        };
    }
    if let Some(o) = old {
        for gone in o.steps.iter().filter(|t| !new.steps.iter().any(|s| s.n == t.n)) {
            let _ = writeln!(out, "  {}. {}: gone since the last rehearsal", gone.n, gone.title);
        }
    }
    let _ = match (saved, old) {
        (Some(saved), _) => write!(out, "saved to {}", saved.display()),
        (None, Some(_)) => write!(
            out,
            "not saved: this run did not pass, so the last rehearsal stays in {}",
            path_for(story).display()
        ),
        (None, None) => write!(out, "not saved: this run did not pass"),
    };
    out
}

/// `   changed: checks, printed lines` and the first line that differs, or nothing.
fn changes(before: &Take, now: &Take) -> String {
    if before.digest == now.digest {
        return String::new();
    }
    let mut what = Vec::new();
    if mask(&before.title) != mask(&now.title) {
        what.push("title");
    }
    if before.checks != now.checks {
        what.push("checks");
    }
    if before.lines != now.lines {
        what.push("printed lines");
    }
    let mut out = format!("   changed: {}", what.join(", "));
    let (was, is) = first_difference(&before.checks, &now.checks)
        .or_else(|| first_difference(&before.lines, &now.lines))
        .unwrap_or_default();
    if !(was.is_empty() && is.is_empty()) {
        out.push_str(&format!("\n      was: {was}\n      now: {is}"));
    }
    out
}

fn first_difference(a: &[String], b: &[String]) -> Option<(String, String)> {
    let i = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    let get = |v: &[String]| v.get(i).cloned().unwrap_or_else(|| "(nothing)".into());
    Some((get(a), get(b)))
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn values_of_one_run_are_masked_words_are_not() {
        assert_eq!(
            mask("order #1 placed in us-east-1 (revision 57)"),
            mask("order #2 placed in eu-west-1 (revision 103)")
        );
        assert_ne!(mask("the shop stays open"), mask("the shop closes"));
        assert_eq!(mask("n1   leader    3"), mask("n2 leader 12"));
    }
}
