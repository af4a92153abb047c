//! Locks against real node processes: contention, waiting in line, lease expiry decided by log
//! time, fencing tokens, shared holders, deadlock detection, and a history of grants recorded
//! while the leader is killed and a partition comes and goes.

mod common;

use common::*;
use dsh::client::{Client, Target};
use dsh::error::{Error, ErrorKind};
use dsh::proto::{Faults, Holder, LockInfo, Request, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn acquire_req(name: &str, owner: &str, shared: bool, ttl_ms: u64, wait_ms: u64) -> Request {
    Request::LockAcquire { name: name.into(), owner: owner.into(), shared, ttl_ms, wait_ms, queue: false }
}

async fn acquire(
    c: &Client,
    name: &str,
    owner: &str,
    shared: bool,
    ttl_ms: u64,
    wait_ms: u64,
) -> Result<Holder, Error> {
    let req = acquire_req(name, owner, shared, ttl_ms, wait_ms);
    let r = c.call_within(Target::Leader, req, Duration::from_millis(wait_ms + 5000)).await?;
    match r.value {
        Response::LockGranted { holder, .. } => Ok(holder),
        other => panic!("acquire: {other:?}"),
    }
}

async fn release(c: &Client, name: &str, owner: &str) -> Result<(u64, u64), Error> {
    let r = c.call(Target::Leader, Request::LockRelease { name: name.into(), owner: owner.into() }).await?;
    match r.value {
        Response::LockReleased { token, at_ms } => Ok((token, at_ms)),
        other => panic!("release: {other:?}"),
    }
}

async fn lock(c: &Client, name: &str) -> LockInfo {
    let r = c.call(Target::Leader, Request::LockList).await.unwrap();
    let Response::Locks(all) = r.value else { panic!("lock list") };
    all.into_iter().find(|l| l.name == name).unwrap_or_default()
}

/// Waits until `owner` is in line for `name`.
async fn queued(c: &Client, name: &str, owner: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while !lock(c, name).await.waiters.iter().any(|w| w.owner == owner) {
        assert!(Instant::now() < until, "{owner} never queued for {name}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn contention_waiting_expiry_tokens_shared_and_deadlock() {
    let c = TestCluster::start(3, 21400);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    rt.block_on(async {
        wait_leader(&client, 3).await;

        // Contention: the second owner is refused at once, or waits and gets it on release.
        let a = acquire(&client, "x", "a", false, 10_000, 0).await.unwrap();
        let e = acquire(&client, "x", "b", false, 10_000, 0).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
        assert!(e.message.contains("held by a"), "{e}");
        let waiter = tokio::spawn({
            let client = client.clone();
            async move { acquire(&client, "x", "b", false, 10_000, 5_000).await }
        });
        queued(&client, "x", "b").await;
        let (released, at_ms) = release(&client, "x", "a").await.unwrap();
        assert_eq!(released, a.token);
        let b = waiter.await.unwrap().unwrap();
        assert!(b.token > a.token, "tokens strictly increase: {} then {}", a.token, b.token);
        assert!(b.granted_ms >= at_ms, "b was granted only after a released");
        release(&client, "x", "b").await.unwrap();

        // Expiry: a lease that is not renewed ends at its log time and the next in line gets it.
        let c1 = acquire(&client, "y", "c", false, 800, 0).await.unwrap();
        let d = acquire(&client, "y", "d", false, 10_000, 5_000).await.unwrap();
        assert!(
            d.granted_ms >= c1.expires_ms,
            "granted at {} before c's lease ended at {}",
            d.granted_ms,
            c1.expires_ms
        );
        assert!(d.granted_ms < c1.expires_ms + 2_000, "the leader ticked soon after the lease ended");
        assert!(d.token > c1.token);
        assert!(lock(&client, "y").await.holders.iter().all(|h| h.owner == "d"), "c's lease is gone");
        let e = release(&client, "y", "c").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Expired, "an expired holder is told its lease ran out: {e}");
        let e = release(&client, "y", "nobody").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "one that never held it is not_found: {e}");

        // Shared holders coexist; an exclusive request waits for all of them.
        let r1 = acquire(&client, "z", "r1", true, 10_000, 0).await.unwrap();
        let r2 = acquire(&client, "z", "r2", true, 10_000, 0).await.unwrap();
        assert!(r2.token > r1.token);
        assert_eq!(lock(&client, "z").await.holders.len(), 2, "two shared holders at once");
        let e = acquire(&client, "z", "w", false, 10_000, 0).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        let writer = tokio::spawn({
            let client = client.clone();
            async move { acquire(&client, "z", "w", false, 10_000, 5_000).await }
        });
        queued(&client, "z", "w").await;
        release(&client, "z", "r1").await.unwrap();
        assert_eq!(lock(&client, "z").await.holders.len(), 1, "still held by r2, w waits");
        release(&client, "z", "r2").await.unwrap();
        let w = writer.await.unwrap().unwrap();
        assert!(!w.shared && w.token > r2.token);

        // A wait that runs out is certainly not a grant (not a timeout: nothing is in doubt), and
        // leaves the line.
        let e = acquire(&client, "z", "late", false, 10_000, 300).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotGranted, "{e}");
        assert!(lock(&client, "z").await.waiters.is_empty());

        // Deadlock: a holds p and waits for q; b holds q and asks for p.
        acquire(&client, "p", "a", false, 10_000, 0).await.unwrap();
        acquire(&client, "q", "b", false, 10_000, 0).await.unwrap();
        let a_waits = tokio::spawn({
            let client = client.clone();
            async move { acquire(&client, "q", "a", false, 10_000, 5_000).await }
        });
        queued(&client, "q", "a").await;
        let e = acquire(&client, "p", "b", false, 10_000, 5_000).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Deadlock, "{e}");
        assert_eq!(e.message, "b waits for p held by a, a waits for q held by b");
        assert!(lock(&client, "p").await.waiters.is_empty(), "the refused waiter is not queued");
        release(&client, "q", "b").await.unwrap();
        let granted = a_waits.await.unwrap().unwrap();
        assert_eq!(granted.owner, "a", "breaking the cycle lets a through");
    });
}

