//! The state machine's snapshots: the whole applied state read in one redb read transaction and
//! written as a snapshot file, and a received snapshot installed in place of the state. Both run
//! on the blocking pool (`off_thread`); the node's one runtime thread must keep serving. What a
//! snapshot file looks like on disk is `snapshot.rs`'s business.

use super::{enc, get_meta, off_thread, pack, sm_err, unpack, StateMachine, KV, META};
use crate::node::snapshot::SnapshotData;
use crate::node::systems::SystemsData;
use crate::node::types::{LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::proto::{KeyValue, Versioned};
use openraft::{RaftSnapshotBuilder, Snapshot};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use std::io::Cursor;

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let sm = self.clone();
        off_thread(move || sm.snapshot_now()).await
    }
}

impl StateMachine {
    /// Replaces the whole state with a snapshot, durably.
    pub(super) fn install(&self, meta: &SnapshotMeta, data: &SnapshotData) -> Result<(), StorageError> {
        let mut tx = self.store.db.begin_write().map_err(sm_err)?;
        tx.set_quick_repair(true);
        {
            let mut kv = tx.open_table(KV).map_err(sm_err)?;
            kv.retain(|_, _| false).map_err(sm_err)?;
            for e in &data.keys {
                kv.insert(e.key.as_str(), pack(e.revision, &e.value).as_slice()).map_err(sm_err)?;
            }
            let mut m = tx.open_table(META).map_err(sm_err)?;
            m.insert("applied", enc(&meta.last_log_id).as_slice()).map_err(sm_err)?;
            m.insert("membership", enc(&meta.last_membership).as_slice()).map_err(sm_err)?;
            m.insert("revision", enc(&data.revision).as_slice()).map_err(sm_err)?;
        }
        data.systems.install(&tx).map_err(sm_err)?;
        tx.commit().map_err(sm_err)?;
        self.refresh_counters()
    }

    /// Writes the applied state as a snapshot file and returns it.
    fn snapshot_now(&self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // A read transaction is a consistent view; applying continues meanwhile.
        let tx = self.store.db.begin_read().map_err(sm_err)?;
        let meta_t = tx.open_table(META).map_err(sm_err)?;
        let last_log_id: Option<LogId> = get_meta(&meta_t, "applied")?;
        let last_membership: StoredMembership = get_meta(&meta_t, "membership")?;
        let revision: u64 = get_meta(&meta_t, "revision")?;
        let kv = tx.open_table(KV).map_err(sm_err)?;
        let mut keys = Vec::with_capacity(kv.len().map_err(sm_err)? as usize);
        for item in kv.iter().map_err(sm_err)? {
            let (k, v) = item.map_err(sm_err)?;
            let Versioned { value, revision } = unpack(v.value());
            keys.push(KeyValue { key: k.value().to_string(), value, revision });
        }
        let systems = SystemsData::export(&tx).map_err(sm_err)?;
        let bytes = enc(&SnapshotData { revision, keys, systems });
        let snapshot_id =
            format!("{}-{}", last_log_id.map_or(0, |l| l.leader_id.term), last_log_id.map_or(0, |l| l.index));
        let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id };
        self.store.snapshots.save(&meta, &bytes)?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}
