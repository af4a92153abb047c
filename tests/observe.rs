//! Watching the cluster while it is broken: the event feed reports a crash, the election that
//! follows, the restart and the catch-up; `metrics` shows a slowed node's replication suffer
//! while writes keep committing.

mod common;

use common::*;
use dsh::client::{EventFeed, Target};
use dsh::proto::{Event, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads the feed until `want` matches an event; panics with what was seen after `within`.
async fn expect(
    feed: &mut EventFeed,
    seen: &mut Vec<Event>,
    within: Duration,
    what: &str,
    want: impl Fn(&Event) -> bool,
) {
    let until = Instant::now() + within;
    if seen.iter().any(&want) {
        return;
    }
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, feed.next()).await {
            Ok(Some(e)) => {
                let hit = want(&e);
                seen.push(e);
                if hit {
                    return;
                }
            }
            _ => panic!("no event for {what} within {within:?}; saw {seen:#?}"),
        }
    }
}

#[test]
fn the_feed_tells_a_crash_an_election_a_restart_and_a_catch_up() {
    let mut c = TestCluster::start(3, 21800);
    let rt = runtime();
    let _guard = rt.enter();
    let client = Arc::new(c.client());
    let old = rt.block_on(wait_leader(&client, 3)).id;
    let mut feed = rt.block_on(async { EventFeed::start(client.clone(), false) });
    let mut seen = Vec::new();
    // Give every node's poll time to make first contact, so nothing below counts as history.
    std::thread::sleep(Duration::from_millis(500));

    c.kill(old);
    rt.block_on(async {
        expect(&mut feed, &mut seen, Duration::from_secs(5), "the crash", |e| e.node == old && e.kind == "down").await;
        expect(&mut feed, &mut seen, Duration::from_secs(5), "an election won", |e| {
            e.node != old && e.kind == "election" && e.text.contains("won")
        })
        .await;
        for i in 0..20 {
            client.call(Target::Leader, put(&format!("k{i}"), "v")).await.unwrap();
        }
        expect(&mut feed, &mut seen, Duration::from_secs(5), "the dead node falling behind", |e| {
            e.kind == "behind" && e.text.starts_with(&format!("n{old} "))
        })
        .await;
    });
    c.restart(old);
    rt.block_on(async {
        expect(&mut feed, &mut seen, Duration::from_secs(10), "the restart", |e| e.node == old && e.kind == "recovery")
            .await;
        expect(&mut feed, &mut seen, Duration::from_secs(10), "the catch-up", |e| {
            e.kind == "caught-up" && e.text.starts_with(&format!("n{old} "))
        })
        .await;
    });
    let new_leader = seen.iter().find(|e| e.kind == "election" && e.text.contains("won")).unwrap().node;
    assert_ne!(new_leader, old);
}

#[test]
fn a_slow_follower_shows_in_replication_latency_while_writes_commit() {
    let c = TestCluster::start(3, 21820);
    let rt = runtime();
    let _guard = rt.enter();
    let client = c.client();
    rt.block_on(async {
        let leader = wait_leader(&client, 3).await.id;
        let slow = (1..=3).find(|&n| n != leader).unwrap();
        let replication = |leader| {
            let client = &client;
            async move {
                let r = client.call(Target::Node(leader), Request::Metrics).await.unwrap();
                let Response::Metrics(m) = r.value else { panic!("{r:?}") };
                m.peers.into_iter().find(|p| p.id == slow).expect("the leader measures each follower")
            }
        };
        for i in 0..20 {
            client.call(Target::Leader, put(&format!("fast{i}"), "v")).await.unwrap();
        }
        let before = replication(leader).await;
        // The median, not the tail: with two debug-build clusters sharing two cores, one round
        // trip in a few dozen can stall past 50 ms without anything being slowed.
        assert!(before.rtt_p50_ms < 25.0, "healthy link first: {before:?}");

        let out = c.dsh(&["-c", &format!("slow n{slow} --delay 200ms")]);
        assert!(out.status.success(), "{}", stderr(&out));
        let until = Instant::now() + Duration::from_secs(10);
        let after = loop {
            // Writes still commit: the leader and the other follower are a majority.
            let r = client.call(Target::Leader, put("during", "slow")).await.unwrap();
            assert!(matches!(r.value, Response::Written { .. }));
            let m = replication(leader).await;
            if m.rtt_p50_ms >= 50.0 || Instant::now() > until {
                break m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(after.rtt_p50_ms >= 50.0, "replication to the slowed node is slow: {after:?} (before {before:?})");
        assert!(after.timeouts > before.timeouts, "its appends time out: {after:?}");

        let out = c.dsh(&["-c", "metrics"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("timeouts"), "metrics shows replication: {}", stdout(&out));
    });
}
