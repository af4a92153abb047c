//! From a line of text to a command: shell-style words (quotes, backslashes), `;`-separated
//! commands, lookup in the command table, and "did you mean" for unknown words.

use super::commands;
use super::spec::Spec;
use crate::error::{Error, Result};

/// Splits on whitespace, honouring '…', "…" and backslash escapes.
pub fn words(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(Error::usage(format!("unclosed {q} quote")));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Splits `put a 1; get a` into commands, leaving quoted `;` alone.
pub fn split_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (_, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, ';') => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Finds the command the words name (longest name first) and returns it with its arguments.
pub fn resolve(words: &[String]) -> Result<(&'static Spec, &[String])> {
    let best = commands::all()
        .iter()
        .filter(|s| {
            let parts: Vec<&str> = s.name.split(' ').collect();
            words.len() >= parts.len() && parts.iter().zip(words).all(|(p, w)| p == w)
        })
        .max_by_key(|s| s.name.len());
    match best {
        Some(spec) => Ok((spec, &words[spec.name.split(' ').count()..])),
        None => {
            let word = words.first().map(String::as_str).unwrap_or("");
            let mut msg = format!("unknown command `{word}`");
            if let Some(s) = did_you_mean(word) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            Err(Error::usage(msg))
        }
    }
}

/// The nearest command name, if one is close enough to be a typo.
pub fn did_you_mean(word: &str) -> Option<&'static str> {
    commands::all()
        .iter()
        .map(|s| s.name.split(' ').next().unwrap_or(s.name))
        .map(|name| (distance(word, name), name))
        .filter(|(d, name)| *d <= 2 && *d < name.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_with_quotes() {
        assert_eq!(words(r#"put k "a b" 'c d' e\ f"#).unwrap(), ["put", "k", "a b", "c d", "e f"]);
        assert_eq!(words("put k ''").unwrap(), ["put", "k", ""]);
        assert!(words("put 'k").is_err());
    }

    #[test]
    fn splits_commands_outside_quotes() {
        assert_eq!(split_commands("put a 1; get a ;; "), ["put a 1", "get a"]);
        assert_eq!(split_commands("put a 'x;y'; get a"), ["put a 'x;y'", "get a"]);
    }

    #[test]
    fn resolves_and_suggests() {
        let w = words("put a 1").unwrap();
        let (spec, rest) = resolve(&w).unwrap();
        assert_eq!((spec.name, rest.len()), ("put", 2));
        let e = resolve(&words("pt a 1").unwrap()).err().unwrap();
        assert!(e.message.contains("did you mean `put`"), "{}", e.message);
        assert!(resolve(&words("bogus").unwrap()).err().unwrap().message.contains("bogus"));
    }
}
