//! `--follow` for tables (`status --follow`, `scenario status --follow`): the same table drawn
//! again at the live model's rate until Ctrl-C (the context's `Interrupt`) or `--for`. On a
//! terminal each drawing replaces the last in place (cursor up, clear below); anywhere else a
//! plain copy of the table is printed once a second, separated by a blank line, so a log or
//! a pipe gets whole tables. It owns the redraw loop only; the commands say what a table holds.

use super::output::Style;
use super::spec::{parse_duration, Args};
use super::Ctx;
use crate::error::{Error, Result};
use crate::live::View;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Off a terminal, one table per this long.
const PLAIN_EVERY: Duration = Duration::from_secs(1);

/// Draws `draw(view)` for every new view until Ctrl-C or `--for`; returns the last view drawn.
pub async fn follow(ctx: &Ctx, a: &Args, cmd: &str, mut draw: impl FnMut(&View) -> String) -> Result<Arc<View>> {
    if !ctx.live {
        return Err(Error::usage(format!(
            "{cmd} --follow draws a table again and again; with --json or -q run `{cmd}` once instead"
        )));
    }
    let until = a.get("for").map(parse_duration).transpose()?.map(|d| Instant::now() + d);
    let in_place = ctx.style == Style::Terminal && std::io::stdout().is_terminal();
    let model = ctx.model();
    let mut views = model.subscribe();
    let stop = ctx.interrupt.token();
    let (mut drawn_lines, mut last_plain) = (0usize, None::<Instant>);
    let mut last = model.snapshot();
    loop {
        let deadline = async {
            match until {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = deadline => break,
            changed = views.changed() => if changed.is_err() { break },
        }
        let view = views.borrow_and_update().clone();
        if view.at_ms == 0 {
            continue;
        }
        let text = draw(&view);
        let mut out = std::io::stdout().lock();
        if in_place {
            // Up to the first line of the last drawing, and clear from there down.
            if drawn_lines > 0 {
                let _ = write!(out, "\x1b[{drawn_lines}F\x1b[J");
            }
            let _ = writeln!(out, "{text}");
            drawn_lines = text.lines().count();
        } else if last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            if last_plain.is_some() {
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "{text}");
            last_plain = Some(Instant::now());
        }
        let _ = out.flush();
        last = view;
    }
    Ok(last)
}

/// The line over a followed table: who leads, how fresh the picture is.
pub fn heading(view: &View) -> String {
    let leader = view.leader.as_deref().unwrap_or("no leader");
    format!(
        "{}  {leader}, term {}  ·  {:.0} refreshes/s  ·  Ctrl-C stops",
        super::output::clock(view.at_ms),
        view.term,
        view.refresh_hz
    )
}
