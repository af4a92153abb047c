//! Live events at the prompt (`events on`), as a presenter watches them while breaking the
//! cluster: each event is a whole line, they come in the order they happened, and a follower is
//! called behind only when it is.

mod common;

use common::pty::{strip_escapes, utf8};
use common::*;
use dsh::client::Target;
use rexpect::session::{spawn_command, PtySession};
use std::process::Command;
use std::time::Duration;

fn session(c: &TestCluster, home: &std::path::Path) -> PtySession {
    let mut cmd = Command::new(DSH);
    cmd.env("DSH_HOME", home).env("TERM", "xterm").arg("--no-color").arg("--cluster").arg(&c.file);
    let mut p = spawn_command(cmd, Some(20_000)).unwrap();
    ready(&mut p, r"3/3> ");
    p
}

/// Waits for a prompt at the start of a line (the editor redraws the prompt on the same line
/// at each key); it discards what is typed before it reads, so the test then waits a little.
fn ready(p: &mut PtySession, prompt: &str) -> String {
    let (before, prompt_line) = p.exp_regex(&format!(r"(^|\n)[^\n]*{prompt}")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    before + prompt_line.as_str()
}

/// The lines a terminal would show: after the last carriage return of each, without escapes.
fn screen_lines(raw: &str) -> Vec<String> {
    let text = utf8(raw);
    text.split('\n')
        .map(|l| {
            let l = strip_escapes(l);
            let l = l.trim_end_matches('\r');
            l.rsplit('\r').next().unwrap_or("").to_string()
        })
        .collect()
}

/// Every `HH:MM:SS.mmm` in `line`, as milliseconds since midnight, with where it starts.
fn times(line: &str) -> Vec<(usize, u64)> {
    let b = line.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let num = |i: usize, n: usize| line[i..i + n].parse::<u64>().unwrap();
    (0..b.len())
        .filter(|&i| {
            [0, 1, 3, 4, 6, 7, 9, 10, 11].iter().all(|&d| digit(i + d))
                && b.get(i + 2) == Some(&b':')
                && b.get(i + 5) == Some(&b':')
                && b.get(i + 8) == Some(&b'.')
        })
        .map(|i| (i, ((num(i, 2) * 60 + num(i + 3, 2)) * 60 + num(i + 6, 2)) * 1000 + num(i + 9, 3)))
        .collect()
}

/// One printed event: `14:03:07.215  n2  election   won the election: leader of term 4`.
#[derive(Debug)]
struct Printed {
    at: u64,
    node: String,
    kind: String,
    text: String,
}

fn events_in(lines: &[String]) -> Vec<Printed> {
    let mut out = Vec::new();
    for l in lines {
        let found = times(l);
        if found.is_empty() {
            continue;
        }
        assert_eq!(found.len(), 1, "one event per line, but this line holds {}: {l:?}", found.len());
        assert_eq!(found[0].0, 0, "an event starts its line: {l:?}");
        let mut words = l[12..].split_whitespace();
        let (node, kind) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
        assert!(node.starts_with('n'), "an event names its node: {l:?}");
        out.push(Printed { at: found[0].1, node, kind, text: words.collect::<Vec<_>>().join(" ") });
    }
    out
}

#[test]
fn a_leader_crash_and_restart_print_whole_lines_in_time_order() {
    let mut c = TestCluster::start(3, 23620);
    let rt = runtime();
    let client = rt.block_on(async { c.client() });
    let leader = rt.block_on(async {
        let leader = wait_leader(&client, 3).await;
        // Well over 64 entries: a new leader that counted a follower it has not heard from yet
        // as holding nothing would call every follower far behind.
        for i in 0..100 {
            client.call(Target::Leader, put(&format!("k{i}"), "v")).await.unwrap();
        }
        wait_caught_up(&client, 3).await;
        leader
    });
    let old = format!("n{}", leader.id);
    let home = tempfile::tempdir().unwrap();
    let mut p = session(&c, home.path());
    p.send_line("events on").unwrap();
    p.exp_string("events on:").unwrap();
    ready(&mut p, "3/3> ");

    // The leader dies while a command runs (the editor is not reading a line then) ...
    p.send_line("sleep 4s").unwrap();
    // The line ends when the editor hands it over (it redraws the line at each key before).
    let mut raw = p.exp_string("\n").unwrap();
    raw.push('\n');
    c.kill(leader.id);
    raw.push_str(&p.exp_string("won the election").unwrap());
    raw.push_str("won the election");
    raw.push_str(&ready(&mut p, "2/3> "));
    // ... and comes back while the prompt waits for a line.
    c.restart(leader.id);
    raw.push_str(&p.exp_string("restarted: answers again").unwrap());
    raw.push_str("restarted: answers again");
    // Whatever happened before that has been printed by now; `events off` ends the record.
    p.send_line("events off").unwrap();
    raw.push_str(&p.exp_string("live events stopped").unwrap());

    let printed = events_in(&screen_lines(&raw));
    let listing: Vec<String> = printed.iter().map(|e| format!("{} {} {} {}", e.at, e.node, e.kind, e.text)).collect();
    let listing = listing.join("\n");
    let position = |node: &str, kind: &str| printed.iter().position(|e| e.node == node && e.kind == kind);
    let recovery = position(&old, "recovery").unwrap_or_else(|| panic!("{old}'s recovery is shown:\n{listing}"));
    let up = position(&old, "up").unwrap_or_else(|| panic!("{old} is shown answering again:\n{listing}"));
    assert!(recovery < up, "{old} recovered before it answered again:\n{listing}");
    // The follower that stayed up was current throughout: the new leader must not call it
    // behind because it had not heard from it yet.
    let won = printed.iter().find(|e| e.text.starts_with("won the election")).unwrap_or_else(|| panic!("{listing}"));
    let stayed = (1..=3).map(|n| format!("n{n}")).find(|n| *n != old && *n != won.node).unwrap();
    assert!(
        !printed.iter().any(|e| e.kind == "behind" && e.text.starts_with(&format!("{stayed} "))),
        "{stayed} was never behind:\n{listing}"
    );
    for w in printed.windows(2) {
        assert!(w[0].at <= w[1].at, "events out of time order:\n{listing}");
    }
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
