//! The durable Raft log in redb. `append` hands entries to the writer thread (`log_writer.rs`)
//! and returns at once; the thread commits them with fsync and only then tells openraft they
//! are flushed, so RaftCore keeps working while the disk is busy and the next append carries
//! everything that queued up meanwhile. Recent entries stay decoded in memory because the leader
//! reads them straight back to replicate them. On the leader, each append is also sent ahead to
//! the followers (`ahead.rs`) so that their fsyncs overlap the leader's own.

use super::ahead::Ahead;
use super::log_writer::{Encoded, Held, WriteOp, Writer, LOG, META};
use super::metrics::Metrics;
use super::types::{from_cbor, io_err, to_cbor as enc, Entry, LogId, StorageError, TypeConfig, Vote};
use crate::proto::NodeId;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogId, RaftLogReader};
use redb::{Database, ReadableDatabase, ReadableTable};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::{mpsc as tmpsc, oneshot};

/// Entries kept decoded after they are durable; replication of a lagging follower beyond
/// this reads from disk.
const CACHE_ENTRIES: usize = 8192;

#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    db: Arc<Database>,
    cache: Mutex<BTreeMap<u64, Entry>>,
    state: Mutex<State>,
    writer: mpsc::Sender<WriteOp>,
    /// Where the leader's appends go to be sent ahead to followers.
    ahead: tmpsc::UnboundedSender<Ahead>,
    /// Entries that came ahead and are durable, published by the writer.
    held: Held,
}

#[derive(Clone, Copy, Default)]
struct State {
    last_log_id: Option<LogId>,
    last_purged: Option<LogId>,
    committed: Option<LogId>,
    vote: Option<Vote>,
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    from_cbor(b, ErrorSubject::Logs)
}

