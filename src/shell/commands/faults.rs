//! Process faults on the local cluster's nodes: crash (SIGKILL), restart, pause (SIGSTOP),
//! resume (SIGCONT). They act on real processes; nodes on other machines need the supervisor.

use crate::error::{Error, Result};
use crate::proto::{node_name, parse_node};
use crate::shell::output::Output;
use crate::shell::spec::{Args, Kind::*, Param, Spec};
use crate::shell::{Ctx, Local};

const NODE: &[Param] = &[Param { name: "node", kind: Pos, help: "the node, e.g. n2" }];

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "crash",
            params: NODE,
            summary: "kill a node with SIGKILL (no goodbye, no flush)",
            example: "crash n1",
            run: |ctx, a| Box::pin(async move { signal(ctx, a, "crash", libc::SIGKILL, "crashed") }),
        },
        Spec {
            name: "restart",
            params: NODE,
            summary: "start a crashed node again on its data",
            example: "restart n1",
            run: |ctx, a| Box::pin(async move { restart(ctx, a) }),
        },
        Spec {
            name: "pause",
            params: NODE,
            summary: "freeze a node with SIGSTOP: alive but silent",
            example: "pause n2",
            run: |ctx, a| Box::pin(async move { signal(ctx, a, "pause", libc::SIGSTOP, "paused") }),
        },
        Spec {
            name: "resume",
            params: NODE,
            summary: "let a paused node run again (SIGCONT)",
            example: "resume n2",
            run: |ctx, a| Box::pin(async move { signal(ctx, a, "resume", libc::SIGCONT, "resumed") }),
        },
    ]
}

fn local<'a>(ctx: &'a Ctx, cmd: &str) -> Result<&'a Local> {
    ctx.local.as_ref().ok_or_else(|| {
        Error::usage(format!("{cmd} acts on node processes of the local cluster; this cluster's nodes run elsewhere"))
    })
}

fn node(a: &Args) -> Result<String> {
    Ok(node_name(parse_node(a.req("node")?)?))
}

fn signal(ctx: &Ctx, a: &Args, cmd: &str, sig: i32, done: &str) -> Result<Output> {
    let id = node(a)?;
    let pid = local(ctx, cmd)?.cluster.signal(&id, sig)?;
    Ok(Output::new(cmd).field("node", id.clone()).field("pid", pid).text(format!("{done} {id} (pid {pid})")))
}

fn restart(ctx: &Ctx, a: &Args) -> Result<Output> {
    let id = node(a)?;
    let l = local(ctx, "restart")?;
    let pid = l.cluster.start_node(&id, l.tied_to_parent)?;
    Ok(Output::new("restart").field("node", id.clone()).field("pid", pid).text(format!("restarted {id} (pid {pid})")))
}
