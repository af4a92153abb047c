//! What rustyline asks of us: completion (commands, subcommands, flags, node ids, recently used
//! keys, file paths; a completed word ends with a space, as in a shell), a grey hint with the
//! rest of the synopsis, the command word highlighted, the prompt drawn from the cluster view
//! the watcher keeps current, and "keep reading" while a Rhai block's brackets are open.

use super::watch::Shown;
use crate::shell::commands;
use crate::shell::spec::{Kind, Spec};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const RECENT_KEYS: usize = 64;

pub struct DshHelper {
    pub nodes: Vec<String>,
    pub recent_keys: Arc<Mutex<VecDeque<String>>>,
    pub color: bool,
    /// What the prompt shows of the cluster; changes while a line is being typed.
    pub shown: Shown,
    files: FilenameCompleter,
}

impl DshHelper {
    pub fn new(nodes: Vec<String>, color: bool, shown: Shown) -> Self {
        DshHelper { nodes, recent_keys: Arc::default(), color, shown, files: FilenameCompleter::new() }
    }

    pub fn remember_key(&self, key: &str) {
        let mut keys = self.recent_keys.lock().unwrap();
        keys.retain(|k| k != key);
        keys.push_front(key.to_string());
        keys.truncate(RECENT_KEYS);
    }
}

/// The command a line starts with, and how many words its name takes.
fn command_of(words: &[&str]) -> Option<&'static Spec> {
    commands::all()
        .iter()
        .filter(|s| {
            let parts: Vec<&str> = s.name.split(' ').collect();
            words.len() >= parts.len() && parts.iter().zip(words).all(|(p, w)| p == w)
        })
        .max_by_key(|s| s.name.len())
}

/// The whole words that start with `prefix`. Each replacement ends with a space, so a word
/// completed alone is followed by one and the next word can be typed at once; with several
/// candidates rustyline inserts only their common prefix, which never includes it.
fn starting_with(options: impl IntoIterator<Item = String>, prefix: &str) -> Vec<Pair> {
    let mut v: Vec<String> = options.into_iter().filter(|o| o.starts_with(prefix)).collect();
    v.sort();
    v.dedup();
    v.into_iter().map(|o| Pair { replacement: format!("{o} "), display: o }).collect()
}

impl Completer for DshHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let partial = &head[start..];
        let words: Vec<&str> = head[..start].split_whitespace().collect();
        // `help TOPIC` completes TOPIC as the start of a command line of its own.
        let (before, topic) = match words.split_first() {
            Some((&"help", rest)) if rest.len() <= 1 => (rest.to_vec(), true),
            _ => (words, false),
        };
        if before.is_empty() {
            let names = commands::all().iter().map(|s| s.name.split(' ').next().unwrap_or(s.name).to_string());
            return Ok((start, starting_with(names, partial)));
        }
        if before.len() == 1 {
            // Second word of a two-word command (`cluster status`).
            let subs: Vec<String> = commands::all()
                .iter()
                .filter_map(|s| s.name.split_once(' ').filter(|(g, _)| *g == before[0]).map(|(_, w)| w.to_string()))
                .collect();
            if !subs.is_empty() {
                return Ok((start, starting_with(subs, partial)));
            }
        }
        if topic {
            return Ok((start, vec![]));
        }
        let Some(spec) = command_of(&before) else { return Ok((start, vec![])) };
        if partial.starts_with('-') {
            return Ok((start, starting_with(spec.flags().map(|p| format!("--{}", p.name)), partial)));
        }
        let prev = before.last().and_then(|w| w.strip_prefix("--"));
        let param = match prev.and_then(|f| spec.flags().find(|p| p.name == f)) {
            Some(flag) if flag.kind != Kind::Switch => flag,
            _ => {
                let typed = before.len() - spec.name.split(' ').count();
                match spec.positionals().nth(typed) {
                    Some(p) => p,
                    None => return Ok((start, vec![])),
                }
            }
        };
        Ok(match (param.name, param.kind) {
            (_, Kind::Flag("NODE")) | ("node", _) => (start, starting_with(self.nodes.clone(), partial)),
            ("key" | "prefix", _) => {
                let keys = self.recent_keys.lock().unwrap().iter().cloned().collect::<Vec<_>>();
                (start, starting_with(keys, partial))
            }
            ("file", _) | (_, Kind::Flag("FILE")) => self.files.complete(line, pos, ctx)?,
            _ => (start, vec![]),
        })
    }
}

