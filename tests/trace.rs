//! `put --trace` (SPEC §9) against real node processes: the write's journey comes back with
//! every stage, in an order the nodes' clocks agree with, and names the leader, term and log
//! index that `status` shows. Ports 26100–26199.

mod common;

use common::*;
use dsh::client::Target;
use dsh::proto::NodeStatus;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Runs one command through the binary with `--json` and returns its object.
fn json(c: &TestCluster, line: &str) -> Value {
    let out = c.dsh(&["--json", "-c", line]);
    assert!(out.status.success(), "`{line}` failed: {}{}", stdout(&out), stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| panic!("`{line}`: {e}: {}", stdout(&out)))
}

/// A stage's end (`at_ms`) and duration (`ms`), by name.
fn stages(trace: &Value) -> BTreeMap<String, (Option<f64>, Option<f64>)> {
    let stages = trace["stages"].as_array().expect("stages");
    stages.iter().map(|s| (s["stage"].as_str().unwrap().to_string(), (s["at_ms"].as_f64(), s["ms"].as_f64()))).collect()
}

fn status(c: &TestCluster) -> Vec<NodeStatus> {
    let rt = runtime();
    rt.block_on(async {
        let client = c.client();
        wait_leader(&client, 3).await;
        wait_caught_up(&client, 3).await
    })
}

/// Checks what holds for any traced write: every stage seen, none negative, in causal order.
/// `took`: the node the client sent it to, when the test chose one.
fn check_journey(trace: &Value, took: Option<&str>, leader: &NodeStatus) {
    let leader_name = format!("n{}", leader.id);
    if let Some(took) = took {
        assert_eq!(trace["took"], took, "{trace}");
    }
    assert_eq!(trace["leader"], leader_name.as_str(), "{trace}");
    let s = stages(trace);
    let at = |name: &str| s[name].0.unwrap_or_else(|| panic!("no time for {name}: {trace}"));
    let took_ms = |name: &str| s[name].1.unwrap_or_else(|| panic!("no duration for {name}: {trace}"));
    for name in ["network", "proposer", "append", "fsync", "commit", "apply", "reply", "total"] {
        assert!(took_ms(name) >= 0.0, "{name} negative: {trace}");
    }
    // One clock, the leader's: each stage ends no earlier than the one it follows.
    let order = ["proposer", "append", "fsync", "commit", "apply", "reply"];
    for w in order.windows(2) {
        assert!(at(w[0]) <= at(w[1]), "{} ends after {}: {trace}", w[0], w[1]);
    }
    assert!(took_ms("fsync") <= took_ms("total"), "{trace}");
    assert!(at("reply") <= took_ms("total"), "the client waited less than the leader worked: {trace}");
    // Every follower listed with its acknowledgement, each after the leader had the entry, and
    // a majority (one follower, with the leader) before the commit.
    let acks = trace["acks"].as_array().expect("acks");
    let mut followers: Vec<String> =
        leader.voters.iter().filter(|&&v| v != leader.id).map(|v| format!("n{v}")).collect();
    followers.sort();
    let mut acked: Vec<String> = acks.iter().map(|a| a["node"].as_str().unwrap().to_string()).collect();
    acked.sort();
    assert_eq!(acked, followers, "{trace}");
    let ack_times: Vec<f64> = acks.iter().map(|a| a["at_ms"].as_f64().unwrap()).collect();
    assert!(ack_times.iter().all(|&t| t >= at("append")), "{trace}");
    assert!(ack_times.iter().any(|&t| t <= at("commit")), "committed before any follower held it: {trace}");
    for f in &followers {
        let (ack_at, ack_ms) = s[&format!("ack {f}")];
        assert!(ack_at.is_some() && ack_ms.is_some_and(|ms| ms >= 0.0), "{trace}");
    }
}

#[test]
fn a_traced_write_shows_its_journey_and_an_untraced_one_does_not() {
    let c = TestCluster::start(3, 26100);
    let before = status(&c);
    let leader = before.iter().find(|s| s.role == "leader").expect("a leader").clone();
    let leader_name = format!("n{}", leader.id);

    // Straight to the leader.
    let put = json(&c, &format!("put trace:a 1 --via {leader_name} --trace"));
    let trace = &put["trace"];
    check_journey(trace, Some(&leader_name), &leader);
    assert!(!stages(trace).contains_key("forward"), "the leader took it: no hop: {trace}");
    let after = status(&c);
    let now = after.iter().find(|s| s.id == leader.id).unwrap();
    assert_eq!(now.role, "leader");
    assert_eq!(trace["term"].as_u64(), Some(now.term), "{trace}");
    assert_eq!(trace["index"].as_u64(), Some(now.last_log_index), "nothing else was written: {trace}");
    assert!(now.applied_index >= now.last_log_index);

    // Through a follower, which forwards it: both nodes named, and the hop timed.
    let follower = format!("n{}", leader.voters.iter().find(|&&v| v != leader.id).unwrap());
    let put = json(&c, &format!("put trace:b 2 --via {follower} --trace"));
    let trace = &put["trace"];
    check_journey(trace, Some(&follower), &leader);
    assert!(stages(trace)["forward"].1.is_some_and(|ms| ms >= 0.0), "{trace}");
    assert!(trace["index"].as_u64() > Some(now.last_log_index), "{trace}");

    // The other key writes share the path (sent wherever a fresh client starts, so either node
    // may have taken them).
    for line in ["del trace:a --trace", "cas trace:b 2 3 --trace"] {
        let out = json(&c, line);
        check_journey(&out["trace"], None, &leader);
    }

    // Not asked, not sent.
    let put = json(&c, "put trace:c 3");
    assert!(put.get("trace").is_none(), "{put}");

    // For people: the stages as a table under the usual answer.
    let out = c.dsh(&["-c", "put trace:d 4 --trace"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.starts_with("OK revision="), "{text}");
    assert!(text.contains(&format!("leader {leader_name}, term {}", now.term)), "{text}");
    for stage in ["network", "proposer", "append", "fsync", "ack n", "commit", "apply", "reply", "total"] {
        assert!(text.contains(stage), "{stage} missing:\n{text}");
    }
}

#[test]
fn a_traced_write_to_a_cluster_with_a_follower_down_still_answers_and_lists_the_live_one() {
    let mut c = TestCluster::start(3, 26110);
    let leader = status(&c).into_iter().find(|s| s.role == "leader").expect("a leader");
    let down = *leader.voters.iter().find(|&&v| v != leader.id).unwrap();
    c.kill(down);
    let rt = runtime();
    let trace = rt.block_on(async {
        let client = c.client();
        let r = client.put(Target::Leader, "trace:down", "1", true).await.expect("a majority is up");
        r.trace.expect("asked for a trace")
    });
    let acked: Vec<u64> = trace.acks.iter().map(|a| a.node).collect();
    assert!(!acked.contains(&down), "n{down} is down: {trace:?}");
    assert_eq!(acked.len(), 1, "{trace:?}");
    // The leader waits only a little for the missing follower, and says how long.
    assert!(trace.hold_us <= Duration::from_millis(500).as_micros() as u64, "{trace:?}");
    assert!(trace.total_us().is_some_and(|t| t >= trace.replied_us), "{trace:?}");
}
