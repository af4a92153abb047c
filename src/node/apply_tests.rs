//! Deterministic tests of the state machine's apply, as golden scripts in the spirit of toydb's:
//! each file under `tests/golden/apply/` is a list of `> command` lines (log entries with their
//! log time, or a look at the state), each followed by what it produced. The runner replays the
//! commands on a fresh state machine and compares the whole transcript with the file; with
//! `DSH_GOLDEN_UPDATE=1` it rewrites the file instead, so a reviewer reads the change as a diff.
//!
//! Commands:
//! - `at MS: OP; OP …` — one log entry stamped `MS`; `&&` joins entries into one apply batch.
//!   OPs: `put K V`, `del K`, `cas K EXPECTED|- NEW`, `chat ID FROM TEXT`, `acquire NAME OWNER
//!   ttl=MS wait=MS [shared]`, `release NAME OWNER`, `push Q ITEM`, `pop Q vis=MS`, `ack Q ID`,
//!   `tick`, and `once CLIENT:SEQ[/DONE_BELOW] OP` for an operation carrying a request id.
//! - `keys`, `chat`, `locks`, `queues`, `deadlines`, `once`: the state as it stands.
//! - `snapshot`: builds a snapshot and goes on with a fresh state machine that installed it.
//! - `reopen`: goes on with the same files opened again, as after a restart.

use super::StateMachine;
use crate::node::events::Events;
use crate::node::metrics::Metrics;
use crate::node::systems::{self, DEADLINES};
use crate::node::types::{Entry, LogId};
use crate::proto::{LogCommand, Op, RequestId, Response};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, RaftSnapshotBuilder};
use redb::{ReadableDatabase, ReadableTable};
use std::sync::Arc;

struct Harness {
    dirs: Vec<tempfile::TempDir>,
    sm: StateMachine,
    index: u64,
}

