//! Node processes: the local cluster (processes of this same binary on loopback, their
//! certificates and data under `DSH_HOME`, started on first use and shared by every dsh on the
//! machine, or ephemeral for one process), and the supervisor a node runs under on other
//! machines. It manages processes and files only; it talks to nodes through `client` like
//! everyone else.

mod local;
mod process;
mod supervisor;

pub use local::{ensure_running, home_dir, wait_ready, Ephemeral, HomeLock, LocalCluster, ProcessState};
pub use process::{is_alive, NodeProcess};
pub use supervisor::{supervise, SupervisorOptions};
