//! Anti-entropy on a node's stored state, outside Raft: the Merkle leaves `verify` compares, the
//! keys of given leaves, deliberate damage for `corrupt`, and the restore `repair` asks for. None
//! of this goes through the log, so damage never spreads to other nodes — and neither does a
//! repair, which is why a repair must never undo a commit: no later entry would redo it. It must
//! not decide which copy is right (the coordinator's majority vote does), only refuse a change it
//! cannot prove safe.
//!
//! **Why a repair cannot roll a commit back.** The store revision counts the key writes applied
//! (every put, successful cas and delete of a present key adds one; nothing else changes the
//! keys), so it says exactly how far a copy of the keys is, and a key's own revision says at
//! which store revision it was last written (`corrupt` damages bytes, never revisions). The
//! coordinator sends the source's copy of some keys — present or absent — with the store revision
//! `R` it read them at. That copy of key `k` is the committed state of `k` at every store revision
//! from `k`'s revision (for an absent key: from `R`, since when it was deleted is unknown) up to
//! `R`. This node, at store revision `N`, changes `k` only where that proves the source right now:
//! - both copies carry one revision with different bytes: one write, so ours is damaged (fix);
//! - ours carries a later revision than the source's copy, or one past `R`: we applied a write the
//!   source's view does not include, and a revision is never lowered (keep);
//! - `N` inside the source's span: the source's state of `k` is the state at `N` (fix);
//! - `N` past `R` with our copy present (at a revision up to `R`): no write or delete of `k`
//!   happened here since `R`, or our copy would carry a later revision or be gone (fix);
//! - otherwise — `N` before the source's write, or `N` past `R` with `k` absent here, which a
//!   delete after `R` would explain — the node cannot tell and leaves `k` for a later repair.
//!
//! Moving a copy *ahead* of the node's own log is refused as firmly as moving it back: a node
//! whose keys ran ahead would decide the entries in between (a `cas`) unlike the others. The check
//! and the change share one redb write transaction, which `apply` cannot interleave with, so no
//! write lands between them. (Reading the source linearizably through the leader was the other
//! option; it still needs this check on the node, which then suffices alone.)

use super::service::{Outcome, Service};
use super::state_machine::{internal, pack, unpack, Store, KV};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::merkle::{leaf_of, Hash, LeafHasher};
use crate::proto::{KeyValue, Request, Response, Versioned};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The state machine's metadata table; `apply` keeps the store revision under `revision`.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// What a repair does with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The copies agree.
    Same,
    /// Take the source's copy.
    Fix,
    /// Ours carries a later revision: never lowered.
    Keep,
    /// This node is not at a point where the source's copy is provably current.
    Unsure,
}

/// The rule of the module doc: `local` and `source` are the two copies of one key (`None`:
/// absent), `node_rev` and `source_rev` the store revisions they were read at.
pub(super) fn decide(local: Option<&Versioned>, source: Option<&Versioned>, node_rev: u64, source_rev: u64) -> Verdict {
    if local == source {
        return Verdict::Same;
    }
    // A source copy newer than the source's own store revision is not a state it was read at.
    if source.is_some_and(|s| s.revision > source_rev) {
        return Verdict::Unsure;
    }
    match (local, source) {
        (Some(l), _) if l.revision > source_rev => return Verdict::Keep,
        (Some(l), Some(s)) if l.revision == s.revision => return Verdict::Fix,
        (Some(l), Some(s)) if l.revision > s.revision => return Verdict::Keep,
        _ => {}
    }
    let since = source.map_or(source_rev, |s| s.revision);
    if (since..=source_rev).contains(&node_rev) || (node_rev > source_rev && local.is_some()) {
        Verdict::Fix
    } else {
        Verdict::Unsure
    }
}

/// How many keys a repair fixed, kept because ours is newer, and left because it could not tell.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Repaired {
    pub fixed: u32,
    pub kept: u32,
    pub unsure: u32,
}

