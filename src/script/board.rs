//! The running story's state for the presenter's second screen (`dsh notes`): which story, the
//! current step, its notes, what comes next, when each step started, and the last rehearsal's
//! time per step. The story writes it to `story.json` under `DSH_HOME` whole (a temporary file
//! renamed into place), so a reader never sees half of it; readers watch the directory. It also
//! holds the plan a story is expected to follow: the last rehearsal's steps, or else the
//! `step("…")` and `note("…")` calls written in the source. It owns the file's shape; it
//! must not print.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file a story publishes, under `home`.
pub fn board_path(home: &Path) -> PathBuf {
    home.join("story.json")
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Board {
    /// The story's file, as it was named.
    pub story: String,
    pub pid: u32,
    /// Wall clock, milliseconds since the epoch.
    pub started_ms: u64,
    /// `running`, `finished` or `failed`.
    pub state: String,
    /// The current step (0 before the first).
    pub step: u64,
    pub title: String,
    pub step_started_ms: u64,
    /// The current step's notes: those said so far, then those the plan expects.
    pub notes: Vec<String>,
    /// The next step's title, when the plan knows it.
    pub next: Option<String>,
    /// The text of the `pause` the story stopped at, until it goes on.
    pub pause: Option<String>,
    /// Every step done or expected, in order.
    pub steps: Vec<BoardStep>,
    /// When the whole story ended, how long it took.
    pub total_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BoardStep {
    pub n: u64,
    pub title: String,
    /// How long it took, once it is over.
    pub ms: Option<u64>,
    /// How long it took at the last rehearsal.
    pub rehearsed_ms: Option<u64>,
}

impl Board {
    /// Writes the board whole: a reader sees the old one or the new one.
    pub fn publish(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default())?;
        std::fs::rename(&tmp, path)
    }

    /// The board at `path`, if a story published one.
    pub fn read(path: &Path) -> Option<Board> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

/// A step the story is expected to take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planned {
    pub title: String,
    pub notes: Vec<String>,
    pub rehearsed_ms: Option<u64>,
}

/// The `step("…")` and `note("…")` calls of `source` in the order written, each note under the
/// step before it. Only literal titles are known here; a template keeps its `${…}`.
pub fn scan_plan(source: &str) -> Vec<Planned> {
    let mut plan: Vec<Planned> = Vec::new();
    let mut at = 0;
    while at < source.len() {
        let here = &source[at..];
        if here.starts_with("//") {
            at += here.find('\n').unwrap_or(here.len());
            continue;
        }
        let word_starts = source[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let call = ["step(", "note("].into_iter().find(|c| here.starts_with(c)).filter(|_| word_starts);
        let Some(call) = call else {
            at += here.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let args = here[call.len()..].trim_start();
        at = source.len() - args.len();
        if let Some((text, used)) = literal(args) {
            at += used;
            match plan.last_mut() {
                _ if call == "step(" => plan.push(Planned { title: text, ..Planned::default() }),
                Some(last) => last.notes.push(text),
                None => {}
            }
        }
    }
    plan
}

/// A string literal at the start of `s` (`"…"` or a `` `…` `` template): its text and the bytes
/// it took.
fn literal(s: &str) -> Option<(String, usize)> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '`')?;
    let mut text = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    text.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
            }
            c if c == quote => return Some((text, i + c.len_utf8())),
            c => text.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_their_notes_in_source_order() {
        let src = "// step(\"not this\")\nstep(\"One\");\nsay(\"x\");\nnote(\"first \\\"n\\\"\");\nlet lost = 1;\nstep(`${lost} goes dark`);\nnote(`two`);\nfootstep(\"no\");\n";
        let plan = scan_plan(src);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].title, "One");
        assert_eq!(plan[0].notes, vec!["first \"n\"".to_string()]);
        assert_eq!(plan[1].title, "${lost} goes dark");
        assert_eq!(plan[1].notes, vec!["two".to_string()]);
    }
}
