//! The Raft log's writer thread, the only code that writes the log's redb file. It commits
//! whatever queued up while the disk was busy in one fsync'd transaction and only then tells
//! openraft the appends are flushed.
//!
//! It also persists entries a leader sent *ahead* of replication (`ahead.rs`): such entries are
//! written only where they extend this log exactly (their predecessor is our last entry, their
//! term is the one we voted in) and are remembered until openraft appends the same log ids,
//! which are then already durable and cost no second fsync. A different entry at the same
//! index replaces them and everything after. Holding entries openraft has not yet appended is
//! safe: it is what a follower that crashed before acknowledging an AppendEntries holds.
//! Entries held that way are published once durable (`Held`), so the log store can answer an
//! append of exactly those without a trip through this thread.
//! The writer must not decide what is committed or call into openraft beyond the callbacks.

use super::metrics::Metrics;
use super::types::{from_cbor, to_cbor as enc, Entry, LogId, Vote};
use openraft::{ErrorSubject, RaftLogId};
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

pub(super) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(super) type Done = oneshot::Sender<Result<(), String>>;

/// Told the outcome once an append is durable (openraft's `LogFlushed`, in production).
pub(super) type Flushed = Box<dyn FnOnce(Result<(), std::io::Error>) + Send>;

/// Entries that came ahead, are durable and openraft has not appended yet, by index, with the
/// digest of the bytes on disk; shared with the log store.
pub(super) type Held = Arc<Mutex<BTreeMap<u64, (LogId, Digest)>>>;

/// One encoded entry.
pub(super) type Encoded = (LogId, Vec<u8>);

/// SHA-256 of an entry's encoded bytes. An entry held ahead stands in for an appended one only
/// when both id and digest match: a log id alone would let different bytes under a reused id
/// pass as the same entry.
pub(super) type Digest = [u8; 32];

pub(super) fn digest(bytes: &[u8]) -> Digest {
    let mut d = [0; 32];
    d.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    d
}

pub(super) enum WriteOp {
    /// openraft's append, with the commit index to persist alongside and what to call once
    /// the entries are durable. `lead` marks the leader's own append of client writes, the
    /// one the test hook (`HOLD_LEADER_FSYNC`) holds.
    Append(Vec<Encoded>, Option<LogId>, Flushed, bool),
    /// Entries the leader of `term` sent ahead; `prev` precedes the first.
    Ahead {
        term: u64,
        prev: Option<LogId>,
        entries: Vec<Encoded>,
    },
    /// openraft appended these held entries (same ids, same digests); the log store has
    /// answered for them already.
    Claim(Vec<(LogId, Digest)>),
    /// Deletes entries at and after the index.
    Truncate(u64, Done),
    Purge(LogId, Done),
    Vote(Vote, Done),
    /// Ends the writer once everything queued before it is written.
    Stop,
}

pub(super) struct Writer {
    db: Arc<Database>,
    metrics: Arc<Metrics>,
    /// The last entry on disk, including entries sent ahead.
    last: Option<LogId>,
    /// The term of the stored vote.
    term: u64,
    /// Entries on disk that came ahead and openraft has not appended yet, by index.
    ahead: BTreeMap<u64, (LogId, Digest)>,
    /// What of `ahead` is durable, for the log store.
    held: Held,
    /// Test hook only (`HOLD_LEADER_FSYNC`): how long the leader's own appends of client writes
    /// wait before their commit; also makes the writer announce on stderr what it holds.
    hold: Option<Duration>,
}

/// Test-only hook, read once per writer: with `DSH_TEST_HOLD_LEADER_FSYNC_MS=N`, a leader's append
/// that carries client writes (and so went ahead to the followers) waits N ms before its fsync,
/// and every node announces on stderr the entries it holds that way, so an end-to-end test can
/// SIGKILL the cluster deterministically after the hint and before the leader's fsync
/// (`tests/safety.rs`). Nothing outside tests sets it.
const HOLD_LEADER_FSYNC: &str = "DSH_TEST_HOLD_LEADER_FSYNC_MS";

