//! The cluster core against real node processes: replication, failover, durability, catch-up
//! through snapshots, quorum loss, and refusal of bad clients and bad frames.

mod common;

use common::*;
use dsh::client::Target;
use dsh::error::ErrorKind;
use dsh::proto::{Request, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn writes_through_every_node_replicate_to_all() {
    let c = TestCluster::start(3, 21000);
    runtime().block_on(async {
        let client = c.client();
        wait_leader(&client, 3).await;
        for i in 0..1000u64 {
            let via = Target::Node(i % 3 + 1);
            let r = client.call(via, put(&format!("k{i:04}"), &format!("v{i}"))).await.unwrap();
            assert_eq!(r.node, i % 3 + 1, "the node we sent to answers (forwarding if needed)");
        }
        wait_caught_up(&client, 3).await;
        let mut views = Vec::new();
        for n in 1..=3 {
            let r = client
                .call(Target::Node(n), Request::Scan { prefix: "k".into(), limit: 5000, stale: true })
                .await
                .unwrap();
            let Response::Scan(kvs) = r.value else { panic!("scan") };
            assert_eq!(kvs.len(), 1000, "n{n} holds every key");
            views.push(kvs);
        }
        assert_eq!(views[0], views[1]);
        assert_eq!(views[1], views[2]);
        assert_eq!(value(&client.call(Target::Node(2), stale_get("k0999")).await.unwrap().value), Some("v999".into()));
    });
}

/// Writes `count` keys with `workers` concurrent writers, recording every acknowledged one.
async fn write_stream(
    client: Arc<dsh::client::Client>,
    prefix: &str,
    count: u64,
    workers: u64,
) -> BTreeMap<String, String> {
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, acked, prefix) = (client.clone(), acked.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            for i in (w..count).step_by(workers as usize) {
                let (k, v) = (format!("{prefix}{i:05}"), format!("v{i}"));
                if client.call(Target::Leader, put(&k, &v)).await.is_ok() {
                    acked.lock().unwrap().insert(k, v);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

async fn assert_all_readable(client: &dsh::client::Client, acked: &BTreeMap<String, String>) {
    for (k, v) in acked {
        let r = client.call(Target::Leader, get(k)).await.unwrap();
        assert_eq!(value(&r.value).as_deref(), Some(v.as_str()), "acknowledged write {k} is readable");
    }
}

#[test]
fn leader_killed_mid_stream_loses_no_acknowledged_write() {
    let mut c = TestCluster::start(3, 21010);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    let writer = rt.spawn(write_stream(client.clone(), "s", 600, 4));
    rt.block_on(wait_for(&client, "writes to start", Duration::from_secs(20), |all| all.iter().any(|s| s.keys >= 150)));
    c.kill(leader);
    let acked = rt.block_on(writer).unwrap();
    assert!(acked.len() >= 590, "writes resumed after the kill: {} of 600 acknowledged", acked.len());
    rt.block_on(async {
        let new_leader = wait_leader(&client, 3).await;
        assert_ne!(new_leader.id, leader, "a new leader took over");
        assert_all_readable(&client, &acked).await;
    });
}

#[test]
fn every_acknowledged_write_survives_killing_all_nodes() {
    let mut c = TestCluster::start(3, 21020);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    rt.block_on(wait_leader(&client, 3));
    let acked = rt.block_on(write_stream(client.clone(), "d", 300, 8));
    assert_eq!(acked.len(), 300);
    c.restart_all();
    rt.block_on(async {
        let client = c.client();
        wait_leader(&client, 3).await;
        assert_all_readable(&client, &acked).await;
        let next = client.call(Target::Leader, put("after", "restart")).await.unwrap();
        let Response::Written { revision } = next.value else { panic!() };
        assert!(revision > 300, "revisions continue after restart (got {revision})");
    });
}

#[test]
fn follower_behind_a_purged_log_catches_up_through_a_snapshot() {
    let mut c = TestCluster::start(3, 21030);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    let before = rt.block_on(client.call(Target::Node(follower), Request::Status)).unwrap();
    let Response::Status(before) = before.value else { panic!() };
    c.kill(follower);

    let acked = rt.block_on(write_stream(client.clone(), "p", 20_000, 4));
    assert!(acked.len() >= 19_990, "writes continue with one node down: {}", acked.len());
    let leader_status = rt.block_on(wait_for(&client, "a purged log", Duration::from_secs(30), |all| {
        all.iter().any(|s| s.role == "leader" && s.purged_index > before.last_log_index)
    }));
    let leader_status = leader_status.into_iter().find(|s| s.role == "leader").unwrap();

    c.restart(follower);
    rt.block_on(async {
        let all = wait_caught_up(&client, 3).await;
        let f = all.iter().find(|s| s.id == follower).unwrap();
        assert!(f.snapshot_index > before.last_log_index, "{f:?} installed a snapshot");
        assert!(f.applied_index >= leader_status.applied_index);
        for k in ["p00000", "p09999", "p19999"] {
            if let Some(v) = acked.get(k) {
                let r = client.call(Target::Node(follower), stale_get(k)).await.unwrap();
                assert_eq!(value(&r.value).as_ref(), Some(v), "{k} on the restarted follower");
            }
        }
    });
}

#[test]
fn one_node_down_keeps_serving_two_down_refuses_writes_in_time() {
    let mut c = TestCluster::start(3, 21040);
    let rt = runtime();
    let client = rt.block_on(async { c.client() });
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    c.kill(follower);
    rt.block_on(async {
        client.call(Target::Leader, put("one-down", "ok")).await.unwrap();
        let r = client.call(Target::Leader, get("one-down")).await.unwrap();
        assert_eq!(value(&r.value).as_deref(), Some("ok"));
    });
    c.kill(leader);
    rt.block_on(async {
        let timeout = Duration::from_secs(2);
        let started = Instant::now();
        let err = client.call_within(Target::Leader, put("two-down", "x"), timeout).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err.kind, ErrorKind::NoQuorum | ErrorKind::Timeout),
            "expected no_quorum or timeout, got {err}"
        );
        assert!(took < timeout + Duration::from_secs(1), "failed within the request timeout ({took:?})");
    });
}
