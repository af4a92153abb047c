//! Brings the Raft log of earlier versions (one redb file, `DATA/log.redb`) into segment files,
//! once, so that an upgraded node keeps its entries, vote, commit index and purge point rather
//! than refusing to start or starting empty (which would let it vote as if it had never
//! acknowledged them). The segments are built in a scratch directory and renamed into place
//! whole; only then is the old file renamed away, so a crash at any point leaves either the old
//! log alone or a complete new one. It reads the old format and must never write it.

use super::log_meta::{sync_dir, Meta};
use super::segments::{Segments, SEGMENT_BYTES};
use super::types::{from_cbor, Entry, LogId, Vote};
use openraft::{ErrorSubject, RaftLogId};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::io;
use std::path::{Path, PathBuf};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The old log beside the segment directory `dir`, if there is one.
pub fn old_log(dir: &Path) -> Option<PathBuf> {
    dir.parent().map(|p| p.join("log.redb")).filter(|p| p.exists())
}

/// Moves the old log `old` into segments at `dir`; returns how many entries it carried.
pub fn migrate(old: &Path, dir: &Path) -> io::Result<usize> {
    let parent = dir.parent().ok_or_else(|| io::Error::other("the log directory has no parent"))?;
    // `dir` appears only by the rename below, whole: if it exists, the copy was finished and only
    // the old file's rename is left to do.
    let moved = if dir.exists() { 0 } else { copy(old, dir)? };
    std::fs::rename(old, old.with_extension("redb.migrated"))?;
    sync_dir(parent)?;
    Ok(moved)
}

fn copy(old: &Path, dir: &Path) -> io::Result<usize> {
    let bad = |e: &dyn std::fmt::Display| io::Error::other(format!("{}: {e}", old.display()));
    let scratch = dir.with_extension("migrating");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    std::fs::create_dir_all(&scratch)?;
    let db = redb::Database::open(old).map_err(|e| bad(&e))?;
    let tx = db.begin_read().map_err(|e| bad(&e))?;
    let meta = tx.open_table(META).map_err(|e| bad(&e))?;
    let get = |key: &str| -> io::Result<Option<Vec<u8>>> {
        Ok(meta.get(key).map_err(|e| bad(&e))?.map(|v| v.value().to_vec()))
    };
    fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> io::Result<T> {
        from_cbor(b, ErrorSubject::Logs).map_err(io::Error::other)
    }
    let purged: Option<LogId> = get("purged")?.map(|b| decode(&b)).transpose()?.flatten();
    let committed: Option<LogId> = get("committed")?.map(|b| decode(&b)).transpose()?.flatten();
    let vote: Option<Vote> = get("vote")?.map(|b| decode(&b)).transpose()?;
    Meta { vote, purged }.save(&scratch)?;
    let (mut segs, _) = Segments::open(&scratch, purged, SEGMENT_BYTES)?;
    let log = tx.open_table(LOG).map_err(|e| bad(&e))?;
    let mut moved = 0;
    for row in log.iter().map_err(|e| bad(&e))? {
        let (_, bytes) = row.map_err(|e| bad(&e))?;
        let entry: Entry = decode(bytes.value())?;
        segs.append(*entry.get_log_id(), bytes.value())?;
        moved += 1;
    }
    if let Some(c) = committed.filter(|c| segs.last().is_some_and(|l| l.index >= c.index)) {
        segs.mark_committed(c)?;
    }
    segs.flush()?;
    drop(segs);
    std::fs::rename(&scratch, dir)?;
    sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::log_store::LogStore;
    use crate::node::types::to_cbor;
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader};
    use std::sync::Arc;

    fn entry(term: u64, index: u64) -> Entry {
        let log_id = LogId::new(CommittedLeaderId::new(term, 1), index);
        Entry {
            log_id,
            payload: EntryPayload::Normal(crate::proto::LogCommand { at_ms: index * 7, ops: Default::default() }),
        }
    }

    /// A data directory as the redb log of earlier versions left it: entries 3..=9 (1 and 2
    /// purged), committed up to 8, a vote.
    fn old_data(data: &Path) {
        let db = redb::Database::create(data.join("log.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut log = tx.open_table(LOG).unwrap();
            for i in 3..=9 {
                log.insert(i, to_cbor(&entry(2, i)).as_slice()).unwrap();
            }
            let mut meta = tx.open_table(META).unwrap();
            meta.insert("purged", to_cbor(&Some(entry(1, 2).log_id)).as_slice()).unwrap();
            meta.insert("committed", to_cbor(&Some(entry(2, 8).log_id)).as_slice()).unwrap();
            meta.insert("vote", to_cbor(&Vote::new(4, 2)).as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }

    #[tokio::test]
    async fn an_old_redb_log_is_moved_into_segments_whole_and_only_once() {
        let data = tempfile::tempdir().unwrap();
        old_data(data.path());
        let open = || {
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            LogStore::open(&data.path().join("log"), 2, Arc::default(), tx).unwrap()
        };
        let mut store = open();
        assert!(!data.path().join("log.redb").exists() && data.path().join("log.redb.migrated").exists());
        let state = store.get_log_state().await.unwrap();
        assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(entry(1, 2).log_id), Some(entry(2, 9).log_id)));
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(4, 2)));
        assert_eq!(store.read_committed().await.unwrap(), Some(entry(2, 8).log_id));
        let read: Vec<Vec<u8>> = store.try_get_log_entries(3..10).await.unwrap().iter().map(to_cbor).collect();
        assert_eq!(read, (3..=9).map(|i| to_cbor(&entry(2, i))).collect::<Vec<_>>());
        store.close();
        drop(store);

        // A crash after the new log was renamed into place but before the old file was moved
        // away: the copy is not made twice, and the log is what it was.
        std::fs::rename(data.path().join("log.redb.migrated"), data.path().join("log.redb")).unwrap();
        let mut store = open();
        assert!(!data.path().join("log.redb").exists());
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(entry(2, 9).log_id));
        store.close();
    }

    #[test]
    fn a_damaged_old_log_is_refused_and_left_where_it_is() {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("log.redb"), b"an old log").unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let e = LogStore::open(&data.path().join("log"), 1, Arc::default(), tx).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("log.redb"), "{e}");
        assert!(data.path().join("log.redb").exists() && !data.path().join("log").exists());
    }
}