/// One lease as a client saw it: granted at, and ended at (release time, or lease end when the
/// release was not confirmed).
#[derive(Debug, Clone)]
struct Lease {
    owner: String,
    granted_ms: u64,
    end_ms: u64,
    end_known: bool,
}

async fn worker(client: Arc<Client>, k: usize, stop: Instant) -> BTreeMap<u64, Lease> {
    let owner = format!("w{k}");
    let mut seen: BTreeMap<u64, Lease> = BTreeMap::new();
    while Instant::now() < stop {
        let Ok(h) = acquire(&client, "res", &owner, false, 1_500, 3_000).await else { continue };
        let lease = seen.entry(h.token).or_insert(Lease {
            owner: owner.clone(),
            granted_ms: h.granted_ms,
            end_ms: h.expires_ms,
            end_known: false,
        });
        // A retried acquire renews the same lease: it ends later.
        lease.end_ms = lease.end_ms.max(h.expires_ms);
        // The fenced write: the token goes with it, so a resource could refuse older ones.
        let _ = client.call(Target::Leader, put("res", &format!("{owner} token {}", h.token))).await;
        if let Ok((token, at_ms)) = release(&client, "res", &owner).await {
            assert_eq!(token, h.token, "{owner} released the lease it held");
            let lease = seen.get_mut(&token).unwrap();
            lease.end_ms = at_ms;
            lease.end_known = true;
        }
    }
    seen
}

