//! `web`: the audience's page (SPEC §7), served from this dsh process; and `report`: a JSON load
//! report turned into one self-contained HTML file. The server, the page and the report live
//! in `crate::live::web`; this file reads flags, says where the page is, decides foreground
//! or background, and gives the page's controls the command table (so a button runs exactly
//! what the presenter would type).

use crate::error::{Context, Error, Result};
use crate::live::web::{self as page, Controls, WebServer, DEFAULT_LISTEN};
use crate::shell::output::Output;
use crate::shell::spec::{parse_duration, Args, Kind::*, Param, Spec};
use crate::shell::{run_line, Ctx};
use futures::future::BoxFuture;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "web",
            params: &[
                Param { name: "switch", kind: OptPos, help: "`stop` ends the page served in the background" },
                Param {
                    name: "listen",
                    kind: Flag("ADDR"),
                    help: "where to serve (default 127.0.0.1:7342: loopback unless told otherwise)",
                },
                Param {
                    name: "controls",
                    kind: Switch,
                    help: "buttons to crash, restart, pause, resume, isolate, heal, start and stop scenarios; \
                           they need the token printed at start",
                },
                Param { name: "open", kind: Switch, help: "open the page in this machine's browser" },
                Param {
                    name: "background",
                    kind: Switch,
                    help: "return at once and keep serving (the default at the prompt; for stories)",
                },
                Param { name: "for", kind: Flag("D"), help: "serve this long, then stop" },
            ],
            summary: "serve the live page for an audience: nodes, throughput and latency with faults shaded, events",
            example: "web --controls",
            run: |ctx, a| Box::pin(web(ctx, a)),
        },
        Spec {
            name: "report",
            params: &[
                Param { name: "file", kind: Pos, help: "a JSON report written by `load … --report FILE.json`" },
                Param { name: "html", kind: Flag("OUT"), help: "write it as one HTML file that opens offline" },
            ],
            summary: "turn a load report into a self-contained HTML page: summary, charts, errors, who served",
            example: "report run.json --html run.html",
            run: |ctx, a| Box::pin(report(ctx, a)),
        },
    ]
}

/// The page's controls: every click is a line of the command table, run on a background
/// context of this shell (same cluster, processes and scenarios; nothing printed).
struct ShellControls {
    ctx: Arc<Ctx>,
}

impl Controls for ShellControls {
    fn run(&self, line: String) -> BoxFuture<'static, Result<String>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let mut out = run_line(&ctx, &line).await?;
            match out.failure.take() {
                Some(e) => Err(e),
                None => Ok(out.text),
            }
        })
    }

    fn scenarios(&self) -> Vec<String> {
        self.ctx.scenarios.discover().into_iter().map(|s| s.name).collect()
    }
}

fn slot(ctx: &Ctx) -> std::sync::MutexGuard<'_, Option<Arc<WebServer>>> {
    ctx.web.lock().unwrap_or_else(|e| e.into_inner())
}

async fn web(ctx: &Ctx, a: &Args) -> Result<Output> {
    if let Some(s) = a.get("switch") {
        if s != "stop" {
            return Err(Error::usage(format!("web: `{s}`: say `web stop`, or `web` to start")));
        }
        let running = slot(ctx).take();
        return Ok(match running {
            Some(server) => {
                server.stop().await;
                Output::new("web").field("stopped", true).text(format!("stopped serving {}", server.url()))
            }
            None => Output::new("web").field("stopped", false).text("no page is being served"),
        });
    }
    if let Some(s) = slot(ctx).as_ref() {
        return Err(Error::usage(format!("web: already serving {} (`web stop` first)", s.url())));
    }
    let listen = a.get("listen").unwrap_or(DEFAULT_LISTEN);
    let controls: Option<Arc<dyn Controls>> = match a.switch("controls") {
        true => Some(Arc::new(ShellControls { ctx: Arc::new(ctx.background()) })),
        false => None,
    };
    let server = Arc::new(WebServer::start(ctx.model(), controls, listen).await?);
    let mut lines = vec![format!("serving the live page at {}", server.url())];
    if !server.addr().ip().is_loopback() {
        lines.push(format!("note: {} is beyond loopback: whoever reaches it sees the cluster", server.addr()));
    }
    if let Some(url) = server.controls_url() {
        lines.push(format!("controls (keep this link to yourself): {url}"));
        lines.push(format!("token for POST /api/control (header x-dsh-token): {}", server.token()));
    }
    if a.switch("open") {
        open_browser(server.controls_url().unwrap_or_else(|| server.url()));
    }
    let mut out = Output::new("web").field("url", server.url()).field("controls", server.has_controls());
    if server.has_controls() {
        out = out.field("token", server.token());
    }
    let background = a.switch("background") || ctx.front.get().is_some();
    if background {
        *slot(ctx) = Some(server);
        return Ok(out.text(lines.join("\n")));
    }
    // In the foreground the address must be out before serving starts, not after it ends.
    let text = lines.join("\n");
    if ctx.live {
        println!("{text}\n(Ctrl-C to stop)");
        let _ = std::io::stdout().flush();
    } else {
        eprintln!("{text}");
    }
    let until = a.get("for").map(parse_duration).transpose()?;
    let interrupted = async {
        tokio::select! {
            _ = ctx.interrupt.wait() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    match until {
        Some(d) => drop(tokio::time::timeout(d, interrupted).await),
        None => interrupted.await,
    }
    server.stop().await;
    Ok(out.text(format!("stopped serving {}", server.url())))
}

/// Best effort: a presenter without a desktop browser still has the printed link.
fn open_browser(url: String) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let child = std::process::Command::new(opener)
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        // Reaped on its own thread so no zombie is left behind.
        std::thread::spawn(move || child.wait());
    }
}

async fn report(_ctx: &Ctx, a: &Args) -> Result<Output> {
    let file = a.req("file")?;
    let out = a.get("html").ok_or_else(|| Error::usage("report: say where with --html OUT.html"))?;
    let text = std::fs::read_to_string(file).context(format!("read {file}"))?;
    let report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::usage(format!("{file} is not a JSON report: {e}")))?;
    if report.get("summary").is_none() || report.get("series").is_none() {
        return Err(Error::usage(format!("{file}: not a `load --report` file (no summary or series)")));
    }
    page::write_report(Path::new(out), &report)?;
    Ok(Output::new("report").field("html", out).text(format!("wrote {out}")))
}
