//! The command table: every command dsh knows, defined once.

mod cache;
mod chat;
mod check;
mod check_systems;
mod cluster;
mod dashboard;
mod entropy;
pub mod events;
mod faults;
mod keys;
mod load;
mod locks;
mod metrics;
mod nemesis;
mod network;
mod present;
mod queues;
mod record;
mod scenario;
mod table;
mod web;

pub use locks::default_owner;
pub use table::all;
