//! Scenario plugins (SPEC §4): one `.rhai` file is one scenario. `catalog` finds and describes
//! them, `engine` gives each its own Rhai engine with the dsh API and a few helpers, `runner`
//! runs them in the foreground or on background threads and keeps their live counters.

mod catalog;
mod engine;
mod runner;

pub use catalog::{discover, find, plugin_dirs, Plugin};
pub use runner::Scenarios;
