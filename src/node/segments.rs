//! The Raft log's entries on disk: append-only segment files in one directory, each
//! preallocated so that an fdatasync after an append need not change the file's size, each
//! record framed by `record.rs` and carrying its log id. Appends are buffered and reach the disk
//! with one write and one fdatasync per `flush`, which the writer thread (`log_writer.rs`) calls
//! once per batch. The commit index rides along as its own small record.
//!
//! Opening scans every segment. In the last one, a record cut short or failing its checksum,
//! with no valid record after it, is a write a crash interrupted: it is dropped and zeroed. Any
//! other bad record, or entries whose indexes do not follow each other, is damage and an error:
//! the log is never silently shortened in the middle, and never misread. Truncation zeroes what
//! it removes before anything new is written there, so stale records cannot reappear after it.
//!
//! This module owns the segment files and nothing else: the vote and purge point live in
//! `log_meta.rs`, and what may be appended when (entries sent ahead, held, claimed) is the
//! writer's business. Only the writer thread holds `Segments`; readers share a `Reader`.

use super::log_meta::sync_dir;
use super::record::{self, Parsed, HEADER};
use super::types::LogId;
use openraft::CommittedLeaderId;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How large a segment is made. Snapshots purge the log every few thousand entries, so a node
/// holds a few segments at most.
pub const SEGMENT_BYTES: u64 = 16 << 20;

const ENTRY: u8 = 1;
const COMMITTED: u8 = 2;
/// A record's payload: kind, index, term, leader node, then the entry's bytes (none for a
/// commit mark).
const PREFIX: usize = 25;

/// Where one entry's record lies.
#[derive(Clone, Copy, Debug)]
struct Pos {
    id: LogId,
    seq: u64,
    off: u64,
    /// The record's payload length.
    len: u32,
}

struct Segment {
    seq: u64,
    file: Arc<File>,
    /// Where the next record goes.
    end: u64,
    /// The indexes of the first and last entries in it, purged or not.
    first: Option<u64>,
    last: Option<u64>,
}

/// What readers see: durable entries not purged, and the files holding them.
#[derive(Default)]
struct Shared {
    files: BTreeMap<u64, Arc<File>>,
    pos: BTreeMap<u64, Pos>,
}

/// Reads durable entries while the writer goes on writing.
#[derive(Clone)]
pub struct Reader {
    shared: Arc<Mutex<Shared>>,
}

pub struct Segments {
    dir: PathBuf,
    size: u64,
    /// Ascending by sequence number; the last is the one appended to. Never empty.
    segs: Vec<Segment>,
    /// Every entry not purged, including those not yet flushed.
    pos: BTreeMap<u64, Pos>,
    /// The index of the last entry written, purged or not.
    last_index: Option<u64>,
    /// Records for the last segment, from its `end` on, not yet written.
    pending: Vec<u8>,
    pending_pos: Vec<Pos>,
    shared: Arc<Mutex<Shared>>,
}

#[cfg(test)]
thread_local! {
    /// Test hook: `remove` stops, as a kill would, once this many files are gone.
    static KILL_AFTER_REMOVALS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn killed_after(removed: usize) -> bool {
    KILL_AFTER_REMOVALS.get() == Some(removed)
}

#[cfg(not(test))]
fn killed_after(_: usize) -> bool {
    false
}

fn damaged(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("raft log damaged: {what}"))
}

fn payload(kind: u8, id: &LogId, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(PREFIX + body.len());
    p.push(kind);
    p.extend_from_slice(&id.index.to_le_bytes());
    p.extend_from_slice(&id.leader_id.term.to_le_bytes());
    p.extend_from_slice(&id.leader_id.node_id.to_le_bytes());
    p.extend_from_slice(body);
    p
}

/// The kind and log id a record's payload starts with; `None` when it is too short or of an
/// unknown kind, which with a valid checksum means someone else's bytes.
fn head(p: &[u8]) -> Option<(u8, LogId)> {
    if p.len() < PREFIX || !matches!(p[0], ENTRY | COMMITTED) {
        return None;
    }
    let n = |at: usize| u64::from_le_bytes(p[at..at + 8].try_into().expect("eight bytes"));
    Some((p[0], LogId::new(CommittedLeaderId::new(n(9), n(17)), n(1))))
}

