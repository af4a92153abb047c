//! The shape of a command: its name, parameters, help and executor. Every front end (prompt,
//! pipes, `-c`, Rhai, `help`, completion) reads the same `Spec`, so a command is defined once.

use super::output::Output;
use super::Ctx;
use crate::error::{Error, Result};
use crate::proto::{parse_node, NodeId};
use futures::future::BoxFuture;
use std::time::Duration;

pub type RunFn = for<'a> fn(&'a Ctx, &'a Args) -> BoxFuture<'a, Result<Output>>;

pub struct Spec {
    /// One or more words: `put`, `cluster status`.
    pub name: &'static str,
    pub params: &'static [Param],
    pub summary: &'static str,
    pub example: &'static str,
    pub run: RunFn,
}

pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A required positional argument.
    Pos,
    /// An optional positional argument.
    OptPos,
    /// The rest of the line, joined by spaces (may be empty).
    Rest,
    /// `--name VALUE`, with the value's placeholder.
    Flag(&'static str),
    /// `--name`, on or off.
    Switch,
}

impl Spec {
    pub fn positionals(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| matches!(p.kind, Kind::Pos | Kind::OptPos | Kind::Rest))
    }

    pub fn flags(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| matches!(p.kind, Kind::Flag(_) | Kind::Switch))
    }

    /// `KEY VALUE [--via NODE]`
    pub fn synopsis(&self) -> String {
        let mut parts = Vec::new();
        for p in self.params {
            let upper = p.name.to_uppercase();
            parts.push(match p.kind {
                Kind::Pos => upper,
                Kind::OptPos => format!("[{upper}]"),
                Kind::Rest => format!("{upper}…"),
                Kind::Flag(v) => format!("[--{} {v}]", p.name),
                Kind::Switch => format!("[--{}]", p.name),
            });
        }
        parts.join(" ")
    }

    pub fn usage(&self) -> String {
        format!("{} {}", self.name, self.synopsis()).trim_end().to_string()
    }

    /// Binds the words after the command name to its parameters.
    pub fn parse(&self, words: &[String]) -> Result<Args> {
        let mut args = Args::default();
        let mut positional = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if let Some(flag) = w.strip_prefix("--").filter(|f| !f.is_empty()) {
                let (name, inline) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (flag, None),
                };
                let param = self.flags().find(|p| p.name == name).ok_or_else(|| {
                    Error::usage(format!("{}: unknown flag --{name}\nusage: {}", self.name, self.usage()))
                })?;
                let value = match (param.kind, inline) {
                    (Kind::Switch, None) => "true".to_string(),
                    (Kind::Switch, Some(v)) => v,
                    (_, Some(v)) => v,
                    (_, None) => {
                        i += 1;
                        words.get(i).cloned().ok_or_else(|| {
                            Error::usage(format!("{}: --{name} needs a value\nusage: {}", self.name, self.usage()))
                        })?
                    }
                };
                args.values.push((param.name, value));
            } else {
                positional.push(w.clone());
            }
            i += 1;
        }
        let mut rest = positional.into_iter();
        for p in self.positionals() {
            match p.kind {
                Kind::Rest => {
                    let all: Vec<String> = rest.by_ref().collect();
                    if !all.is_empty() {
                        args.values.push((p.name, all.join(" ")));
                    }
                }
                _ => match rest.next() {
                    Some(v) => args.values.push((p.name, v)),
                    None if p.kind == Kind::Pos => {
                        return Err(Error::usage(format!(
                            "{}: missing {}\nusage: {}",
                            self.name,
                            p.name.to_uppercase(),
                            self.usage()
                        )))
                    }
                    None => {}
                },
            }
        }
        if let Some(extra) = rest.next() {
            return Err(Error::usage(format!("{}: unexpected `{extra}`\nusage: {}", self.name, self.usage())));
        }
        Ok(args)
    }
}

/// Parsed arguments, by parameter name.
#[derive(Debug, Default, Clone)]
pub struct Args {
    values: Vec<(&'static str, String)>,
}

impl Args {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// A parameter the parser already guaranteed is present.
    pub fn req(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| Error::usage(format!("missing {}", name.to_uppercase())))
    }

    pub fn switch(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "yes" | "1" | "on"))
    }

    pub fn node(&self, name: &str) -> Result<Option<NodeId>> {
        self.get(name).map(parse_node).transpose()
    }

    pub fn u64_or(&self, name: &str, default: u64) -> Result<u64> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => {
                v.replace('_', "").parse().map_err(|_| Error::usage(format!("--{name}: `{v}` is not a whole number")))
            }
        }
    }

    pub fn duration_or(&self, name: &str, default: Duration) -> Result<Duration> {
        self.get(name).map_or(Ok(default), parse_duration)
    }
}

/// `500ms`, `10s`, `2m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| Error::usage(format!("`{s}` is not a duration (try 500ms, 10s, 2m)")))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "us" | "µs" => n / 1e6,
        _ => return Err(Error::usage(format!("`{s}`: unknown unit `{unit}` (use ms, s, m)"))),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        const P: &[Param] = &[
            Param { name: "key", kind: Kind::Pos, help: "" },
            Param { name: "value", kind: Kind::OptPos, help: "" },
            Param { name: "via", kind: Kind::Flag("NODE"), help: "" },
            Param { name: "stale", kind: Kind::Switch, help: "" },
        ];
        Spec {
            name: "t",
            params: P,
            summary: "",
            example: "",
            run: |_, _| Box::pin(async { Err(Error::internal("unused")) }),
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn binds_positionals_flags_and_switches() {
        let a = spec().parse(&words("k v --via n2 --stale")).unwrap();
        assert_eq!(a.get("key"), Some("k"));
        assert_eq!(a.get("value"), Some("v"));
        assert_eq!(a.node("via").unwrap(), Some(2));
        assert!(a.switch("stale"));
        let a = spec().parse(&words("--via=n3 k")).unwrap();
        assert_eq!(a.get("value"), None);
        assert_eq!(a.node("via").unwrap(), Some(3));
    }

    #[test]
    fn refuses_bad_input() {
        assert!(spec().parse(&words("")).is_err());
        assert!(spec().parse(&words("k v extra")).is_err());
        assert!(spec().parse(&words("k --bogus")).is_err());
        assert!(spec().parse(&words("k --via")).is_err());
        assert_eq!(spec().synopsis(), "KEY [VALUE] [--via NODE] [--stale]");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 days").is_err());
    }
}