fn open(dir: &std::path::Path) -> StateMachine {
    StateMachine::open(dir, Arc::new(Metrics::default()), Arc::new(Events::new(1))).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sm = open(dir.path());
        Harness { dirs: vec![dir], sm, index: 0 }
    }

    fn run(&mut self, cmd: &str) -> Vec<String> {
        match cmd.trim() {
            "keys" => self.keys(),
            "chat" => self.chat(),
            "locks" => self.locks(),
            "queues" => self.queues(),
            "deadlines" => self.deadlines(),
            "once" => self.once(),
            "snapshot" => self.snapshot(),
            "reopen" => {
                let dir = self.dirs.last().unwrap().path().to_path_buf();
                // redb allows one open database per file: close ours before opening it again.
                let spare = tempfile::tempdir().unwrap();
                drop(std::mem::replace(&mut self.sm, open(spare.path())));
                self.sm = open(&dir);
                vec![format!("applied up to {}", self.sm.store.applied_index())]
            }
            entries => self.apply(entries),
        }
    }

    fn apply(&mut self, text: &str) -> Vec<String> {
        let mut batch = Vec::new();
        for entry in text.split("&&") {
            let (at, ops) = entry
                .trim()
                .strip_prefix("at ")
                .and_then(|e| e.split_once(':'))
                .unwrap_or_else(|| panic!("`{entry}`: expected `at MS: OP; …` or a look at the state"));
            let cmd = LogCommand {
                at_ms: at.trim().parse().unwrap(),
                ops: ops.split(';').map(|op| parse_op(&op.split_whitespace().collect::<Vec<_>>())).collect(),
            };
            self.index += 1;
            let log_id = LogId::new(CommittedLeaderId::new(1, 1), self.index);
            batch.push(Entry { log_id, payload: EntryPayload::Normal(cmd) });
        }
        let (results, notes) = self.sm.apply_batch(batch).unwrap();
        let mut out: Vec<String> = results.into_iter().flatten().map(|r| show(&r)).collect();
        out.extend(notes.into_iter().map(|(kind, text)| format!("note {kind}: {text}")));
        out
    }

    fn keys(&self) -> Vec<String> {
        let kv = self.sm.store.scan("", usize::MAX).unwrap();
        kv.into_iter().map(|e| format!("{} = {:?} (revision {})", e.key, e.value, e.revision)).collect()
    }

    fn chat(&self) -> Vec<String> {
        let (messages, _) = self.sm.store.chat_log(0, usize::MAX, false).unwrap();
        let d = self.sm.store.chat_digest().unwrap();
        let mut out: Vec<String> = messages
            .iter()
            .map(|m| format!("[seq={}] {}: {} (id {}, at {})", m.seq, m.from, m.text, m.id, m.at_ms))
            .collect();
        out.push(format!("count {}, last seq {}, gaps {}", d.count, d.last_seq, d.gaps));
        out
    }

    fn locks(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in self.sm.store.lock_list().unwrap() {
            let holders: Vec<String> = l
                .holders
                .iter()
                .map(|h| {
                    let mode = if h.shared { "shared" } else { "exclusive" };
                    format!("{} {mode} token {} [{}, {})", h.owner, h.token, h.granted_ms, h.expires_ms)
                })
                .collect();
            let waiters: Vec<String> =
                l.waiters.iter().map(|w| format!("{} until {}", w.owner, w.deadline_ms)).collect();
            out.push(format!("{}: held by {}; waiting: {}", l.name, list(&holders), list(&waiters)));
        }
        out
    }

    fn queues(&self) -> Vec<String> {
        let stats = self.sm.store.queue_stats().unwrap();
        stats.iter().map(|q| format!("{q:?}")).collect()
    }

    fn deadlines(&self) -> Vec<String> {
        let tx = self.sm.store.db.begin_read().unwrap();
        let t = tx.open_table(DEADLINES).unwrap();
        let mut out = Vec::new();
        for item in t.iter().unwrap() {
            let (k, _) = item.unwrap();
            let (at, what) = k.value();
            out.push(format!("{at} {}", what.replace('\0', "/")));
        }
        out
    }

    fn once(&self) -> Vec<String> {
        let tx = self.sm.store.db.begin_read().unwrap();
        systems::once::dump(&tx).unwrap()
    }

    fn snapshot(&mut self) -> Vec<String> {
        let snap = block_on(self.sm.build_snapshot()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut fresh = open(dir.path());
        block_on(fresh.install_snapshot(&snap.meta, snap.snapshot)).unwrap();
        self.sm = fresh;
        self.dirs.push(dir);
        vec![format!("installed a snapshot up to {}", self.sm.store.applied_index())]
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn show(r: &Result<Response, crate::error::Error>) -> String {
    match r {
        Ok(r) => format!("{r:?}"),
        Err(e) => format!("error {e}"),
    }
}

fn flag(words: &[&str], name: &str) -> u64 {
    let prefix = format!("{name}=");
    let v = words.iter().find_map(|w| w.strip_prefix(prefix.as_str()));
    v.unwrap_or_else(|| panic!("{words:?}: missing {name}=MS")).parse().unwrap()
}

fn parse_op(w: &[&str]) -> Op {
    let s = |i: usize| w.get(i).unwrap_or_else(|| panic!("{w:?}: too few words")).to_string();
    match w.first().copied() {
        Some("put") => Op::Put { key: s(1), value: s(2) },
        Some("del") => Op::Del { key: s(1) },
        Some("cas") => Op::Cas { key: s(1), expected: Some(s(2)).filter(|e| e != "-"), new: s(3) },
        Some("chat") => Op::ChatSend { id: s(1).parse().unwrap(), from: s(2), text: w[3..].join(" ") },
        Some("acquire") => Op::LockAcquire {
            name: s(1),
            owner: s(2),
            shared: w.contains(&"shared"),
            ttl_ms: flag(w, "ttl"),
            wait_ms: flag(w, "wait"),
        },
        Some("release") => Op::LockRelease { name: s(1), owner: s(2) },
        Some("push") => Op::QueuePush { queue: s(1), item: s(2) },
        Some("pop") => Op::QueuePop { queue: s(1), visibility_ms: flag(w, "vis") },
        Some("ack") => Op::QueueAck { queue: s(1), id: s(2).parse().unwrap() },
        Some("tick") => Op::Tick,
        Some("once") => {
            let id = s(1);
            let (client, rest) = id.split_once(':').unwrap_or_else(|| panic!("{id}: expected CLIENT:SEQ[/DONE]"));
            let (seq, done) = rest.split_once('/').unwrap_or((rest, "0"));
            let id = RequestId {
                client: client.parse().unwrap(),
                seq: seq.parse().unwrap(),
                done_below: done.parse().unwrap(),
            };
            Op::Once { id, op: Box::new(parse_op(&w[2..])) }
        }
        _ => panic!("{w:?}: unknown operation"),
    }
}

/// Replays `tests/golden/apply/NAME.txt` and compares (or, with `DSH_GOLDEN_UPDATE=1`, rewrites).
fn golden(name: &str) {
    let path = format!("{}/tests/golden/apply/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut h = Harness::new();
    let mut out = String::new();
    for line in script.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            out.push_str(line);
            out.push('\n');
            for l in h.run(cmd) {
                out.push_str(&l);
                out.push('\n');
            }
        } else if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    if out == script {
        return;
    }
    if std::env::var_os("DSH_GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, &out).unwrap();
        return;
    }
    let first = script
        .lines()
        .zip(out.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(script.lines().count().min(out.lines().count()));
    panic!(
        "{path} differs from line {} on (DSH_GOLDEN_UPDATE=1 rewrites it):\n  expected: {:?}\n  actual:   {:?}\n--- actual transcript\n{out}",
        first + 1,
        script.lines().nth(first),
        out.lines().nth(first)
    );
}

#[test]
fn keys_revisions_cas_and_delete() {
    golden("keys");
}

#[test]
fn chat_numbers_densely_and_recognises_a_resent_id() {
    golden("chat");
}

#[test]
fn locks_fifo_tokens_expiry_by_log_time_and_deadlock() {
    golden("locks");
}

#[test]
fn queues_redeliver_after_visibility_and_forget_acked_items() {
    golden("queues");
}

#[test]
fn a_request_id_applies_once_and_answers_repeats_with_the_first_outcome() {
    golden("once");
}

#[test]
fn batching_entries_together_changes_nothing() {
    let ops = [
        "at 1000: once 1:1 acquire l a ttl=500 wait=0; once 1:2 acquire l b ttl=500 wait=5000",
        "at 1600: once 1:3/3 put k v",
        "at 1700: tick",
        "at 2200: once 1:2 acquire l b ttl=500 wait=5000; push q x",
    ];
    // Notes are gathered per batch, so only their order relative to results may differ.
    let split =
        |lines: Vec<String>| -> (Vec<String>, Vec<String>) { lines.into_iter().partition(|l| !l.starts_with("note ")) };
    let mut one = Harness::new();
    let apart = split(ops.iter().flat_map(|e| one.run(e)).collect());
    let mut all = Harness::new();
    let together = split(all.run(&ops.join(" && ")));
    assert_eq!(apart, together);
    assert_eq!((one.locks(), one.once()), (all.locks(), all.once()));
}

/// The per-client cap: one write held open while 10,000 more are applied. The oldest outcome
/// goes, and a late copy of it is answered "in doubt" rather than applied again.
#[test]
fn a_client_past_its_cap_loses_its_oldest_outcome_but_never_reapplies_it() {
    use systems::once::MAX_PER_CLIENT;
    let mut h = Harness::new();
    let n = MAX_PER_CLIENT + 1;
    let ops: Vec<String> = (1..=n).map(|seq| format!("once 9:{seq}/1 put k{seq} v")).collect();
    for chunk in ops.chunks(500) {
        h.run(&format!("at 1000: {}", chunk.join("; ")));
    }
    let once = h.once().concat();
    let want = format!("client 9: floor 2 (swept below 2), top {n}, last active 1000, kept {MAX_PER_CLIENT} [2 3 ");
    assert!(once.starts_with(&want), "{}…", &once[..want.len().min(once.len())]);
    let again = h.run("at 2000: once 9:1/1 put k1 again");
    assert!(again[0].starts_with("error timeout: request 0000000000000009:1 is older"), "{again:?}");
    assert_eq!(h.sm.store.get("k1").unwrap().unwrap().value, "v", "not applied a second time");
    let again = h.run(&format!("at 2000: once 9:{n}/1 put k{n} again"));
    assert_eq!(again, vec![format!("Written {{ revision: {n} }}")], "a kept outcome is still answered");
}

/// A client one write at a time: what it says is done is deleted in bulk, so its outcomes stay
/// few however many writes it makes.
#[test]
fn a_sequential_clients_outcomes_stay_few() {
    let mut h = Harness::new();
    let ops: Vec<String> = (1..=200).map(|seq| format!("once 4:{seq}/{seq} put k v{seq}")).collect();
    h.run(&format!("at 1000: {}", ops.join("; ")));
    let once = h.once().concat();
    assert!(
        once.starts_with("client 4: floor 200 (swept below 193), top 200, last active 1000, kept 8 [193 "),
        "{once}"
    );
    let again = h.run("at 1001: once 4:199/200 put k again");
    assert!(again[0].starts_with("error timeout"), "{again:?}");
    assert_eq!(h.run("at 1002: once 4:200/200 put k again"), ["Written { revision: 200 }"]);
}

/// The node serves everything on one thread. A snapshot built or installed there held it for
/// its whole fsync, and every node snapshots at the same index, so heartbeats and AppendEntries
/// answers stopped cluster-wide (AppendEntries timed out, followers called elections). The
/// hook makes each save take two seconds; a timer on the same thread must fire meanwhile.
#[test]
fn snapshots_are_built_and_installed_off_the_runtime_thread() {
    let mut h = Harness::new();
    h.run("at 1000: put a 1; put b 2");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let slow = std::time::Duration::from_secs(2);
    *h.sm.store.snapshots.slow_save.lock().unwrap() = slow;
    let mut builder = h.sm.clone();
    let snap = rt.block_on(async {
        let build = tokio::spawn(async move { builder.build_snapshot().await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!build.is_finished(), "the 20 ms timer waited for the whole snapshot build");
        build.await.unwrap().unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut fresh = open(dir.path());
    *fresh.store.snapshots.slow_save.lock().unwrap() = slow;
    rt.block_on(async {
        let install = tokio::spawn(async move {
            fresh.install_snapshot(&snap.meta, snap.snapshot).await.map(|()| fresh.store.applied_index())
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!install.is_finished(), "the 20 ms timer waited for the whole snapshot install");
        assert_eq!(install.await.unwrap().unwrap(), 1, "the installed state is the snapshot's");
    });
}
