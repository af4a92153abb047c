//! How one record of the segment log (`segments.rs`) is framed on disk, and how a scan tells a
//! record, the end of what was written, and damage apart. A record is `[len u32][crc u32]
//! [payload]` (little-endian; the CRC-32 covers the length's four bytes and the payload), so a
//! record cut at any byte or with any byte changed fails its check instead of being misread.
//! A segment is preallocated with zeros, so a zero header marks the end of what was written and
//! no valid record has length zero. This module knows nothing of Raft or files: it encodes,
//! parses, and looks for valid records past a bad one; what damage means is `segments.rs`'s call.

/// Bytes before a record's payload.
pub const HEADER: usize = 8;

/// The largest payload a record may claim. Log entries are capped far below this (SPEC §5), so
/// a length beyond it is damage, not a record.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// What lies at one offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole record whose checksum holds; the next one starts `HEADER + payload.len()` on.
    Record(&'a [u8]),
    /// A zero header (or fewer than `HEADER` bytes, all zero): nothing was written here.
    End,
    /// Bytes that are not a valid record: cut short, a checksum that fails, a wild length.
    Bad,
}

/// Appends one framed record to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    assert!(!payload.is_empty() && payload.len() <= MAX_PAYLOAD, "record payload of {} bytes", payload.len());
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(&len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn checksum(len: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// Reads what lies at `off` in `buf`, the segment's bytes.
pub fn parse(buf: &[u8], off: usize) -> Parsed<'_> {
    let rest = buf.get(off..).unwrap_or_default();
    if rest.len() < HEADER {
        return if rest.iter().all(|b| *b == 0) { Parsed::End } else { Parsed::Bad };
    }
    let len: [u8; 4] = rest[..4].try_into().expect("four bytes");
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("four bytes"));
    let n = u32::from_le_bytes(len) as usize;
    if n == 0 && crc == 0 {
        return Parsed::End;
    }
    if n == 0 || n > MAX_PAYLOAD || n > rest.len() - HEADER {
        return Parsed::Bad;
    }
    let payload = &rest[HEADER..HEADER + n];
    if checksum(&len, payload) != crc {
        return Parsed::Bad;
    }
    Parsed::Record(payload)
}

/// Whether a valid record starts anywhere at or after `from`. A bad record followed by a valid
/// one is damage inside the log, not a write cut short at its end. Runs only when a scan met
/// something bad, so it may try every offset.
pub fn any_record_from(buf: &[u8], from: usize) -> bool {
    (from..buf.len().saturating_sub(HEADER)).any(|off| matches!(parse(buf, off), Parsed::Record(_)))
}

/// Where the bytes after `from` stop being zeros: the end of whatever a cut-short write left.
pub fn nonzero_end(buf: &[u8], from: usize) -> usize {
    buf.iter().rposition(|b| *b != 0).map_or(from, |p| (p + 1).max(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![];
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    #[test]
    fn records_read_back_and_zeros_end_them() {
        let mut buf = records(&[b"one", b"two"]);
        buf.extend_from_slice(&[0; 64]);
        assert_eq!(parse(&buf, 0), Parsed::Record(b"one"));
        assert_eq!(parse(&buf, HEADER + 3), Parsed::Record(b"two"));
        assert_eq!(parse(&buf, 2 * (HEADER + 3)), Parsed::End);
        assert_eq!(parse(&buf, buf.len() - 3), Parsed::End);
        assert_eq!(parse(&buf, buf.len()), Parsed::End);
    }

    #[test]
    fn a_record_cut_or_changed_anywhere_is_bad_never_another_record() {
        let whole = records(&[b"the payload of a record"]);
        for cut in 1..whole.len() {
            // Cut short, then as a preallocated file leaves it: zeros after the cut.
            let short = &whole[..cut];
            assert_eq!(parse(short, 0), Parsed::Bad, "cut at {cut}");
            let mut zeroed = short.to_vec();
            zeroed.resize(whole.len() + 16, 0);
            assert_eq!(parse(&zeroed, 0), Parsed::Bad, "cut at {cut}, zeros after");
        }
        for at in 0..whole.len() {
            for bit in 0..8 {
                let mut flipped = whole.clone();
                flipped[at] ^= 1 << bit;
                assert_eq!(parse(&flipped, 0), Parsed::Bad, "bit {bit} of byte {at}");
            }
        }
    }

    #[test]
    fn a_valid_record_after_a_bad_one_is_found() {
        let mut buf = records(&[b"first", b"second"]);
        buf[HEADER] ^= 0xff;
        assert_eq!(parse(&buf, 0), Parsed::Bad);
        assert!(any_record_from(&buf, 1));
        let mut tail = records(&[b"only"]);
        tail[HEADER + 1] ^= 1;
        tail.resize(100, 0);
        assert!(!any_record_from(&tail, 1));
        assert_eq!(nonzero_end(&tail, 0), HEADER + 4);
    }
}
