//! `dashboard` (alias `top`): the live model full-screen (SPEC §7) until `q`, Esc, Ctrl-C or
//! `--for` runs out. This side checks for a terminal, starts the model, and holds the front
//! end's own printing (live `events on`) while the dashboard owns the screen; drawing and the
//! terminal belong to `live::dashboard`, and this file must not draw.

use crate::error::{Error, Result};
use crate::live::dashboard::{self, Ended, Look, Options};
use crate::shell::output::Output;
use crate::shell::spec::{parse_duration, Args, Kind::*, Param, Spec};
use crate::shell::{Ctx, Front};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

const PARAMS: &[Param] =
    &[Param { name: "for", kind: Flag("D"), help: "leave after this long (otherwise q, Esc or Ctrl-C leaves)" }];

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "dashboard",
            params: PARAMS,
            summary: "the cluster live, full screen: nodes, throughput, latency, errors, events, scenarios, load, \
                      timeline (q leaves)",
            example: "dashboard --for 15s",
            run: |ctx, a| Box::pin(dashboard(ctx, a)),
        },
        Spec {
            name: "top",
            params: PARAMS,
            summary: "the same as dashboard",
            example: "top",
            run: |ctx, a| Box::pin(dashboard(ctx, a)),
        },
    ]
}

/// Holds the front end's printing for as long as it lives, so no early return forgets to let
/// it print again.
struct Held(Arc<dyn Front>);

impl Held {
    fn new(front: Arc<dyn Front>) -> Held {
        front.hold(true);
        Held(front)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.hold(false);
    }
}

async fn dashboard(ctx: &Ctx, a: &Args) -> Result<Output> {
    let duration = a.get("for").map(parse_duration).transpose()?.map(|d| d.div_f64(ctx.stage.speed));
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "dashboard needs a terminal (stdin and stdout here are not one); try `status` or `events --follow`",
        ));
    }
    let color = std::env::var_os("NO_COLOR").is_none() && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let views = ctx.model().subscribe();
    let held = ctx.front.get().cloned().map(Held::new);
    let started = Instant::now();
    let ended = dashboard::show(views, Options { duration, look: Look { color } }, ctx.interrupt.token()).await?;
    drop(held);
    // Ctrl-C is a key while the terminal is raw: pass it on as the one interrupt, so a story
    // showing the dashboard stops as it would on Ctrl-C anywhere else.
    if ended == Ended::Interrupted {
        ctx.interrupt.fire();
    }
    let ms = started.elapsed().as_millis() as u64;
    Ok(Output::new("dashboard").field("ended", ended.as_str()).field("ms", ms))
}
