//! Tests of the segment log: records cut at every byte or changed in any byte at the end of the
//! log are dropped whole, damage anywhere else is an error, and truncation, purging, rolling to
//! a new segment and reopening keep exactly the entries they should.

use super::*;

fn id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn body(index: u64, tag: &str) -> Vec<u8> {
    format!("entry {index} {tag}").repeat(1 + index as usize % 3).into_bytes()
}

fn open(dir: &Path, purged: Option<u64>, size: u64) -> io::Result<(Segments, Option<LogId>)> {
    Segments::open(dir, purged.map(|p| id(1, p)), size)
}

/// What a reader sees: index and body of every entry.
fn entries(segs: &Segments) -> Vec<(u64, Vec<u8>)> {
    segs.reader().read(..).unwrap().into_iter().map(|(id, b)| (id.index, b)).collect()
}

fn expected(range: std::ops::Range<u64>, tag: &str) -> Vec<(u64, Vec<u8>)> {
    range.map(|i| (i, body(i, tag))).collect()
}

/// A log of entries 0..n, flushed one by one; returns the byte offset where the last record starts
/// and where it ends, in the only segment.
fn written(dir: &Path, n: u64) -> (usize, usize) {
    let (mut segs, _) = open(dir, None, 1 << 16).unwrap();
    for i in 0..n {
        segs.append(id(1, i), &body(i, "a")).unwrap();
        segs.flush().unwrap();
    }
    let end = segs.segs[0].end as usize;
    (end - HEADER - PREFIX - body(n - 1, "a").len(), end)
}

fn segment_file(dir: &Path) -> PathBuf {
    dir.join(name(1))
}

#[test]
fn a_last_record_cut_at_any_byte_is_dropped_whole_and_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    let (start, end) = written(dir.path(), 5);
    let whole = std::fs::read(segment_file(dir.path())).unwrap();
    for cut in start..=end {
        // As a crash leaves a preallocated file: the bytes after the cut never written (zeros) ...
        let mut zeroed = whole.clone();
        zeroed[cut..end].fill(0);
        // ... and as a file cut short.
        for bytes in [zeroed, whole[..cut].to_vec()] {
            let case = tempfile::tempdir().unwrap();
            std::fs::write(segment_file(case.path()), &bytes).unwrap();
            let (mut segs, _) = open(case.path(), None, 1 << 16).unwrap();
            let n = if cut == end { 5 } else { 4 };
            assert_eq!(entries(&segs), expected(0..n, "a"), "cut at byte {cut} of {start}..{end}");
            // The log goes on after what was recovered, and what was dropped cannot come back.
            segs.append(id(2, n), b"new").unwrap();
            segs.flush().unwrap();
            drop(segs);
            let (segs, _) = open(case.path(), None, 1 << 16).unwrap();
            let mut want = expected(0..n, "a");
            want.push((n, b"new".to_vec()));
            assert_eq!(entries(&segs), want, "cut at byte {cut}, then appended");
        }
    }
}

#[test]
fn a_last_record_with_any_byte_changed_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (start, end) = written(dir.path(), 5);
    let whole = std::fs::read(segment_file(dir.path())).unwrap();
    for at in start..end {
        let mut bytes = whole.clone();
        bytes[at] ^= 0x5a;
        let case = tempfile::tempdir().unwrap();
        std::fs::write(segment_file(case.path()), &bytes).unwrap();
        let (segs, _) = open(case.path(), None, 1 << 16).unwrap();
        assert_eq!(entries(&segs), expected(0..4, "a"), "byte {at} changed");
    }
}

#[test]
fn damage_before_the_last_record_is_an_error_not_a_shorter_log() {
    let dir = tempfile::tempdir().unwrap();
    let (start, _) = written(dir.path(), 5);
    let whole = std::fs::read(segment_file(dir.path())).unwrap();
    // Every byte of every record but the last: changed, or a stretch zeroed from there.
    for at in 0..start {
        for damage in [0, 1] {
            let mut bytes = whole.clone();
            if damage == 0 {
                bytes[at] ^= 0x5a;
            } else {
                bytes[at..(at + 12).min(start)].fill(0);
            }
            if bytes == whole {
                continue;
            }
            let case = tempfile::tempdir().unwrap();
            std::fs::write(segment_file(case.path()), &bytes).unwrap();
            let e = open(case.path(), None, 1 << 16).map(|_| ()).expect_err(&format!("damage at byte {at}"));
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        }
    }
}

