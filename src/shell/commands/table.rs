//! The one list of commands, in the order `help` shows them. Adding a command is a `specs()` in
//! its group's file and, for a new group, one line here.

use super::{
    cache, chat, cluster, entropy, events, faults, keys, load, locks, metrics, network, present, queues, scenario,
};
use crate::shell::spec::Spec;

pub fn all() -> &'static [Spec] {
    static ALL: std::sync::OnceLock<Vec<Spec>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        keys::specs()
            .into_iter()
            .chain(chat::specs())
            .chain(locks::specs())
            .chain(queues::specs())
            .chain(cache::specs())
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
