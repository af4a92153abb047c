//! The replicated state machine, stored in redb: keys with revisions, plus the last applied log
//! id and membership. `apply` is deterministic: it reads nothing but the entries and the stored
//! state (time comes from `LogCommand::at_ms`, never the clock).
//!
//! Applied state is committed without fsync (the Raft log already holds every entry durably) and
//! made durable every `DURABLE_EVERY` entries; snapshots are written to their own file with
//! fsync. After a crash the state machine reopens at its last durable point — or at a newer
//! snapshot, which is reinstalled — and openraft re-applies the committed tail from the log.

use super::db_file;
use super::events::Events;
use super::metrics::Metrics;
use super::snapshot::{SnapshotData, SnapshotStore};
use super::systems::{self, Sys};
use super::types::{
    from_cbor, io_err, to_cbor as enc, ApplyResult, Entry, EntryResult, LogId, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig,
};
use crate::error::{Error, ErrorKind};
use crate::proto::{KeyValue, Op, Response, Versioned};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, Snapshot};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(super) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const DURABLE_EVERY: u64 = 2000;

/// Something apply noticed that people watching `events` care about: (kind, text).
type Note = (&'static str, String);

/// Shared by openraft (which applies) and the node's services (which read).
pub struct Store {
    pub(super) db: Database,
    snapshots: SnapshotStore,
    applied_index: AtomicU64,
    pub(super) keys: AtomicU64,
    since_durable: AtomicU64,
    metrics: Arc<Metrics>,
    /// Log time of the earliest lease, wait or visibility timeout (`u64::MAX`: none).
    next_deadline: AtomicU64,
    /// The applied index, for requests that wait on the state (lock waits, chat follow).
    pub(super) applied_tx: tokio::sync::watch::Sender<u64>,
    /// Where the systems' notes go; only the leader records them, so each shows once.
    events: Arc<Events>,
}

#[derive(Clone)]
pub struct StateMachine {
    store: Arc<Store>,
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    from_cbor(b, ErrorSubject::StateMachine)
}

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e)
}

/// A stored value: the revision it was written at, then the bytes.
pub(super) fn pack(revision: u64, value: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&revision.to_le_bytes());
    v.extend_from_slice(value.as_bytes());
    v
}

pub(super) fn unpack(bytes: &[u8]) -> Versioned {
    let (rev, value) = bytes.split_at(8.min(bytes.len()));
    Versioned {
        revision: u64::from_le_bytes(rev.try_into().unwrap_or([0; 8])),
        value: String::from_utf8_lossy(value).into_owned(),
    }
}

fn get_meta<T: serde::de::DeserializeOwned + Default>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<T, StorageError> {
    match t.get(key).map_err(sm_err)? {
        Some(v) => dec(v.value()),
        None => Ok(T::default()),
    }
}

