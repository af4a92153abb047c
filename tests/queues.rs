//! Queues against real node processes: a consumer killed before it acks gets its item delivered
//! again after the visibility timeout; acked items never return; nothing is lost across a
//! leader kill.

mod common;

use common::*;
use dsh::client::{Client, Target};
use dsh::proto::{QueueItem, QueueStat, Request, Response};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

async fn push(c: &Client, q: &str, item: &str) -> u64 {
    let r = c.call(Target::Leader, Request::QueuePush { queue: q.into(), item: item.into() }).await.unwrap();
    let Response::QueuePushed { id } = r.value else { panic!("push") };
    id
}

async fn pop(c: &Client, q: &str, visibility_ms: u64) -> Result<Option<QueueItem>, dsh::Error> {
    let r = c.call(Target::Leader, Request::QueuePop { queue: q.into(), visibility_ms }).await?;
    match r.value {
        Response::QueueItem(it) => Ok(it),
        other => panic!("pop: {other:?}"),
    }
}

async fn ack(c: &Client, q: &str, id: u64) -> Result<(), dsh::Error> {
    c.call(Target::Leader, Request::QueueAck { queue: q.into(), id }).await.map(|_| ())
}

async fn stats(c: &Client, q: &str) -> QueueStat {
    let r = c.call(Target::Leader, Request::QueueStats).await.unwrap();
    let Response::QueueStats(all) = r.value else { panic!("stats") };
    all.into_iter().find(|s| s.queue == q).unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn an_unacked_item_comes_back_after_its_visibility_timeout_and_acked_ones_never_do() {
    let c = TestCluster::start(3, 21500);
    let rt = runtime();
    let client = rt.block_on(async { c.client() });
    rt.block_on(async {
        wait_leader(&client, 3).await;
        for item in ["a", "b", "c"] {
            push(&client, "jobs", item).await;
        }
    });

    // A consumer process pops "a" and is killed before it acks.
    let mut consumer = Command::new(DSH)
        .arg("--cluster")
        .arg(&c.file)
        .args(["--json", "-c", "queue pop jobs --visibility 1500ms; sleep 60s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(consumer.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    let popped: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!((popped["item"].as_str(), popped["deliveries"].as_u64()), (Some("a"), Some(1)), "{line}");
    let first_visible_at = popped["visible_at_ms"].as_u64().unwrap();

    rt.block_on(async {
        // Another consumer takes and acks the rest meanwhile: "a" is in flight, not ready.
        let mut acked_visible_at = 0;
        for want in ["b", "c"] {
            let it = pop(&client, "jobs", 500).await.unwrap().expect("an item");
            assert_eq!(it.item, want);
            ack(&client, "jobs", it.id).await.unwrap();
            acked_visible_at = acked_visible_at.max(it.visible_at_ms);
        }
        assert_eq!(pop(&client, "jobs", 500).await.unwrap(), None, "a is invisible while in flight");

        // "a" comes back once its visibility timeout passed, delivered a second time.
        let until = Instant::now() + Duration::from_secs(10);
        let again = loop {
            if let Some(it) = pop(&client, "jobs", 30_000).await.unwrap() {
                break it;
            }
            assert!(Instant::now() < until, "the unacked item never came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((again.item.as_str(), again.deliveries), ("a", 2));
        assert!(now_ms() >= first_visible_at, "not before its visibility timeout");
        ack(&client, "jobs", again.id).await.unwrap();

        // Acked items stay gone, well past the time they would have become visible again.
        let past = acked_visible_at.max(first_visible_at) + 500;
        while now_ms() < past + 300 {
            assert_eq!(pop(&client, "jobs", 500).await.unwrap(), None, "an acked item came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let e = ack(&client, "jobs", again.id).await.unwrap_err();
        assert_eq!(e.kind, dsh::ErrorKind::NotFound, "acking twice is refused");
        let s = stats(&client, "jobs").await;
        assert_eq!((s.ready, s.in_flight, s.delivered, s.redelivered, s.acked), (0, 0, 4, 1, 3), "{s:?}");
    });
}

#[test]
fn nothing_is_lost_across_a_leader_kill() {
    let mut c = TestCluster::start(3, 21510);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    let items: BTreeSet<String> = (0..150).map(|i| format!("job-{i:03}")).collect();
    rt.block_on(async {
        for chunk in items.iter().collect::<Vec<_>>().chunks(30) {
            futures::future::join_all(chunk.iter().map(|i| push(&client, "work", i))).await;
        }
    });
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (client, seen) = (Arc::new(rt.block_on(async { c.client() })), seen.clone());
            rt.spawn(async move {
                let until = Instant::now() + Duration::from_secs(40);
                while Instant::now() < until {
                    match pop(&client, "work", 1_000).await {
                        // Processed once delivered; the ack only tells the queue. An ack whose
                        // reply was lost is retried; `not_found` means the first one landed.
                        Ok(Some(it)) => {
                            seen.lock().unwrap().push(it.item);
                            while let Err(e) = ack(&client, "work", it.id).await {
                                if e.kind == dsh::ErrorKind::NotFound || Instant::now() > until {
                                    break;
                                }
                            }
                        }
                        // Empty: done unless something is still in flight somewhere.
                        Ok(None) => {
                            let s = stats(&client, "work").await;
                            if s.ready == 0 && s.in_flight == 0 {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    rt.block_on(async {
        let until = Instant::now() + Duration::from_secs(20);
        while seen.lock().unwrap().len() < 50 {
            assert!(Instant::now() < until, "consumers made no progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    c.kill(leader);
    for h in consumers {
        rt.block_on(h).unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let distinct: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(distinct, items, "every pushed item was delivered");
    rt.block_on(async {
        let s = stats(&client, "work").await;
        assert_eq!((s.ready, s.in_flight), (0, 0), "{s:?}");
        assert!(s.acked >= 150 && s.delivered >= s.acked, "{s:?}");
    });
}
