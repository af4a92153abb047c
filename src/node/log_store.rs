//! The durable Raft log: segment files (`segments.rs`) and a small metadata file
//! (`log_meta.rs`) in one directory. `append` hands entries to the writer thread
//! (`log_writer.rs`) and returns at once; the thread writes them with one fdatasync per batch
//! and only then tells openraft they are flushed, so RaftCore keeps working while the disk is
//! busy and the next append carries everything that queued up meanwhile. Recent entries stay decoded in memory because the leader
//! reads them straight back to replicate them. On the leader, each append is also sent ahead to
//! the followers (`ahead.rs`) so that their fsyncs overlap the leader's own.

use super::ahead::Ahead;
use super::log_meta::Meta;
use super::log_migrate;
use super::log_ops::{digest, Digest, Encoded, Flushed, Held, WriteOp};
use super::log_writer::Writer;
use super::metrics::Metrics;
use super::segments::{self, Segments};
use super::types::{from_cbor, io_err, to_cbor as enc, Entry, LogId, StorageError, TypeConfig, Vote};
use crate::proto::NodeId;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, LogState, RaftLogId, RaftLogReader};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
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
    /// The log's directory, where `read_vote` reads the metadata.
    dir: PathBuf,
    disk: segments::Reader,
    cache: Mutex<BTreeMap<u64, Entry>>,
    state: Mutex<State>,
    writer: mpsc::Sender<WriteOp>,
    /// Where the leader's appends go to be sent ahead to followers.
    ahead: tmpsc::UnboundedSender<Ahead>,
    /// Entries that came ahead and are durable, published by the writer.
    held: Held,
    /// The writer's thread, joined by `close`.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Stamps appends, flushes and commits of traced writes.
    trace: Arc<super::trace::Tracer>,
}

#[derive(Clone, Copy, Default)]
struct State {
    last_log_id: Option<LogId>,
    last_purged: Option<LogId>,
    committed: Option<LogId>,
    vote: Option<Vote>,
}

/// The vote a node that led before a restart comes back with: the same term and candidate, but
/// not committed, so it must win a new term before it leads again.
///
/// Why (read in openraft 0.9.25): `Engine::startup` (engine/engine_impl.rs) restores a node as
/// leader at once when `RaftState::is_leader` holds, which is "the vote is for me *and*
/// committed"; it then numbers its next entry after its own last log id in the *same* term. Its
/// last entries may have been lost in the crash (its fsync had not happened) while followers
/// hold them, sent ahead (`ahead.rs`): the same log id would then name different bytes on
/// different nodes. With the vote uncommitted, `startup` makes the node a follower
/// (`update_internal_server_state` treats an uncommitted vote for itself as a candidate that
/// has not won), and nothing can commit it again in that term: `Engine::elect` always campaigns
/// at `vote.term + 1`; the only place a vote becomes committed is `Candidate::into_leader`
/// (proposer/candidate.rs), for the term the node just won; `handle_vote_resp` uncommits any
/// vote it adopts from a response, so a follower still holding our old committed vote cannot
/// hand it back; and a committed vote for this node in that term could arrive only in an
/// AppendEntries or snapshot from the leader of that term, which is this node itself. Since
/// each term has one leader and that leader is now one run of one process, which numbers each
/// index once, a log id names one entry's bytes for good.
fn uncommitted(mut vote: Vote) -> Vote {
    vote.committed = false;
    vote
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    from_cbor(b, ErrorSubject::Logs)
}