#[test]
fn a_bad_record_at_the_end_of_an_earlier_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut segs, _) = open(dir.path(), None, 200).unwrap();
    for i in 0..10 {
        segs.append(id(1, i), &body(i, "a")).unwrap();
        segs.flush().unwrap();
    }
    assert!(segs.segment_count() > 2);
    let first_end = segs.segs[0].end as usize;
    drop(segs);
    let mut bytes = std::fs::read(segment_file(dir.path())).unwrap();
    bytes[first_end - 1] ^= 1;
    std::fs::write(segment_file(dir.path()), &bytes).unwrap();
    assert!(open(dir.path(), None, 200).is_err());
}

#[test]
fn entries_roll_over_segments_truncate_purge_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let size = 200;
    let (mut segs, _) = open(dir.path(), None, size).unwrap();
    for i in 0..20 {
        segs.append(id(1, i), &body(i, "a")).unwrap();
        if i % 3 == 0 {
            segs.flush().unwrap();
        }
    }
    segs.flush().unwrap();
    let many = segs.segment_count();
    assert!(many > 5, "{many} segments");
    assert_eq!(entries(&segs), expected(0..20, "a"));

    // Truncation in the middle of an earlier segment drops the later ones.
    segs.truncate(7).unwrap();
    assert_eq!(segs.last(), Some(id(1, 6)));
    assert!(segs.segment_count() < many);
    assert_eq!(entries(&segs), expected(0..7, "a"));
    drop(segs);
    let (mut segs, _) = open(dir.path(), None, size).unwrap();
    assert_eq!(entries(&segs), expected(0..7, "a"));

    // An append at an index already written replaces it and everything after.
    for i in 7..12 {
        segs.append(id(2, i), &body(i, "b")).unwrap();
    }
    segs.append(id(3, 9), &body(9, "c")).unwrap();
    segs.flush().unwrap();
    let mut want = expected(0..7, "a");
    want.extend(expected(7..9, "b"));
    want.push((9, body(9, "c")));
    assert_eq!(entries(&segs), want);
    assert_eq!(segs.last(), Some(id(3, 9)));

    // Purging drops the segments that hold only purged entries.
    let before = segs.segment_count();
    segs.purge(5).unwrap();
    assert!(segs.segment_count() < before);
    assert_eq!(entries(&segs), want[6..].to_vec());
    drop(segs);
    let (mut segs, _) = open(dir.path(), Some(5), size).unwrap();
    assert_eq!(entries(&segs), want[6..].to_vec());
    assert_eq!(segs.last(), Some(id(3, 9)));

    // A purge beyond the last entry (a snapshot installed) leaves an empty log that goes on
    // after the purge point.
    segs.purge(30).unwrap();
    assert_eq!(entries(&segs), vec![]);
    assert_eq!(segs.last(), None);
    segs.append(id(4, 31), b"after").unwrap();
    segs.flush().unwrap();
    drop(segs);
    let (segs, _) = open(dir.path(), Some(30), size).unwrap();
    assert_eq!(entries(&segs), vec![(31, b"after".to_vec())]);
}

#[test]
fn a_truncation_killed_between_segment_removals_leaves_a_log_that_opens() {
    let size = 200;
    let build = |dir: &Path| {
        let (mut segs, _) = open(dir, None, size).unwrap();
        for i in 0..20 {
            segs.append(id(1, i), &body(i, "a")).unwrap();
            segs.flush().unwrap();
        }
        segs
    };
    let probe = tempfile::tempdir().unwrap();
    let mut segs = build(probe.path());
    let before = segs.segment_count();
    segs.truncate(7).unwrap();
    let removed = before - segs.segment_count();
    assert!(removed >= 3, "the truncation removes several segments: {removed}");

    for kill_after in 1..removed {
        let dir = tempfile::tempdir().unwrap();
        let mut segs = build(dir.path());
        KILL_AFTER_REMOVALS.set(Some(kill_after));
        let killed = segs.truncate(7);
        KILL_AFTER_REMOVALS.set(None);
        assert!(killed.is_err(), "the hook stopped the truncation");
        drop(segs);
        // What the kill left must open, as the log before the truncation cut somewhere after 7.
        let (segs, _) = open(dir.path(), None, size)
            .unwrap_or_else(|e| panic!("killed after {kill_after} of {removed} removals, the log does not open: {e}"));
        let got = entries(&segs);
        assert!(got.len() >= 7, "killed after {kill_after}: {} entries", got.len());
        assert_eq!(got, expected(0..got.len() as u64, "a"), "killed after {kill_after}: a prefix");
    }
}

