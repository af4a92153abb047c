//! The modes of the `dsh` binary as library calls, so that `main.rs` only parses arguments:
//! a session on a cluster (the prompt, pipes, `-c`, `dsh COMMAND`, `dsh run`), the local
//! cluster's lifecycle (`cluster up|down|status|reset`), and serving a node or a supervisor
//! until a signal. It is the top layer: it wires `cluster`, `client`, `shell`, `plugins`,
//! `script` and `prompt` together, and nothing imports it.

mod lifecycle;
mod notes;
mod serve;
mod session;

pub use lifecycle::{cluster_down, cluster_reset, cluster_status, cluster_up};
pub use notes::notes;
pub use serve::until_signal;
pub use session::{lines, prompt, runtime, story, with_cluster, Session};