impl StateMachine {
    pub fn open(dir: &Path, metrics: Arc<Metrics>, events: Arc<Events>) -> Result<Self, StorageError> {
        let db = db_file::open(&dir.join("state.redb")).map_err(sm_err)?;
        let tx = db.begin_write().map_err(sm_err)?;
        tx.open_table(KV).map_err(sm_err)?;
        tx.open_table(META).map_err(sm_err)?;
        systems::create_all(&tx).map_err(sm_err)?;
        tx.commit().map_err(sm_err)?;
        let store = Arc::new(Store {
            db,
            snapshots: SnapshotStore::new(dir),
            applied_index: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            since_durable: AtomicU64::new(0),
            metrics,
            next_deadline: AtomicU64::new(u64::MAX),
            applied_tx: tokio::sync::watch::channel(0).0,
            events,
        });
        let sm = StateMachine { store };
        // A snapshot newer than the durable state means we crashed after taking it; the log
        // before it may be purged, so the snapshot is the only source for that prefix.
        let (applied, _) = sm.read_applied()?;
        if let Some((meta, data)) = sm.store.snapshots.load()? {
            if meta.last_log_id > applied {
                sm.install(&meta, &data)?;
            }
        }
        sm.refresh_counters()?;
        Ok(sm)
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    fn read_applied(&self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let tx = self.store.db.begin_read().map_err(sm_err)?;
        let meta = tx.open_table(META).map_err(sm_err)?;
        Ok((get_meta(&meta, "applied")?, get_meta(&meta, "membership")?))
    }

    fn refresh_counters(&self) -> Result<(), StorageError> {
        let tx = self.store.db.begin_read().map_err(sm_err)?;
        let kv = tx.open_table(KV).map_err(sm_err)?;
        self.store.keys.store(kv.len().map_err(sm_err)?, Ordering::Relaxed);
        let meta = tx.open_table(META).map_err(sm_err)?;
        let applied: Option<LogId> = get_meta(&meta, "applied")?;
        self.store.applied_index.store(applied.map_or(0, |l| l.index), Ordering::Relaxed);
        let due = systems::next_deadline(&tx.open_table(systems::DEADLINES).map_err(sm_err)?).map_err(sm_err)?;
        self.store.next_deadline.store(due.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.store.applied_tx.send_replace(applied.map_or(0, |l| l.index));
        Ok(())
    }

    /// Applies a batch in one transaction and commits it here; returns each entry's results and
    /// the systems' notes (grants, expiries, …) for the caller to record.
    #[cfg(test)]
    pub(super) fn apply_batch(
        &self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<(Vec<EntryResult>, Vec<Note>), StorageError> {
        let staged = self.stage(entries)?;
        self.commit(staged)
    }

    fn commit(&self, staged: Staged) -> Result<(Vec<EntryResult>, Vec<Note>), StorageError> {
        let (tx, staged) = staged.take_tx();
        tx.commit().map_err(sm_err)?;
        Ok(staged.finish(&self.store))
    }

    /// Applies a batch in one transaction, left for the caller to commit.
    fn stage(&self, entries: impl IntoIterator<Item = Entry>) -> Result<Staged, StorageError> {
        let started = std::time::Instant::now();
        let mut tx = self.store.db.begin_write().map_err(sm_err)?;
        let mut results = Vec::new();
        let mut last = None;
        let mut keys = 0i64;
        let mut notes = Vec::new();
        {
            let mut kv = tx.open_table(KV).map_err(sm_err)?;
            let mut meta = tx.open_table(META).map_err(sm_err)?;
            let mut revision: u64 = get_meta(&meta, "revision")?;
            let mut membership = None;
            // The systems' tables are opened only for entries that touch them or when a
            // deadline is due, so a batch of plain writes costs what it did before. Whether an
            // entry advances log time depends only on the entry and the state, never on how
            // entries happen to be batched, so every node computes the same.
            let mut sys: Option<Sys> = None;
            let mut due = self.store.next_deadline.load(Ordering::Relaxed);
            for entry in entries {
                last = Some(entry.log_id);
                results.push(match &entry.payload {
                    EntryPayload::Blank => vec![],
                    EntryPayload::Normal(cmd) => {
                        let touches = cmd.ops.iter().any(systems::is_system) || due <= cmd.at_ms;
                        if touches && sys.is_none() {
                            sys = Some(Sys::open(&tx).map_err(sm_err)?);
                        }
                        let sys = sys.as_mut().filter(|_| touches);
                        apply_entry(&mut kv, sys, &mut revision, &mut keys, cmd, &mut due).map_err(sm_err)?
                    }
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(entry.log_id), m.clone()));
                        vec![]
                    }
                });
            }
            meta.insert("applied", enc(&last).as_slice()).map_err(sm_err)?;
            meta.insert("revision", enc(&revision).as_slice()).map_err(sm_err)?;
            if let Some(m) = membership {
                meta.insert("membership", enc(&m).as_slice()).map_err(sm_err)?;
            }
            if let Some(mut sys) = sys {
                notes = std::mem::take(&mut sys.notes);
                sys.close().map_err(sm_err)?;
            }
            self.store.next_deadline.store(due, Ordering::Relaxed);
        }
        let n = results.len() as u64;
        let durable = self.store.since_durable.fetch_add(n, Ordering::Relaxed) + n >= DURABLE_EVERY;
        if durable {
            self.store.since_durable.store(0, Ordering::Relaxed);
            tx.set_quick_repair(true);
        } else {
            tx.set_durability(Durability::None).map_err(sm_err)?;
        }
        let applied = Applied { results, notes, last, keys, started };
        Ok(Staged { tx, durable, applied })
    }
}