fn name(seq: u64) -> String {
    format!("seg-{seq:010}.log")
}

fn seq_of(file_name: &str) -> Option<u64> {
    file_name.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok()
}

/// Creates segment `seq`, its blocks allocated up front, and makes its name durable.
fn create(dir: &Path, seq: u64, size: u64) -> io::Result<Segment> {
    let file = File::options().read(true).write(true).create_new(true).open(dir.join(name(seq)))?;
    // SAFETY: fallocate on a file descriptor we own, with plain integer arguments.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size as libc::off_t) };
    if r != 0 {
        // A file system without fallocate still gets a file of the full size (sparse).
        file.set_len(size)?;
    }
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(Segment { seq, file: Arc::new(file), end: 0, first: None, last: None })
}

/// Zeroes `from..to`, last chunk first: a kill part way leaves records followed by zeros (a
/// shorter log, maybe with a torn last record), never zeros followed by records, which the next
/// open would rightly call damage.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(to.saturating_sub(from)) as usize];
    let mut at = to;
    while at > from {
        let n = (at - from).min(CHUNK);
        at -= n;
        file.write_all_at(&zeros[..n as usize], at)?;
    }
    Ok(())
}

/// Closes removed segments on a thread of their own. The last close of an unlinked file is
/// when the kernel frees its 16 MiB of cached pages, which kept the writer from the next
/// append for 15 ms. What was removed is already unlinked and its directory synced.
fn close_elsewhere(files: Vec<Arc<File>>) {
    if files.is_empty() {
        return;
    }
    let _ = std::thread::Builder::new().name("dsh-log-close".into()).spawn(move || drop(files));
}

