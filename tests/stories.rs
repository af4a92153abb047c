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
