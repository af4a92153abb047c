//! Chat in total order against real node processes: concurrent senders through different nodes
//! while the leader is killed, and a full restart of every node; `chat check` vouches only for
//! the nodes whose history it compared.

mod common;

use common::*;
use dsh::client::{Client, Target};
use dsh::proto::{ChatDigest, ChatMessage, Request, Response};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn send(id: u64, from: &str, text: &str) -> Request {
    Request::ChatSend { id, from: from.into(), text: text.into() }
}

async fn digest(client: &Client, node: u64) -> ChatDigest {
    let r = client.call(Target::Node(node), Request::ChatDigest { wait_for_seq: 0, wait_ms: 0 }).await.unwrap();
    let Response::ChatDigest(d) = r.value else { panic!("digest") };
    d
}

async fn history(client: &Client, node: u64) -> Vec<ChatMessage> {
    let req = Request::ChatLog { after_seq: 0, limit: 100_000, tail: false, wait_ms: 0 };
    let r = client.call(Target::Node(node), req).await.unwrap();
    let Response::ChatLog { messages, .. } = r.value else { panic!("log") };
    messages
}

/// One sender: 100 messages through its own node, falling back to whichever node leads when its
/// node is gone. A retry reuses the message id. Returns (text, seq) of every acknowledged send.
async fn sender(client: Client, k: u64) -> Vec<(String, u64)> {
    let mut acked = Vec::new();
    for i in 0..100 {
        let (id, text) = (k * 1000 + i, format!("c{k}-{i:03}"));
        let req = send(id, &format!("c{k}"), &text);
        let until = Instant::now() + Duration::from_secs(15);
        let mut target = Target::Node(k);
        while Instant::now() < until {
            match client.call(target, req.clone()).await {
                Ok(r) => {
                    let Response::ChatSent { seq, .. } = r.value else { panic!("chat send") };
                    acked.push((text, seq));
                    break;
                }
                Err(_) => target = Target::Leader,
            }
        }
    }
    acked
}

