//! The presenter's kit (SPEC §9) as a presenter uses it: a story recorded to an asciicast file
//! that holds exactly what was printed, with a marker per step and per fault; `dsh notes` in a
//! second terminal following a story in another; two rehearsals compared step by step; the
//! stable `--marks` line; and a recording that cannot be written refused before the story.

mod common;

use common::pty::{strip_escapes, utf8};
use common::*;
use rexpect::session::spawn_command;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(DSH).env("DSH_HOME", home).args(["run", "--no-pause", "--ephemeral"]).args(args).output().unwrap()
}

#[test]
fn a_recorded_story_is_exactly_what_was_printed() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("t.cast");
    let story = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ecommerce.rhai");
    let out = run(dir.path(), &[story.to_str().unwrap(), "--record", cast.to_str().unwrap()]);
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed}\n{}", stderr(&out));

    let text = std::fs::read_to_string(&cast).unwrap();
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(header["width"].as_u64().unwrap() > 0 && header["height"].as_u64().unwrap() > 0);
    assert!(header["timestamp"].as_u64().unwrap() > 1_600_000_000);
    assert!(header["env"].is_object());

    let (mut said, mut markers, mut last) = (String::new(), Vec::new(), 0.0);
    for line in lines {
        let e: Vec<Value> = serde_json::from_str(line).unwrap();
        assert_eq!(e.len(), 3, "{line}");
        let t = e[0].as_f64().unwrap();
        assert!(t >= last, "events in time order: {line}");
        last = t;
        let data = e[2].as_str().unwrap();
        match e[1].as_str().unwrap() {
            "o" => said.push_str(data),
            "m" => markers.push(data.to_string()),
            other => panic!("unexpected event kind {other}"),
        }
    }
    // Teed where the story prints: the same bytes, not a second rendering of them.
    assert_eq!(said, printed);
    let steps = printed.lines().filter(|l| l.starts_with("── ")).count();
    assert_eq!(steps, 5, "{printed}");
    let step_marks: Vec<_> = markers.iter().filter(|m| m.starts_with("step ")).collect();
    assert_eq!(step_marks.len(), steps, "{markers:?}");
    assert_eq!(step_marks[0], "step 1: Three data centres, one leader");
    // ecommerce crashes a data centre and restarts it.
    let faults: Vec<_> = markers.iter().filter(|m| m.starts_with("fault: ")).collect();
    assert_eq!(faults.len(), 2, "{markers:?}");
    assert!(faults[0].starts_with("fault: crash n") && faults[1].starts_with("fault: restart n"), "{faults:?}");
    assert_eq!(markers.iter().filter(|m| m.starts_with("pause: ")).count(), 4, "{markers:?}");
}

