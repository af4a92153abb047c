//! Snapshot files: the last snapshot this node built or received, written atomically (temp file,
//! fsync, rename) so a crash leaves either the old one or the new one, never half of either.

use super::types::{io_err, SnapshotMeta, StorageError};
use crate::proto::KeyValue;
use openraft::{ErrorSubject, ErrorVerb};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state machine's content as shipped to a follower.
#[derive(Serialize, Deserialize)]
pub struct SnapshotData {
    pub revision: u64,
    pub keys: Vec<KeyValue>,
    /// Chat, locks and queues; absent in snapshots from before they existed.
    #[serde(default)]
    pub systems: super::systems::SystemsData,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    #[serde(with = "serde_bytes_compat")]
    data: Vec<u8>,
}

/// CBOR byte strings rather than arrays of integers: a snapshot is megabytes.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

pub struct SnapshotStore {
    path: PathBuf,
    /// Test hook: each save first sleeps this long, as a slow disk's fsync would.
    #[cfg(test)]
    pub(super) slow_save: std::sync::Mutex<std::time::Duration>,
}

fn err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::Snapshot(None), verb, e)
}

impl SnapshotStore {
    pub fn new(dir: &Path) -> Self {
        SnapshotStore {
            path: dir.join("snapshot.cbor"),
            #[cfg(test)]
            slow_save: Default::default(),
        }
    }

    pub fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        #[cfg(test)]
        std::thread::sleep(*self.slow_save.lock().unwrap());
        let file = SnapshotFile { meta: meta.clone(), data: data.to_vec() };
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| err(ErrorVerb::Write, e))?;
        let mut buf = Vec::with_capacity(data.len() + 256);
        ciborium::into_writer(&file, &mut buf).map_err(|e| err(ErrorVerb::Write, e))?;
        f.write_all(&buf).map_err(|e| err(ErrorVerb::Write, e))?;
        f.sync_all().map_err(|e| err(ErrorVerb::Write, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| err(ErrorVerb::Write, e))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| err(ErrorVerb::Write, e))?;
        }
        Ok(())
    }

    pub fn load_raw(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(ErrorVerb::Read, e)),
        };
        let file: SnapshotFile = ciborium::from_reader(bytes.as_slice()).map_err(|e| err(ErrorVerb::Read, e))?;
        Ok(Some((file.meta, file.data)))
    }

    pub fn load(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>, StorageError> {
        match self.load_raw()? {
            None => Ok(None),
            Some((meta, bytes)) => {
                let data = ciborium::from_reader(bytes.as_slice()).map_err(|e| err(ErrorVerb::Read, e))?;
                Ok(Some((meta, data)))
            }
        }
    }
}