fn store_revision(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<u64> {
    match meta.get("revision").map_err(internal)? {
        Some(v) => ciborium::from_reader(v.value()).map_err(internal),
        None => Ok(0),
    }
}

impl Store {
    /// The 256 leaf hashes of this node's keys, and how many keys there are.
    pub fn merkle_leaves(&self) -> Result<(Vec<Hash>, u64)> {
        let tx = self.db.begin_read().map_err(internal)?;
        let kv = tx.open_table(KV).map_err(internal)?;
        let mut hasher = LeafHasher::default();
        let mut n = 0;
        for item in kv.iter().map_err(internal)? {
            let (k, v) = item.map_err(internal)?;
            let Versioned { value, revision } = unpack(v.value());
            hasher.add(k.value(), &value, revision);
            n += 1;
        }
        Ok((hasher.finish(), n))
    }

    /// Every key (with value and revision) that falls in one of `leaves`, and the store
    /// revision they were read at.
    pub fn leaf_keys(&self, leaves: &[u32]) -> Result<(u64, Vec<KeyValue>)> {
        let tx = self.db.begin_read().map_err(internal)?;
        let revision = store_revision(&tx.open_table(META).map_err(internal)?)?;
        let kv = tx.open_table(KV).map_err(internal)?;
        let mut out = Vec::new();
        for item in kv.iter().map_err(internal)? {
            let (k, v) = item.map_err(internal)?;
            if leaves.contains(&(leaf_of(k.value()) as u32)) {
                let Versioned { value, revision } = unpack(v.value());
                out.push(KeyValue { key: k.value().to_string(), value, revision });
            }
        }
        Ok((revision, out))
    }

    /// Damages this node's copy of `key` (the demo's bit rot), durably. The revision stays.
    pub fn corrupt(&self, key: &str) -> Result<String> {
        let tx = self.db.begin_write().map_err(internal)?;
        let damaged = {
            let mut kv = tx.open_table(KV).map_err(internal)?;
            let current = kv.get(key).map_err(internal)?.map(|v| unpack(v.value()));
            let Some(Versioned { value, revision }) = current else {
                return Err(Error::new(ErrorKind::NotFound, format!("no key {key} on this node")));
            };
            let damaged: String = value.chars().rev().chain("~bitrot".chars()).collect();
            kv.insert(key, pack(revision, &damaged).as_slice()).map_err(internal)?;
            damaged
        };
        tx.commit().map_err(internal)?;
        Ok(damaged)
    }

    /// Takes the source's copy of `set` (present there) and `remove` (absent there), read at
    /// store revision `source_rev`, wherever `decide` allows; durably.
    pub(super) fn repair(&self, set: &[KeyValue], remove: &[String], source_rev: u64) -> Result<Repaired> {
        let tx = self.db.begin_write().map_err(internal)?;
        let mut done = Repaired::default();
        let mut added = 0i64;
        {
            let node_rev = store_revision(&tx.open_table(META).map_err(internal)?)?;
            let mut kv = tx.open_table(KV).map_err(internal)?;
            let present =
                set.iter().map(|e| (e.key.as_str(), Some(Versioned { value: e.value.clone(), revision: e.revision })));
            let absent = remove.iter().map(|k| (k.as_str(), None));
            for (key, source) in present.chain(absent) {
                let local = kv.get(key).map_err(internal)?.map(|v| unpack(v.value()));
                match decide(local.as_ref(), source.as_ref(), node_rev, source_rev) {
                    Verdict::Same => {}
                    Verdict::Keep => done.kept += 1,
                    Verdict::Unsure => done.unsure += 1,
                    Verdict::Fix => {
                        done.fixed += 1;
                        match source {
                            Some(s) => {
                                kv.insert(key, pack(s.revision, &s.value).as_slice()).map_err(internal)?;
                                added += local.is_none() as i64;
                            }
                            None => {
                                kv.remove(key).map_err(internal)?;
                                added -= 1;
                            }
                        }
                    }
                }
            }
        }
        tx.commit().map_err(internal)?;
        // A delta, not a recount: `apply` adjusts the same counter by its own deltas.
        if added >= 0 {
            self.keys.fetch_add(added as u64, Ordering::Relaxed);
        } else {
            self.keys.fetch_sub(added.unsigned_abs(), Ordering::Relaxed);
        }
        Ok(done)
    }
}

/// Runs a store call on a blocking thread: a Merkle scan or an fsync must not hold up the
/// runtime thread that answers heartbeats.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store)).await.map_err(internal)?
}

