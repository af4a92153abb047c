//! `load` and `ladder` against real node processes: the table and the `--report` file agree,
//! an open-loop run holds its rate and shows a paused leader in p99 and in the per-second
//! series, thresholds fail the command while still printing, and `--verify` finds every
//! acknowledged write after the leader is killed midway. Counts are kept small: these run as
//! debug builds on a shared 2-core machine, and they assert behaviour, not speed.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// One cluster at a time: the rate test must not compete with another test's load for CPU.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a cluster and returns it with the leader's node id once one leads all three.
fn cluster(port_base: u16) -> (TestCluster, u64) {
    let c = TestCluster::start(3, port_base);
    let rt = runtime();
    let leader = rt.block_on(async { wait_leader(&c.client(), 3).await.id });
    (c, leader)
}

fn json_line(out: &std::process::Output) -> Value {
    let text = stdout(out);
    let line = text.lines().last().unwrap_or_else(|| panic!("no output; stderr: {}", stderr(out)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}\n{}", stderr(out)))
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("no number `{k}` in {v}"))
}

fn pid_of(c: &TestCluster, id: u64) -> i32 {
    c.nodes.iter().find(|n| n.id == id).and_then(|n| n.child.as_ref()).expect("node runs").id() as i32
}

#[test]
fn load_prints_the_table_and_the_report_agrees() {
    let _s = serial();
    let (c, _) = cluster(21900);
    let report = c.dir.path().join("report.json");
    // Acceptance 1 names 10,000 operations; a debug cluster does a few hundred per second, so
    // the same command runs with fewer.
    let out = c.dsh(&["-c", &format!("load put --count 2000 --concurrency 64 --report {}", report.display())]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header.join(" "), "ops ops/s errors p50 ms p95 ms p99 ms p99.9 ms max ms", "{text}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(text.contains("served by: n"), "{text}");

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let s = &r["summary"];
    assert_eq!(row[0], s["ops"].to_string(), "ops: {text}\n{s}");
    assert_eq!(f(s, "ops") + f(s, "errors"), 2000.0, "{s}");
    assert_eq!(row[1], format!("{:.0}", f(s, "ops_per_sec")), "ops/s");
    assert_eq!(row[2], s["errors"].to_string(), "errors");
    for (i, k) in ["p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"].iter().enumerate() {
        assert_eq!(row[3 + i], format!("{:.2}", f(s, k)), "{k}: {text}\n{s}");
    }
    assert!(f(s, "p50_ms") <= f(s, "p99_ms") && f(s, "p99_ms") <= f(s, "max_ms"), "{s}");
    assert_eq!(r["settings"]["concurrency"], 64);
    assert_eq!(r["settings"]["loop"], "closed");
    assert_eq!(r["errors_by_kind"], s["errors_by_kind"]);
    let series = r["series"].as_array().unwrap();
    let total: f64 = series.iter().map(|p| f(p, "ops")).sum();
    assert_eq!(total, f(s, "ops"), "the series adds up to the summary");
    for p in series {
        for k in ["second", "ops", "errors", "p50_ms", "p99_ms"] {
            assert!(p[k].is_number(), "series point has {k}: {p}");
        }
    }

    // `--json` prints the same summary the report carries.
    let report2 = c.dir.path().join("report2.json");
    let out = c.dsh(&["--json", "-c", &format!("load mixed --count 300 --report {}", report2.display())]);
    let j = json_line(&out);
    assert_eq!(j["cmd"], "load");
    assert_eq!(j["ok"], true);
    let r2: Value = serde_json::from_str(&std::fs::read_to_string(&report2).unwrap()).unwrap();
    for (k, v) in r2["summary"].as_object().unwrap() {
        assert_eq!(&j[k], v, "field {k}");
    }
    assert_eq!(r2["settings"]["op"], "mixed");
}

#[test]
fn an_open_loop_holds_its_rate_and_a_paused_leader_shows_in_p99_and_the_series() {
    let _s = serial();
    let (c, leader) = cluster(21910);
    let report = c.dir.path().join("steady.json");
    let out = c.dsh(&["--json", "-c", &format!("load put --rate 100 --duration 3s --report {}", report.display())]);
    let steady = json_line(&out);
    let j = &steady;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(f(j, "ops") + f(j, "errors"), 300.0, "every scheduled operation ran: {j}");
    let rate = f(j, "ops_per_sec");
    assert!((95.0..=105.0).contains(&rate), "held 100/s within 5%: {j}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["settings"]["loop"], "open");
    assert_eq!(r["settings"]["rate"], 100.0);

    // The same rate, with the leader stopped for a second in the middle.
    let report = c.dir.path().join("paused.json");
    let run = Command::new(DSH)
        .arg("--cluster")
        .arg(&c.file)
        .args(["--json", "-c", &format!("load put --rate 100 --duration 4s --report {}", report.display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1300));
    let pid = pid_of(&c, leader);
    // SAFETY: plain syscalls on a child process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(1));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let out = run.wait_with_output().unwrap();
    let j = json_line(&out);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(f(&j, "ops") + f(&j, "errors"), 400.0, "every scheduled operation ran: {j}");
    eprintln!("steady: {steady}\npaused: {j}\nseries: {}", r["series"]);
    // Operations due while the leader was stopped waited for it or for a new one (an election
    // takes a few hundred milliseconds), and that wait counts: the stall must show in p99.
    let p99 = f(&j, "p99_ms");
    assert!(p99 >= 200.0 && p99 > 2.0 * f(&steady, "p99_ms"), "the pause shows in p99: {j}\nsteady: {steady}");
    let series = r["series"].as_array().unwrap();
    let worst = series.iter().map(|p| f(p, "p99_ms")).fold(0.0, f64::max);
    let first = f(&series[0], "p99_ms");
    assert!(worst >= 200.0 && first < worst / 2.0, "a second with a high p99 after a calm one: {series:?}");
}

#[test]
fn ladder_prints_four_rows() {
    let _s = serial();
    let (c, _) = cluster(21920);
    let out = c.dsh(&["-c", "ladder --concurrency 64"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header.join(" "), "count ops ops/s errors p50 ms p95 ms p99 ms p99.9 ms max ms", "{text}");
    let rows: Vec<Vec<f64>> =
        lines.map(|l| l.split_whitespace().map(|c| c.parse().unwrap_or(f64::NAN)).collect()).collect();
    assert_eq!(rows.len(), 4, "{text}");
    // The rungs are constants; what each row measured is not: every operation of the rung was
    // acknowledged, none failed, and the latencies are real and in order.
    for (row, rung) in rows.iter().zip([10.0, 100.0, 1000.0, 10000.0]) {
        let [count, ops, rate, errors, p50, p95, p99, p999, max] = row[..] else { panic!("nine columns: {text}") };
        assert_eq!((count, ops, errors), (rung, rung, 0.0), "the {rung} rung did {rung} operations: {text}");
        assert!(rate > 0.0 && p50 > 0.0, "{text}");
        assert!(p50 <= p95 && p95 <= p99 && p99 <= p999 && p999 <= max, "{text}");
    }
}

#[test]
fn a_broken_threshold_fails_the_command_and_still_prints_the_results() {
    let _s = serial();
    let (c, _) = cluster(21930);
    let out = c.dsh(&["-c", "load put --count 200 --concurrency 8 --max-p99 1ms"]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("p99 ms"), "the table is still printed: {}", stdout(&out));
    assert!(stderr(&out).contains("--max-p99 1ms"), "names the threshold: {}", stderr(&out));

    let out = c.dsh(&["--json", "-c", "load put --count 100 --max-p99 1ms --max-errors 0"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json_line(&out);
    assert_eq!(j["ok"], false);
    assert_eq!(j["error"]["kind"], "threshold");
    assert!(j["error"]["message"].as_str().unwrap().contains("--max-p99"), "{j}");
    assert_eq!(f(&j, "ops"), 100.0, "the results come with the failure: {j}");

    let out = c.dsh(&["-c", "load put --count 100 --max-p99 10s --max-errors 0"]);
    assert!(out.status.success(), "limits that hold pass: {}", stderr(&out));

    let out = c.dsh(&["-c", "load get --count 10 --verify"]);
    assert!(!out.status.success() && stderr(&out).contains("usage"), "--verify is for writes: {}", stderr(&out));
    let out = c.dsh(&["-c", "load teleport"]);
    assert!(!out.status.success() && stderr(&out).contains("put, get, mixed"), "{}", stderr(&out));
}

#[test]
fn verify_finds_every_acknowledged_write_after_the_leader_is_killed() {
    let _s = serial();
    let (mut c, leader) = cluster(21940);
    // A request timeout shorter than any failover turns the election after the kill into
    // counted errors instead of retries the client hides: no new leader can be elected within
    // the 200 ms lease of the last heartbeat, which was at most 50 ms before the kill. (300 ms
    // stopped being shorter once followers call the election as the lease runs out.)
    let run = Command::new(DSH)
        .arg("--cluster")
        .arg(&c.file)
        .args(["--json", "--timeout", "150ms", "-c", "load put --duration 5s --concurrency 16 --keys 300 --verify"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    c.kill(leader);
    let out = run.wait_with_output().unwrap();
    let j = json_line(&out);
    assert_eq!(j["ok"], true, "{j}\n{}", stderr(&out));
    assert_eq!(f(&j, "missing"), 0.0, "{j}");
    assert_eq!(f(&j, "verified"), 300.0, "every key was written and read back: {j}");
    let by_kind: f64 = j["errors_by_kind"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
    assert!(f(&j, "errors") > 0.0, "the kill cost some operations: {j}");
    assert_eq!(by_kind, f(&j, "errors"), "errors are counted by kind: {j}");
    let served: Vec<&String> = j["by_node"].as_object().unwrap().keys().collect();
    assert!(served.len() >= 2, "a new leader served after the kill: {j}");
}

#[test]
fn scripts_call_load_with_a_map() {
    let _s = serial();
    let (c, _) = cluster(21950);
    let story = c.dir.path().join("load.rhai");
    std::fs::write(
        &story,
        r#"
let r = load(#{op: "put", count: 200, concurrency: 32, value_size: 100});
check(type_of(r) == "map", "load returns a map");
check(r.ops + r.errors == 200 && r.ops_per_sec > 0.0, "ops and ops/s");
check(r.p50_ms > 0.0 && r.p50_ms <= r.p99_ms, "percentiles in ms");
let g = load("get", #{count: 50});
check(g.ops == 50, "positional op and flags");
"#,
    )
    .unwrap();
    let out = c.dsh(&["run", "--no-pause", story.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("all 4 checks passed"), "{}", stdout(&out));
}

#[test]
fn chat_lock_and_queue_run_as_workloads() {
    let _s = serial();
    let (c, _) = cluster(21960);
    let mut chat_ops = 0.0;
    for op in ["chat", "lock", "queue"] {
        let out = c.dsh(&["--json", "-c", &format!("load {op} --count 100 --concurrency 8")]);
        let j = json_line(&out);
        assert_eq!(j["ok"], true, "{op}: {j}\n{}", stderr(&out));
        assert_eq!(f(&j, "ops") + f(&j, "errors"), 100.0, "{op}: {j}");
        assert!(f(&j, "ops") > 0.0 && !j["by_node"].as_object().unwrap().is_empty(), "{op}: {j}");
        if op == "chat" {
            chat_ops = f(&j, "ops");
        }
    }
    // The chat load went through the same total order as `chat send`.
    let out = c.dsh(&["--json", "-c", "chat check"]);
    let j = json_line(&out);
    for n in j["nodes"].as_array().unwrap() {
        let count = f(n, "count");
        assert!((chat_ops..=100.0).contains(&count) && n["gaps"] == 0, "{chat_ops} sends acknowledged: {j}");
    }
}
