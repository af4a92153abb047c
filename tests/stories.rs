//! Every story in scripts/ runs to the end with all its checks holding, the way a presenter
//! rehearses it: each on its own ephemeral cluster, and each twice in a row on one persistent
//! local cluster after the others, then once more after `dsh cluster reset`. A failing check
//! fails its story (exit 1), also one inside a scenario the story runs, and the story's checks
//! fail when their claim is false.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stories() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut stories: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    stories.sort();
    assert!(!stories.is_empty(), "scripts/ holds stories");
    stories
}

fn name(story: &Path) -> String {
    story.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_story_passes() {
    let stories = stories();
    let mut failed = Vec::new();
    for story in &stories {
        let out =
            Command::new(DSH).args(["run", "--no-pause", "--ephemeral", "--speed", "4"]).arg(story).output().unwrap();
        if !out.status.success() {
            failed.push(format!("{}:\n{}\n{}", story.display(), stdout(&out), stderr(&out)));
        }
    }
    assert!(failed.is_empty(), "stories failed:\n{}", failed.join("\n"));
}

/// A DSH_HOME of its own: the local cluster the stories share, as a presenter's laptop has one.
/// Its nodes are stopped when dropped.
struct Home(tempfile::TempDir);

impl Home {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(DSH).env("DSH_HOME", self.0.path()).args(args).output().unwrap()
    }

    fn story(&self, story: &Path) -> Output {
        Command::new(DSH)
            .env("DSH_HOME", self.0.path())
            .args(["run", "--no-pause", "--speed", "4"])
            .arg(story)
            .output()
            .unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if std::thread::panicking() {
            dump_logs(self.0.path());
        }
        let _ = self.run(&["cluster", "down"]);
    }
}

/// The stories in `group`, each run twice in a row on one local cluster (so each also runs
/// after the others), then `cluster reset`, then each once more. Every check must hold every
/// time: a story names its data per run and checks what it wrote, not what the cluster held.
fn rehearse(group: &[PathBuf]) {
    let home = Home(tempfile::tempdir().unwrap());
    let mut failed = Vec::new();
    let mut tell = |story: &Path, when: &str| {
        let out = home.story(story);
        if !out.status.success() {
            failed.push(format!("{} ({when}):\n{}\n{}", story.display(), stdout(&out), stderr(&out)));
        }
    };
    for story in group {
        tell(story, "first time");
        tell(story, "again, on the same cluster");
    }
    let out = home.run(&["cluster", "reset"]);
    assert!(out.status.success(), "cluster reset: {}\n{}", stdout(&out), stderr(&out));
    for story in group {
        tell(story, "after cluster reset");
    }
    assert!(failed.is_empty(), "stories failed:\n{}", failed.join("\n"));
}

/// The longest stories, rehearsed on one cluster while the others are on another.
const LONG: [&str; 5] = ["anti-entropy", "chat-order", "jepsen", "pipeline-ladder", "raft-locks-queue"];

#[test]
fn the_long_stories_can_be_told_again_on_one_cluster() {
    let group: Vec<PathBuf> = stories().into_iter().filter(|s| LONG.contains(&name(s).as_str())).collect();
    assert_eq!(group.len(), LONG.len(), "every long story is in scripts/");
    rehearse(&group);
}

#[test]
fn the_other_stories_can_be_told_again_on_one_cluster() {
    // Ecommerce then failover on one cluster: both write orders.
    let group: Vec<PathBuf> = stories().into_iter().filter(|s| !LONG.contains(&name(s).as_str())).collect();
    rehearse(&group);
}

#[test]
fn acked_messages_come_back_when_the_ack_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/raft-locks-queue.rhai");
    let source = std::fs::read_to_string(original).unwrap();
    let without: Vec<&str> = source.lines().filter(|l| !l.contains("queue::ack(")).collect();
    assert!(without.len() < source.lines().count(), "the story acks its messages");
    let story = dir.path().join("no-ack.rhai");
    std::fs::write(&story, without.join("\n")).unwrap();
    let out =
        Command::new(DSH).args(["run", "--no-pause", "--ephemeral", "--speed", "4"]).arg(&story).output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "without acks the story fails: {text}\n{}", stderr(&out));
    assert!(text.contains("✗ acked messages never come back"), "the ack check is the one that fails: {text}");
}

#[test]
fn a_check_that_fails_inside_a_scenario_counts_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::write(
        dir.path().join("plugins/short.rhai"),
        r#"
fn describe() { #{ about: "loses an event", params: #{ n: 1 } } }
fn run(opts) { check(false, "counts match: 100 produced, 99 delivered"); #{} }
"#,
    )
    .unwrap();
    let story = dir.path().join("story.rhai");
    std::fs::write(&story, "check(true, \"before\");\nscenario::run(\"short\");\ncheck(true, \"never reached\");\n")
        .unwrap();
    let out = Command::new(DSH)
        .args(["run", "--no-pause", "--ephemeral"])
        .arg(&story)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("✗ counts match"), "the scenario's check is shown: {}", stdout(&out));
    assert!(
        stdout(&out).contains(": 1 check passed, 1 failed"),
        "the summary counts the scenario's failed check: {}",
        stdout(&out)
    );
}

#[test]
fn a_failing_check_fails_the_story_and_a_syntax_error_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rhai");
    std::fs::write(&bad, "say(\"hi\");\nlet x = ;\n").unwrap();
    let out = Command::new(DSH).args(["run", "--no-pause", "--ephemeral"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.rhai:2:"), "file:line:col: {err}");
    assert!(err.contains('^'), "a caret under the column: {err}");

    let failing = dir.path().join("failing.rhai");
    std::fs::write(&failing, "put(\"k\", \"v\");\ncheck(get(\"k\") == \"v\", \"reads back\");\ncheck(get(\"k\") == \"w\", \"wrong on purpose\");\n").unwrap();
    let out = Command::new(DSH).args(["run", "--no-pause", "--ephemeral"]).arg(&failing).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 of 2 checks failed"), "{}", stdout(&out));
}

#[test]
fn stories_get_data_back_and_can_import_modules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("helpers.rhai"), "fn twice(x) { x * 2 }\n").unwrap();
    let story = dir.path().join("api.rhai");
    std::fs::write(
        &story,
        r#"
import "helpers" as h;
check(h::twice(21) == 42, "modules import from the story's directory");
let r = put("k", "v");
check(r.node != "", "served by a node");
check(r.revision > 0, "a revision");
check(get("k") == "v", "reads back");
check(get("absent") == (), "an absent key is ()");
let w = wait("healthy");
check(w.leader != "", "wait returns the leader");
let nodes = status();
check(type_of(nodes) == "array" && nodes.len() == 3, "status() is an array of three");
for n in nodes {
    check(n.id != "" && n.address != "" && n.state == "up", `${n.id} is up`);
    check(["leader", "follower"].contains(n.role) && n.term > 0, `${n.id} has a role and a term`);
    check(n.applied_index <= n.last_log_index && n.keys >= 0 && n.bytes_on_disk > 0 && n.uptime_ms >= 0, `${n.id} reports its log and disk`);
}
"#,
    )
    .unwrap();
    let out = Command::new(DSH).args(["run", "--no-pause", "--ephemeral"]).arg(&story).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("all 16 checks passed"), "{}", stdout(&out));
}
