//! The Raft log's small metadata: the vote and the last purged log id, in one file beside the
//! segments, replaced whole (write a temporary file, fsync it, rename it over the old one, fsync
//! the directory), so a crash leaves either the old file or the new one, never a mix. It is
//! written only on a vote or a purge, which are rare; the commit index rides in the segments
//! (`segments.rs`) because it changes with every append. It must not hold log entries.

use super::types::{LogId, Vote};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const FILE: &str = "meta";
const TEMP: &str = "meta.tmp";

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub vote: Option<Vote>,
    pub purged: Option<LogId>,
}

impl Meta {
    /// The metadata in `dir`, or the default when none was ever written. A file that exists but
    /// does not decode is an error: it was renamed into place whole, so it is damage.
    pub fn load(dir: &Path) -> io::Result<Meta> {
        let bytes = match std::fs::read(dir.join(FILE)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Meta::default()),
            r => r?,
        };
        let damaged = |why: String| io::Error::other(format!("{}: {why}", dir.join(FILE).display()));
        let (crc, body) = bytes.split_at_checked(4).ok_or_else(|| damaged("too short".into()))?;
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(damaged("checksum does not match".into()));
        }
        ciborium::from_reader(body).map_err(|e| damaged(e.to_string()))
    }

    /// Replaces the file in `dir` with this metadata, durably.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let body = super::types::to_cbor(self);
        let mut bytes = crc32fast::hash(&body).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let temp: PathBuf = dir.join(TEMP);
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, dir.join(FILE))?;
        sync_dir(dir)
    }
}

/// Makes renames, creations and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    #[test]
    fn meta_round_trips_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Meta::load(dir.path()).unwrap(), Meta::default());
        let meta =
            Meta { vote: Some(Vote::new_committed(4, 2)), purged: Some(LogId::new(CommittedLeaderId::new(3, 1), 99)) };
        meta.save(dir.path()).unwrap();
        assert_eq!(Meta::load(dir.path()).unwrap(), meta);
        // A temporary file left by a crash before its rename changes nothing.
        std::fs::write(dir.path().join(TEMP), b"half").unwrap();
        assert_eq!(Meta::load(dir.path()).unwrap(), meta);
        let mut bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(dir.path().join(FILE), &bytes).unwrap();
        assert!(Meta::load(dir.path()).is_err());
    }
}
