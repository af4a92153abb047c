//! The terminal dashboard (SPEC §7, `dashboard` / `top`): a full-screen ratatui view of the
//! live model — node boxes, throughput and latency with sparklines, errors, events, scenarios,
//! a running `load`, and a timeline of faults and elections. `draw` and the panel modules are
//! pure functions of a `View` and a frame; `show` owns the terminal and the redraw loop. It
//! must not poll the cluster (the model does) nor import `shell`.

mod charts;
mod draw;
mod lists;
mod look;
mod nodes;
mod screen;
mod show;
mod text;
mod timeline;

#[cfg(test)]
mod tests;

pub use draw::{draw, MIN_SIZE};
pub use look::Look;
pub use show::{show, Ended, Options};