async fn set_faults(client: &Client, node: u64, cut: Vec<u64>) {
    let until = Instant::now() + Duration::from_secs(5);
    while client.call(Target::Node(node), Request::SetFaults(Faults { cut: cut.clone(), slow: vec![] })).await.is_err()
    {
        assert!(Instant::now() < until, "n{node} did not take its faults");
    }
}

#[test]
fn leases_never_overlap_and_tokens_only_increase_through_a_leader_kill_and_a_partition() {
    let mut c = TestCluster::start(3, 21410);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    let first = rt.block_on(wait_leader(&client, 3)).id;
    let stop = Instant::now() + Duration::from_secs(12);
    let workers: Vec<_> =
        (0..4).map(|k| rt.spawn(worker(Arc::new(rt.block_on(async { c.client() })), k, stop))).collect();
    std::thread::sleep(Duration::from_secs(2));
    c.kill(first);
    let second = rt.block_on(wait_for(&client, "a new leader", Duration::from_secs(20), |all| {
        all.iter().any(|s| s.role == "leader" && s.id != first)
    }));
    let second = second.iter().find(|s| s.role == "leader").unwrap().id;
    c.restart(first);
    rt.block_on(wait_leader(&client, 3));
    // Cut the current leader off from the others, then heal.
    rt.block_on(async {
        let others: Vec<u64> = (1..=3).filter(|n| *n != second).collect();
        set_faults(&client, second, others.clone()).await;
        for n in &others {
            set_faults(&client, *n, vec![second]).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for n in 1..=3 {
            set_faults(&client, n, vec![]).await;
        }
    });
    let mut all: BTreeMap<u64, Lease> = BTreeMap::new();
    for w in workers {
        for (token, lease) in rt.block_on(w).unwrap() {
            assert!(all.insert(token, lease).is_none(), "token {token} granted to two owners");
        }
    }
    assert!(all.len() >= 20, "the workers got the lock often: {} grants", all.len());
    let known = all.values().filter(|l| l.end_known).count();
    assert!(known * 2 > all.len(), "most releases were confirmed: {known} of {}", all.len());
    let leases: Vec<(u64, Lease)> = all.into_iter().collect();
    for pair in leases.windows(2) {
        let ((t1, l1), (t2, l2)) = (&pair[0], &pair[1]);
        assert!(l2.granted_ms >= l1.granted_ms, "token {t2} granted before the smaller token {t1}");
        // An unconfirmed release may have ended the lease before its term, so only a confirmed
        // end (release or lease term) bounds the next grant.
        if l1.end_known {
            assert!(
                l2.granted_ms >= l1.end_ms,
                "token {t2} ({}) granted at {} while token {t1} ({}) held the lock until {}",
                l2.owner,
                l2.granted_ms,
                l1.owner,
                l1.end_ms
            );
        }
    }
}

/// README: `--queue` joins the line and returns at once, with or without `--wait`; the queued
/// owner gets the lock when the holder releases it.
#[test]
fn queue_joins_the_line_without_wait_and_is_granted_on_release() {
    let c = TestCluster::start(3, 21420);
    runtime().block_on(async { wait_leader(&c.client(), 3).await });
    let json = |args: &str| -> serde_json::Value {
        let mut all = vec!["--json", "-c"];
        all.push(args);
        let out = c.dsh(&all);
        assert!(out.status.success(), "{args}: {}{}", stdout(&out), stderr(&out));
        serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap()
    };
    let held = json("lock acquire q1 --as alice --ttl 30s");
    assert!(held["token"].as_u64().is_some(), "{held}");
    let started = Instant::now();
    let queued = json("lock acquire q1 --as bob --queue");
    assert!(started.elapsed() < Duration::from_secs(3), "--queue returns at once");
    assert_eq!(queued["queued"], true, "{queued}");
    assert_eq!(queued["position"], 1, "{queued}");
    json("lock release q1 --as alice");
    let granted = json("lock acquire q1 --as bob");
    assert!(granted["token"].as_u64() > held["token"].as_u64(), "bob holds it next: {granted}");
}
