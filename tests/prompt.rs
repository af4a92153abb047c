//! The interactive prompt, driven through a pseudo-terminal as a person would type.

mod common;

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
    p.exp_string(&format!("n{}  down", leader.id)).unwrap();
    p.exp_string("won the election").unwrap();
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
