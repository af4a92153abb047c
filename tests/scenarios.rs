//! Scenario plugins (issue 7): the seven shipped plugins are listed with their parameters; a
//! plugin dropped into `$DSH_HOME/plugins` shows at the next start; bank and inventory keep
//! their invariants through a crash and a partition while running in the background; twitter
//! runs in the background while other commands are typed, and `scenario stop all` stops it
//! within a second. Each test talks to one `dsh --ephemeral --json` process line by line.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// One `dsh --ephemeral` process fed lines on stdin, with its own `DSH_HOME`.
struct Shell {
    sh: PipedShell,
    _home: tempfile::TempDir,
}

impl Shell {
    fn start(home: tempfile::TempDir) -> Shell {
        Shell { sh: PipedShell::start(&[std::ffi::OsStr::new("--ephemeral")], home.path()), _home: home }
    }

    fn send(&mut self, line: &str) -> Value {
        self.sh.send(line)
    }

    fn ok(&mut self, line: &str) -> Value {
        self.sh.ok(line)
    }

    /// The scenario `name` in `scenario status`.
    fn status_of(&mut self, name: &str) -> Value {
        let v = self.ok("scenario status");
        v["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().expect(name)
    }

    /// Polls until every named scenario has done `more` ticks beyond `since` (or panics).
    fn wait_for_ticks(&mut self, names: &[&str], since: &[u64], more: u64, why: &str) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let now: Vec<u64> = names.iter().map(|n| self.status_of(n)["ops"].as_u64().unwrap()).collect();
            if now.iter().zip(since).all(|(n, s)| *n >= s + more) {
                return now;
            }
            if Instant::now() >= deadline {
                let status = self.ok("scenario status");
                panic!("{why}: ops stuck at {now:?} (from {since:?}); status: {status}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list["scenarios"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn scenario_list_shows_the_seven_plugins_with_descriptions_and_parameters() {
    let mut sh = Shell::start(home());
    let list = sh.ok("scenario list");
    let found = names(&list);
    for want in ["bank", "collab", "ecommerce", "inventory", "iot", "pipeline", "twitter"] {
        let p = list["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == want);
        let p = p.unwrap_or_else(|| panic!("{want} missing from {found:?}"));
        assert!(p["about"].as_str().unwrap().len() > 20, "{want} describes itself: {p}");
        assert!(!p["about"].as_str().unwrap().starts_with('✗'), "{want} parses: {p}");
        let params = p["params"].as_object().unwrap();
        assert!(params.contains_key("rate"), "{want} has a rate parameter with a default: {p}");
        assert_eq!(p["modes"], "run, start", "{want} runs in the foreground and the background");
    }
    // The text a presenter sees names the defaults.
    let out = Command::new(DSH).args(["--ephemeral", "-c", "scenario list"]).env("DSH_HOME", home().path()).output();
    let text = stdout(&out.unwrap());
    assert!(text.contains("accounts=5 balance=1000"), "{text}");
    let v = sh.send("scenario start nosuch");
    assert_eq!(v["ok"], false);
    assert!(v["error"]["message"].as_str().unwrap().contains("there are: bank"), "{v}");
    let v = sh.send("scenario run bank bogus=1");
    assert_eq!(v["error"]["kind"], "usage", "{v}");
}

#[test]
fn a_plugin_dropped_into_dsh_home_shows_at_the_next_start_and_runs() {
    let h = home();
    let mut sh = Shell::start(tempfile::tempdir_in(h.path()).unwrap());
    assert!(!names(&sh.ok("scenario list")).contains(&"votes".to_string()));
    drop(sh);
    // The README's example plugin, verbatim.
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plugins/votes.rhai")).unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains(example.trim()), "README shows examples/plugins/votes.rhai in full");
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("plugins")).unwrap();
    std::fs::write(home.path().join("plugins/votes.rhai"), &example).unwrap();
    let mut sh = Shell::start(home);
    let list = sh.ok("scenario list");
    let votes = list["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == "votes").cloned();
    let votes = votes.unwrap_or_else(|| panic!("votes listed: {list}"));
    assert_eq!(votes["about"], "votes for colours, counted with cas; no vote lost");
    assert_eq!(votes["params"]["rate"], 10);
    assert!(names(&list).contains(&"bank".to_string()), "the shipped plugins are still there");
    let r = sh.ok("scenario run votes duration=1s rate=20");
    assert_eq!(r["held"], true, "{r}");
    assert!(r["counters"]["votes"].as_i64().unwrap() > 0, "{r}");
}

#[test]
fn bank_and_inventory_hold_their_invariants_through_a_crash_and_a_partition() {
    let mut sh = Shell::start(home());
    sh.ok("scenario start bank");
    sh.ok("scenario start inventory");
    let both = ["bank", "inventory"];
    let ops = sh.wait_for_ticks(&both, &[0, 0], 3, "traffic starts");

    let leader = sh.ok("leader")["leader"].as_str().unwrap().to_string();
    sh.ok(&format!("crash {leader}"));
    let ops = sh.wait_for_ticks(&both, &ops, 5, "traffic carries on after the leader crashed");
    sh.ok(&format!("restart {leader}"));

    let leader = sh.ok("wait leader --timeout 20s")["leader"].as_str().unwrap().to_string();
    sh.ok(&format!("isolate {leader}"));
    let ops = sh.wait_for_ticks(&both, &ops, 5, "traffic carries on with the leader cut off");
    sh.ok("heal");
    sh.wait_for_ticks(&both, &ops, 3, "traffic carries on after healing");

    for name in both {
        let s = sh.ok(&format!("scenario stop {name}"));
        assert_eq!(s["running"], false, "{s}");
        assert_eq!(s["held"], true, "{name}'s invariant held: {s}");
        assert!(s["checks_passed"].as_u64().unwrap() >= 1 && s["checks_failed"] == 0, "{s}");
        assert!(s["counters"].as_object().unwrap().values().any(|v| v.as_i64().unwrap() > 0), "{s}");
    }
    let status = sh.ok("scenario status");
    for s in status["scenarios"].as_array().unwrap() {
        assert_eq!(s["running"], false, "{s}");
        assert_eq!(s["held"], true, "status reports the invariant held: {s}");
    }
    assert_eq!(sh.ok("get bank:acct:1")["value"].as_str().map(|v| v.parse::<i64>().is_ok()), Some(true));

    // The check is real: money created behind the bank's back (under its lock) is caught.
    sh.ok("scenario start bank");
    sh.wait_for_ticks(&["bank"], &[0], 2, "bank restarts");
    sh.ok("lock acquire bank:lock --as tamper --wait 10s --ttl 5s");
    let v: i64 = sh.ok("get bank:acct:1")["value"].as_str().unwrap().parse().unwrap();
    sh.ok(&format!("put bank:acct:1 {}", v + 1));
    sh.ok("lock release bank:lock --as tamper");
    let s = sh.ok("scenario stop bank");
    assert_eq!(s["held"], false, "a broken total is reported: {s}");
    assert!(s["failures"][0].as_str().unwrap().contains("total balance is 5000 (found 5001)"), "{s}");
}

#[test]
fn a_scenario_started_without_a_quorum_sets_up_once_there_is_one() {
    let mut sh = Shell::start(home());
    sh.ok("crash n1");
    sh.ok("crash n2");
    assert_eq!(sh.ok("scenario start inventory")["running"], true);
    // Its setup fails for want of a leader, and it says so instead of ending.
    let deadline = Instant::now() + Duration::from_secs(30);
    let s = loop {
        let s = sh.status_of("inventory");
        if s["errors"].as_u64().unwrap() >= 1 {
            break s;
        }
        assert!(Instant::now() < deadline, "setup has not failed yet: {s}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(s["running"], true, "it waits for the cluster: {s}");
    assert_eq!(s["ops"], 0, "{s}");
    assert!(s["last_error"].as_str().unwrap().starts_with("no_quorum"), "{s}");
    sh.ok("restart n1");
    sh.ok("restart n2");
    sh.wait_for_ticks(&["inventory"], &[0], 5, "traffic starts once a leader is elected");
    let s = sh.ok("scenario stop inventory");
    assert_eq!(s["held"], true, "{s}");

    // Stopped before it could set up, it ends without auditing stock it never put.
    sh.ok("crash n1");
    sh.ok("crash n2");
    sh.ok("scenario start bank prefix=never");
    let s = sh.ok("scenario stop bank");
    assert_eq!(s["running"], false, "{s}");
    assert_eq!(s["checks_failed"], 0, "{s}");
    assert_eq!(s["held"], Value::Null, "nothing was checked: {s}");
}

#[test]
fn twitter_runs_in_the_background_while_commands_run_and_stop_all_is_prompt() {
    let mut sh = Shell::start(home());
    let s = sh.ok("scenario start twitter rate=20");
    assert_eq!(s["running"], true);
    let v = sh.send("scenario start twitter");
    assert_eq!(v["ok"], false, "one twitter at a time: {v}");
    let first = sh.wait_for_ticks(&["twitter"], &[0], 3, "twitter starts")[0];

    // Other commands answer promptly while it runs.
    for i in 0..5 {
        let t = Instant::now();
        sh.ok(&format!("put typed:{i} by-hand"));
        assert_eq!(sh.ok(&format!("get typed:{i}"))["value"], "by-hand");
        assert!(t.elapsed() < Duration::from_secs(5), "put+get took {:?}", t.elapsed());
    }
    sh.ok("status");
    let later = sh.wait_for_ticks(&["twitter"], &[first], 5, "twitter keeps going")[0];
    let live = sh.status_of("twitter");
    assert_eq!(live["running"], true);
    assert!(live["ops_per_sec"].as_f64().unwrap() > 0.0, "live ops/s: {live}");
    assert!(live["counters"]["posts"].as_i64().unwrap() > 0, "live counters: {live}");
    assert!(later > first);

    sh.ok("scenario start iot");
    let t = Instant::now();
    let stopped = sh.ok("scenario stop all");
    let took = t.elapsed();
    let all = stopped["scenarios"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{stopped}");
    for s in all {
        let ms = s["stopped_in_ms"].as_u64().unwrap();
        assert!(ms <= 1000, "{} stopped its traffic within a second: {ms} ms", s["name"]);
        assert_eq!(s["held"], true, "{s}");
    }
    assert!(took < Duration::from_secs(5), "stop all returned in {took:?}");
    let a = sh.status_of("twitter");
    std::thread::sleep(Duration::from_millis(500));
    let b = sh.status_of("twitter");
    assert_eq!(a["running"], false);
    assert_eq!(a["ops"], b["ops"], "no tick after stopping");
}
