//! Wire types shared by nodes and clients: requests, responses, the commands replicated through
//! the Raft log, node status, and the length-prefixed CBOR framing. Pure data and codecs: nothing
//! here does I/O, knows about QUIC, or about openraft.

mod command;
mod frame;
mod ids;
pub mod limits;
pub mod merkle;
mod message;
mod seconds;
mod systems;
mod trace;

pub use command::{wall_ms, LogCommand, Op, RequestId};
pub use frame::{decode, decode_frame, encode, frame_len, FRAME_HEADER, MAX_FRAME};
pub use ids::{node_name, parse_node, NodeId};
pub use message::{
    CacheNotice, Envelope, Event, Faults, KeyValue, NodeMetrics, NodeStatus, PeerMetrics, ProcessAction, ProcessInfo,
    Reply, Request, Response, Slow, Versioned, READY_FD_ENV,
};
pub use seconds::{buckets, latency_histogram, SecondCounts, LATENCY_MAX_US, LATENCY_SIGFIG};
pub use systems::{ChatDigest, ChatMessage, Holder, LockInfo, QueueItem, QueueStat, Waiter};
pub use trace::{Trace, TraceAck};
