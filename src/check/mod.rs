//! Checking like Jepsen (SPEC §8): recorded histories of concurrent operations, checked for
//! linearizability (keys) or for each system's property (chat, locks, queues), and the
//! nemesis that injects faults on a schedule drawn from a seed. It drives the cluster only
//! through `client` (and, for process faults, the `Hands` the shell lends it); it must not
//! import `shell` or print anything.

pub mod history;
pub mod kv;
pub mod linear;
pub mod nemesis;
pub mod progress;
pub mod report;
pub mod run_systems;
pub mod schedule;
pub mod systems;

pub use kv::{run_kv, KvOptions, KvRun};
pub use nemesis::{Hands, Injected, Nemesis, Plan};
pub use progress::{Checks, Progress, Tally, Verdict};
pub use run_systems::{run_chat, run_locks, run_queue, SystemOptions, SystemRun};