impl LogStore {
    /// Opens the log in the directory `dir`. A node whose data directory still holds the redb
    /// log of earlier versions (`log.redb` beside `dir`) is refused: starting with an empty log
    /// instead would let it vote and acknowledge as if it had never held those entries.
    pub fn open(
        dir: &Path,
        id: NodeId,
        metrics: Arc<Metrics>,
        ahead: tmpsc::UnboundedSender<Ahead>,
    ) -> Result<Self, StorageError> {
        let err = |e: &dyn std::fmt::Display| io_err(ErrorSubject::Store, ErrorVerb::Read, e);
        if let Some(old) = log_migrate::old_log(dir) {
            let moved = log_migrate::migrate(&old, dir)
                .map_err(|e| err(&format!("moving the redb log of an earlier version into segments: {e}")))?;
            tracing::info!(entries = moved, "moved the redb log of an earlier version into segment files");
        }
        let mut meta = Meta::load(dir).map_err(|e| err(&e))?;
        let (segs, committed) = Segments::open(dir, meta.purged, segments::SEGMENT_BYTES).map_err(|e| err(&e))?;
        if let Some(vote) = meta.vote.filter(|v| v.is_committed() && v.leader_id().voted_for() == Some(id)) {
            let w = |e: &dyn std::fmt::Display| io_err(ErrorSubject::Vote, ErrorVerb::Write, e);
            meta.vote = Some(uncommitted(vote));
            meta.save(dir).map_err(|e| w(&e))?;
        }
        let state =
            State { last_log_id: segs.last().or(meta.purged), last_purged: meta.purged, committed, vote: meta.vote };
        let (tx, rx) = mpsc::channel();
        let held = Held::default();
        let trace = metrics.trace.clone();
        let disk = segs.reader();
        let writer = Writer::new(segs, dir.to_path_buf(), meta, metrics, held.clone());
        let thread = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| err(&e))?;
        let cache = Mutex::new(BTreeMap::new());
        let thread = Mutex::new(Some(thread));
        let state = Mutex::new(state);
        let inner = Inner { id, dir: dir.to_path_buf(), disk, cache, state, writer: tx, ahead, held, thread, trace };
        Ok(LogStore { inner: Arc::new(inner) })
    }

    /// Stops the writer once what is queued is written, and waits for it: after Raft has shut
    /// down, so that nothing is appended after. Blocks; later writes fail.
    pub fn close(&self) {
        let _ = self.inner.writer.send(WriteOp::Stop);
        if let Some(thread) = self.inner.thread.lock().unwrap().take() {
            let _ = thread.join();
        }
    }

    /// Persists entries the leader sent ahead of replication, if they extend this log exactly.
    pub fn persist_ahead(&self, ahead: Ahead) {
        let entries = ahead.entries.iter().map(|e| (*e.get_log_id(), enc(e))).collect();
        // A writer that is gone has failed the log already; the hint is simply dropped.
        let _ = self.inner.writer.send(WriteOp::Ahead { term: ahead.term, prev: ahead.prev, entries });
    }

    /// Takes `entries` out of the held ones if every one of them is there with the same id and
    /// the same bytes: an append of exactly those needs no write. Returns what it took.
    fn take_held(&self, entries: &[Encoded]) -> Option<Vec<(LogId, Digest)>> {
        let mut held = self.inner.held.lock().unwrap();
        // Digests only where the ids match, which on a leader (nothing held) is never.
        if entries.is_empty() || !entries.iter().all(|(id, _)| held.get(&id.index).is_some_and(|h| h.0 == *id)) {
            return None;
        }
        let claimed: Vec<(LogId, Digest)> = entries.iter().map(|(id, bytes)| (*id, digest(bytes))).collect();
        if !claimed.iter().all(|c| held.get(&c.0.index) == Some(c)) {
            return None;
        }
        for (id, _) in &claimed {
            held.remove(&id.index);
        }
        Some(claimed)
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

    /// openraft's `append`, told its outcome through `flushed`.
    fn append_entries(&self, entries: Vec<Entry>, flushed: Flushed) -> Result<(), StorageError> {
        let ids: Vec<LogId> = entries.iter().map(|e| *e.get_log_id()).collect();
        let (first, last) = (ids.first().map_or(1, |l| l.index), ids.last().map_or(0, |l| l.index));
        let flushed = self.inner.trace.appended(first, last, flushed);
        let encoded: Vec<Encoded> = entries.iter().map(|e| (*e.get_log_id(), enc(e))).collect();
        let claimed = self.take_held(&encoded);
        let held = claimed.is_some();
        let mut sent_ahead = None;
        let writes = entries.iter().any(|e| matches!(e.payload, EntryPayload::Normal(_)));
        {
            let mut cache = self.inner.cache.lock().unwrap();
            let mut state = self.inner.state.lock().unwrap();
            let (prev, vote) = (state.last_log_id, state.vote);
            for entry in entries {
                let id = *entry.get_log_id();
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
        if let Some(claimed) = claimed {
            // Durable already: answer now, and let the writer know they are openraft's.
            self.inner.writer.send(WriteOp::Claim(claimed)).map_err(|e| fail(&e))?;
            flushed(Ok(()));
            return Ok(());
        }
        let lead = sent_ahead.is_some() && writes;
        if let Some(ahead) = sent_ahead {
            // Nobody listening means the node is stopping; replication still carries the entries.
            let _ = self.inner.ahead.send(ahead);
        }
        let committed = self.inner.state.lock().unwrap().committed;
        self.inner.writer.send(WriteOp::Append(encoded, committed, flushed, lead)).map_err(|e| fail(&e))
    }

    fn read_disk(&self, start: u64, end: Bound<u64>) -> Result<Vec<Entry>, StorageError> {
        let read = self.inner.disk.read((Bound::Included(start), end));
        let read = read.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        read.iter().map(|(_, bytes)| dec(bytes)).collect()
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
        let meta = Meta::load(&self.inner.dir).map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Read, e))?;
        Ok(meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Persisted with the next append; losing it in a crash only means re-applying less
        // on restart, never losing data.
        self.inner.state.lock().unwrap().committed = committed;
        self.inner.trace.committed(committed.map_or(0, |l| l.index));
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
        self.append_entries(entries.into_iter().collect(), Box::new(move |r| callback.log_io_completed(r)))
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
        let purged = {
            let mut cache = self.inner.cache.lock().unwrap();
            let kept = cache.split_off(&(log_id.index + 1));
            let purged = std::mem::replace(&mut *cache, kept);
            let mut state = self.inner.state.lock().unwrap();
            state.last_purged = Some(log_id);
            if state.last_log_id < Some(log_id) {
                state.last_log_id = Some(log_id);
            }
            purged
        };
        // Thousands of entries of hundreds of writes each: freeing them took 25 ms of the
        // node's only runtime thread, on every node at once.
        tokio::task::spawn_blocking(move || drop(purged));
        self.send_and_wait(|tx| WriteOp::Purge(log_id, tx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    // Which copy of an entry: the one sent ahead or another one under the same id.
    const AHEAD: u64 = 1;
    const OTHER: u64 = 2;

    /// An entry tagged (in its timestamp) so a test can tell which copy reached the disk.
    fn entry(term: u64, index: u64, tag: u64) -> Entry {
        let log_id = LogId::new(CommittedLeaderId::new(term, 1), index);
        Entry {
            log_id,
            payload: EntryPayload::Normal(crate::proto::LogCommand { at_ms: tag, ops: Default::default() }),
        }
    }

    fn open(dir: &Path, id: NodeId) -> (LogStore, tmpsc::UnboundedReceiver<Ahead>) {
        let (tx, rx) = tmpsc::unbounded_channel();
        (LogStore::open(&dir.join("log"), id, Arc::default(), tx).unwrap(), rx)
    }

    /// A log directory as a node that stopped with `vote` left it.
    fn stopped_with(dir: &Path, vote: Vote) {
        std::fs::create_dir_all(dir.join("log")).unwrap();
        Meta { vote: Some(vote), purged: None }.save(&dir.join("log")).unwrap();
    }

    /// Appends as openraft does; the receiver says whether the append was reported flushed.
    fn append(store: &LogStore, entries: Vec<Entry>) -> mpsc::Receiver<bool> {
        let (tx, rx) = mpsc::channel();
        store.append_entries(entries, Box::new(move |r| tx.send(r.is_ok()).unwrap())).unwrap();
        rx
    }

    #[tokio::test]
    async fn a_leader_restarted_comes_back_with_its_vote_uncommitted_and_sends_nothing_ahead() {
        let dir = tempfile::tempdir().unwrap();
        stopped_with(dir.path(), Vote::new_committed(3, 1));
        let (mut store, mut ahead) = open(dir.path(), 1);
        // `read_vote` reads the file, so the uncommitted vote is durable, not just in memory.
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 1)), "must win a new term to lead");
        // Had openraft led term 3 again, its entries would not have gone ahead either.
        assert!(append(&store, vec![entry(3, 0, OTHER)]).recv().unwrap());
        assert!(ahead.try_recv().is_err(), "nothing sent ahead in the old term");
        // Once it has won term 4, its appends go ahead as before.
        store.save_vote(&Vote::new_committed(4, 1)).await.unwrap();
        assert!(append(&store, vec![entry(4, 1, OTHER)]).recv().unwrap());
        assert_eq!(ahead.try_recv().map(|a| a.term).ok(), Some(4));
    }

    #[tokio::test]
    async fn a_vote_committed_for_another_node_is_kept_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        stopped_with(dir.path(), Vote::new_committed(3, 2));
        let (mut store, _ahead) = open(dir.path(), 1);
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new_committed(3, 2)));
    }

    #[tokio::test]
    async fn a_follower_answers_for_held_entries_only_when_the_bytes_are_the_same() {
        let dir = tempfile::tempdir().unwrap();
        stopped_with(dir.path(), Vote::new_committed(2, 1));
        let (store, _ahead) = open(dir.path(), 2);
        store.persist_ahead(Ahead {
            from: 1,
            term: 2,
            prev: None,
            entries: vec![entry(2, 0, AHEAD), entry(2, 1, AHEAD)],
        });
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.inner.held.lock().unwrap().len() < 2 {
            assert!(std::time::Instant::now() < until, "the entries sent ahead never became durable");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The same id and bytes: answered at once, from the copy on disk.
        assert_eq!(append(&store, vec![entry(2, 0, AHEAD)]).try_recv(), Ok(true));
        // The same id with other bytes: written, replacing the held copy.
        assert!(append(&store, vec![entry(2, 1, OTHER)]).recv().unwrap());
        let tags: Vec<(u64, u64)> = store
            .read_disk(0, Bound::Unbounded)
            .unwrap()
            .into_iter()
            .map(|e| match e.payload {
                EntryPayload::Normal(c) => (e.log_id.index, c.at_ms),
                _ => panic!("not a normal entry"),
            })
            .collect();
        assert_eq!(tags, vec![(0, AHEAD), (1, OTHER)]);
        assert!(store.inner.held.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_vote_entries_and_commit_index_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _ahead) = open(dir.path(), 2);
        store.save_vote(&Vote::new(5, 3)).await.unwrap();
        assert!(append(&store, vec![entry(5, 0, OTHER), entry(5, 1, OTHER)]).recv().unwrap());
        let committed = Some(*entry(5, 1, OTHER).get_log_id());
        store.save_committed(committed).await.unwrap();
        // The commit index is written with the next append.
        assert!(append(&store, vec![entry(5, 2, OTHER)]).recv().unwrap());
        store.close();
        drop(store);
        let (mut store, _ahead) = open(dir.path(), 2);
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(5, 3)));
        assert_eq!(store.read_committed().await.unwrap(), committed);
        assert_eq!(store.get_log_state().await.unwrap().last_log_id.map(|l| l.index), Some(2));
        let read = store.try_get_log_entries(0..3).await.unwrap();
        assert_eq!(read.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
