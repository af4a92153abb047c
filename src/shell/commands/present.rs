//! Presenting and the shell itself: say, step, note, pause, sleep (each speaking through the
//! context's `Stage`, the one definition stories and plugins use too), help, history, clear,
//! exit. `history` asks the interactive front end on the context (`ctx.front`); `exit` only
//! says so, and whoever reads the lines (the prompt, `-c`, a pipe) stops there.

use crate::error::{Error, Result};
use crate::proto::ProcessAction;
use crate::shell::output::{Output, Style};
use crate::shell::screen;
use crate::shell::spec::{parse_duration, Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use std::io::BufRead;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "say",
            params: &[Param { name: "text", kind: Rest, help: "what to say" }],
            summary: "print a line of narration",
            example: "say Now we crash the leader.",
            run: |ctx, a| {
                Box::pin(async move {
                    ctx.stage.say(a.get("text").unwrap_or(""));
                    Ok(Output::new("say"))
                })
            },
        },
        Spec {
            name: "step",
            params: &[Param { name: "title", kind: Rest, help: "the step's title" }],
            summary: "a numbered heading: the next step of the talk",
            example: "step Crash the leader",
            run: |ctx, a| {
                Box::pin(async move {
                    let n = ctx.stage.step(a.get("title").unwrap_or(""));
                    Ok(Output::new("step").field("step", n).returns(n))
                })
            },
        },
        Spec {
            name: "note",
            params: &[Param { name: "text", kind: Rest, help: "the note" }],
            summary: "a speaker note, shown only with --notes",
            example: "note Mention that the followers keep serving reads.",
            run: |ctx, a| {
                Box::pin(async move {
                    ctx.stage.note(a.get("text").unwrap_or(""));
                    Ok(Output::new("note"))
                })
            },
        },
        Spec {
            name: "pause",
            params: &[Param {
                name: "node",
                kind: Rest,
                help: "a node to freeze with SIGSTOP; anything else is shown while waiting for Enter",
            }],
            summary: "`pause n2` freezes a node (alive but silent); `pause [TEXT]` waits for Enter",
            example: "pause n2",
            run: |ctx, a| Box::pin(pause(ctx, a)),
        },
        Spec {
            name: "sleep",
            params: &[Param { name: "duration", kind: Pos, help: "how long: 500ms, 10s, 2m" }],
            summary: "wait; Ctrl-C cuts it short",
            example: "sleep 2s",
            run: |ctx, a| {
                Box::pin(async move {
                    let d = parse_duration(a.req("duration")?)?.div_f64(ctx.stage.speed);
                    if !ctx.interrupt.sleep(d).await {
                        return Err(interrupted());
                    }
                    Ok(Output::new("sleep").field("ms", d.as_millis() as u64))
                })
            },
        },
        Spec {
            name: "help",
            params: &[Param { name: "command", kind: Rest, help: "a command to explain" }],
            summary: "list the commands, or explain one",
            example: "help put",
            run: |ctx, a| Box::pin(help(ctx, a)),
        },
        Spec {
            name: "history",
            params: &[],
            summary: "the lines typed at the prompt (Ctrl-R searches them)",
            example: "history",
            run: |ctx, _| {
                Box::pin(async move {
                    let front =
                        ctx.front.get().ok_or_else(|| Error::usage("history is kept at the interactive prompt"))?;
                    let lines = front.history();
                    let text = lines.iter().enumerate().map(|(i, l)| format!("{:5}  {l}", i + 1)).collect::<Vec<_>>();
                    Ok(Output::new("history").field("lines", lines.clone()).returns(lines).text(text.join("\n")))
                })
            },
        },
        Spec {
            name: "clear",
            params: &[],
            summary: "clear the screen (Ctrl-L while typing)",
            example: "clear",
            run: |ctx, _| {
                Box::pin(async move {
                    // Straight to the terminal: as text it would be followed by a newline.
                    if ctx.style == Style::Terminal {
                        screen::out("\x1b[H\x1b[2J\x1b[3J");
                    }
                    Ok(Output::new("clear"))
                })
            },
        },
        Spec {
            name: "exit",
            params: &[],
            summary: "leave the prompt (Ctrl-D works too)",
            example: "exit",
            run: |_, _| Box::pin(async { Ok(Output::new("exit")) }),
        },
        Spec {
            name: "quit",
            params: &[],
            summary: "the same as exit",
            example: "quit",
            run: |_, _| Box::pin(async { Ok(Output::new("exit")) }),
        },
    ]
}

