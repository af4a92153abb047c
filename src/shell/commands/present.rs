//! Presenting and the shell itself: say, sleep, help, history, exit.

use crate::error::{Error, Result};
use crate::shell::output::Output;
use crate::shell::spec::{parse_duration, Args, Kind::*, Param, Spec};
use crate::shell::Ctx;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "say",
            params: &[Param { name: "text", kind: Rest, help: "what to say" }],
            summary: "print a line of narration",
            example: "say Now we crash the leader.",
            run: |_, a| Box::pin(async move { Ok(Output::new("say").text(a.get("text").unwrap_or("").to_string())) }),
        },
        Spec {
            name: "sleep",
            params: &[Param { name: "duration", kind: Pos, help: "how long: 500ms, 10s, 2m" }],
            summary: "wait; Ctrl-C cuts it short",
            example: "sleep 2s",
            run: |_, a| {
                Box::pin(async move {
                    let d = parse_duration(a.req("duration")?)?;
                    tokio::time::sleep(d).await;
                    Ok(Output::new("sleep").field("ms", d.as_millis() as u64).text(""))
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
            run: |_, _| Box::pin(async { Err(Error::usage("history is kept at the interactive prompt")) }),
        },
        Spec {
            name: "exit",
            params: &[],
            summary: "leave the prompt (Ctrl-D works too)",
            example: "exit",
            run: |_, _| Box::pin(async { Ok(Output::new("exit")) }),
        },
    ]
}

async fn help(_: &Ctx, a: &Args) -> Result<Output> {
    let all = super::all();
    let Some(topic) = a.get("command") else {
        let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let mut text = String::from("Commands (help COMMAND for details; other input is Rhai):\n");
        for s in all {
            text.push_str(&format!("  {:width$}  {}\n", s.name, s.summary));
        }
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        return Ok(Output::new("help").field("commands", names).text(text.trim_end().to_string()));
    };
    let spec = all.iter().find(|s| s.name == topic).ok_or_else(|| {
        let mut msg = format!("no command `{topic}`");
        if let Some(s) = crate::shell::line::did_you_mean(topic) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        }
        Error::usage(msg)
    })?;
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
    Ok(Output::new("help").field("command", spec.name).field("usage", spec.usage()).text(text))
}