fn hold_from_env() -> Option<Duration> {
    std::env::var(HOLD_LEADER_FSYNC).ok()?.parse().ok().map(Duration::from_millis)
}

type Batch = Vec<WriteOp>;

impl Writer {
    pub fn new(db: Arc<Database>, metrics: Arc<Metrics>, last: Option<LogId>, vote: Option<Vote>, held: Held) -> Self {
        let term = vote.map_or(0, |v| v.leader_id().get_term());
        Writer { db, metrics, last, term, ahead: BTreeMap::new(), held, hold: hold_from_env() }
    }

    fn publish(&self) {
        *self.held.lock().unwrap() = self.ahead.clone();
    }

    pub fn run(mut self, rx: mpsc::Receiver<WriteOp>) {
        let mut next = None;
        loop {
            let op = match next.take() {
                Some(op) => op,
                None => match rx.recv() {
                    Ok(op) => op,
                    Err(_) => return,
                },
            };
            match op {
                WriteOp::Append(..) | WriteOp::Ahead { .. } | WriteOp::Claim(..) => {
                    // Everything queued behind this write rides on the same fsync.
                    let mut batch = vec![op];
                    while let Ok(op) = rx.try_recv() {
                        if matches!(op, WriteOp::Append(..) | WriteOp::Ahead { .. } | WriteOp::Claim(..)) {
                            batch.push(op);
                        } else {
                            next = Some(op);
                            break;
                        }
                    }
                    self.write_batch(batch);
                }
                WriteOp::Truncate(index, done) => {
                    let r = self.truncate(index);
                    let _ = done.send(r.map_err(|e| e.to_string()));
                }
                WriteOp::Purge(upto, done) => {
                    let r = commit(&self.db, |tx| {
                        tx.open_table(LOG)?.retain_in(..=upto.index, |_, _| false)?;
                        tx.open_table(META)?.insert("purged", enc(&Some(upto)).as_slice())?;
                        Ok(())
                    });
                    if r.is_ok() {
                        self.ahead.retain(|i, _| *i > upto.index);
                        self.last = self.last.max(Some(upto));
                        self.publish();
                    }
                    let _ = done.send(r.map_err(|e| e.to_string()));
                }
                WriteOp::Stop => return,
                WriteOp::Vote(vote, done) => {
                    let r = commit(&self.db, |tx| {
                        tx.open_table(META)?.insert("vote", enc(&vote).as_slice())?;
                        Ok(())
                    });
                    if r.is_ok() {
                        self.term = vote.leader_id().get_term();
                    }
                    let _ = done.send(r.map_err(|e| e.to_string()));
                }
            }
        }
    }

    fn write_batch(&mut self, batch: Batch) {
        let started = std::time::Instant::now();
        let (last, ahead) = (self.last, self.ahead.clone());
        let mut callbacks = Vec::new();
        let mut committed = None;
        let mut tx = None;
        let mut wrote = false;
        let (mut lead, mut came_ahead) = (None, false);
        let run = || -> Result<(), redb::Error> {
            for op in batch {
                match op {
                    WriteOp::Append(entries, c, callback, leads) => {
                        committed = c.or(committed);
                        callbacks.push(callback);
                        if leads {
                            lead = entries.last().map(|(id, _)| *id);
                        }
                        self.append(&mut tx, entries)?;
                    }
                    WriteOp::Ahead { term, prev, entries } => {
                        let before = self.last;
                        self.write_ahead(&mut tx, term, prev, entries)?;
                        came_ahead |= self.last != before;
                    }
                    WriteOp::Claim(claimed) => {
                        for (id, d) in claimed {
                            if self.ahead.get(&id.index) == Some(&(id, d)) {
                                self.ahead.remove(&id.index);
                            }
                        }
                    }
                    _ => unreachable!("only appends and claims are batched"),
                }
            }
            // Entries that were all on disk already need no transaction, hence no fsync.
            if let Some(tx) = tx.take() {
                wrote = true;
                if let Some(c) = committed {
                    tx.open_table(META)?.insert("committed", enc(&c).as_slice())?;
                }
                if let (Some(hold), Some(id)) = (self.hold, lead) {
                    eprintln!(
                        "dsh test hook: leader holds its fsync up to index {} (term {}) for {} ms",
                        id.index,
                        id.leader_id.term,
                        hold.as_millis()
                    );
                    std::thread::sleep(hold);
                }
                tx.commit()?;
            }
            Ok(())
        };
        let r = run();
        if let (Some(_), true, Ok(()), Some(id)) = (self.hold, came_ahead, &r, self.last) {
            eprintln!("dsh test hook: ahead durable up to index {} (term {})", id.index, id.leader_id.term);
        }
        if r.is_err() {
            // Nothing of the batch reached the disk.
            (self.last, self.ahead) = (last, ahead);
        }
        self.publish();
        // The metric is of disk writes; a batch of hints already held wrote nothing.
        if wrote {
            self.metrics.append(started.elapsed());
        }
        let err = r.err().map(|e| e.to_string());
        for callback in callbacks {
            callback(match &err {
                None => Ok(()),
                Some(e) => Err(std::io::Error::other(e.clone())),
            });
        }
    }

