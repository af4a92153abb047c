//! The shell: the command table and everything that reads it (batch lines, `-c`, and, through
//! `script`, Rhai). It reaches the cluster only through `client`; it must not import `node`.

mod batch;
pub mod cast;
pub mod commands;
mod ctx;
pub mod fit;
mod follow;
mod front;
mod interrupt;
pub mod line;
pub mod output;
pub mod records;
mod scenarios;
pub mod screen;
pub mod spec;
pub mod stage;
mod trace;

pub use batch::{exit_status, run_line, run_lines};
pub use commands::events::{annotate as annotate_event, line as event_line};
pub use ctx::{Ctx, Local};
pub use front::Front;
pub use interrupt::Interrupt;
pub use scenarios::{Listed, NoScenarios, Scenarios, Snapshot};
