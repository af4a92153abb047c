//! The interactive prompt: rustyline with completion, hints and highlighting drawn from the
//! command table, history under DSH_HOME, and Rhai for any line that is not a command. It sits
//! on top of `shell` and `script` and reaches the cluster only through them.

mod editor;
mod session;

pub use session::run_prompt;