#[test]
fn a_recording_that_cannot_be_written_stops_before_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let story = dir.path().join("s.rhai");
    std::fs::write(&story, "step(\"never\");\n").unwrap();
    let started = Instant::now();
    let out = run(dir.path(), &[story.to_str().unwrap(), "--record", "/nonexistent/dir/t.cast"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot record to /nonexistent/dir/t.cast"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("never"), "the story did not start: {}", stdout(&out));
    assert!(started.elapsed() < Duration::from_secs(2), "refused before a cluster was started");
}

const REHEARSED: &str = r#"
step("Warm up");
say("hello, everyone");
check(true, "the cluster answers");
step("The main point");
say("MAIN");
sleep("300ms");
step("Close");
say("thank you");
"#;

#[test]
fn a_second_rehearsal_compares_times_and_points_out_an_edited_step() {
    let dir = tempfile::tempdir().unwrap();
    let story = dir.path().join("talk.rhai");
    std::fs::write(&story, REHEARSED.replace("MAIN", "a leader is elected")).unwrap();
    let first = run(dir.path(), &[story.to_str().unwrap(), "--rehearse", "--marks"]);
    let said = stdout(&first);
    assert!(first.status.success(), "{said}\n{}", stderr(&first));
    assert!(said.contains("first rehearsal: 3 steps"), "{said}");
    assert!(dir.path().join("talk.rhai.rehearsal.json").is_file());
    // --marks: one line of one shape at the end of every step, after its output.
    let marks: Vec<&str> = said.lines().filter(|l| l.starts_with("-- step ")).collect();
    assert_eq!(marks, ["-- step 1 done: Warm up", "-- step 2 done: The main point", "-- step 3 done: Close"]);
    let after_close = said.split("── 3. Close ──").nth(1).unwrap();
    assert!(after_close.find("thank you").unwrap() < after_close.find("-- step 3 done").unwrap());

    std::fs::write(&story, REHEARSED.replace("MAIN", "a leader is elected in milliseconds")).unwrap();
    let second = run(dir.path(), &[story.to_str().unwrap(), "--rehearse"]);
    let said = stdout(&second);
    assert!(second.status.success(), "{said}\n{}", stderr(&second));
    assert!(said.contains("rehearsal: 3 steps") && said.contains("last time"), "{said}");
    let report = said.split("rehearsal: ").nth(1).unwrap();
    let row = |title: &str| report.lines().find(|l| l.contains(title)).unwrap_or_else(|| panic!("{title}: {said}"));
    for title in ["1. Warm up", "2. The main point", "3. Close"] {
        assert!(row(title).contains(" s ") && (row(title).contains("+") || row(title).contains("−")), "{said}");
    }
    assert!(row("2. The main point").contains("changed: printed lines"), "{said}");
    assert!(report.contains("was: a leader is elected\n"), "{said}");
    assert!(report.contains("now: a leader is elected in milliseconds"), "{said}");
    assert!(!row("1. Warm up").contains("changed") && !row("3. Close").contains("changed"), "{said}");

    // A rehearsal whose check fails is compared, but does not replace the last good one.
    let kept = std::fs::read_to_string(dir.path().join("talk.rhai.rehearsal.json")).unwrap();
    let failing = REHEARSED.replace("MAIN", "changed again").replace("check(true", "check(false");
    std::fs::write(&story, failing).unwrap();
    let third = run(dir.path(), &[story.to_str().unwrap(), "--rehearse"]);
    let said = stdout(&third);
    assert!(!third.status.success(), "{said}");
    assert!(said.contains("rehearsal: 3 steps") && said.contains("changed: checks"), "{said}");
    assert!(said.contains("now: ✗ the cluster answers"), "{said}");
    assert!(said.contains("not saved: this run did not pass, so the last rehearsal stays in"), "{said}");
    let now = std::fs::read_to_string(dir.path().join("talk.rhai.rehearsal.json")).unwrap();
    assert_eq!(now, kept, "the failed run left the last good rehearsal as it was");
}

const FOLLOWED: &str = r#"
step("Alpha");
note("remember the alpha note");
sleep("2s");
step("Beta");
note("the beta note matters");
sleep("2s");
"#;

#[test]
fn notes_in_one_terminal_follow_a_story_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let story = dir.path().join("followed.rhai");
    std::fs::write(&story, FOLLOWED).unwrap();

    let mut cmd = Command::new(DSH);
    cmd.env("DSH_HOME", dir.path()).env("TERM", "xterm").arg("notes");
    let mut notes = spawn_command(cmd, Some(20_000)).unwrap();
    notes.exp_string("waiting for `dsh run`").unwrap();

    let mut cmd = Command::new(DSH);
    cmd.env("DSH_HOME", dir.path()).env("TERM", "xterm").args(["run", "--no-pause", "--ephemeral"]).arg(&story);
    let mut told = spawn_command(cmd, Some(30_000)).unwrap();

    for (n, title, note) in [(1, "Alpha", "remember the alpha note"), (2, "Beta", "the beta note matters")] {
        told.exp_string(&format!("{n}. {title}")).unwrap();
        let shown = Instant::now();
        notes.exp_string(&format!("step {n}: {title}")).unwrap();
        let (seen, _) = notes.exp_regex(note).unwrap();
        assert!(
            shown.elapsed() < Duration::from_secs(1),
            "step {n} reached notes {:?} after it began",
            shown.elapsed()
        );
        assert!(!strip_escapes(&utf8(&seen)).contains("waiting for"));
    }
    told.exp_string("finished").unwrap();
    told.exp_eof().unwrap();
    notes.exp_string("finished").unwrap();
    notes.send("q").unwrap();
    notes.flush().unwrap();
    notes.exp_eof().unwrap();

    // Ctrl-C leaves too (a key here, so the terminal is put back first).
    let mut cmd = Command::new(DSH);
    cmd.env("DSH_HOME", dir.path()).env("TERM", "xterm").arg("notes");
    let mut notes = spawn_command(cmd, Some(20_000)).unwrap();
    notes.exp_string("step 2: Beta").unwrap();
    notes.send_control('c').unwrap();
    let (left, _) = notes.exp_eof().map(|s| (s, ())).unwrap();
    assert!(utf8(&left).contains("\x1b[?1049l"), "the alternate screen is left");
}