#[test]
fn concurrent_senders_and_a_killed_leader_leave_one_identical_gapless_history() {
    let mut c = TestCluster::start(3, 21300);
    let rt = runtime();
    let client = rt.block_on(async { c.client() });
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    let senders: Vec<_> = (1..=3).map(|k| rt.spawn(sender(rt.block_on(async { c.client() }), k))).collect();
    rt.block_on(async {
        let until = Instant::now() + Duration::from_secs(30);
        while digest(&client, leader).await.count < 120 {
            assert!(Instant::now() < until, "senders made no progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    c.kill(leader);
    let acked: Vec<Vec<(String, u64)>> = senders.into_iter().map(|s| rt.block_on(s).unwrap()).collect();
    c.restart(leader);
    rt.block_on(async {
        wait_leader(&client, 3).await;
        wait_caught_up(&client, 3).await;
        let digests: Vec<ChatDigest> = futures::future::join_all((1..=3).map(|n| digest(&client, n))).await;
        for (n, d) in digests.iter().enumerate() {
            assert_eq!(d, &digests[0], "n{} holds the same history as n1", n + 1);
            assert_eq!(d.gaps, 0, "no gaps");
            assert_eq!(d.count, d.last_seq, "seq is dense");
        }
        let logs: Vec<Vec<ChatMessage>> = futures::future::join_all((1..=3).map(|n| history(&client, n))).await;
        assert_eq!(logs[0], logs[1]);
        assert_eq!(logs[1], logs[2]);
        let seqs: Vec<u64> = logs[0].iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=logs[0].len() as u64).collect::<Vec<_>>(), "seq runs 1, 2, 3, … in the log");
        let mut by_text: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for m in &logs[0] {
            by_text.entry(&m.text).or_default().push(m.seq);
        }
        // Retries carry the same id, so even a send whose reply was lost is applied once.
        assert!(by_text.values().all(|s| s.len() == 1), "no message applied twice");
        let mut total = 0;
        for (k, sent) in acked.iter().enumerate() {
            total += sent.len();
            for (text, seq) in sent {
                assert_eq!(
                    by_text.get(text.as_str()),
                    Some(&vec![*seq]),
                    "c{} acknowledged {text} at seq {seq}",
                    k + 1
                );
            }
            let order: Vec<u64> = sent.iter().map(|(_, s)| *s).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "c{}'s messages keep their order", k + 1);
        }
        assert_eq!(total, 300, "every send was acknowledged in the end, leader kill or not");
        let senders: BTreeSet<&str> = logs[0].iter().map(|m| m.from.as_str()).collect();
        assert_eq!(senders.len(), 3);
    });
}

#[test]
fn after_every_node_restarts_the_next_message_continues_the_sequence() {
    let mut c = TestCluster::start(3, 21310);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    rt.block_on(wait_leader(&client, 3));
    let last = rt.block_on(async {
        let mut last = 0;
        for i in 0..25u64 {
            let r = client.call(Target::Node(i % 3 + 1), send(i, "before", &format!("m{i}"))).await.unwrap();
            let Response::ChatSent { seq, .. } = r.value else { panic!() };
            assert_eq!(seq, last + 1, "dense: each send gets the next seq");
            last = seq;
        }
        last
    });
    c.restart_all();
    rt.block_on(async {
        let client = c.client();
        wait_leader(&client, 3).await;
        let r = client.call(Target::Leader, send(999, "after", "back")).await.unwrap();
        let Response::ChatSent { seq, duplicate, .. } = r.value else { panic!() };
        assert_eq!((seq, duplicate), (last + 1, false), "numbering continues after the restart");
        // A retry of a message sent before the restart is still recognised.
        let r = client.call(Target::Leader, send(3, "before", "m3")).await.unwrap();
        let Response::ChatSent { seq, duplicate, .. } = r.value else { panic!() };
        assert_eq!((seq, duplicate), (4, true));
        wait_caught_up(&client, 3).await;
        for n in 1..=3 {
            let log = history(&client, n).await;
            assert_eq!(log.len() as u64, last + 1, "n{n} holds every message");
            assert_eq!(log.last().map(|m| m.text.as_str()), Some("back"));
        }
    });
}

#[test]
fn a_follower_behind_a_purged_log_gets_the_chat_through_a_snapshot() {
    let mut c = TestCluster::start(3, 21320);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    let Response::Status(before) = rt.block_on(client.call(Target::Node(follower), Request::Status)).unwrap().value
    else {
        panic!()
    };
    c.kill(follower);
    rt.block_on(async {
        let mut id = 0u64;
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let all =
                wait_for(&client, "the leader", Duration::from_secs(10), |all| all.iter().any(|s| s.role == "leader"))
                    .await;
            if all.iter().any(|s| s.role == "leader" && s.purged_index > before.last_log_index) {
                break;
            }
            assert!(Instant::now() < until, "the leader never purged its log");
            // A few senders at once: group commit batches them only when entries queue up, so
            // this mostly adds entries faster.
            let batch = (0..4u64).map(|w| {
                let client = client.clone();
                let first = id + w * 50;
                async move {
                    for i in first + 1..=first + 50 {
                        client.call(Target::Leader, send(i, "s", &format!("m{i}"))).await.unwrap();
                    }
                }
            });
            futures::future::join_all(batch).await;
            id += 200;
        }
    });
    c.restart(follower);
    rt.block_on(async {
        let all = wait_caught_up(&client, 3).await;
        let f = all.iter().find(|s| s.id == follower).unwrap();
        assert!(f.snapshot_index > before.last_log_index, "{f:?} installed a snapshot");
        let d = digest(&client, follower).await;
        assert_eq!(d, digest(&client, leader).await, "the follower's chat equals the leader's");
        assert!(d.count > 1000 && d.gaps == 0, "{d:?}");
        let r = client.call(Target::Node(follower), send(u64::MAX, "after", "snapshot")).await.unwrap();
        let Response::ChatSent { seq, .. } = r.value else { panic!() };
        assert_eq!(seq, d.last_seq + 1, "numbering continues from the snapshot");
        // Message ids came with the snapshot: a retry of an old send is still recognised.
        let r = client.call(Target::Node(follower), send(1, "s", "m1")).await.unwrap();
        let Response::ChatSent { seq, duplicate, .. } = r.value else { panic!() };
        assert_eq!((seq, duplicate), (1, true));
    });
}

#[test]
fn chat_check_does_not_count_a_node_it_could_not_read_as_identical() {
    let dir = tempfile::tempdir().unwrap();
    let story = dir.path().join("down.rhai");
    std::fs::write(
        &story,
        r#"
wait("healthy");
chat::send("hello", #{ "as": "alice" });
let down = status().filter(|n| n.role == "follower")[0].id;
crash(down);
let c = chat::check();
let gone = c.nodes.filter(|n| n.id == down);
check(c.nodes.len() == 3 && gone.len() == 1, "the node that is down is listed");
check(!gone[0].identical && gone[0].count == (), "and not counted as identical: its copy was not read");
check(!c.identical, "so chat check does not say every node is identical");
check(c.nodes.filter(|n| n.id != down).all(|n| n.identical && n.count >= 1), "the two that answered are");
restart(down);
wait("caught-up", #{ timeout: "20s" });
check(chat::check().identical, "once it is back and caught up, all three are");
"#,
    )
    .unwrap();
    let out = std::process::Command::new(DSH).args(["run", "--no-pause", "--ephemeral"]).arg(&story).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}
