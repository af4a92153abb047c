//! The dashboard drawn from a hand-filled `View` on ratatui's `TestBackend`, at the two sizes
//! SPEC §7 names: every panel there, one leader ★, a down and a paused node, an open fault
//! shaded up to now, a running load, and every box closed (nothing ran over a border).

use super::{draw, Look};
use crate::live::{
    CheckPanel, ClusterSecond, Fault, LoadPanel, NodeView, Period, ScenarioRow, TimelineMark, View, ViewEvent,
};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use std::collections::BTreeMap;

const NOW: u64 = 1_800_000_000_000;

fn node(id: &str, state: &str, role: &str, term: u64, log: u64, lag: u64) -> NodeView {
    NodeView {
        id: id.into(),
        address: "127.0.0.1:23901".into(),
        state: state.into(),
        role: role.into(),
        term,
        leader: Some("n1".into()),
        last_log_index: log,
        commit_index: log.saturating_sub(2),
        applied_index: log.saturating_sub(3),
        lag,
        keys: 1200,
        ..NodeView::default()
    }
}

/// A cluster mid-demo: n1 leads, n2 lags on a slowed link, n3 crashed, n4 paused; a partition
/// still open, bank holding and inventory broken, a put load at 45%.
fn view() -> View {
    let mut n2 = node("n2", "up", "follower", 7, 1190, 37);
    n2.faults = vec!["slow 100ms".into()];
    n2.rtt_ms = Some(0.42);
    let nodes = vec![
        node("n1", "up", "leader", 7, 1227, 0),
        n2,
        NodeView { id: "n3".into(), state: "down".into(), role: "unknown".into(), ..NodeView::default() },
        NodeView {
            id: "n4".into(),
            state: "paused".into(),
            role: "unknown".into(),
            faults: vec!["paused".into()],
            ..NodeView::default()
        },
    ];
    let series = (0..90u64)
        .map(|i| ClusterSecond {
            sec: NOW / 1000 - 90 + i,
            requests: 1000 + 37 * (i % 11),
            errors: if i == 80 { 12 } else { 0 },
            errors_by_kind: if i == 80 {
                BTreeMap::from([("no_quorum".to_string(), 9), ("timeout".to_string(), 3)])
            } else {
                BTreeMap::new()
            },
            p50_ms: 1.1,
            p95_ms: 2.4,
            p99_ms: 3.0 + (i % 7) as f64,
        })
        .collect();
    let events = (0..30u64)
        .map(|i| ViewEvent {
            at_ms: NOW - 30_000 + i * 1000,
            node: "n1".into(),
            kind: "election".into(),
            text: format!("won the election: leader of term {i}"),
        })
        .chain([ViewEvent {
            at_ms: NOW - 500,
            node: "n3".into(),
            kind: "crashed".into(),
            text: "process gone: stopped answering".into(),
        }])
        .collect();
    View {
        at_ms: NOW,
        elapsed_ms: 125_000,
        refresh_hz: 5.0,
        nodes,
        leader: Some("n1".into()),
        term: 7,
        series,
        events,
        events_by_kind: BTreeMap::from([
            ("election".into(), 3),
            ("down".into(), 2),
            ("up".into(), 1),
            ("fault".into(), 4),
        ]),
        faults: vec![
            Period { kind: Fault::Crash, nodes: vec!["n3".into()], start_ms: NOW - 40_000, end_ms: Some(NOW - 30_000) },
            Period { kind: Fault::Partition, nodes: vec!["n2".into()], start_ms: NOW - 5_000, end_ms: None },
        ],
        marks: vec![
            TimelineMark { at_ms: NOW - 40_000, kind: "crash".into(), node: "n3".into(), term: None },
            TimelineMark { at_ms: NOW - 38_000, kind: "election".into(), node: "n1".into(), term: Some(7) },
            TimelineMark { at_ms: NOW - 30_000, kind: "restart".into(), node: "n3".into(), term: None },
        ],
        scenarios: vec![
            ScenarioRow {
                name: "bank".into(),
                running: true,
                ops_per_sec: 48.5,
                errors: 0,
                counters: BTreeMap::from([("transfers".into(), 1234)]),
                held: Some(true),
            },
            ScenarioRow {
                name: "inventory".into(),
                running: true,
                ops_per_sec: 20.0,
                errors: 3,
                counters: BTreeMap::from([("orders".into(), 77)]),
                held: Some(false),
            },
        ],
        load: Some(LoadPanel {
            op: "put".into(),
            progress: 0.45,
            ops: 45_000,
            ops_per_sec: 2_345.0,
            errors: 0,
            p99_ms: 4.2,
            elapsed_ms: 19_000,
        }),
        check: None,
    }
}

