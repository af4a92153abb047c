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

pub use locks::default_owner;

use super::spec::Spec;

/// All commands, in the order `help` lists them.
pub fn all() -> &'static [Spec] {
    static ALL: std::sync::OnceLock<Vec<Spec>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        keys::specs()
            .into_iter()
            .chain(cache::specs())
            .chain(chat::specs())
            .chain(locks::specs())
            .chain(queues::specs())
            .chain(cluster::specs())
            .chain(faults::specs())
            .chain(network::specs())
            .chain(entropy::specs())
            .chain(events::specs())
            .chain(metrics::specs())
            .chain(load::specs())
            .chain(scenario::specs())
            .chain(present::specs())
            .collect()
    })
}
