//! The command table: every command dsh knows, defined once.

mod cache;
mod chat;
mod cluster;
mod entropy;
pub mod events;
mod faults;
mod keys;
mod load;
mod locks;
mod metrics;
mod network;
mod present;
mod queues;
mod scenario;
mod table;

pub use locks::default_owner;
pub use table::all;