impl Segments {
    /// Opens (or creates) the log in `dir`, dropping a torn tail and entries at or below
    /// `purged`. Returns the segments and the last commit mark that names an entry still here.
    pub fn open(dir: &Path, purged: Option<LogId>, size: u64) -> io::Result<(Segments, Option<LogId>)> {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let mut seqs = vec![];
        for e in std::fs::read_dir(dir)? {
            if let Some(seq) = e?.file_name().to_str().and_then(seq_of) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut segs = Segments {
            dir: dir.to_path_buf(),
            size,
            segs: vec![],
            pos: BTreeMap::new(),
            last_index: None,
            pending: vec![],
            pending_pos: vec![],
            shared: Arc::default(),
        };
        let mut committed = None;
        for (k, seq) in seqs.iter().enumerate() {
            let is_last = k + 1 == seqs.len();
            committed = segs.scan(*seq, is_last)?.or(committed);
        }
        if segs.segs.is_empty() {
            segs.segs.push(create(dir, 1, size)?);
        }
        if let Some(p) = purged {
            segs.purge(p.index)?;
        }
        let last = segs.pos.last_key_value().map(|(_, p)| p.id).or(purged);
        let committed = committed.filter(|c| Some(c.index) <= last.map(|l| l.index));
        let mut shared = segs.shared.lock().unwrap();
        shared.pos = segs.pos.clone();
        shared.files = segs.segs.iter().map(|s| (s.seq, s.file.clone())).collect();
        drop(shared);
        Ok((segs, committed))
    }

    /// Reads segment `seq` into the index; returns its last commit mark.
    fn scan(&mut self, seq: u64, is_last: bool) -> io::Result<Option<LogId>> {
        let path = self.dir.join(name(seq));
        let file = File::options().read(true).write(true).open(&path)?;
        let buf = std::fs::read(&path)?;
        let at = |off: usize| format!("{} at byte {off}", path.display());
        let (mut off, mut committed, mut first, mut last) = (0usize, None, None, None);
        let garbage_end = loop {
            match record::parse(&buf, off) {
                Parsed::Record(p) => {
                    let (kind, id) = head(p).ok_or_else(|| damaged(format!("unknown record in {}", at(off))))?;
                    if kind == COMMITTED {
                        committed = Some(id);
                    } else {
                        if let Some(prev) = self.last_index.filter(|prev| id.index != prev + 1) {
                            return Err(damaged(format!("entry {} follows entry {prev} in {}", id.index, at(off))));
                        }
                        let pos = Pos { id, seq, off: off as u64, len: p.len() as u32 };
                        self.pos.insert(id.index, pos);
                        self.last_index = Some(id.index);
                        first = first.or(Some(id.index));
                        last = Some(id.index);
                    }
                    off += HEADER + p.len();
                }
                // Nothing was written here. Bytes further on are either the rest of a write cut
                // short (the end of the log) or records after a zeroed stretch (damage).
                Parsed::End | Parsed::Bad => {
                    let end = record::nonzero_end(&buf, off);
                    if end > off && record::any_record_from(&buf[..end], off + 1) {
                        return Err(damaged(format!("a bad record before valid ones in {}", at(off))));
                    }
                    if end > off && !is_last {
                        return Err(damaged(format!("a bad record in {}, which is not the last segment", at(off))));
                    }
                    break end;
                }
            }
        };
        if garbage_end > off {
            // A write the crash cut short: never acknowledged, so dropped, and zeroed so that
            // what is appended here next cannot be mistaken for part of it.
            write_zeros(&file, off as u64, garbage_end as u64)?;
            file.sync_data()?;
        }
        self.segs.push(Segment { seq, file: Arc::new(file), end: off as u64, first, last });
        Ok(committed)
    }

    pub fn reader(&self) -> Reader {
        Reader { shared: self.shared.clone() }
    }

    /// The id of the last entry not purged, flushed or not.
    pub fn last(&self) -> Option<LogId> {
        self.pos.last_key_value().map(|(_, p)| p.id)
    }

    fn active(&mut self) -> &mut Segment {
        self.segs.last_mut().expect("a log always has a segment")
    }

    /// Queues an entry. An index at or below the last one written first truncates the log
    /// there (durably), so one index never has two records.
    pub fn append(&mut self, id: LogId, body: &[u8]) -> io::Result<()> {
        if self.last_index.is_some_and(|l| id.index <= l) {
            self.truncate(id.index)?;
        }
        // A gap would make the next open refuse the log; refuse it now instead.
        if let Some(l) = self.last_index.filter(|l| id.index != l + 1) {
            return Err(io::Error::other(format!("append of entry {} after entry {l}", id.index)));
        }
        self.queue(&payload(ENTRY, &id, body))
    }

    /// Queues a commit mark.
    pub fn mark_committed(&mut self, id: LogId) -> io::Result<()> {
        self.queue(&payload(COMMITTED, &id, &[]))
    }

    /// Frames `payload` into the pending bytes, first moving to a new segment if it would not
    /// fit in this one.
    fn queue(&mut self, payload: &[u8]) -> io::Result<()> {
        let used = self.segs.last().map_or(0, |s| s.end) + self.pending.len() as u64;
        if used > 0 && used + (HEADER + payload.len()) as u64 > self.size {
            self.roll()?;
        }
        let off = self.segs.last().map_or(0, |s| s.end) + self.pending.len() as u64;
        record::encode(payload, &mut self.pending);
        let seq = self.segs.last().map_or(0, |s| s.seq);
        if let Some((ENTRY, id)) = head(payload) {
            let pos = Pos { id, seq, off, len: payload.len() as u32 };
            self.pos.insert(id.index, pos);
            self.pending_pos.push(pos);
            self.last_index = Some(id.index);
            let seg = self.active();
            seg.first = seg.first.or(Some(id.index));
            seg.last = Some(id.index);
        }
        Ok(())
    }

    /// Finishes the current segment durably and starts the next. The old one is synced first,
    /// so a crash can leave a torn record only in the last segment.
    fn roll(&mut self) -> io::Result<()> {
        self.flush()?;
        let seq = self.segs.last().map_or(0, |s| s.seq) + 1;
        let seg = create(&self.dir, seq, self.size)?;
        self.shared.lock().unwrap().files.insert(seq, seg.file.clone());
        self.segs.push(seg);
        Ok(())
    }

    /// Writes what is queued with one write and one fdatasync; only then can readers see it.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let seg = self.active();
        seg.file.write_all_at(&pending, seg.end)?;
        seg.file.sync_data()?;
        seg.end += pending.len() as u64;
        let mut shared = self.shared.lock().unwrap();
        for p in self.pending_pos.drain(..) {
            shared.pos.insert(p.id.index, p);
        }
        Ok(())
    }

