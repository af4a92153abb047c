//! Load generation: many concurrent operations driven natively on the async client (never one
//! script call per operation), latencies in HDR histograms, errors counted by kind. The same
//! workers can drive etcd, so dsh is measured side by side with what users would otherwise run.
//! Sees the cluster only through `client`.

mod etcd;
mod failover;
mod run;

pub use etcd::Etcd;
pub use failover::{failover, FailoverResult, FailoverTarget};
pub use run::{run, Backend, LoadOp, LoadSpec, Summary};
