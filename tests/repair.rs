//! Anti-entropy against real nodes: `repair` run over and over while writes flow never rolls
//! back an acknowledged write (on the leader or anywhere else), and `verify` says by its exit
//! status whether the copies agree, as scripts rely on.

mod common;

use common::*;
use dsh::client::{Client, Target};
use dsh::proto::merkle::leaf_of;
use dsh::proto::{node_name, NodeId, Response, Versioned};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The last acknowledged write of each key (highest revision wins: acknowledgements of writes
/// to one key may arrive out of order).
type Ledger = Arc<Mutex<BTreeMap<String, (u64, String)>>>;

fn json_of(out: &std::process::Output) -> Value {
    let text = stdout(out);
    let line = text.lines().last().unwrap_or_else(|| panic!("no output; stderr: {}", stderr(out)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("`{line}`: {e}"))
}

/// `NAME` or `NAME~N`, whichever first falls in one of four Merkle leaves: with every key
/// there, each write in flight during a survey lands in a leaf under repair.
fn in_few_leaves(name: &str) -> String {
    (0..).map(|n| if n == 0 { name.to_string() } else { format!("{name}~{n}") }).find(|k| leaf_of(k) < 4).unwrap()
}

/// Writes until `stop`: each writer puts fresh keys (whose only write is their last) and
/// rewrites a few hot keys (whose last write keeps moving).
async fn writer(client: Arc<Client>, w: usize, ledger: Ledger, stop: Arc<AtomicBool>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = if i.is_multiple_of(2) {
            in_few_leaves(&format!("fresh:{w}:{i}"))
        } else {
            in_few_leaves(&format!("hot:{}", i % 6))
        };
        let value = format!("w{w}-{i}");
        if let Ok(r) = client.call(Target::Leader, put(&key, &value)).await {
            let Response::Written { revision } = r.value else { panic!("put answered {:?}", r.value) };
            let mut l = ledger.lock().unwrap();
            let e = l.entry(key).or_insert((0, String::new()));
            if e.0 < revision {
                *e = (revision, value);
            }
        }
        i += 1;
    }
}

fn found(r: &Response) -> Option<Versioned> {
    match r {
        Response::Value(v) => v.clone(),
        other => panic!("expected a value, got {other:?}"),
    }
}

/// Every key's last acknowledged write (or a later one) is what a linearizable read returns and
/// what every node's own copy holds; returns the misses, described.
async fn missing(client: &Client, ledger: &BTreeMap<String, (u64, String)>, nodes: &[NodeId]) -> Vec<String> {
    let mut out = Vec::new();
    for (key, (rev, value)) in ledger {
        let mut views = vec![("linearizable".to_string(), client.call(Target::Leader, get(key)).await)];
        for &n in nodes {
            views.push((format!("{}'s copy", node_name(n)), client.call(Target::Node(n), stale_get(key)).await));
        }
        for (from, r) in views {
            let got = found(&r.unwrap_or_else(|e| panic!("reading {key} ({from}): {e}")).value);
            let ok = got.as_ref().is_some_and(|g| g.revision > *rev || (g.revision == *rev && g.value == *value));
            if !ok {
                out.push(format!("{key} ({from}): acknowledged rev {rev} {value:?}, found {got:?}"));
            }
        }
    }
    out
}

/// `repair`, its survey reading the leader 150 ms after the followers (a test-only knob of the
/// coordinator): with writes flowing, the majority's copy is then always older than the
/// leader's, the timing in which a repair that trusted the majority rolled the leader back.
fn repair_reading_the_leader_late(c: &TestCluster) -> std::process::Output {
    std::process::Command::new(DSH)
        .arg("--cluster")
        .arg(&c.file)
        .args(["--json", "-c", "repair"])
        .env("DSH_TEST_SURVEY_LEADER_DELAY_MS", "150")
        .output()
        .unwrap()
}

#[test]
fn repair_in_a_loop_while_writes_flow_rolls_nothing_back() {
    let c = TestCluster::start(3, 23400);
    let rt = runtime();
    let client = Arc::new(rt.block_on(async { c.client() }));
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    // Damage on a follower that the loop is expected to heal along the way.
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    assert!(c.dsh(&["-c", "put sensor:42 reading-294"]).status.success());
    rt.block_on(wait_caught_up(&client, 3));
    let out = c.dsh(&["-c", &format!("corrupt {} sensor:42", node_name(follower))]);
    assert!(out.status.success(), "{}", stderr(&out));

    let ledger: Ledger = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..6).map(|w| rt.spawn(writer(client.clone(), w, ledger.clone(), stop.clone()))).collect();
    let (mut runs, mut repaired, mut kept) = (0, 0, 0);
    // Enough rounds and writes to meet the window many times, however loaded the machine is.
    let cap = Instant::now() + Duration::from_secs(90);
    while (runs < 12 || ledger.lock().unwrap().len() < 150) && Instant::now() < cap {
        let out = repair_reading_the_leader_late(&c);
        let v = json_of(&out);
        // Under load the copies may still differ afterwards (writes in flight), or no majority
        // may agree on one tree for a moment; neither is a failure of repair itself.
        if v["ok"] == false {
            let kind = &v["error"]["kind"];
            assert!(kind == "no_quorum" || kind == "conflict", "repair failed: {v}");
        }
        runs += 1;
        repaired += v["repaired"].as_array().map_or(0, |r| r.len());
        kept += v["repairs"].as_array().into_iter().flatten().map(|r| r["kept"].as_u64().unwrap_or(0)).sum::<u64>();
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).unwrap();
    }
    let acked = ledger.lock().unwrap().clone();
    eprintln!(
        "{runs} repairs ({repaired} node repairs, {kept} newer keys kept) over {} acknowledged keys",
        acked.len()
    );
    assert!(acked.len() > 50, "the writers made progress: {}", acked.len());

    rt.block_on(async {
        wait_caught_up(&client, 3).await;
        let lost = missing(&client, &acked, &[1, 2, 3]).await;
        assert!(
            lost.is_empty(),
            "{} acknowledged writes rolled back, e.g. {:#?}",
            lost.len(),
            &lost[..lost.len().min(8)]
        );
    });
    assert!(kept > 0, "the loop met the window: some node was offered copies older than its own");
    // Once writes stop, repair heals what is really damaged and the copies agree.
    let out = c.dsh(&["--json", "-c", "repair"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = c.dsh(&["--json", "verify"]);
    assert_eq!(json_of(&out)["equal"], true, "{}", stdout(&out));
    assert!(out.status.success());
    rt.block_on(async {
        let r = client.call(Target::Node(follower), stale_get("sensor:42")).await.unwrap();
        assert_eq!(value(&r.value).as_deref(), Some("reading-294"), "the damaged copy was healed");
    });
}

#[test]
fn verify_exits_1_when_copies_differ_and_0_when_they_agree() {
    let c = TestCluster::start(3, 23410);
    let rt = runtime();
    let client = rt.block_on(async { c.client() });
    let leader = rt.block_on(wait_leader(&client, 3)).id;
    let victim = node_name((1..=3).find(|&n| n != leader).unwrap());
    let out = c.dsh(&["-c", "put order:7 paid; put order:8 shipped"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    rt.block_on(wait_caught_up(&client, 3));

    let out = c.dsh(&["--json", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(json_of(&out)["equal"], true);

    assert!(c.dsh(&["-c", &format!("corrupt {victim} order:7")]).status.success());
    for args in [&["--json", "verify"][..], &["--json", "-c", "verify"][..]] {
        let out = c.dsh(args);
        assert_eq!(out.status.code(), Some(1), "{args:?} with a damaged copy: {}{}", stdout(&out), stderr(&out));
        let v = json_of(&out);
        assert_eq!(v["equal"], false, "{v}");
        assert_eq!(v["ok"], false, "{v}");
        let bad: Vec<&Value> =
            v["nodes"].as_array().unwrap().iter().filter(|n| n["differing"] != Value::Array(vec![])).collect();
        assert_eq!(bad.len(), 1, "{v}");
        assert_eq!(bad[0]["id"], victim.as_str());
    }
    // Plain output says so too, and still exits 1.
    let out = c.dsh(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("DIFFERENT"), "{}", stdout(&out));

    let out = c.dsh(&["--json", "-c", "repair"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json_of(&out)["repaired"], serde_json::json!([victim]));
    let out = c.dsh(&["-c", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
