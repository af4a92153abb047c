//! The openraft type configuration: what a log entry carries and what applying it returns.

use crate::error::Error;
use crate::proto::{LogCommand, NodeId, Response};
use std::io::Cursor;

/// What applying one operation yields.
pub type ApplyResult = Result<Response, Error>;
/// What applying one entry yields, one result per operation, handed back to the proposer.
pub type EntryResult = Vec<ApplyResult>;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = LogCommand,
        R = EntryResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;

/// Wraps any storage failure as openraft's fatal I/O error. Storage errors stop the node: a
/// replica that cannot trust its disk must not vote or serve.
pub fn io_err(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

/// Encodes stored metadata and log entries.
pub fn to_cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    // Writing into a Vec cannot fail, and every stored type is plain serde data.
    ciborium::into_writer(v, &mut buf).expect("in-memory CBOR encoding cannot fail");
    buf
}

/// Decodes what `to_cbor` stored; a failure means the disk holds something we did not write.
pub fn from_cbor<T: serde::de::DeserializeOwned>(
    b: &[u8],
    subject: openraft::ErrorSubject<NodeId>,
) -> Result<T, StorageError> {
    ciborium::from_reader(b).map_err(|e| io_err(subject, openraft::ErrorVerb::Read, e))
}
