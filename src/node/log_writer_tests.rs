//! Tests of the log's writer thread: entries sent ahead, held, claimed, replaced and truncated,
//! read back from the segments as they reached the disk.

use super::*;
use crate::node::log_ops::Flushed;
use crate::node::segments::{Reader, SEGMENT_BYTES};
use crate::node::types::{from_cbor, to_cbor as enc, Entry};
use openraft::{CommittedLeaderId, EntryPayload, ErrorSubject};
use tokio::sync::oneshot;

fn id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// An entry encoded as the log stores it, tagged (in its timestamp) so tests can tell which
/// copy of an entry reached the disk.
fn encoded(term: u64, index: u64, tag: u64) -> Encoded {
    let payload = EntryPayload::Normal(crate::proto::LogCommand { at_ms: tag, ops: Default::default() });
    (id(term, index), enc(&Entry { log_id: id(term, index), payload }))
}

struct Log {
    reader: Reader,
    tx: mpsc::Sender<WriteOp>,
    held: Held,
    _dir: tempfile::TempDir,
}

impl Log {
    fn open(vote_term: u64) -> Log {
        let dir = tempfile::tempdir().unwrap();
        let (segs, _) = Segments::open(dir.path(), None, SEGMENT_BYTES).unwrap();
        let reader = segs.reader();
        let meta = Meta { vote: Some(Vote::new_committed(vote_term, 1)), purged: None };
        let (tx, rx) = mpsc::channel();
        let held = Held::default();
        let writer = Writer::new(segs, dir.path().to_path_buf(), meta, Arc::default(), held.clone());
        std::thread::spawn(move || writer.run(rx));
        Log { reader, tx, held, _dir: dir }
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
        self.reader
            .read(..)
            .unwrap()
            .into_iter()
            .map(|(_, bytes)| {
                let entry: Entry = from_cbor(&bytes, ErrorSubject::Logs).unwrap();
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