/// A batch applied inside a transaction not yet committed.
struct Staged {
    tx: redb::WriteTransaction,
    /// The commit is fsync'd (every `DURABLE_EVERY` entries).
    durable: bool,
    applied: Applied,
}

/// What a batch did, published once its transaction committed.
struct Applied {
    results: Vec<EntryResult>,
    notes: Vec<Note>,
    last: Option<super::types::LogId>,
    keys: i64,
    started: std::time::Instant,
}

impl Staged {
    fn take_tx(self) -> (redb::WriteTransaction, Applied) {
        (self.tx, self.applied)
    }
}

impl Applied {
    fn finish(self, store: &Store) -> (Vec<EntryResult>, Vec<Note>) {
        if let Some(l) = self.last {
            store.applied_index.store(l.index, Ordering::Relaxed);
            store.applied_tx.send_replace(l.index);
            store.metrics.trace.applied(l.index);
        }
        store.keys.fetch_add(self.keys as u64, Ordering::Relaxed);
        store.metrics.apply(self.started.elapsed());
        (self.results, self.notes)
    }
}

impl Store {
    pub fn get(&self, key: &str) -> crate::error::Result<Option<Versioned>> {
        let tx = self.db.begin_read().map_err(internal)?;
        let kv = tx.open_table(KV).map_err(internal)?;
        Ok(kv.get(key).map_err(internal)?.map(|v| unpack(v.value())))
    }

    pub fn scan(&self, prefix: &str, limit: usize) -> crate::error::Result<Vec<KeyValue>> {
        let tx = self.db.begin_read().map_err(internal)?;
        let kv = tx.open_table(KV).map_err(internal)?;
        let mut out = Vec::new();
        for item in kv.range(prefix..).map_err(internal)? {
            let (k, v) = item.map_err(internal)?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            let Versioned { value, revision } = unpack(v.value());
            out.push(KeyValue { key: k.value().to_string(), value, revision });
        }
        Ok(out)
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Relaxed)
    }

    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::Relaxed)
    }

    /// Log time at which the earliest lease, wait or visibility timeout falls due.
    pub fn next_deadline(&self) -> Option<u64> {
        Some(self.next_deadline.load(Ordering::Relaxed)).filter(|&d| d != u64::MAX)
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("state machine: {e}"))
}

/// Applies one operation inside the batch's write transaction.
fn apply_op(
    kv: &mut redb::Table<&str, &[u8]>,
    revision: &mut u64,
    keys: &mut i64,
    op: &Op,
) -> Result<ApplyResult, redb::Error> {
    Ok(match op {
        Op::Put { key, value } => {
            *revision += 1;
            if kv.insert(key.as_str(), pack(*revision, value).as_slice())?.is_none() {
                *keys += 1;
            }
            Ok(Response::Written { revision: *revision })
        }
        Op::Del { key } => {
            let existed = kv.remove(key.as_str())?.is_some();
            if existed {
                *revision += 1;
                *keys -= 1;
            }
            Ok(Response::Deleted { revision: *revision, existed })
        }
        Op::Cas { key, expected, new } => {
            let current = kv.get(key.as_str())?.map(|v| unpack(v.value()).value);
            if &current == expected {
                *revision += 1;
                if kv.insert(key.as_str(), pack(*revision, new).as_slice())?.is_none() {
                    *keys += 1;
                }
                Ok(Response::Cas { revision: *revision, swapped: true, current: Some(new.clone()) })
            } else {
                Err(Error::new(ErrorKind::Conflict, format!("{key} is {}, not {}", show(&current), show(expected))))
            }
        }
        other => Err(Error::internal(format!("{other:?} applied without the systems' tables"))),
    })
}

