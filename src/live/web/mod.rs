//! `dsh web`: the audience's page (SPEC §7) and the self-contained HTML reports. An axum server
//! draws the live model for a browser: the page and its assets (uPlot, vendored from npm and
//! embedded with `include_str!`, so nothing loads from elsewhere), the model as JSON
//! (`/api/state`), server-sent events that push every new view (`/events`), and, when the
//! presenter asks for them, controls that run the shell's own commands through [`Controls`].
//! It must not import `shell`: the shell implements `Controls`.

mod assets;
mod control;
mod report;
mod server;

pub use control::{Action, Controls};
pub use report::{html_report, with_timeline, write_report};
pub use server::{WebServer, DEFAULT_LISTEN};