fn interrupted() -> Error {
    Error::new(crate::error::ErrorKind::Script, "interrupted")
}

/// `pause n2` is the fault; `pause [TEXT]` waits for Enter where the stage pauses (a person at
/// a terminal), and Ctrl-C there stops what is running.
async fn pause(ctx: &Ctx, a: &Args) -> Result<Output> {
    let what = a.get("node").unwrap_or("");
    if what.starts_with(['n', 'N']) && crate::proto::parse_node(what).is_ok() {
        return super::faults::act(ctx, a, "pause", ProcessAction::Pause, "paused").await;
    }
    screen::mark(&format!("pause: {what}"));
    ctx.stage.pausing(what);
    if ctx.stage.pauses {
        screen::out(&format!("{} ⏎ ", if what.is_empty() { "…" } else { what }));
        let since = std::time::Instant::now();
        // The read cannot be cancelled; on Ctrl-C it is left to finish with the next line.
        let enter = tokio::task::spawn_blocking(|| std::io::stdin().lock().read_line(&mut String::new()));
        tokio::select! {
            _ = enter => {}
            _ = ctx.interrupt.wait() => return Err(interrupted()),
        }
        // The tty echoed the Enter; the recording keeps the wait as a short gap.
        screen::skip(since.elapsed());
        screen::echo("\n");
    }
    Ok(Output::new("pause"))
}

async fn help(_: &Ctx, a: &Args) -> Result<Output> {
    let all = super::all();
    let Some(topic) = a.get("command") else {
        let listed: Vec<&Spec> = all.iter().collect();
        let text = format!("Commands (help COMMAND for details; other input is Rhai):\n{}", listing(&listed));
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        return Ok(Output::new("help").field("commands", names).text(text));
    };
    // A group word (`chat`) lists its commands; a word that is both would show both.
    let group: Vec<&Spec> = all.iter().filter(|s| s.name.split_once(' ').is_some_and(|(g, _)| g == topic)).collect();
    let Some(spec) = all.iter().find(|s| s.name == topic) else {
        if group.is_empty() {
            let mut msg = format!("no command `{topic}`");
            if let Some(s) = crate::shell::line::did_you_mean(topic) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            return Err(Error::usage(msg));
        }
        let names: Vec<&str> = group.iter().map(|s| s.name).collect();
        let text = format!("`{topic}` commands (help COMMAND for details):\n{}", listing(&group));
        return Ok(Output::new("help").field("group", topic).field("commands", names).text(text));
    };
    let mut text = format!("usage: {}\n\n{}\n", spec.usage(), spec.summary);
    if !spec.params.is_empty() {
        text.push('\n');
        for p in spec.params {
            let name = match p.kind {
                Flag(v) => format!("--{} {v}", p.name),
                Switch => format!("--{}", p.name),
                _ => p.name.to_uppercase(),
            };
            text.push_str(&format!("  {name:18} {}\n", p.help));
        }
    }
    text.push_str(&format!("\nexample: {}", spec.example));
    if !group.is_empty() {
        text.push_str(&format!("\n\n`{topic}` commands:\n{}", listing(&group)));
    }
    Ok(Output::new("help").field("command", spec.name).field("usage", spec.usage()).text(text))
}

/// `  name  summary` lines, names aligned.
fn listing(specs: &[&Spec]) -> String {
    let width = specs.iter().map(|s| s.name.len()).max().unwrap_or(0);
    specs.iter().map(|s| format!("  {:width$}  {}", s.name, s.summary)).collect::<Vec<_>>().join("\n")
}
