//! The one list of commands, in the order `help` shows them. Adding a command is a `specs()` in
//! its group's file and, for a new group, one line here.

use super::{
    cache, chat, check, cluster, dashboard, entropy, events, faults, keys, load, locks, metrics, nemesis, network,
    present, queues, record, scenario, web,
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
            .chain(dashboard::specs())
            .chain(load::specs())
            .chain(nemesis::specs())
            .chain(check::specs())
            .chain(scenario::specs())
            .chain(web::specs())
            .chain(present::specs())
            .chain(record::specs())
            .collect()
    })
}
