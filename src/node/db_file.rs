//! Opens a node's redb files so that a node killed at any moment can start again. redb sizes a
//! new file and writes its header before the magic number that marks it a database; a kill in
//! between leaves a file redb refuses to open or re-create ("Not a redb database"). So a new
//! file is built whole beside its final name and renamed into place. This module only decides
//! where bytes are created; it must not open tables or hide damage to a file that was complete.

use redb::Database;
use std::io;
use std::path::{Path, PathBuf};

/// The database at `path`, created whole first if there is none.
pub fn open(path: &Path) -> io::Result<Database> {
    if !path.exists() {
        create_whole(path, |_| Ok(()))?;
    }
    Database::create(path).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// Builds a fresh database at a temporary name and renames it to `path`; `before_rename` lets
/// a test stop there as a kill would.
fn create_whole(path: &Path, before_rename: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let tmp = temp_name(path);
    // A file left here by an earlier kill was never renamed, so it never held anything.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    drop(Database::create(&tmp).map_err(io::Error::other)?);
    before_rename(&tmp)?;
    std::fs::rename(&tmp, path)?;
    // The rename is durable only once the directory entry is.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".creating");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn write_and_read(db: &Database) -> u64 {
        let tx = db.begin_write().unwrap();
        tx.open_table(T).unwrap().insert("k", 7).unwrap();
        tx.commit().unwrap();
        db.begin_read().unwrap().open_table(T).unwrap().get("k").unwrap().unwrap().value()
    }

    #[test]
    fn a_creation_cut_short_leaves_nothing_that_blocks_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let cut = create_whole(&path, |_| Err(io::Error::other("killed")));
        assert!(cut.is_err());
        assert!(!path.exists(), "nothing appears under the final name until it is whole");
        // What redb leaves when killed mid-creation: a sized file with no magic number.
        std::fs::write(temp_name(&path), vec![0u8; 1 << 20]).unwrap();
        let db = open(&path).unwrap();
        assert_eq!(write_and_read(&db), 7);
        assert!(!temp_name(&path).exists());
    }

    #[test]
    fn an_existing_database_keeps_its_data_and_damage_is_not_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        write_and_read(&open(&path).unwrap());
        let db = open(&path).unwrap();
        assert_eq!(db.begin_read().unwrap().open_table(T).unwrap().get("k").unwrap().unwrap().value(), 7);
        drop(db);
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let e = open(&path).map(|_| ()).expect_err("a complete file that was damaged is an error, not a fresh start");
        assert!(e.to_string().contains("state.redb"), "{e}");
    }
}