fn render(view: &View, w: u16, h: u16, look: Look) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, view, look)).unwrap();
    t.backend().buffer().clone()
}

fn rows(b: &Buffer) -> Vec<String> {
    (0..b.area.height).map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect()).collect()
}

fn screen(b: &Buffer) -> String {
    rows(b).join("\n")
}

/// Each row opens as many boxes as it closes: a panel's text never replaced its border.
fn boxes_closed(b: &Buffer) {
    for (y, row) in rows(b).iter().enumerate() {
        for (open, close) in [('┌', '┐'), ('└', '┘')] {
            let (o, c) = (row.matches(open).count(), row.matches(close).count());
            assert_eq!(o, c, "row {y} opens {o} boxes and closes {c}:\n{}", screen(b));
        }
    }
    // Every box's sides reach from its top to its bottom.
    let r = rows(b);
    for (y, row) in r.iter().enumerate() {
        for (x, c) in row.chars().enumerate() {
            if c == '┌' {
                let below = r.get(y + 1).and_then(|n| n.chars().nth(x));
                assert!(matches!(below, Some('│' | '└')), "the box at {x},{y} has a side:\n{}", screen(b));
            }
        }
    }
}

fn every_panel(text: &str) {
    for title in ["throughput", "latency", "errors", "events by kind", "recent events", "scenarios", "load", "timeline"]
    {
        assert!(text.contains(title), "the `{title}` panel is shown:\n{text}");
    }
    for id in ["n1", "n2", "n3", "n4"] {
        assert!(text.contains(&format!(" {id} ")), "a box for {id}:\n{text}");
    }
    assert_eq!(text.matches('★').count(), 1, "exactly one leader star:\n{text}");
    assert!(text.contains(" n1 ★ "), "n1 is the leader:\n{text}");
    assert!(text.contains("✖ down") && text.contains("‖ paused"), "a down and a paused node:\n{text}");
    assert!(text.contains("slow 100ms"), "n2's fault:\n{text}");
    assert!(text.contains("now ") && text.contains("avg ") && text.contains("peak "), "throughput numbers:\n{text}");
    assert!(text.contains("p50 ") && text.contains("p95 ") && text.contains("p99 "), "latency percentiles:\n{text}");
    assert!(text.contains("no_quorum"), "errors by kind:\n{text}");
    assert!(text.contains("election"), "events by kind:\n{text}");
    assert!(text.contains("process gone"), "the latest event:\n{text}");
    assert!(text.contains("bank") && text.contains("✓ held") && text.contains("✗ broken"), "scenarios:\n{text}");
    assert!(text.contains("put") && text.contains("45%"), "the load's progress:\n{text}");
    assert!(text.contains("elapsed 2m05s") && text.contains("5.0 Hz"), "elapsed and refresh rate:\n{text}");
    assert!(text.contains('◆') && text.contains('▲'), "elections and restarts marked:\n{text}");
}

/// The open partition is shaded up to the last column of the fault row; the crash that ended
/// 30 s ago is shaded too, but not at the end.
fn open_fault_reaches_now(b: &Buffer) {
    let row = rows(b).into_iter().find(|r| r.contains('▓') && !r.contains("crash")).expect("a shaded fault row");
    let cells: Vec<char> = row.trim_end_matches(['│', ' ']).chars().collect();
    assert_eq!(cells.last(), Some(&'░'), "the open partition reaches now: {row}");
    assert!(row.contains('▓'), "the closed crash is shaded: {row}");
}

