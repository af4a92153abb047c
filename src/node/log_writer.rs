//! The Raft log's writer thread, the only code that writes the log's files (the segments of
//! `segments.rs` and the metadata of `log_meta.rs`). It writes whatever queued up while the disk
//! was busy with one write and one fdatasync and only then tells openraft the appends are
//! flushed.
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

use super::log_meta::Meta;
use super::log_ops::{digest, hold_from_env, Digest, Encoded, Held, WriteOp};
use super::metrics::Metrics;
use super::segments::Segments;
use super::types::{LogId, Vote};
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub(super) struct Writer {
    log: Segments,
    /// Where the metadata file lives, and what it holds.
    dir: PathBuf,
    meta: Meta,
    metrics: Arc<Metrics>,
    /// The last entry on disk, including entries sent ahead.
    last: Option<LogId>,
    /// The term of the stored vote.
    term: u64,
    /// Entries on disk that came ahead and openraft has not appended yet, by index.
    ahead: BTreeMap<u64, (LogId, Digest)>,
    /// What of `ahead` is durable, for the log store.
    held: Held,
    /// After a failed write the files may hold less than this writer believes; every later
    /// request is refused with the first error, and openraft stops the node.
    failed: Option<String>,
    /// Test hook only (`HOLD_LEADER_FSYNC` in `log_ops.rs`): how long the leader's own appends of
    /// client writes wait before their write; also makes the writer announce on stderr what it holds.
    hold: Option<Duration>,
}

impl Writer {
    pub fn new(log: Segments, dir: PathBuf, meta: Meta, metrics: Arc<Metrics>, held: Held) -> Self {
        let term = meta.vote.map_or(0, |v| v.leader_id().get_term());
        let last = log.last().or(meta.purged);
        Writer {
            log,
            dir,
            meta,
            metrics,
            last,
            term,
            ahead: BTreeMap::new(),
            held,
            failed: None,
            hold: hold_from_env(),
        }
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
            let done = match op {
                WriteOp::Stop => return,
                op if op.batches() => {
                    // Everything queued behind this write rides on the same fsync.
                    let mut batch = vec![op];
                    while let Ok(op) = rx.try_recv() {
                        if op.batches() {
                            batch.push(op);
                        } else {
                            next = Some(op);
                            break;
                        }
                    }
                    self.write_batch(batch);
                    continue;
                }
                WriteOp::Truncate(index, done) => (self.guard(|w| w.truncate(index)), done),
                WriteOp::Purge(upto, done) => (self.guard(|w| w.purge(upto)), done),
                WriteOp::Vote(vote, done) => (self.guard(|w| w.vote(vote)), done),
                _ => unreachable!("batched ops are handled above"),
            };
            let _ = done.1.send(done.0);
        }
    }

    /// Runs one write unless an earlier one failed, and remembers a failure.
    fn guard(&mut self, f: impl FnOnce(&mut Self) -> io::Result<()>) -> Result<(), String> {
        if let Some(e) = &self.failed {
            return Err(format!("the log failed earlier: {e}"));
        }
        f(self).map_err(|e| {
            self.failed = Some(e.to_string());
            e.to_string()
        })
    }

    fn vote(&mut self, vote: Vote) -> io::Result<()> {
        Meta { vote: Some(vote), ..self.meta }.save(&self.dir)?;
        self.meta.vote = Some(vote);
        self.term = vote.leader_id().get_term();
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> io::Result<()> {
        // The purge point is durable before any segment goes, so a crash in between only
        // leaves segments the next open deletes.
        Meta { purged: Some(upto), ..self.meta }.save(&self.dir)?;
        self.meta.purged = Some(upto);
        self.log.purge(upto.index)?;
        self.ahead.retain(|i, _| *i > upto.index);
        self.last = self.last.max(Some(upto));
        self.publish();
        Ok(())
    }

    fn truncate(&mut self, index: u64) -> io::Result<()> {
        self.log.truncate(index)?;
        self.ahead.split_off(&index);
        self.publish();
        self.last = self.log.last().or(self.meta.purged);
        Ok(())
    }

    fn write_batch(&mut self, batch: Vec<WriteOp>) {
        let started = std::time::Instant::now();
        let mut callbacks = Vec::new();
        let mut committed = None;
        let mut wrote = false;
        let (mut lead, mut came_ahead) = (None, false);
        let r = self.guard(|w| {
            for op in batch {
                match op {
                    WriteOp::Append(entries, c, callback, leads) => {
                        committed = c.or(committed);
                        callbacks.push(callback);
                        if leads {
                            lead = entries.last().map(|(id, _)| *id);
                        }
                        w.append(entries)?;
                    }
                    WriteOp::Ahead { term, prev, entries } => {
                        let before = w.last;
                        w.write_ahead(term, prev, entries)?;
                        came_ahead |= w.last != before;
                    }
                    WriteOp::Claim(claimed) => {
                        for (id, d) in claimed {
                            if w.ahead.get(&id.index) == Some(&(id, d)) {
                                w.ahead.remove(&id.index);
                            }
                        }
                    }
                    _ => unreachable!("only appends and claims are batched"),
                }
            }
            // Entries that were all on disk already need no write, hence no fsync.
            if w.log.is_dirty() {
                wrote = true;
                if let Some(c) = committed {
                    w.log.mark_committed(c)?;
                }
                if let (Some(hold), Some(id)) = (w.hold, lead) {
                    eprintln!(
                        "dsh test hook: leader holds its fsync up to index {} (term {}) for {} ms",
                        id.index,
                        id.leader_id.term,
                        hold.as_millis()
                    );
                    std::thread::sleep(hold);
                }
                w.log.flush()?;
            }
            Ok(())
        });
        if let (Some(_), true, Ok(()), Some(id)) = (self.hold, came_ahead, &r, self.last) {
            eprintln!("dsh test hook: ahead durable up to index {} (term {})", id.index, id.leader_id.term);
        }
        if r.is_err() {
            // Nothing held can be trusted to be on disk.
            self.ahead.clear();
        }
        self.publish();
        // The metric is of disk writes; a batch of hints already held wrote nothing.
        if wrote {
            self.metrics.append(started.elapsed());
        }
        for callback in callbacks {
            callback(r.clone().map_err(std::io::Error::other));
        }
    }

    fn append(&mut self, entries: Vec<Encoded>) -> io::Result<()> {
        for (id, bytes) in entries {
            if self.ahead.get(&id.index).is_some_and(|held| *held == (id, digest(&bytes))) {
                // These very bytes are on disk already.
                self.ahead.remove(&id.index);
                continue;
            }
            // Anything held from here on is replaced, including different bytes under this id;
            // the segments truncate there before writing.
            self.ahead.split_off(&id.index);
            self.log.append(id, &bytes)?;
            self.last = Some(id);
        }
        Ok(())
    }

    fn write_ahead(&mut self, term: u64, prev: Option<LogId>, entries: Vec<Encoded>) -> io::Result<()> {
        // Entries from a leader we have not voted for yet (or no longer follow), or that do not
        // extend our log exactly, are left to replication, which sorts out any difference.
        let first = prev.map_or(0, |p| p.index + 1);
        let extends = entries.iter().enumerate().all(|(k, (id, _))| id.index == first + k as u64);
        if term != self.term || prev != self.last || !extends || entries.iter().any(|(id, _)| id.leader_id.term != term)
        {
            return Ok(());
        }
        for (id, bytes) in entries {
            self.log.append(id, &bytes)?;
            self.ahead.insert(id.index, (id, digest(&bytes)));
            self.last = Some(id);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "log_writer_tests.rs"]
mod tests;