#[test]
fn notes_off_a_terminal_print_a_line_per_change() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let story = dir.path().join("followed.rhai");
    std::fs::write(&story, FOLLOWED.replace("2s", "300ms")).unwrap();
    let mut notes = Command::new(DSH)
        .env("DSH_HOME", dir.path())
        .arg("notes")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = BufReader::new(notes.stdout.take().unwrap());
    std::thread::spawn(move || out.lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
    // Said once notes watches the board, so the story cannot publish unseen.
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap().contains("waiting for `dsh run`"));
    assert!(run(dir.path(), &[story.to_str().unwrap()]).status.success());
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        let done = l.starts_with("finished");
        lines.push(l);
        if done {
            break;
        }
    }
    notes.kill().unwrap();
    let _ = notes.wait();
    let text = lines.join("\n");
    for want in [
        "step 1: Alpha (next: Beta)",
        "  note: remember the alpha note",
        "step 2: Beta",
        "  note: the beta note matters",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want:?} in {text}");
    }
    assert!(lines.last().unwrap().starts_with("finished after"), "{text}");
}

#[test]
fn record_start_and_stop_at_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("p.cast");
    let mut cmd = Command::new(DSH);
    cmd.env("DSH_HOME", dir.path()).env("TERM", "xterm").args(["--ephemeral", "--no-color"]);
    let mut p = spawn_command(cmd, Some(30_000)).unwrap();
    let ready = |p: &mut rexpect::session::PtySession| {
        p.exp_regex(r"[0-9]/3> ").unwrap();
        // The line editor drops what is typed before it reads (see tests/prompt.rs).
        std::thread::sleep(Duration::from_millis(150));
    };
    ready(&mut p);
    p.send_line(&format!("record start {}", cast.display())).unwrap();
    p.exp_string("recording to").unwrap();
    ready(&mut p);
    p.send_line("step Warm up").unwrap();
    p.exp_string("1. Warm up").unwrap();
    ready(&mut p);
    p.send_line("crash n3").unwrap();
    p.exp_string("crashed n3").unwrap();
    ready(&mut p);
    p.send_line("record stop").unwrap();
    p.exp_string("recorded").unwrap();
    ready(&mut p);
    p.send_line("say not recorded").unwrap();
    p.exp_string("not recorded").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();

    let text = std::fs::read_to_string(&cast).unwrap();
    let events: Vec<Vec<Value>> = text.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    let kind = |k: &str| -> Vec<String> {
        events.iter().filter(|e| e[1] == k).map(|e| e[2].as_str().unwrap().to_string()).collect()
    };
    let shown: String = kind("o").concat();
    let markers = kind("m");
    assert_eq!(markers, ["step 1: Warm up", "fault: crash n3"]);
    // What was typed (echoed by the line editor) and what the commands printed, in order.
    let at = |s: &str| shown.find(s).unwrap_or_else(|| panic!("{s:?} not in {shown:?}"));
    assert!(at("recording to") < at("step Warm up") && at("step Warm up") < at("1. Warm up"));
    assert!(at("crash n3") < at("crashed n3") && at("crashed n3") < at("record stop"));
    assert!(!shown.contains("not recorded"), "{shown:?}");
}

#[test]
fn a_pause_is_recorded_as_a_short_gap_and_a_terminal_gets_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let (story, cast) = (dir.path().join("p.rhai"), dir.path().join("p.cast"));
    std::fs::write(&story, "step(\"Before\");\npause(\"wait here\");\nsay(\"after the pause\");\n").unwrap();
    let mut cmd = Command::new(DSH);
    cmd.env("DSH_HOME", dir.path())
        .env("TERM", "xterm")
        .args(["run", "--ephemeral", "--record"])
        .arg(&cast)
        .arg(&story);
    let mut p = spawn_command(cmd, Some(30_000)).unwrap();
    p.exp_string("wait here").unwrap();
    // The presenter talks for a while: the wait is what is measured, not a race being hidden.
    std::thread::sleep(Duration::from_millis(2500));
    p.send_line("").unwrap();
    p.exp_string("after the pause").unwrap();
    p.exp_eof().unwrap();

    let text = std::fs::read_to_string(&cast).unwrap();
    let events: Vec<Vec<Value>> = text.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    let time_of = |kind: &str, part: &str| {
        let e = events.iter().find(|e| e[1] == kind && e[2].as_str().unwrap().contains(part));
        e.unwrap_or_else(|| panic!("{part} in {text}"))[0].as_f64().unwrap()
    };
    let gap = time_of("o", "after the pause") - time_of("m", "pause: wait here");
    assert!(gap < 1.5, "a 2.5 s pause is replayed in {gap:.2} s");
    let shown: String = events.iter().filter(|e| e[1] == "o").map(|e| e[2].as_str().unwrap()).collect();
    assert!(shown.contains("wait here ⏎ \r\nafter the pause\r\n"), "{shown:?}");
}