    fn append(&mut self, tx: &mut Option<WriteTransaction>, entries: Vec<Encoded>) -> Result<(), redb::Error> {
        for (id, bytes) in entries {
            if self.ahead.get(&id.index).is_some_and(|held| *held == (id, digest(&bytes))) {
                // These very bytes are on disk already.
                self.ahead.remove(&id.index);
                continue;
            }
            // Anything held from here on is replaced, including different bytes under this id.
            let stale = self.ahead.split_off(&id.index);
            let mut log = begin(&self.db, tx)?.open_table(LOG)?;
            for index in stale.keys().filter(|i| **i != id.index) {
                log.remove(index)?;
            }
            log.insert(id.index, bytes.as_slice())?;
            self.last = Some(id);
        }
        Ok(())
    }

    fn write_ahead(
        &mut self,
        tx: &mut Option<WriteTransaction>,
        term: u64,
        prev: Option<LogId>,
        entries: Vec<Encoded>,
    ) -> Result<(), redb::Error> {
        // Entries from a leader we have not voted for yet (or no longer follow), or that do not
        // extend our log exactly, are left to replication, which sorts out any difference.
        let first = prev.map_or(0, |p| p.index + 1);
        let extends = entries.iter().enumerate().all(|(k, (id, _))| id.index == first + k as u64);
        if term != self.term || prev != self.last || !extends || entries.iter().any(|(id, _)| id.leader_id.term != term)
        {
            return Ok(());
        }
        let mut log = begin(&self.db, tx)?.open_table(LOG)?;
        for (id, bytes) in entries {
            log.insert(id.index, bytes.as_slice())?;
            self.ahead.insert(id.index, (id, digest(&bytes)));
            self.last = Some(id);
        }
        Ok(())
    }

    fn truncate(&mut self, index: u64) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        let last = {
            let mut log = tx.open_table(LOG)?;
            log.retain_in(index.., |_, _| false)?;
            let last = log.last()?;
            match last {
                Some((_, v)) => Some(decode_id(v.value())?),
                None => purged(&tx)?,
            }
        };
        tx.commit()?;
        self.ahead.split_off(&index);
        self.publish();
        self.last = last;
        Ok(())
    }
}

fn begin<'a>(db: &Database, tx: &'a mut Option<WriteTransaction>) -> Result<&'a WriteTransaction, redb::Error> {
    if tx.is_none() {
        *tx = Some(db.begin_write()?);
    }
    Ok(tx.as_ref().expect("just begun"))
}

fn decode_id(bytes: &[u8]) -> Result<LogId, redb::Error> {
    let entry: Entry = from_cbor(bytes, ErrorSubject::Logs).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    Ok(*entry.get_log_id())
}

fn purged(tx: &WriteTransaction) -> Result<Option<LogId>, redb::Error> {
    let meta = tx.open_table(META)?;
    let v = meta.get("purged")?;
    v.map_or(Ok(None), |v| from_cbor(v.value(), ErrorSubject::Logs).map_err(|e| redb::Error::Corrupted(e.to_string())))
}

