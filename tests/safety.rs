//! Log ids are never reused for different bytes (issue 12). Entries go ahead to the followers
//! before the leader's own fsync; a leader SIGKILLed in between must not come back leading the
//! same term and number a different entry at an index the followers already hold. Real node
//! processes are killed with SIGKILL; the test hook `DSH_TEST_HOLD_LEADER_FSYNC_MS` holds the
//! leader's fsync so the kill lands between the hint and the fsync every time, not by luck.

mod common;

use common::*;
use dsh::client::{Client, Target};
use dsh::proto::{NodeStatus, Response};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const HOLD: &str = "DSH_TEST_HOLD_LEADER_FSYNC_MS";

/// Key → (revision, value) of its last acknowledged write.
type Acked = BTreeMap<String, (u64, String)>;

fn log_of(c: &TestCluster, id: u64) -> String {
    std::fs::read_to_string(c.dir.path().join(format!("n{id}/node.log"))).unwrap_or_default()
}

/// The `(term, index)` in the last hook line of `log` (from byte `from` on) that starts with `what`.
fn last_hook_line(log: &str, from: usize, what: &str) -> Option<(u64, u64)> {
    let line = log.get(from..)?.lines().rev().find(|l| l.starts_with(what))?;
    let num = |after: &str| -> Option<u64> {
        let rest = &line[line.find(after)? + after.len()..];
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Some((num("(term ")?, num("up to index ")?))
}

/// Waits until one node holds its fsync of a client write that both others hold durably ahead;
/// returns that node (the leader). Only log lines after `offsets` count.
fn wait_until_held_ahead(c: &TestCluster, offsets: &[usize]) -> u64 {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let logs: Vec<String> = (1..=3).map(|id| log_of(c, id)).collect();
        for leader in 1..=3u64 {
            let l = (leader - 1) as usize;
            let Some(held) = last_hook_line(&logs[l], offsets[l], "dsh test hook: leader holds") else { continue };
            let ahead = |f: usize| last_hook_line(&logs[f], offsets[f], "dsh test hook: ahead durable");
            if (0..3).filter(|&f| f != l).all(|f| ahead(f).is_some_and(|(t, i)| t == held.0 && i >= held.1)) {
                return leader;
            }
        }
        assert!(Instant::now() < until, "no write held by the leader and ahead on both followers");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs every node, the old leader first, and starts the old leader alone; returns its
/// status once it answers. Had it resumed leading its old term (openraft restores a leader whose
/// vote is committed for itself), it would number the next write at an index it lost, which the
/// followers hold with other bytes under the same log id.
fn crash_all_start_leader(c: &mut TestCluster, rt: &Runtime, client: &Client, leader: u64) -> NodeStatus {
    c.kill(leader);
    for id in (1..=3).filter(|&id| id != leader) {
        c.kill(id);
    }
    c.restart(leader);
    let up = |all: &[NodeStatus]| all.iter().any(|s| s.id == leader);
    rt.block_on(wait_for(client, "the old leader to answer", Duration::from_secs(20), up)).remove(0)
}

/// Starts the followers again once a write is on its way to the old leader: first, if it came
/// back leading, until it has appended that write where the followers hold other bytes.
fn start_followers(c: &mut TestCluster, rt: &Runtime, client: &Client, back: &NodeStatus) {
    if back.role == "leader" {
        rt.block_on(wait_for(client, "a write appended", Duration::from_secs(20), |all| {
            all.iter().any(|s| s.id == back.id && s.last_log_index > back.last_log_index)
        }));
    }
    for id in (1..=3).filter(|&id| id != back.id) {
        c.restart(id);
    }
}

/// `dsh verify`: every node answers, and all Merkle roots are equal.
fn assert_verify_equal(c: &TestCluster, when: &str) {
    let out = c.dsh(&["--json", "-c", "verify"]);
    let text = stdout(&out);
    let j: Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{when}: verify gave no JSON ({e}): {text}\n{}", stderr(&out)));
    let roots: Vec<&Value> = j["nodes"].as_array().map(|n| n.iter().map(|n| &n["root"]).collect()).unwrap_or_default();
    assert!(
        j["ok"] == true && j["equal"] == true && roots.len() == 3 && roots.iter().all(|r| r.is_string()),
        "{when}: every node's Merkle root is equal: {j}\n{}",
        stderr(&out)
    );
}

async fn put_acked(client: &Client, acked: &mut Acked, key: &str, value: &str) {
    let r = client.call(Target::Leader, put(key, value)).await.unwrap();
    let Response::Written { revision } = r.value else { panic!("put {key}: {:?}", r.value) };
    acked.insert(key.into(), (revision, value.into()));
}

/// A linearizable read (through the leader) of every key finds its last acknowledged write or
/// a later one.
async fn assert_acked_readable(client: &Client, acked: &Acked, when: &str) {
    let mut missing = Vec::new();
    for (key, (revision, value)) in acked {
        let r = client.call(Target::Leader, get(key)).await.unwrap_or_else(|e| panic!("{when}: get {key}: {e}"));
        match r.value {
            Response::Value(Some(v)) if v.revision > *revision || (v.revision == *revision && v.value == *value) => {}
            other => missing.push(format!("{key}: acknowledged {value:?} at revision {revision}, read {other:?}")),
        }
    }
    assert!(missing.is_empty(), "{when}: {} acknowledged writes missing:\n{}", missing.len(), missing.join("\n"));
}

/// Every node answers and one of them leads.
async fn all_up(client: &Client) {
    wait_for(client, "every node up and a leader", Duration::from_secs(20), |all| {
        all.len() == 3 && all.iter().any(|s| s.role == "leader")
    })
    .await;
}

async fn wait_settled(client: &Client) -> u64 {
    let leader = wait_leader(client, 3).await.id;
    wait_caught_up(client, 3).await;
    leader
}

#[test]
fn a_leader_killed_between_its_hint_and_its_fsync_loses_no_acknowledged_write() {
    let mut c = TestCluster::start(3, 23000);
    let rt = runtime();
    let mut acked = Acked::new();
    rt.block_on(async {
        let client = c.client();
        wait_leader(&client, 3).await;
        for i in 0..5 {
            put_acked(&client, &mut acked, &format!("a{i}"), &format!("before-{i}")).await;
        }
    });

    // Every node from now on holds its fsync as leader; the next write is held there, on its
    // way to disk, while both followers already hold it durably.
    c.env = vec![(HOLD.into(), "30000".into())];
    c.restart_all();
    let client = Arc::new(rt.block_on(async { c.client() }));
    rt.block_on(wait_settled(&client));
    let offsets: Vec<usize> = (1..=3).map(|id| log_of(&c, id).len()).collect();
    let held = rt.spawn({
        let client = client.clone();
        async move { client.call(Target::Leader, put("held", "never acknowledged")).await }
    });
    let leader = wait_until_held_ahead(&c, &offsets);
    // Never acknowledged: it is in doubt, and the client gives up on it here.
    held.abort();
    c.env.clear();
    // The old leader comes back alone and is sent a write before the followers start.
    let client = Arc::new(rt.block_on(async { c.client() }));
    let back = crash_all_start_leader(&mut c, &rt, &client, leader);
    let first = rt.spawn({
        let client = client.clone();
        async move { client.call(Target::Leader, put("first", "after the crash")).await }
    });
    start_followers(&mut c, &rt, &client, &back);
    if let Ok(Ok(r)) = rt.block_on(first) {
        let Response::Written { revision } = r.value else { panic!("put first: {:?}", r.value) };
        acked.insert("first".into(), (revision, "after the crash".into()));
    }

    rt.block_on(async {
        let client = c.client();
        wait_settled(&client).await;
        for i in 0..5 {
            put_acked(&client, &mut acked, &format!("b{i}"), &format!("after-{i}")).await;
        }
        wait_caught_up(&client, 3).await;
    });
    assert_verify_equal(&c, "after the crash");
    rt.block_on(async { assert_acked_readable(&c.client(), &acked, "after the crash").await });

    c.restart_all();
    let leader = rt.block_on(async { wait_settled(&c.client()).await });
    assert_verify_equal(&c, "after a second full restart");
    rt.block_on(async { assert_acked_readable(&c.client(), &acked, "after a second full restart").await });

    c.kill(leader);
    rt.block_on(async {
        let client = c.client();
        let next = wait_leader(&client, 3).await;
        assert_ne!(next.id, leader, "a new leader took over");
        assert_acked_readable(&client, &acked, "through a new leader").await;
    });
}

#[test]
fn twenty_rounds_of_killing_every_node_under_load_lose_no_acknowledged_write() {
    const ROUNDS: usize = 20;
    const WRITERS: u64 = 32;
    const KEYS: u64 = 200;
    let started = Instant::now();
    let mut c = TestCluster::start(3, 23010);
    let rt = runtime();
    // Killed before it has created its storage, a node could not start again (redb sizes a new
    // file before it writes the header): the first kill waits until every node is up.
    let probe = rt.block_on(async { c.client() });
    rt.block_on(all_up(&probe));
    // A short hold keeps the leader's fsync open most of the time, so nearly every kill lands
    // between a hint and the leader's fsync.
    c.env = vec![(HOLD.into(), "5".into())];
    c.restart_all();
    let client = Arc::new(rt.block_on(async {
        let client = Client::new(&c.cluster_file(), Duration::from_secs(1)).unwrap();
        wait_leader(&client, 3).await;
        client
    }));
    let acked = Arc::new(Mutex::new(Acked::new()));
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Closed from just before the kill until the old leader is back, so the writers do not
    // storm dead addresses with handshakes; every kill still lands with all writers in flight.
    let (gate, open) = tokio::sync::watch::channel(true);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, acked, count, stop, mut open) =
                (client.clone(), acked.clone(), count.clone(), stop.clone(), open.clone());
            rt.spawn(async move {
                for seq in 0.. {
                    if open.wait_for(|o| *o).await.is_err() || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let key = format!("k{:03}", (w * 7919 + seq * 31) % KEYS);
                    let value = format!("w{w}-{seq}");
                    // An error leaves the write in doubt, not acknowledged.
                    if let Ok(r) = client.call(Target::Leader, put(&key, &value)).await {
                        let Response::Written { revision } = r.value else { panic!("put: {:?}", r.value) };
                        let mut acked = acked.lock().unwrap();
                        let last = acked.entry(key).or_insert((0, String::new()));
                        if revision > last.0 {
                            *last = (revision, value);
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    for round in 0..ROUNDS {
        let before = count.load(Ordering::Relaxed);
        let until = Instant::now() + Duration::from_secs(20);
        while count.load(Ordering::Relaxed) < before + WRITERS {
            assert!(Instant::now() < until, "round {round}: writes did not resume");
            std::thread::sleep(Duration::from_millis(5));
        }
        let leader = client.leader_hint().unwrap_or(1);
        eprintln!(
            "round {round}: {} acknowledged, leader n{leader}, {:?}",
            count.load(Ordering::Relaxed),
            started.elapsed()
        );
        gate.send_replace(false);
        crash_all_start_leader(&mut c, &rt, &probe, leader);
        // The writers find the old leader alone, the followers a moment later.
        gate.send_replace(true);
        for id in (1..=3).filter(|&id| id != leader) {
            c.restart(id);
        }
        rt.block_on(all_up(&probe));
    }
    stop.store(true, Ordering::Relaxed);
    drop(gate);
    for w in writers {
        rt.block_on(w).unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    rt.block_on(async { wait_settled(&c.client()).await });
    assert_verify_equal(&c, &format!("after {ROUNDS} rounds"));
    rt.block_on(async {
        let client = c.client();
        assert_acked_readable(&client, &acked, &format!("after {ROUNDS} rounds")).await;
    });
    let total = count.load(Ordering::Relaxed);
    eprintln!("{ROUNDS} rounds, {total} writes acknowledged, {} keys, in {:?}", acked.len(), started.elapsed());
}