impl Service {
    /// Answers `Merkle`, `LeafKeys`, `Corrupt` and `Repair`.
    pub(super) async fn anti_entropy(&self, req: &Request) -> Outcome {
        let r = match req {
            Request::Merkle => blocking(&self.store, |s| s.merkle_leaves())
                .await
                .map(|(leaves, keys)| Response::Merkle { leaves, keys }),
            Request::LeafKeys { leaves } => {
                let leaves = leaves.clone();
                blocking(&self.store, move |s| s.leaf_keys(&leaves))
                    .await
                    .map(|(revision, keys)| Response::LeafKeys { revision, keys })
            }
            Request::Corrupt { key } => {
                let k = key.clone();
                let r = blocking(&self.store, move |s| s.corrupt(&k)).await;
                if r.is_ok() {
                    self.events.push("damage", format!("stored copy of {key} damaged behind Raft's back"));
                }
                r.map(|value| Response::Damaged { value })
            }
            Request::Repair { set, remove, revision } => {
                let (set, remove, rev) = (set.clone(), remove.clone(), *revision);
                let r = blocking(&self.store, move |s| s.repair(&set, &remove, rev)).await;
                if let Ok(d) = &r {
                    let mut text = format!("{} keys repaired from the majority's copy", d.fixed);
                    if d.kept + d.unsure > 0 {
                        text += &format!(
                            "; {} left alone (newer here), {} left for a later repair (not comparable yet)",
                            d.kept, d.unsure
                        );
                    }
                    self.events.push("repaired", text);
                }
                r.map(|d| Response::Repaired { fixed: d.fixed, kept: d.kept, unsure: d.unsure })
            }
            other => Err(Error::internal(format!("{other:?} is not an anti-entropy request"))),
        };
        Outcome::Done(r)
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;
    use super::*;

    fn v(value: &str, revision: u64) -> Option<Versioned> {
        Some(Versioned { value: value.into(), revision })
    }

    /// `decide` over owned copies, for brevity.
    fn d(local: Option<Versioned>, source: Option<Versioned>, node_rev: u64, source_rev: u64) -> Verdict {
        decide(local.as_ref(), source.as_ref(), node_rev, source_rev)
    }

    #[test]
    fn a_damaged_copy_is_restored_whatever_either_side_applied_since() {
        // `corrupt` keeps the revision: same write, different bytes.
        assert_eq!(d(v("~bitrot", 7), v("paid", 7), 9, 12), Fix);
        assert_eq!(d(v("~bitrot", 7), v("paid", 7), 30, 12), Fix);
        assert_eq!(d(v("~bitrot", 7), v("paid", 7), 7, 12), Fix);
        assert_eq!(d(v("paid", 7), v("paid", 7), 3, 12), Same);
        assert_eq!(d(None, None, 3, 12), Same);
    }

    #[test]
    fn a_copy_written_after_the_sources_view_is_never_rolled_back() {
        // The leader applied rev 15 of this key; the majority was read at 12.
        assert_eq!(d(v("new", 15), v("old", 10), 15, 12), Keep);
        // A key created after the source's view: the source has not got it yet.
        assert_eq!(d(v("fresh", 14), None, 20, 12), Keep);
        // A lower revision at the source than ours is never taken, even inside its view.
        assert_eq!(d(v("ours", 11), v("theirs", 9), 12, 12), Keep);
    }

    #[test]
    fn a_key_deleted_here_after_the_sources_view_is_not_brought_back() {
        // Absent here, present at the source: a delete between 12 and 20 would explain it.
        assert_eq!(d(None, v("old", 10), 20, 12), Unsure);
        // At exactly the source's revision nothing can have happened in between.
        assert_eq!(d(None, v("old", 10), 12, 12), Fix);
        // Inside the span where the source's copy held (written at 10, read at 12).
        assert_eq!(d(None, v("old", 10), 11, 12), Fix);
    }

    #[test]
    fn a_node_behind_the_source_is_not_moved_ahead_of_its_own_log() {
        // The source's copy was written at 10; this node has only applied up to 8.
        assert_eq!(d(v("older", 4), v("newer", 10), 8, 12), Unsure);
        assert_eq!(d(None, v("newer", 10), 8, 12), Unsure);
        // Absent at the source, present here, node behind: the delete may still be coming.
        assert_eq!(d(v("x", 4), None, 8, 12), Unsure);
    }

    #[test]
    fn a_copy_the_source_proves_stale_is_fixed() {
        // The node is at or past the source's write and nothing touched the key since.
        assert_eq!(d(v("older", 4), v("newer", 10), 11, 12), Fix);
        assert_eq!(d(v("older", 4), v("newer", 10), 25, 12), Fix);
        // A key the committed state at 12 no longer has, written here at 4 and not since.
        assert_eq!(d(v("x", 4), None, 12, 12), Fix);
        assert_eq!(d(v("x", 4), None, 25, 12), Fix);
    }

    #[test]
    fn a_source_copy_beyond_its_own_revision_is_ignored() {
        assert_eq!(d(v("x", 4), v("y", 13), 20, 12), Unsure);
    }

    mod on_a_store {
        use super::super::*;
        use crate::node::events::Events;
        use crate::node::metrics::Metrics;
        use crate::node::state_machine::StateMachine;
        use crate::proto::{LogCommand, Op};
        use openraft::storage::RaftStateMachine;
        use openraft::{CommittedLeaderId, EntryPayload, LogId};

        async fn apply(sm: &mut StateMachine, index: u64, ops: Vec<Op>) {
            let log_id = LogId::new(CommittedLeaderId::new(1, 1), index);
            let entry =
                openraft::Entry { log_id, payload: EntryPayload::Normal(LogCommand { at_ms: 1, ops: ops.into() }) };
            sm.apply(vec![entry]).await.unwrap();
        }

        fn put(key: &str, value: &str) -> Op {
            Op::Put { key: key.into(), value: value.into() }
        }

        fn kv(key: &str, value: &str, revision: u64) -> KeyValue {
            KeyValue { key: key.into(), value: value.into(), revision }
        }

        fn got(store: &Store, key: &str) -> Option<(String, u64)> {
            store.get(key).unwrap().map(|v| (v.value, v.revision))
        }

        #[tokio::test]
        async fn repair_restores_damage_and_keeps_what_was_applied_after_the_sources_view() {
            let dir = tempfile::tempdir().unwrap();
            let mut sm =
                StateMachine::open(dir.path(), Arc::new(Metrics::default()), Arc::new(Events::new(1))).unwrap();
            let store = sm.store();
            apply(&mut sm, 1, vec![put("a", "1"), put("b", "2"), put("gone", "x")]).await;
            apply(&mut sm, 2, vec![Op::Del { key: "gone".into() }]).await;
            let all: Vec<u32> = (0..256).collect();
            let (at, keys) = store.leaf_keys(&all).unwrap();
            assert_eq!(at, 4, "three puts and a delete");
            assert_eq!(keys, vec![kv("a", "1", 1), kv("b", "2", 2)]);

            // The majority's copy, read at revision 4; then this node damages a, applies b again
            // (revision 5) and creates c (revision 6).
            let source = keys;
            store.corrupt("a").unwrap();
            apply(&mut sm, 3, vec![put("b", "3"), put("c", "new")]).await;
            let done = store.repair(&source, &["c".into(), "gone".into()], 4).unwrap();
            assert_eq!(done, Repaired { fixed: 1, kept: 2, unsure: 0 });
            assert_eq!(got(&store, "a"), Some(("1".into(), 1)), "the damage is gone");
            assert_eq!(got(&store, "b"), Some(("3".into(), 5)), "the later write stays");
            assert_eq!(got(&store, "c"), Some(("new".into(), 6)), "a key newer than the source's view stays");
            assert_eq!(got(&store, "gone"), None);
            assert_eq!(store.keys(), 3);

            // A node at the source's revision holding a key the source deleted loses it, and
            // one missing a key the source holds gets it back.
            let (at, _) = store.leaf_keys(&all).unwrap();
            let done = store.repair(&[kv("gone", "x", 3)], &["c".into()], at).unwrap();
            assert_eq!(done, Repaired { fixed: 2, kept: 0, unsure: 0 });
            assert_eq!(got(&store, "gone"), Some(("x".into(), 3)));
            assert_eq!(got(&store, "c"), None);
            assert_eq!(store.keys(), 3);
        }
    }
}