#[test]
fn compact_at_80_by_24() {
    let b = render(&view(), 80, 24, Look { color: true });
    every_panel(&screen(&b));
    boxes_closed(&b);
    open_fault_reaches_now(&b);
}

#[test]
fn roomy_at_200_by_50() {
    let b = render(&view(), 200, 50, Look { color: true });
    let text = screen(&b);
    every_panel(&text);
    boxes_closed(&b);
    open_fault_reaches_now(&b);
    // Room for the long forms: indexes spelled out, a legend and an axis.
    assert!(text.contains("log 1,227  commit 1,225  applied 1,224"), "{text}");
    assert!(text.contains("▓ crash") && text.contains("-60s") && text.contains("now"), "{text}");
}

#[test]
fn no_color_keeps_the_marks() {
    let b = render(&view(), 80, 24, Look { color: false });
    every_panel(&screen(&b));
    for cell in b.content() {
        assert!(cell.fg == Color::Reset && cell.bg == Color::Reset, "no colour with NO_COLOR: {cell:?}");
    }
}

#[test]
fn an_empty_model_and_a_tiny_terminal_still_draw() {
    let b = render(&View::default(), 80, 24, Look { color: true });
    let text = screen(&b);
    assert!(text.contains("waiting for the nodes") && text.contains("no leader"), "{text}");
    boxes_closed(&b);
    let b = render(&view(), 40, 10, Look { color: true });
    assert!(screen(&b).contains("needs 60×20"), "{}", screen(&b));
}

#[test]
fn five_nodes_fit_in_80_columns() {
    let mut v = view();
    v.nodes.push(node("n5", "up", "follower", 7, 1227, 0));
    let b = render(&v, 80, 24, Look { color: true });
    boxes_closed(&b);
    assert!(screen(&b).contains(" n5 "), "{}", screen(&b));
}

#[test]
fn a_running_check_takes_the_work_box_then_shows_its_verdict() {
    let mut v = view();
    v.check = Some(CheckPanel {
        what: "kv".into(),
        nemesis: Some("crash,partition".into()),
        running: true,
        progress: 0.5,
        elapsed_ms: 15_000,
        ok: 1_200,
        fail: 30,
        info: 4,
        valid: None,
        verdict: None,
    });
    for (w, h) in [(80, 24), (100, 30), (200, 50)] {
        let b = render(&v, w, h, Look { color: true });
        let text = screen(&b);
        boxes_closed(&b);
        assert!(text.contains("check kv") && text.contains("ok 1,200"), "{w}x{h}: the running check:\n{text}");
        assert!(text.contains("50%") && text.contains("running 15s"), "{w}x{h}: its progress:\n{text}");
        assert!(!text.contains("45%"), "{w}x{h}: the check, not the load, has the box:\n{text}");
    }

    let judged = CheckPanel {
        running: false,
        progress: 1.0,
        valid: Some(false),
        verdict: Some("check:1:k3 is NOT linearizable".into()),
        ..v.check.clone().unwrap()
    };
    v.check = Some(judged);
    v.load = None;
    let b = render(&v, 100, 30, Look { color: true });
    let text = screen(&b);
    let verdict: String = text.lines().filter(|l| l.contains("┌ check kv")).count().to_string();
    assert_eq!(verdict, "1", "the check's box:\n{text}");
    assert!(text.contains("✗ check:1:k3 is NOT"), "the verdict stays once it lands:\n{text}");
    assert!(text.contains("│linearizable "), "the verdict wraps rather than being cut at 100 columns:\n{text}");
    assert!(!text.contains("linear…"), "{text}");
    let cell = b.content().iter().find(|c| c.symbol() == "✗" && c.fg != Color::Reset);
    assert!(cell.is_some(), "an invalid verdict is coloured as bad:\n{text}");
}
