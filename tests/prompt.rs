//! The interactive prompt, driven through a pseudo-terminal as a person would type.

mod common;

use common::pty::utf8;
use common::*;
use rexpect::session::{spawn_command, PtySession};
use std::process::Command;
use std::time::{Duration, Instant};

fn session(c: &TestCluster, home: &std::path::Path) -> PtySession {
    let mut cmd = Command::new(DSH);
    cmd.env("DSH_HOME", home).env("TERM", "xterm").arg("--no-color").arg("--cluster").arg(&c.file);
    let mut p = spawn_command(cmd, Some(20_000)).unwrap();
    ready(&mut p);
    p
}

/// Waits for a fresh prompt. The line editor discards typeahead when it starts reading, so a
/// person (and this test) waits for the prompt before typing.
fn ready(p: &mut PtySession) {
    p.exp_string("3/3> ").unwrap();
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn a_person_at_the_prompt() {
    let c = TestCluster::start(3, 21200);
    runtime().block_on(async { wait_leader(&c.client(), 3).await });
    let home = tempfile::tempdir().unwrap();
    let mut p = session(&c, home.path());

    // Tab completes the command, and a hint shows what it takes.
    p.send("pu\t").unwrap();
    p.flush().unwrap();
    p.exp_string("put").unwrap();
    p.exp_string("KEY VALUE [--via NODE]").unwrap();
    p.send_line(" k1 hello").unwrap();
    p.exp_string("OK revision=").unwrap();
    ready(&mut p);

    p.send_line("help put").unwrap();
    p.exp_string("usage: put KEY VALUE").unwrap();
    p.exp_string("example: put").unwrap();
    ready(&mut p);

    p.send_line("pt a 1").unwrap();
    p.exp_string("did you mean `put`?").unwrap();
    ready(&mut p);

    // A multi-line Rhai function, callable on the next line.
    p.send_line("fn double(x) {").unwrap();
    p.exp_string("{").unwrap();
    p.send_line("  x * 2").unwrap();
    p.exp_string("x * 2").unwrap();
    p.send_line("}").unwrap();
    p.exp_string("}").unwrap();
    ready(&mut p);
    p.send_line("double(21)").unwrap();
    p.exp_string("42").unwrap();
    ready(&mut p);

    // Rhai sees the commands and their data.
    p.send_line("get(\"k1\") + \"!\"").unwrap();
    p.exp_string("hello!").unwrap();
    ready(&mut p);

    // Ctrl-C cuts a running command short.
    p.send_line("sleep 10s").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    p.send_control('c').unwrap();
    p.exp_string("cancelled").unwrap();
    p.exp_string("3/3> ").unwrap();
    assert!(interrupted.elapsed() < Duration::from_secs(1), "back at the prompt in {:?}", interrupted.elapsed());

    p.send_control('d').unwrap();
    p.exp_eof().unwrap();

    // Up recalls a line from the earlier session.
    let mut p = session(&c, home.path());
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.exp_string("sleep 10s").unwrap();
    p.send_control('c').unwrap();
    ready(&mut p);
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn live_events_print_above_a_half_typed_line() {
    let mut c = TestCluster::start(3, 21220);
    let leader = runtime().block_on(async { wait_leader(&c.client(), 3).await });
    let home = tempfile::tempdir().unwrap();
    let mut p = session(&c, home.path());
    p.send_line("events on").unwrap();
    p.exp_string("events on:").unwrap();
    ready(&mut p);

    // Half a command typed, then the leader dies under it.
    p.send("put typed-while").unwrap();
    p.flush().unwrap();
    // Echoed as typed, one redraw per key.
    p.exp_string("yped-while").unwrap();
    c.kill(leader.id);
    // The election and the dead node's silence are seen independently, in either order.
    let down = format!("n{}  down", leader.id);
    p.exp_regex(&format!("{down}[\\s\\S]*won the election|won the election[\\s\\S]*{down}")).unwrap();
    // The line editor redraws the prompt and the half-typed line below what it printed.
    p.exp_string("put typed-while").unwrap();

    // Finishing the line runs exactly what was typed before and after the interruption.
    p.send_line(" intact").unwrap();
    p.exp_string("OK revision=").unwrap();
    p.send_line("get typed-while").unwrap();
    p.exp_string("intact").unwrap();
    p.exp_string("2/3> ").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    p.send_line("events off").unwrap();
    p.exp_string("live events stopped").unwrap();
    p.exp_string("2/3> ").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

/// A fresh cluster, a prompt on it in a 100×30 terminal, and the leader's id.
fn cluster_and_session(port_base: u16) -> (TestCluster, tempfile::TempDir, PtySession, u64) {
    let c = TestCluster::start(3, port_base);
    let leader = runtime().block_on(async { wait_leader(&c.client(), 3).await });
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("stty cols 100 rows 30; exec \"$0\" \"$@\"").arg(DSH);
    cmd.env("DSH_HOME", home.path()).env("TERM", "xterm").arg("--no-color").arg("--cluster").arg(&c.file);
    let mut p = spawn_command(cmd, Some(20_000)).unwrap();
    ready(&mut p);
    (c, home, p, leader.id)
}

#[test]
fn completion_ends_a_completed_word_with_a_space() {
    let (_c, _home, mut p, _) = cluster_and_session(23700);
    p.send("cra\t").unwrap();
    p.flush().unwrap();
    p.exp_string("crash").unwrap();
    p.send_line("n1").unwrap();
    // `crash n1` ran (and was refused: this cluster file names no supervisor), not `crashn1`.
    let (_, said) = p.exp_regex("error: [^\r\n]*").unwrap();
    assert!(said.contains("n1 has no supervisor"), "`crash n1` ran: {said}");
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn help_on_a_group_word_lists_its_commands() {
    let (_c, _home, mut p, _) = cluster_and_session(23710);
    p.send_line("help chat").unwrap();
    p.exp_regex("error|`chat` commands").unwrap();
    let listed = utf8(&p.exp_string("3/3> ").unwrap());
    for cmd in ["chat send", "chat log", "chat check"] {
        assert!(listed.contains(cmd), "`help chat` lists `{cmd}`:\n{listed}");
    }
    assert!(!listed.contains("no command"), "{listed}");
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_mistyped_command_word_gets_did_you_mean() {
    let (_c, _home, mut p, _) = cluster_and_session(23720);
    for typo in ["stauts", "stauts n1", "stauts()"] {
        p.send_line(typo).unwrap();
        let (_, said) = p.exp_regex("error: [^\r\n]*").unwrap();
        assert!(said.contains("did you mean `status`?"), "`{typo}` gave: {said}");
        ready(&mut p);
    }
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn the_prompt_follows_a_new_leader_without_a_key_press() {
    let (mut c, _home, mut p, leader) = cluster_and_session(23730);
    let others: String = (1..=3).filter(|&i| i != leader).map(|i| i.to_string()).collect();
    c.kill(leader);
    let killed = Instant::now();
    // No key is pressed: the prompt itself redraws with the node that leads now.
    p.exp_regex(&format!("dsh n[{others}]")).unwrap();
    let seen = killed.elapsed();
    assert!(seen < Duration::from_secs(1), "the new leader showed after {seen:?}");
    p.exp_string("2/3> ").unwrap();
    // The redrawn prompt still takes a line as typed.
    std::thread::sleep(Duration::from_millis(150));
    p.send_line("put after-failover yes").unwrap();
    p.exp_string("OK revision=").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_stops_a_load_with_the_results_so_far() {
    let (_c, home, mut p, _) = cluster_and_session(23740);
    let report = home.path().join("report.json");
    p.send_line(&format!("load put --duration 30s --report {}", report.display())).unwrap();
    // The progress bar counts operations completed so far.
    p.exp_regex("[1-9][0-9]* ops/s  p99").unwrap();
    let pressed = Instant::now();
    p.send_control('c').unwrap();
    let (out, _) = p.exp_regex("interrupted after [0-9.]+ s: partial results").unwrap();
    let out = utf8(&out);
    p.exp_string("3/3> ").unwrap();
    let back = pressed.elapsed();
    assert!(back < Duration::from_secs(1), "back at the prompt {back:?} after Ctrl-C");
    assert!(out.contains("p99 ms") && out.contains("ops/s"), "the partial table:\n{out}");
    assert!(!out.contains("cancelled"), "{out}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["summary"]["interrupted"], true, "{r}");
    assert!(r["summary"]["ops"].as_u64().unwrap() > 0, "{r}");
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_stops_a_ladder_with_the_rows_it_finished() {
    let (_c, _home, mut p, _) = cluster_and_session(23750);
    p.send_line("ladder put").unwrap();
    // The bar names the rung it is on: the first two (10 and 100 operations) have finished.
    p.exp_string("rung 3/4").unwrap();
    p.send_control('c').unwrap();
    let (out, _) = p.exp_regex("interrupted after [0-9.]+ s into the 1000-operation rung").unwrap();
    let out = utf8(&out);
    p.exp_string("3/3> ").unwrap();
    for rung in ["│ 10 ", "│ 100 "] {
        assert!(out.contains(rung), "the finished rung `{rung}` is shown:\n{out}");
    }
    assert!(!out.contains("│ 1000 "), "the rung cut short is not a row:\n{out}");
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn lines_typed_while_a_command_runs_run_after_it() {
    let (_c, _home, mut p, _) = cluster_and_session(23760);
    p.send_line("say(\"running\"); sleep(\"3s\")").unwrap();
    // The line's own echo also says `running`; wait for the output, on a line of its own, so
    // the lines below are typed while the command runs and not into the line editor.
    p.exp_string("\nrunning\r\n").unwrap();
    // Typed while `sleep` runs: the terminal is in cooked mode and holds the lines.
    p.send_line("put ahead 1").unwrap();
    p.send_line("get ahead").unwrap();
    p.exp_string("OK revision=").unwrap();
    // Each shows after a prompt, as if typed there, and runs in order.
    p.exp_regex("3/3> get ahead\\s+1").unwrap();
    p.exp_string("3/3> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn clear_history_and_exit_are_commands() {
    let (_c, _home, mut p, _) = cluster_and_session(23770);
    p.send_line("clear").unwrap();
    p.exp_string("\x1b[2J").unwrap();
    ready(&mut p);
    p.send_line("put h 1").unwrap();
    ready(&mut p);
    p.send_line("history").unwrap();
    p.exp_regex("1  clear\\s+2  put h 1\\s+3  history").unwrap();
    ready(&mut p);
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}
