//! A dsh node: openraft glue (log store, state machine, network), the Raft log in segment files
//! and the state machine in redb, and the services that answer clients. It serves the wire
//! protocol of `proto` over `net` and must not know about the shell, scripts or how results are
//! shown.

// openraft's storage traits fix `StorageError` (large) as the error type of every storage path.
#![allow(clippy::result_large_err)]

mod ahead;
mod cache;
mod db_file;
mod events;
mod gate;
mod log_meta;
mod log_migrate;
mod log_ops;
mod log_store;
mod log_writer;
mod metrics;
mod network;
mod proposer;
mod record;
mod repair;
mod seconds;
mod segments;
mod server;
mod service;
mod service_systems;
mod snapshot;
mod state_machine;
mod systems;
mod ticker;
mod trace;
mod transfer;
mod types;
mod watchdog;

pub use network::{PeerReply, PeerRequest};
pub use server::{raft_config, run, NodeOptions};
pub use types::TypeConfig;
