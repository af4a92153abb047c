//! The interactive prompt: rustyline with completion, hints and highlighting drawn from the
//! command table, history under DSH_HOME, a prompt that follows the cluster, type-ahead, and
//! Rhai for any line that is not a command. It sits on top of `shell` and `script` and reaches
//! the cluster only through them and `client`.

mod editor;
mod front;
mod session;
mod typeahead;
mod watch;

pub use session::run_prompt;
