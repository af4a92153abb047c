//! Rhai: every command of the table as a function that returns data, the presenter's helpers
//! (`say`, `step`, `check`, …) and `dsh run` for stories. Rhai is synchronous, so scripts run on
//! their own thread and reach the async client by blocking on the runtime's handle from there —
//! never from a tokio worker. Sees the cluster only through the shell's `Ctx`.

pub mod board;
mod convert;
mod engine;
mod keys;
mod present;
pub mod rehearsal;
mod story;
mod table;
pub mod teller;
mod view;

pub use convert::{to_dynamic, to_json};
pub use engine::build_engine;
pub use present::register as register_helpers;
pub use story::{prompt_engine, run_story, StoryOptions};
