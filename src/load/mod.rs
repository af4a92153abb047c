//! Load generation: many concurrent operations driven natively on the async client (never one
//! script call per operation), latencies in HDR histograms, errors counted by kind. The same
//! workers can drive etcd, so dsh is measured side by side with what users would otherwise run.
//! Sees the cluster only through `client` and `proto`.

mod etcd;
mod failover;
mod progress;
mod record;
mod report;
mod run;
mod running;
mod schedule;
mod verify;
mod workload;

pub use etcd::Etcd;
pub use failover::{failover, FailoverResult, FailoverTarget};
pub use progress::Progress;
pub use record::{Live, Point, Recorder, Summary};
pub use report::{report_data, summary_fields, write_report};
pub use run::run;
pub use running::{Loads, Registered, Running};
pub use verify::Verified;
pub use workload::{Backend, LoadOp, LoadSpec};
