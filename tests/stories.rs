//! Every story in scripts/ runs to the end with all its checks holding, on its own ephemeral
//! cluster, the way a presenter rehearses it.

mod common;

use common::*;
use std::process::Command;

#[test]
fn every_story_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut stories: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    stories.sort();
    assert!(!stories.is_empty(), "scripts/ holds stories");
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
