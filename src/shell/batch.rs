//! Non-interactive use: `-c 'a; b'` and lines piped on stdin. One command per line, `#`
//! comments and blank lines skipped, no prompt, plain output; the first failure stops the run
//! unless `keep_going`.

use super::line::{resolve, split_commands, words};
use super::output::{error_json, Output};
use super::Ctx;
use crate::error::{Error, ErrorKind, Result};

/// Runs one command line and returns its output.
pub async fn run_line(ctx: &Ctx, line: &str) -> Result<Output> {
    let words = words(line)?;
    let (spec, rest) = resolve(&words)?;
    let args = spec.parse(rest)?;
    (spec.run)(ctx, &args).await
}

/// Runs each line, printing results; returns the exit status (SPEC §2).
pub async fn run_lines(ctx: &Ctx, lines: impl IntoIterator<Item = String>, json: bool, keep_going: bool) -> i32 {
    let mut status = 0;
    for raw in lines {
        for line in split_commands(&raw) {
            if line.starts_with('#') {
                continue;
            }
            let outcome = run_line(ctx, &line).await;
            // Results that come with a failure are shown, then the failure counts like an error.
            let outcome = match outcome {
                Ok(mut out) if out.failure.is_some() => {
                    if json {
                        println!("{}", out.to_json());
                    } else if !out.text.is_empty() {
                        super::screen::line(&out.text);
                    }
                    let e = out.failure.take().expect("checked");
                    if !json {
                        report(&line, &e, false);
                    }
                    Err((e, true))
                }
                Ok(out) => Ok(out),
                Err(e) => Err((e, false)),
            };
            match outcome {
                Ok(out) if out.cmd == "exit" => return status,
                Ok(out) if json => println!("{}", out.to_json()),
                Ok(out) if out.text.is_empty() => {}
                Ok(out) => super::screen::line(&out.text),
                Err((e, shown)) => {
                    if !shown {
                        report(&line, &e, json);
                    }
                    if status == 0 {
                        status = exit_status(&e);
                    }
                    if !keep_going {
                        return status;
                    }
                }
            }
        }
    }
    status
}

fn report(line: &str, e: &Error, json: bool) {
    let cmd = words(line).ok().and_then(|w| resolve(&w).ok().map(|(s, _)| s.name)).unwrap_or("");
    if json {
        println!("{}", error_json(cmd, e));
    } else {
        eprintln!("error: {}: {}", e.kind.as_str(), e.message);
    }
}

/// A failed line is a failed command (1), a usage error (2: an unknown command, a bad flag), or
/// a cluster that could not be reached at all (3).
pub fn exit_status(e: &Error) -> i32 {
    match e.kind {
        ErrorKind::Usage => 2,
        ErrorKind::Unreachable => 3,
        _ => 1,
    }
}
