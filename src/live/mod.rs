//! The cluster, live (SPEC §7): one client-side model of the real cluster, refreshed several
//! times a second from the nodes themselves and from what this dsh process runs, and the views
//! drawn from it. It sits above `client` and `load` and below `shell`, which offers the views as
//! commands; it must not import `shell` or anything above it.

mod book;
pub mod dashboard;
mod model;
mod poll;
mod series;
mod snapshot;
mod timeline;
pub mod web;

pub use book::describe as describe_faults;
pub use model::{Model, Sources, REFRESH};
pub use poll::NODE_BUDGET;

pub use snapshot::{
    CheckPanel, ClusterSecond, Fault, LoadPanel, NodeView, Period, ScenarioRow, TimelineMark, View, ViewEvent,
    HISTORY_SECS,
};
