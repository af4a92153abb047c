//! Anti-entropy on a node's stored state, outside Raft: the Merkle leaves `verify` compares, the
//! keys of given leaves, deliberate damage for `corrupt`, and the overwrite `repair` uses to
//! restore a damaged copy from the majority's. None of this goes through the log, so damage
//! never spreads to other nodes — and neither does a repair.

use super::state_machine::{internal, pack, unpack, Store, KV};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::merkle::{leaf_of, Hash, LeafHasher};
use crate::proto::{KeyValue, Versioned};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use std::sync::atomic::Ordering;

impl Store {
    /// The 256 leaf hashes of this node's keys, and how many keys there are.
    pub fn merkle_leaves(&self) -> Result<(Vec<Hash>, u64)> {
        let tx = self.db.begin_read().map_err(internal)?;
        let kv = tx.open_table(KV).map_err(internal)?;
        let mut hasher = LeafHasher::default();
        let mut n = 0;
        for item in kv.iter().map_err(internal)? {
            let (k, v) = item.map_err(internal)?;
            let Versioned { value, revision } = unpack(v.value());
            hasher.add(k.value(), &value, revision);
            n += 1;
        }
        Ok((hasher.finish(), n))
    }

    /// Every key (with value and revision) that falls in one of `leaves`.
    pub fn leaf_keys(&self, leaves: &[u32]) -> Result<Vec<KeyValue>> {
        let tx = self.db.begin_read().map_err(internal)?;
        let kv = tx.open_table(KV).map_err(internal)?;
        let mut out = Vec::new();
        for item in kv.iter().map_err(internal)? {
            let (k, v) = item.map_err(internal)?;
            if leaves.contains(&(leaf_of(k.value()) as u32)) {
                let Versioned { value, revision } = unpack(v.value());
                out.push(KeyValue { key: k.value().to_string(), value, revision });
            }
        }
        Ok(out)
    }

    /// Damages this node's copy of `key` (the demo's bit rot), durably.
    pub fn corrupt(&self, key: &str) -> Result<String> {
        let tx = self.db.begin_write().map_err(internal)?;
        let damaged = {
            let mut kv = tx.open_table(KV).map_err(internal)?;
            let current = kv.get(key).map_err(internal)?.map(|v| unpack(v.value()));
            let Some(Versioned { value, revision }) = current else {
                return Err(Error::new(ErrorKind::NotFound, format!("no key {key} on this node")));
            };
            let damaged: String = value.chars().rev().chain("~bitrot".chars()).collect();
            kv.insert(key, pack(revision, &damaged).as_slice()).map_err(internal)?;
            damaged
        };
        tx.commit().map_err(internal)?;
        Ok(damaged)
    }

    /// Makes this node's copy of the given keys match `set`, and drops `remove`, durably.
    pub fn overwrite(&self, set: &[KeyValue], remove: &[String]) -> Result<()> {
        let tx = self.db.begin_write().map_err(internal)?;
        let keys = {
            let mut kv = tx.open_table(KV).map_err(internal)?;
            for e in set {
                kv.insert(e.key.as_str(), pack(e.revision, &e.value).as_slice()).map_err(internal)?;
            }
            for k in remove {
                kv.remove(k.as_str()).map_err(internal)?;
            }
            kv.len().map_err(internal)?
        };
        tx.commit().map_err(internal)?;
        self.keys.store(keys, Ordering::Relaxed);
        Ok(())
    }
}