    /// Whether anything is queued.
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Removes the entries at and after `index`, durably: later segments deleted, the rest of
    /// the one holding `index` zeroed.
    pub fn truncate(&mut self, index: u64) -> io::Result<()> {
        self.flush()?;
        let Some(at) = self.pos.get(&index).copied() else {
            return Ok(());
        };
        // Newest first: a kill part way leaves the log a prefix of itself, never a gap.
        let later: Vec<u64> = self.segs.iter().rev().map(|s| s.seq).filter(|s| *s > at.seq).collect();
        self.remove(&later)?;
        let seg = self.active();
        write_zeros(&seg.file, at.off, seg.end)?;
        seg.file.sync_data()?;
        seg.end = at.off;
        if seg.first.is_some_and(|f| f < index) {
            seg.last = Some(index - 1);
        } else {
            (seg.first, seg.last) = (None, None);
        }
        self.pos.split_off(&index);
        self.shared.lock().unwrap().pos.split_off(&index);
        self.last_index = self.segs.iter().rev().find_map(|s| s.last);
        Ok(())
    }

    /// Forgets entries at and below `index` (the purge point is already durable in the
    /// metadata) and deletes the segments that hold nothing else.
    pub fn purge(&mut self, index: u64) -> io::Result<()> {
        self.flush()?;
        self.pos = self.pos.split_off(&(index + 1));
        {
            let mut shared = self.shared.lock().unwrap();
            shared.pos = shared.pos.split_off(&(index + 1));
        }
        let done: Vec<u64> = self.segs.iter().filter(|s| s.last.is_some_and(|l| l <= index)).map(|s| s.seq).collect();
        let active = self.segs.last().map(|s| s.seq);
        let next = active.map_or(1, |a| a + 1);
        if done.contains(&active.unwrap_or(0)) {
            // The segment appended to holds only purged entries: the log goes on in a new one.
            let seg = create(&self.dir, next, self.size)?;
            self.shared.lock().unwrap().files.insert(next, seg.file.clone());
            self.segs.push(seg);
        }
        self.remove(&done)?;
        self.last_index = self.segs.iter().rev().find_map(|s| s.last);
        Ok(())
    }

    fn remove(&mut self, seqs: &[u64]) -> io::Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        for (i, seq) in seqs.iter().enumerate() {
            if killed_after(i) {
                return Err(io::Error::other("killed part way through removing segments (test hook)"));
            }
            std::fs::remove_file(self.dir.join(name(*seq)))?;
        }
        sync_dir(&self.dir)?;
        let mut closing: Vec<Arc<File>> = Vec::new();
        self.segs.retain(|s| {
            let keep = !seqs.contains(&s.seq);
            if !keep {
                closing.push(s.file.clone());
            }
            keep
        });
        let mut shared = self.shared.lock().unwrap();
        closing.extend(seqs.iter().filter_map(|seq| shared.files.remove(seq)));
        drop(shared);
        close_elsewhere(closing);
        Ok(())
    }

    /// How many segment files there are, for tests.
    #[cfg(test)]
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }
}

impl Reader {
    /// The bytes of the durable entries in `range`, in order, each checked against its record.
    pub fn read(&self, range: impl RangeBounds<u64>) -> io::Result<Vec<(LogId, Vec<u8>)>> {
        let wanted: Vec<(Arc<File>, Pos)> = {
            let shared = self.shared.lock().unwrap();
            let files = &shared.files;
            let file = |p: &Pos| files.get(&p.seq).cloned().map(|f| (f, *p));
            let missing = |p: &Pos| damaged(format!("entry {} is in segment {}, which is gone", p.id.index, p.seq));
            shared.pos.range(range).map(|(_, p)| file(p).ok_or_else(|| missing(p))).collect::<io::Result<_>>()?
        };
        let mut out = Vec::with_capacity(wanted.len());
        for (file, p) in wanted {
            let mut buf = vec![0; HEADER + p.len as usize];
            file.read_exact_at(&mut buf, p.off)?;
            let Parsed::Record(payload) = record::parse(&buf, 0) else {
                return Err(damaged(format!("entry {} in segment {} at byte {}", p.id.index, p.seq, p.off)));
            };
            if head(payload) != Some((ENTRY, p.id)) {
                return Err(damaged(format!("entry {} in segment {} is another record", p.id.index, p.seq)));
            }
            out.push((p.id, payload[PREFIX..].to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "segments_tests.rs"]
mod tests;
