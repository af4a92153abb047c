//! `events`: what the nodes recorded (elections, leader changes, snapshots, catch-up, recovery,
//! faults, damage and repair), plus nodes we saw stop and start answering. `events on|off`
//! asks the interactive front end (`ctx.front`) to print them live above the line being typed.

use crate::client::{recent_events, EventFeed};
use crate::error::{Error, Result};
use crate::proto::{node_name, Event};
use crate::shell::output::{clock, Output};
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;
use serde_json::{json, Value};

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "events",
        params: &[
            Param {
                name: "switch",
                kind: OptPos,
                help: "at the prompt: `on` prints events live above the line, `off` stops",
            },
            Param { name: "follow", kind: Switch, help: "keep printing new events (until Ctrl-C, or for --for)" },
            Param { name: "for", kind: Flag("D"), help: "with --follow: stop after this long" },
            Param {
                name: "last",
                kind: Flag("N"),
                help: "how many past events to show (default 20; with --follow, none unless given)",
            },
        ],
        summary: "elections, leader changes, crashes, restarts, catch-up, snapshots, faults, with times",
        example: "events --follow --for 10s",
        run: |ctx, a| Box::pin(events(ctx, a)),
    }]
}

/// `14:03:07.215  n2  election   won the election: leader of term 4`
pub fn line(e: &Event) -> String {
    format!("{}  {:<3} {:<10} {}", clock(e.at_ms), node_name(e.node), e.kind, e.text)
}

/// Says what a node that stopped or started answering is doing, when this machine or the
/// node's supervisor can tell: paused, crashed, resumed.
pub async fn annotate(ctx: &Ctx, mut e: Event) -> Event {
    if e.kind != "down" && e.kind != "up" {
        return e;
    }
    if let Some(p) = ctx.process_state(e.node).await {
        match (e.kind.as_str(), p.state.as_str()) {
            ("down", "paused") => (e.kind, e.text) = ("paused".into(), "paused (SIGSTOP): alive but silent".into()),
            ("down", "down") => (e.kind, e.text) = ("crashed".into(), "process gone: stopped answering".into()),
            ("up", "up") if !e.text.starts_with("restarted") => e.text = "resumed: answers again".into(),
            _ => {}
        }
    }
    e
}

fn to_json(e: &Event) -> Value {
    json!({"at_ms": e.at_ms, "node": node_name(e.node), "kind": e.kind, "text": e.text})
}

async fn events(ctx: &Ctx, a: &Args) -> Result<Output> {
    if let Some(s) = a.get("switch") {
        let on = match s {
            "on" => true,
            "off" => false,
            _ => return Err(Error::usage(format!("events: `{s}`: say `on` or `off`"))),
        };
        let Some(front) = ctx.front.get() else {
            return Err(Error::usage(format!("`events {s}` works at the prompt; elsewhere use `events --follow`")));
        };
        let said = front.live_events(ctx, on)?;
        return Ok(Output::new("events").field("live", on).text(said));
    }
    let follow = a.switch("follow");
    let last = a.u64_or("last", if follow { 0 } else { 20 })? as usize;
    let past = if last > 0 { recent_events(&ctx.client, last).await } else { vec![] };
    if !follow {
        let text = past.iter().map(line).collect::<Vec<_>>().join("\n");
        let list: Vec<Value> = past.iter().map(to_json).collect();
        return Ok(Output::new("events").field("events", list.clone()).text(text).returns(list));
    }
    let until = a.get("for").map(crate::shell::spec::parse_duration).transpose()?;
    let mut seen: Vec<Event> = Vec::new();
    let mut feed = EventFeed::start(ctx.client.clone(), false);
    if ctx.live {
        for e in &past {
            crate::shell::screen::line(&line(e));
        }
    }
    let follow = async {
        while let Some(e) = feed.next().await {
            let e = annotate(ctx, e).await;
            if ctx.live {
                crate::shell::screen::line(&line(&e));
            }
            seen.push(e);
        }
    };
    match until {
        Some(d) => drop(tokio::time::timeout(d, follow).await),
        None => follow.await,
    }
    let list: Vec<Value> = seen.iter().map(to_json).collect();
    let text = if ctx.live { String::new() } else { seen.iter().map(line).collect::<Vec<_>>().join("\n") };
    Ok(Output::new("events").field("events", list.clone()).text(text).returns(list))
}