#[test]
fn a_rollover_killed_while_creating_the_next_segment_loses_nothing() {
    let size = 200;
    let dir = tempfile::tempdir().unwrap();
    let (mut segs, _) = open(dir.path(), None, size).unwrap();
    for i in 0..10 {
        segs.append(id(1, i), &body(i, "a")).unwrap();
        segs.flush().unwrap();
    }
    let next = segs.segs.last().unwrap().seq + 1;
    drop(segs);
    // Killed after the file was made and before it was given its size: empty, or all zeros.
    for made in [vec![], vec![0u8; size as usize]] {
        std::fs::write(dir.path().join(name(next)), &made).unwrap();
        let (mut segs, _) = open(dir.path(), None, size).unwrap();
        assert_eq!(entries(&segs), expected(0..10, "a"), "a {}-byte new segment", made.len());
        segs.append(id(1, 10), &body(10, "a")).unwrap();
        segs.flush().unwrap();
        drop(segs);
        let (mut segs, _) = open(dir.path(), None, size).unwrap();
        assert_eq!(entries(&segs), expected(0..11, "a"), "the log goes on after a {}-byte segment", made.len());
        segs.truncate(10).unwrap();
        drop(segs);
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            if seq_of(&f.file_name().unwrap().to_string_lossy()).is_some_and(|s| s >= next) {
                std::fs::remove_file(f).unwrap();
            }
        }
    }
}

#[test]
fn a_purge_not_yet_applied_to_the_files_is_applied_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut segs, _) = open(dir.path(), None, 200).unwrap();
    for i in 0..10 {
        segs.append(id(1, i), &body(i, "a")).unwrap();
    }
    segs.flush().unwrap();
    drop(segs);
    // The metadata says 6 was purged; the crash came before any segment was deleted.
    let (segs, _) = open(dir.path(), Some(6), 200).unwrap();
    assert_eq!(entries(&segs), expected(7..10, "a"));
}

#[test]
fn the_commit_mark_survives_a_reopen_unless_its_entry_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut segs, committed) = open(dir.path(), None, 1 << 16).unwrap();
    assert_eq!(committed, None);
    for i in 0..4 {
        segs.append(id(1, i), &body(i, "a")).unwrap();
    }
    segs.mark_committed(id(1, 2)).unwrap();
    segs.flush().unwrap();
    drop(segs);
    let (mut segs, committed) = open(dir.path(), None, 1 << 16).unwrap();
    assert_eq!(committed, Some(id(1, 2)));
    assert_eq!(entries(&segs), expected(0..4, "a"));
    // A mark written after entries that are later truncated goes with them; an earlier one stays.
    segs.append(id(1, 4), &body(4, "a")).unwrap();
    segs.mark_committed(id(1, 4)).unwrap();
    segs.flush().unwrap();
    segs.truncate(4).unwrap();
    drop(segs);
    let (_, committed) = open(dir.path(), None, 1 << 16).unwrap();
    assert_eq!(committed, Some(id(1, 2)));
}

#[test]
fn a_gap_in_the_indexes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut segs, _) = open(dir.path(), None, 1 << 16).unwrap();
    segs.append(id(1, 0), b"zero").unwrap();
    assert!(segs.append(id(1, 2), b"two").is_err());
}

/// Not a test of correctness: the cost of one small append with its fdatasync, here and with a
/// redb commit, as BENCHMARKS.md reports. `cargo test --release --lib fsync_cost -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn fsync_cost() {
    use redb::{Database, TableDefinition};
    const T: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
    let rounds = 2000u64;
    let payload = vec![7u8; 300];
    let median = |mut v: Vec<std::time::Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 99 / 100])
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut segs, _) = open(&dir.path().join("seg"), None, SEGMENT_BYTES).unwrap();
    let mut seg_times = vec![];
    for i in 0..rounds {
        let t = std::time::Instant::now();
        segs.append(id(1, i), &payload).unwrap();
        segs.flush().unwrap();
        seg_times.push(t.elapsed());
    }
    let db = Database::create(dir.path().join("log.redb")).unwrap();
    let mut redb_times = vec![];
    for i in 0..rounds {
        let t = std::time::Instant::now();
        let tx = db.begin_write().unwrap();
        tx.open_table(T).unwrap().insert(i, payload.as_slice()).unwrap();
        tx.commit().unwrap();
        redb_times.push(t.elapsed());
    }
    let (s50, s99) = median(seg_times);
    let (r50, r99) = median(redb_times);
    println!(
        "append of 300 B + fsync, {rounds} rounds: segments p50 {s50:?} p99 {s99:?}; redb p50 {r50:?} p99 {r99:?}"
    );
}