impl LogStore {
    pub fn open(
        path: &Path,
        id: NodeId,
        metrics: Arc<Metrics>,
        ahead: tmpsc::UnboundedSender<Ahead>,
    ) -> Result<Self, StorageError> {
        let err = |e: &dyn std::fmt::Display| io_err(ErrorSubject::Store, ErrorVerb::Read, e);
        let db = Arc::new(Database::create(path).map_err(|e| err(&e))?);
        let mut state = State::default();
        {
            let tx = db.begin_write().map_err(|e| err(&e))?;
            tx.open_table(LOG).map_err(|e| err(&e))?;
            tx.open_table(META).map_err(|e| err(&e))?;
            tx.commit().map_err(|e| err(&e))?;
            let tx = db.begin_read().map_err(|e| err(&e))?;
            let meta = tx.open_table(META).map_err(|e| err(&e))?;
            if let Some(v) = meta.get("purged").map_err(|e| err(&e))? {
                state.last_purged = dec(v.value())?;
            }
            if let Some(v) = meta.get("committed").map_err(|e| err(&e))? {
                state.committed = dec(v.value())?;
            }
            if let Some(v) = meta.get("vote").map_err(|e| err(&e))? {
                state.vote = Some(dec(v.value())?);
            }
            let log = tx.open_table(LOG).map_err(|e| err(&e))?;
            state.last_log_id = match log.last().map_err(|e| err(&e))? {
                Some((_, v)) => Some(*dec::<Entry>(v.value())?.get_log_id()),
                None => state.last_purged,
            };
        }
        let (tx, rx) = mpsc::channel();
        let held = Held::default();
        let writer = Writer::new(db.clone(), metrics, state.last_log_id, state.vote, held.clone());
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| err(&e))?;
        let cache = Mutex::new(BTreeMap::new());
        let inner = Inner { id, db, cache, state: Mutex::new(state), writer: tx, ahead, held };
        Ok(LogStore { inner: Arc::new(inner) })
    }

    /// Persists entries the leader sent ahead of replication, if they extend this log exactly.
    pub fn persist_ahead(&self, ahead: Ahead) {
        let entries = ahead.entries.iter().map(|e| (*e.get_log_id(), enc(e))).collect();
        // A writer that is gone has failed the log already; the hint is simply dropped.
        let _ = self.inner.writer.send(WriteOp::Ahead { term: ahead.term, prev: ahead.prev, entries });
    }

    /// Takes `ids` out of the held entries if every one of them is there: an append of exactly
    /// those needs no write.
    fn take_held(&self, ids: &[LogId]) -> bool {
        let mut held = self.inner.held.lock().unwrap();
        let all = !ids.is_empty() && ids.iter().all(|id| held.get(&id.index) == Some(id));
        if all {
            for id in ids {
                held.remove(&id.index);
            }
        }
        all
    }

    /// The highest index known committed, for status.
    pub fn committed_index(&self) -> u64 {
        self.inner.state.lock().unwrap().committed.map_or(0, |l| l.index)
    }

    async fn send_and_wait(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<(), String>>) -> WriteOp,
    ) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        let fail = |e: &dyn std::fmt::Display| io_err(ErrorSubject::Logs, ErrorVerb::Write, e);
        self.inner.writer.send(op(tx)).map_err(|e| fail(&e))?;
        rx.await.map_err(|e| fail(&e))?.map_err(|e| fail(&e))
    }

    fn read_disk(&self, start: u64, end: Bound<u64>) -> Result<Vec<Entry>, StorageError> {
        let err = |e: &dyn std::fmt::Display| io_err(ErrorSubject::Logs, ErrorVerb::Read, e);
        let tx = self.inner.db.begin_read().map_err(|e| err(&e))?;
        let log = tx.open_table(LOG).map_err(|e| err(&e))?;
        let range = log.range((Bound::Included(start), end)).map_err(|e| err(&e))?;
        range.map(|r| dec(r.map_err(|e| err(&e))?.1.value())).collect()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = range.end_bound().cloned();
        let past_end = |i: u64| match end {
            Bound::Included(e) => i > e,
            Bound::Excluded(e) => i >= e,
            Bound::Unbounded => false,
        };
        let (from_cache, cache_start) = {
            let cache = self.inner.cache.lock().unwrap();
            let first = cache.keys().next().copied().unwrap_or(u64::MAX);
            let lo = start.max(first);
            let hits: Vec<Entry> = if past_end(lo) {
                vec![]
            } else {
                cache.range((Bound::Included(lo), end)).map(|(_, e)| e.clone()).collect()
            };
            (hits, first)
        };
        if start >= cache_start {
            return Ok(from_cache);
        }
        let disk_end = if past_end(cache_start) { end } else { Bound::Excluded(cache_start) };
        let mut entries = self.read_disk(start, disk_end)?;
        entries.extend(from_cache);
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let s = *self.inner.state.lock().unwrap();
        Ok(LogState { last_purged_log_id: s.last_purged, last_log_id: s.last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        self.send_and_wait(|tx| WriteOp::Vote(vote, tx)).await?;
        self.inner.state.lock().unwrap().vote = Some(vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        let err = |e: &dyn std::fmt::Display| io_err(ErrorSubject::Vote, ErrorVerb::Read, e);
        let tx = self.inner.db.begin_read().map_err(|e| err(&e))?;
        let meta = tx.open_table(META).map_err(|e| err(&e))?;
        let vote = meta.get("vote").map_err(|e| err(&e))?;
        vote.map(|v| dec(v.value())).transpose()
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Persisted with the next append; losing it in a crash only means re-applying less
        // on restart, never losing data.
        self.inner.state.lock().unwrap().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.inner.state.lock().unwrap().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let ids: Vec<LogId> = entries.iter().map(|e| *e.get_log_id()).collect();
        let held = self.take_held(&ids);
        let mut encoded: Vec<Encoded> = Vec::new();
        let mut sent_ahead = None;
        {
            let mut cache = self.inner.cache.lock().unwrap();
            let mut state = self.inner.state.lock().unwrap();
            let (prev, vote) = (state.last_log_id, state.vote);
            for entry in entries {
                let id = *entry.get_log_id();
                if !held {
                    encoded.push((id, enc(&entry)));
                }
                cache.insert(id.index, entry);
                state.last_log_id = Some(id);
            }
            // Only the leader's own appends go ahead: a follower's come from the leader.
            let term = ids.first().map(|id| id.leader_id.term);
            let leads = vote.is_some_and(|v| {
                v.is_committed()
                    && v.leader_id().voted_for() == Some(self.inner.id)
                    && Some(v.leader_id().get_term()) == term
            });
            if leads && !held {
                let entries = cache.range(ids[0].index..).map(|(_, e)| e.clone()).collect();
                sent_ahead = Some(Ahead { from: self.inner.id, term: term.unwrap_or_default(), prev, entries });
            }
            while cache.len() > CACHE_ENTRIES {
                cache.pop_first();
            }
        }
        let fail = |e: &dyn std::fmt::Display| io_err(ErrorSubject::Logs, ErrorVerb::Write, e);
        if held {
            // Durable already: answer now, and let the writer know they are openraft's.
            self.inner.writer.send(WriteOp::Claim(ids)).map_err(|e| fail(&e))?;
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        if let Some(ahead) = sent_ahead {
            // Nobody listening means the node is stopping; replication still carries the entries.
            let _ = self.inner.ahead.send(ahead);
        }
        let committed = self.inner.state.lock().unwrap().committed;
        self.inner
            .writer
            .send(WriteOp::Append(encoded, committed, Box::new(move |r| callback.log_io_completed(r))))
            .map_err(|e| fail(&e))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.inner.cache.lock().unwrap().split_off(&log_id.index);
        self.send_and_wait(|tx| WriteOp::Truncate(log_id.index, tx)).await?;
        let prev =
            if log_id.index == 0 { vec![] } else { self.try_get_log_entries(log_id.index - 1..log_id.index).await? };
        let mut state = self.inner.state.lock().unwrap();
        state.last_log_id = prev.first().map(|e| *e.get_log_id()).or(state.last_purged);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut cache = self.inner.cache.lock().unwrap();
            *cache = cache.split_off(&(log_id.index + 1));
            let mut state = self.inner.state.lock().unwrap();
            state.last_purged = Some(log_id);
            if state.last_log_id < Some(log_id) {
                state.last_log_id = Some(log_id);
            }
        }
        self.send_and_wait(|tx| WriteOp::Purge(log_id, tx)).await
    }
}