/// Applies one entry's operations: keys here, the rest in `systems` with log time advanced to
/// the entry's first. `due` tracks the earliest deadline as the batch changes it.
fn apply_entry(
    kv: &mut redb::Table<&str, &[u8]>,
    mut sys: Option<&mut Sys>,
    revision: &mut u64,
    keys: &mut i64,
    cmd: &crate::proto::LogCommand,
    due: &mut u64,
) -> Result<Vec<ApplyResult>, redb::Error> {
    if let Some(sys) = sys.as_deref_mut() {
        systems::begin_entry(sys, cmd.at_ms)?;
    }
    let mut out = Vec::with_capacity(cmd.ops.len());
    for op in cmd.ops.iter() {
        out.push(apply_any(kv, sys.as_deref_mut(), revision, keys, op)?);
    }
    if let Some(sys) = sys {
        *due = systems::next_deadline(&sys.deadlines)?.unwrap_or(u64::MAX);
    }
    Ok(out)
}

/// One operation of any kind. A request id seen before gets its first outcome back, and the
/// operation it wraps is not applied again.
fn apply_any(
    kv: &mut redb::Table<&str, &[u8]>,
    sys: Option<&mut Sys>,
    revision: &mut u64,
    keys: &mut i64,
    op: &Op,
) -> Result<ApplyResult, redb::Error> {
    match (op, sys) {
        (Op::Once { id, op }, Some(sys)) => match systems::once::recall(sys, id)? {
            systems::once::Seen::Before(first) => Ok(first),
            systems::once::Seen::New(ticket) => {
                let outcome = apply_any(kv, Some(&mut *sys), revision, keys, op)?;
                systems::once::remember(sys, ticket, &outcome)?;
                Ok(outcome)
            }
        },
        (op, Some(sys)) if systems::is_system(op) => systems::apply_op(sys, op),
        (op, _) => apply_op(kv, revision, keys, op),
    }
}

fn show(v: &Option<String>) -> String {
    v.as_ref().map_or("absent".into(), |s| format!("{s:?}"))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        self.read_applied()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<EntryResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let staged = self.stage(entries)?;
        let (results, notes) = if staged.durable {
            // The fsync runs off the runtime thread, which must keep answering heartbeats.
            let (tx, staged) = staged.take_tx();
            off_thread(move || tx.commit().map_err(sm_err)).await?;
            staged.finish(&self.store)
        } else {
            self.commit(staged)?
        };
        if self.store.events.leading() {
            for (kind, text) in notes {
                self.store.events.push(kind, text);
            }
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let (sm, meta) = (self.clone(), meta.clone());
        off_thread(move || {
            let bytes = snapshot.into_inner();
            let data: SnapshotData = dec(&bytes)?;
            sm.store.snapshots.save(&meta, &bytes)?;
            sm.install(&meta, &data)
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self
            .store
            .snapshots
            .load_raw()?
            .map(|(meta, bytes)| Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) }))
    }
}

/// Runs storage work that reads or fsyncs a whole file on the blocking pool: the node serves
/// everything else on one thread (`app::serve`), and a snapshot's fsync there stalled
/// heartbeats and AppendEntries answers on every node at once (all snapshot at one index).
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work).await.map_err(sm_err)?
}

/// Taking and installing whole-state snapshots.
#[path = "state_snapshot.rs"]
mod state_snapshot;

#[cfg(test)]
#[path = "apply_tests.rs"]
mod apply_tests;
