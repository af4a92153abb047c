//! Every write is applied at most once, against real node processes (issue 12, acceptance 10).
//!
//! The window that breaks naive retries: the leader has applied a write but not yet answered
//! when it stops (SIGSTOP). The client gives up on it, retries through another node, and a new
//! leader gets the same request again. The nodes run with the test-only hook
//! `DSH_TEST_HOLD_REPLY_MS` (for keys under `held/`), which holds the reply to such a write
//! after it applied (once per request on each node), so the pause always lands inside the
//! window instead of by luck.
//!
//! Revisions are the history: the cluster revision moves by one for each key change, and
//! nothing else writes here, so a second application shows as a revision too many.

mod common;

use common::*;
use dsh::client::{Client, Target};
use dsh::proto::{NodeId, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough for the test to see the write applied and stop the node, short enough that the
/// retry (held too, on the new leader) fits well inside the client's timeout.
const HOLD_MS: u64 = 3000;

fn start(port_base: u16) -> TestCluster {
    // Every node inherits these; only keys under `held/` are held. Set before any node starts,
    // and the same in every test of this file.
    std::env::set_var("DSH_TEST_HOLD_REPLY_MS", HOLD_MS.to_string());
    std::env::set_var("DSH_TEST_HOLD_REPLY_KEYS", "held/");
    TestCluster::start(3, port_base)
}

fn signal(c: &TestCluster, node: NodeId, sig: i32) {
    let pid = c.nodes.iter().find(|n| n.id == node).and_then(|n| n.child.as_ref()).expect("node running").id();
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0, "signal {sig} to n{node}");
}

fn revision(r: &Response) -> u64 {
    match r {
        Response::Written { revision } | Response::Cas { revision, .. } => *revision,
        other => panic!("expected a write, got {other:?}"),
    }
}

/// Waits until `node` itself has applied `key = value` (the leader applies before it replies).
async fn applied_on(client: &Client, node: NodeId, key: &str, value: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(r) = client.call(Target::Node(node), stale_get(key)).await {
            if common::value(&r.value).as_deref() == Some(value) {
                return;
            }
        }
        assert!(Instant::now() < until, "n{node} never applied {key} = {value}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every node, the resumed one included, answers and has applied the same index: whatever the
/// resumed node still held has been dealt with. Generous: a node stopped for seconds reconnects
/// slowly on a loaded machine.
async fn all_caught_up(client: &Client) {
    wait_for(client, "every node to catch up", Duration::from_secs(90), |all| {
        all.len() == 3
            && all.iter().all(|s| s.applied_index == all[0].applied_index && s.applied_index >= s.commit_index)
    })
    .await;
}

/// Sends `request` to the leader, stops the leader once it has applied it (its reply held), and
/// returns the stopped leader and what the client finally got, from another node.
async fn through_a_paused_leader(
    c: &TestCluster,
    client: &Arc<Client>,
    request: Request,
    key: &str,
    value: &str,
) -> (NodeId, dsh::Result<Response>) {
    let leader = wait_leader(client, 3).await.id;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call(Target::Leader, request).await }
    });
    applied_on(client, leader, key, value).await;
    assert!(!call.is_finished(), "the reply came before the pause: the hold did not work");
    signal(c, leader, libc::SIGSTOP);
    let served = call.await.unwrap();
    if let Ok(s) = &served {
        assert_ne!(s.node, leader, "answered by another node");
    }
    (leader, served.map(|s| s.value))
}

#[test]
fn a_put_retried_after_its_leader_paused_applies_once_and_overwrites_nothing_later() {
    let c = start(23100);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { Client::new(&c.cluster_file(), Duration::from_secs(15)).unwrap() }));
    rt.block_on(async {
        wait_leader(&client, 3).await;
        let r0 = revision(&client.call(Target::Leader, put("free/before", "x")).await.unwrap().value);

        let (old, written) = through_a_paused_leader(&c, &client, put("held/k", "v1"), "held/k", "v1").await;
        let written = written.expect("the retry through another node succeeds");
        assert_eq!(revision(&written), r0 + 1, "the retry got the first application's revision: applied once");

        // A later write, acknowledged while the old leader is still stopped.
        let later = client.call(Target::Leader, put("held/k", "v2")).await.unwrap();
        assert_eq!(revision(&later.value), r0 + 2);

        signal(&c, old, libc::SIGCONT);
        all_caught_up(&client).await;
        let last = client.call(Target::Leader, put("free/after", "x")).await.unwrap();
        assert_eq!(revision(&last.value), r0 + 3, "no write was applied beyond the three acknowledged");
        for n in 1..=3 {
            let r = client.call(Target::Node(n), stale_get("held/k")).await.unwrap();
            let Response::Value(Some(v)) = r.value else { panic!("n{n}: {:?}", r.value) };
            assert_eq!((v.value.as_str(), v.revision), ("v2", r0 + 2), "n{n} kept the later write");
        }
    });
}

#[test]
fn a_cas_that_took_effect_is_never_answered_conflict() {
    let c = start(23110);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { Client::new(&c.cluster_file(), Duration::from_secs(15)).unwrap() }));
    rt.block_on(async {
        wait_leader(&client, 3).await;
        let r0 = revision(&client.call(Target::Leader, put("held/c", "a")).await.unwrap().value);

        let cas = Request::Cas { key: "held/c".into(), expected: Some("a".into()), new: "b".into() };
        let (old, swapped) = through_a_paused_leader(&c, &client, cas, "held/c", "b").await;
        let Ok(Response::Cas { revision, swapped: true, .. }) = swapped else {
            panic!("the cas took effect, yet the retry answered {swapped:?}")
        };
        assert_eq!(revision, r0 + 1);

        signal(&c, old, libc::SIGCONT);
        all_caught_up(&client).await;
        let r = client.call(Target::Leader, get("held/c")).await.unwrap();
        let Response::Value(Some(v)) = r.value else { panic!("{:?}", r.value) };
        assert_eq!((v.value.as_str(), v.revision), ("b", r0 + 1), "swapped once");
    });
}
