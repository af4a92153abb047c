//! Tables at the prompt, on terminals of the sizes presenters use: each row stays one line no
//! wider than the terminal, and a script's table shows the columns it names, identifying ones
//! first.

mod common;

use common::pty::{strip_escapes, utf8};
use common::*;
use rexpect::session::{spawn_command, PtySession};
use std::process::Command;
use std::time::Duration;

/// A prompt on a pseudo-terminal of `cols`×`rows`, as a person's terminal window would be.
fn session(c: &TestCluster, home: &std::path::Path, cols: u16, rows: u16) -> PtySession {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("stty cols {cols} rows {rows} && exec \"$0\" --no-color --cluster \"$1\""))
        .arg(DSH)
        .arg(&c.file)
        .env("DSH_HOME", home)
        .env("TERM", "xterm")
        .env_remove("COLUMNS")
        .env_remove("LINES");
    let mut p = spawn_command(cmd, Some(20_000)).unwrap();
    ready(&mut p);
    p
}

/// Waits for a fresh prompt; the line editor discards what is typed before it reads.
fn ready(p: &mut PtySession) {
    p.exp_regex(r"\d/3> ").unwrap();
    std::thread::sleep(Duration::from_millis(150));
}

/// What a command printed, as lines without carriage returns or terminal escapes. The editor
/// redraws the prompt on the same line at each key; the prompt after the command's output is
/// the first one at the start of a new line.
fn run(p: &mut PtySession, line: &str) -> Vec<String> {
    p.send_line(line).unwrap();
    let (out, _) = p.exp_regex(r"\n[^\n]*\d/3> ").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    utf8(&out).split('\n').map(|l| strip_escapes(l).trim_end_matches('\r').to_string()).collect()
}

/// The lines of the first table in `out`, from its top border to its bottom one.
fn first_table(out: &[String]) -> Vec<String> {
    let top = out.iter().position(|l| l.starts_with('┌')).unwrap_or_else(|| panic!("no table in {out:#?}"));
    let bottom = top + out[top..].iter().position(|l| l.starts_with('└')).expect("the table ends");
    out[top..=bottom].to_vec()
}

/// The table fits `cols` and has one line per node: between the header's rule and the bottom
/// border every line is a node's row, `n1`, `n2`, `n3` in order.
fn one_line_per_node(what: &str, out: &[String], cols: usize) {
    let t = first_table(out);
    for l in &t {
        assert!(
            l.chars().count() <= cols,
            "{what} at {cols} columns: a line is {} wide:\n{}",
            l.chars().count(),
            t.join("\n")
        );
    }
    let rule = t.iter().position(|l| l.starts_with('╞')).expect("a header rule");
    let body: Vec<&String> = t[rule + 1..t.len() - 1].iter().collect();
    let names: Vec<String> =
        body.iter().map(|l| l.trim_start_matches('│').split_whitespace().next().unwrap_or("").to_string()).collect();
    assert_eq!(names, ["n1", "n2", "n3"], "{what} at {cols} columns wraps its rows:\n{}", t.join("\n"));
}

/// The table's headings, left to right.
fn headings(out: &[String]) -> Vec<String> {
    let t = first_table(out);
    t[1].split(['│', '┆']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[test]
fn status_metrics_and_scenarios_fit_80_and_100_columns() {
    let c = TestCluster::start(3, 23600);
    runtime().block_on(async { wait_leader(&c.client(), 3).await });
    let home = tempfile::tempdir().unwrap();
    for (cols, rows) in [(80, 24), (100, 30)] {
        let mut p = session(&c, home.path(), cols, rows);
        // Some traffic, so the counters and latencies have their usual widths.
        for i in 0..20 {
            run(&mut p, &format!("put fit-{i} {}", "v".repeat(i)));
        }
        let status = run(&mut p, "status");
        one_line_per_node("status", &status, cols as usize);
        let h = headings(&status);
        for keep in ["node", "state", "role", "term", "leader", "commit"] {
            assert!(h.iter().any(|x| x == keep), "status at {cols} columns keeps `{keep}`: {h:?}");
        }
        one_line_per_node("metrics", &run(&mut p, "metrics"), cols as usize);

        let list = first_table(&run(&mut p, "scenario list"));
        for l in &list {
            assert!(l.chars().count() <= cols as usize, "scenario list at {cols} columns:\n{}", list.join("\n"));
        }
        // One line per scenario: every row names one.
        let rule = list.iter().position(|l| l.starts_with('╞')).unwrap();
        for l in &list[rule + 1..list.len() - 1] {
            let name = l.trim_start_matches('│').split('┆').next().unwrap().trim();
            assert!(!name.is_empty(), "a scenario's row wraps at {cols} columns:\n{}", list.join("\n"));
        }
        p.send_control('d').unwrap();
        p.exp_eof().unwrap();
    }
}

#[test]
fn a_scripts_table_shows_identifying_columns_first_or_those_it_names() {
    let c = TestCluster::start(3, 23610);
    runtime().block_on(async { wait_leader(&c.client(), 3).await });
    let home = tempfile::tempdir().unwrap();
    let mut p = session(&c, home.path(), 80, 24);

    let out = run(&mut p, r#"table([#{node: "n1", role: "leader", term: 3}])"#);
    assert_eq!(headings(&out), ["node", "role", "term"]);
    // Maps keep their keys sorted: `address` and `applied` would come before `id`.
    let out = run(&mut p, r#"table([#{applied: 7, address: "127.0.0.1:7001", id: "n1", keys: 2}])"#);
    assert_eq!(headings(&out), ["id", "address", "applied", "keys"]);
    let out = run(&mut p, r#"table([#{node: "n1", role: "leader", term: 3}], ["term", "role", "node"])"#);
    assert_eq!(headings(&out), ["term", "role", "node"]);
    // Values read as words, not as Rhai or JSON.
    let out = run(&mut p, r#"table([#{lock: "a", holders: ["alice", "bob"], "bytes on disk": 188877}])"#);
    let row = &first_table(&out)[3];
    assert!(row.contains("alice, bob") && row.contains("184.5 KiB"), "{row}");
    // A column no row has is named in the error.
    let out = run(&mut p, r#"table([#{node: "n1"}], ["rol"])"#);
    assert!(out.iter().any(|l| l.contains("no row has a column `rol`")), "{out:#?}");

    // Whole records stay one line each on a narrow terminal too.
    let out = run(&mut p, "table(status())");
    one_line_per_node("table(status())", &out, 80);
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