impl Hinter for DshHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<String> {
        if pos < line.len() || line.is_empty() {
            return None;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let spec = command_of(&words)?;
        let name_words = spec.name.split(' ').count();
        let typed = words.len() - name_words;
        let rest: Vec<String> = spec
            .params
            .iter()
            .filter(|p| !matches!(p.kind, Kind::Flag(_) | Kind::Switch))
            .skip(typed)
            .map(|p| match p.kind {
                Kind::Pos => p.name.to_uppercase(),
                Kind::OptPos => format!("[{}]", p.name.to_uppercase()),
                _ => format!("{}…", p.name.to_uppercase()),
            })
            .chain(spec.flags().map(|p| match p.kind {
                Kind::Flag(v) => format!("[--{} {v}]", p.name),
                _ => format!("[--{}]", p.name),
            }))
            .collect();
        if rest.is_empty() || (typed > 0 && !line.ends_with(' ')) {
            return None;
        }
        let sep = if line.ends_with(' ') { "" } else { " " };
        Some(format!("{sep}{}", rest.join(" ")))
    }
}

impl Highlighter for DshHelper {
    /// The view as it is now, in the width rustyline measured when reading began (it places
    /// the cursor by that width); `default` is false for prompts of rustyline's own (search).
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, default: bool) -> Cow<'b, str> {
        if !default {
            return Cow::Borrowed(prompt);
        }
        let view = self.shown.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Cow::Owned(view.prompt(Some(prompt.chars().count()), self.color))
    }

    fn highlight<'l>(&self, line: &'l str, _: usize) -> Cow<'l, str> {
        if !self.color {
            return Cow::Borrowed(line);
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match command_of(&words) {
            Some(spec) if line.starts_with(spec.name) => {
                Cow::Owned(format!("\x1b[1;36m{}\x1b[0m{}", spec.name, &line[spec.name.len()..]))
            }
            _ => Cow::Borrowed(line),
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _: &str, _: usize, _: CmdKind) -> bool {
        self.color
    }
}

impl Validator for DshHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        let words: Vec<&str> = input.split_whitespace().collect();
        if command_of(&words).is_some() {
            return Ok(ValidationResult::Valid(None));
        }
        Ok(if open_brackets(input) > 0 { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

/// How many `{ ( [` are still open, ignoring those inside strings and comments.
pub(super) fn open_brackets(text: &str) -> i32 {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '`' | '\'') => quote = Some(c),
            (None, '/') if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            (None, '{' | '(' | '[') => depth += 1,
            (None, '}' | ')' | ']') => depth -= 1,
            _ => {}
        }
    }
    depth
}

impl Helper for DshHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_word_ends_with_a_space() {
        let one = starting_with(["crash".to_string(), "put".to_string()], "cra");
        assert_eq!((one.len(), one[0].replacement.as_str(), one[0].display.as_str()), (1, "crash ", "crash"));
    }

    #[test]
    fn help_topics_complete_like_command_lines() {
        let h = DshHelper::new(vec!["n1".into()], false, Shown::default());
        let history = rustyline::history::DefaultHistory::new();
        let ctx = Context::new(&history);
        let line = "help cha";
        let (_, got) = h.complete(line, line.len(), &ctx).unwrap();
        assert_eq!(got.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(), ["chat "]);
        let line = "help chat s";
        let (_, got) = h.complete(line, line.len(), &ctx).unwrap();
        assert_eq!(got.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(), ["send "]);
    }

    #[test]
    fn brackets_open_across_lines() {
        assert_eq!(open_brackets("fn double(x) {"), 1);
        assert_eq!(open_brackets("fn double(x) {\n x * 2\n}"), 0);
        assert_eq!(open_brackets("let s = \"{\";"), 0);
        assert_eq!(open_brackets("// {\n"), 0);
    }
}
