//! Process faults: crash (SIGKILL), restart, pause (SIGSTOP), resume (SIGCONT). They act on real
//! processes: the local cluster's own children, or through a node's supervisor elsewhere.

use crate::error::Result;
use crate::proto::{node_name, parse_node, ProcessAction};
use crate::shell::output::Output;
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::Ctx;

const NODE: &[Param] = &[Param { name: "node", kind: Pos, help: "the node, e.g. n2" }];

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "crash",
            params: NODE,
            summary: "kill a node with SIGKILL (no goodbye, no flush)",
            example: "crash n1",
            run: |ctx, a| Box::pin(act(ctx, a, "crash", ProcessAction::Crash, "crashed")),
        },
        Spec {
            name: "restart",
            params: NODE,
            summary: "start a crashed node again on its data",
            example: "restart n1",
            run: |ctx, a| Box::pin(act(ctx, a, "restart", ProcessAction::Restart, "restarted")),
        },
        Spec {
            name: "resume",
            params: NODE,
            summary: "let a paused node run again (SIGCONT)",
            example: "resume n2",
            run: |ctx, a| Box::pin(act(ctx, a, "resume", ProcessAction::Resume, "resumed")),
        },
    ]
}

pub(super) async fn act(ctx: &Ctx, a: &Args, cmd: &str, action: ProcessAction, done: &str) -> Result<Output> {
    let id = parse_node(a.req("node")?)?;
    let info = ctx.process(id, action).await?;
    let name = node_name(id);
    crate::shell::screen::mark(&format!("fault: {cmd} {name}"));
    let pid = info.pid.map_or(String::new(), |p| format!(" (pid {p})"));
    Ok(Output::new(cmd)
        .field("node", name.clone())
        .field("state", info.state.clone())
        .field("pid", info.pid)
        .text(format!("{done} {name}{pid}")))
}