/// One durable transaction.
pub(super) fn commit(
    db: &Database,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    f(&tx)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};
    use redb::ReadableDatabase;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    /// An entry encoded as the log stores it, tagged (in its timestamp) so tests can tell which
    /// copy of an entry reached the disk.
    fn encoded(term: u64, index: u64, tag: u64) -> Encoded {
        let payload = EntryPayload::Normal(crate::proto::LogCommand { at_ms: tag, ops: vec![] });
        (id(term, index), enc(&Entry { log_id: id(term, index), payload }))
    }

    struct Log {
        db: Arc<Database>,
        tx: mpsc::Sender<WriteOp>,
        held: Held,
        _dir: tempfile::TempDir,
    }

    impl Log {
        fn open(vote_term: u64) -> Log {
            let dir = tempfile::tempdir().unwrap();
            let db = Arc::new(Database::create(dir.path().join("log.redb")).unwrap());
            commit(&db, |tx| {
                tx.open_table(LOG)?;
                tx.open_table(META)?;
                Ok(())
            })
            .unwrap();
            let vote = Vote::new_committed(vote_term, 1);
            let (tx, rx) = mpsc::channel();
            let held = Held::default();
            let writer = Writer::new(db.clone(), Arc::default(), None, Some(vote), held.clone());
            std::thread::spawn(move || writer.run(rx));
            Log { db, tx, held, _dir: dir }
        }

        fn ahead(&self, term: u64, prev: Option<LogId>, entries: Vec<Encoded>) {
            self.tx.send(WriteOp::Ahead { term, prev, entries }).unwrap();
        }

        fn append(&self, entries: Vec<Encoded>) {
            let (done, flushed) = std::sync::mpsc::channel();
            let callback: Flushed = Box::new(move |r| done.send(r.is_ok()).unwrap());
            self.tx.send(WriteOp::Append(entries, None, callback, false)).unwrap();
            assert!(flushed.recv().unwrap(), "append failed");
        }

        fn held(&self) -> Vec<LogId> {
            self.held.lock().unwrap().values().map(|(id, _)| *id).collect()
        }

        fn truncate(&self, index: u64) {
            let (done, rx) = oneshot::channel();
            self.tx.send(WriteOp::Truncate(index, done)).unwrap();
            rx.blocking_recv().unwrap().unwrap();
        }

        /// The log on disk: index, term and the tag of the copy stored.
        fn disk(&self) -> Vec<(u64, u64, u64)> {
            let tx = self.db.begin_read().unwrap();
            let log = tx.open_table(LOG).unwrap();
            log.iter()
                .unwrap()
                .map(|r| {
                    let entry: Entry = from_cbor(r.unwrap().1.value(), ErrorSubject::Logs).unwrap();
                    let EntryPayload::Normal(c) = entry.payload else { panic!("not a normal entry") };
                    (entry.log_id.index, entry.log_id.leader_id.term, c.at_ms)
                })
                .collect()
        }
    }

    fn row(index: u64, term: u64, tag: u64) -> (u64, u64, u64) {
        (index, term, tag)
    }

    // Which copy of an entry is on disk.
    const AHEAD: u64 = 1;
    const APPEND: u64 = 2;
    const OTHER: u64 = 3;

    #[test]
    fn an_append_of_the_bytes_already_sent_ahead_keeps_them_and_releases_the_hold() {
        let log = Log::open(2);
        log.ahead(2, None, vec![encoded(2, 0, AHEAD), encoded(2, 1, AHEAD)]);
        log.append(vec![encoded(2, 0, AHEAD), encoded(2, 1, AHEAD)]);
        assert_eq!(log.disk(), vec![row(0, 2, AHEAD), row(1, 2, AHEAD)]);
        assert_eq!(log.held(), vec![]);
        // The log goes on from there as usual.
        log.append(vec![encoded(2, 2, APPEND)]);
        assert_eq!(log.disk()[2], row(2, 2, APPEND));
    }

    #[test]
    fn the_same_log_id_with_other_bytes_replaces_the_held_entry_and_all_after_it() {
        // What a leader back in its old term after losing its tail would send (issue 12): held
        // bytes must never answer for other bytes under the same id.
        let log = Log::open(2);
        log.ahead(2, None, vec![encoded(2, 0, AHEAD), encoded(2, 1, AHEAD), encoded(2, 2, AHEAD)]);
        log.append(vec![encoded(2, 0, AHEAD), encoded(2, 1, OTHER)]);
        assert_eq!(log.disk(), vec![row(0, 2, AHEAD), row(1, 2, OTHER)]);
        assert_eq!(log.held(), vec![]);
    }

    #[test]
    fn a_claim_of_other_bytes_leaves_the_held_entry_unclaimed() {
        let log = Log::open(2);
        log.ahead(2, None, vec![encoded(2, 0, AHEAD)]);
        log.tx.send(WriteOp::Claim(vec![(id(2, 0), digest(&encoded(2, 0, OTHER).1))])).unwrap();
        log.truncate(5);
        assert_eq!(log.held(), vec![id(2, 0)]);
    }

    #[test]
    fn a_different_entry_at_the_same_index_replaces_the_ahead_tail() {
        let log = Log::open(2);
        log.append(vec![encoded(1, 0, APPEND)]);
        log.ahead(2, Some(id(1, 0)), vec![encoded(2, 1, AHEAD), encoded(2, 2, AHEAD)]);
        // A new leader's entry at index 1: the old term's index 2 must not survive after it.
        log.append(vec![encoded(3, 1, APPEND)]);
        assert_eq!(log.disk(), vec![row(0, 1, APPEND), row(1, 3, APPEND)]);
    }

    #[test]
    fn entries_that_do_not_extend_the_log_or_come_from_another_term_are_ignored() {
        let log = Log::open(2);
        log.append(vec![encoded(2, 0, APPEND)]);
        log.ahead(1, Some(id(2, 0)), vec![encoded(1, 1, OTHER)]);
        log.ahead(2, Some(id(2, 5)), vec![encoded(2, 6, OTHER)]);
        log.ahead(2, Some(id(2, 0)), vec![encoded(2, 2, OTHER)]);
        log.ahead(2, None, vec![encoded(2, 0, OTHER)]);
        log.append(vec![encoded(2, 1, APPEND)]);
        assert_eq!(log.disk(), vec![row(0, 2, APPEND), row(1, 2, APPEND)]);
    }

    #[test]
    fn ahead_entries_chain_and_truncation_removes_them() {
        let log = Log::open(2);
        log.ahead(2, None, vec![encoded(2, 0, AHEAD)]);
        log.ahead(2, Some(id(2, 0)), vec![encoded(2, 1, AHEAD)]);
        log.append(vec![encoded(2, 0, AHEAD)]);
        assert_eq!(log.disk(), vec![row(0, 2, AHEAD), row(1, 2, AHEAD)]);
        log.truncate(1);
        assert_eq!(log.disk(), vec![row(0, 2, AHEAD)]);
        // After the truncation, index 1 is written afresh, not taken from the forgotten hint.
        log.append(vec![encoded(2, 1, APPEND)]);
        assert_eq!(log.disk(), vec![row(0, 2, AHEAD), row(1, 2, APPEND)]);
    }

    #[test]
    fn held_entries_are_published_once_durable_and_a_claimed_one_is_kept() {
        let log = Log::open(2);
        log.ahead(2, None, vec![encoded(2, 0, AHEAD), encoded(2, 1, AHEAD)]);
        // Truncating past the end changes nothing; it is a barrier, answered in order.
        log.truncate(5);
        assert_eq!(log.held(), vec![id(2, 0), id(2, 1)]);
        log.tx.send(WriteOp::Claim(vec![(id(2, 0), digest(&encoded(2, 0, AHEAD).1))])).unwrap();
        // A new leader's entry at index 1 replaces the unclaimed entry there, not the claimed one.
        log.append(vec![encoded(3, 1, APPEND)]);
        assert_eq!(log.disk(), vec![row(0, 2, AHEAD), row(1, 3, APPEND)]);
        assert_eq!(log.held(), vec![]);
    }
}
