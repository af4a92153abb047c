//! The panels that are lists: errors by kind over the last minute, events by kind, the most
//! recent events, background scenarios, and a running `load` (seed 004's panel) or `check`
//! (its outcomes so far, then its verdict), which share one box. Drawn from
//! `View` alone; each line is cut to its box so nothing runs over a border.

use super::charts::WINDOW_SECS;
use super::look::Look;
use super::text::{bar, clock, count, elapsed, first_fit, fit, ms, rate, wrap};
use crate::live::{CheckPanel, View};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use std::collections::BTreeMap;

fn panel(f: &mut Frame, area: Rect, title: &str, look: Look, lines: impl FnOnce(usize, usize) -> Vec<Line<'static>>) {
    // `errors · 60 s` becomes `errors` where the box is narrow.
    let short = title.split(" · ").next().unwrap_or(title);
    let title = first_fit(&[format!(" {title} "), format!(" {short} ")], area.width.saturating_sub(2) as usize);
    let block = Block::bordered().title(Span::styled(title, look.title()));
    let inner = block.inner(area);
    let mut body = lines(inner.width as usize, inner.height as usize);
    body.truncate(inner.height as usize);
    f.render_widget(Paragraph::new(body).block(block), area);
}

/// `name ........ 12`, the number kept whole at the right.
fn row(name: &str, value: &str, w: usize) -> String {
    let room = w.saturating_sub(value.chars().count() + 1);
    let name = fit(name, room);
    let pad = w.saturating_sub(unicode_width::UnicodeWidthStr::width(name.as_str()) + value.chars().count());
    format!("{name}{}{value}", " ".repeat(pad))
}

pub fn errors(f: &mut Frame, area: Rect, view: &View, look: Look) {
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    let secs = &view.series[view.series.len().saturating_sub(WINDOW_SECS)..];
    for s in secs {
        for (k, n) in &s.errors_by_kind {
            *by_kind.entry(k).or_default() += n;
        }
    }
    let total: u64 = secs.iter().map(|s| s.requests).sum();
    panel(f, area, "errors · 60 s", look, |w, h| {
        if by_kind.values().all(|n| *n == 0) {
            return vec![Line::styled(fit("✓ none", w), look.good())];
        }
        let mut kinds: Vec<(&str, u64)> = by_kind.into_iter().filter(|(_, n)| *n > 0).collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        let errors: u64 = kinds.iter().map(|(_, n)| n).sum();
        let mut out = Vec::new();
        if h > kinds.len() {
            let share =
                if total > 0 { format!(" ({:.1}%)", 100.0 * errors as f64 / total as f64) } else { String::new() };
            out.push(Line::styled(fit(&format!("✗ {} errors{share}", count(errors)), w), look.bad()));
        }
        out.extend(kinds.into_iter().map(|(k, n)| Line::raw(row(k, &count(n), w))));
        out
    });
}

pub fn events_by_kind(f: &mut Frame, area: Rect, view: &View, look: Look) {
    panel(f, area, "events by kind", look, |w, h| {
        if view.events_by_kind.is_empty() {
            return vec![Line::styled(fit("none yet", w), look.dim())];
        }
        let mut kinds: Vec<(&String, &u64)> = view.events_by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        // Two columns when the box is wide enough and the list long.
        let cols = if kinds.len() > h && w >= 36 { 2 } else { 1 };
        let cw = (w - (cols - 1) * 2) / cols;
        let cells: Vec<String> = kinds.iter().map(|(k, n)| row(k, &count(**n), cw)).collect();
        (0..h.min(cells.len().div_ceil(cols)))
            .map(|r| {
                let line: Vec<String> =
                    (0..cols).filter_map(|c| cells.get(r + c * h.min(cells.len().div_ceil(cols)))).cloned().collect();
                Line::raw(line.join("  "))
            })
            .collect()
    });
}

pub fn recent(f: &mut Frame, area: Rect, view: &View, look: Look) {
    panel(f, area, "recent events", look, |w, h| {
        if view.events.is_empty() {
            return vec![Line::styled(fit("no events yet", w), look.dim())];
        }
        let shown = &view.events[view.events.len().saturating_sub(h)..];
        shown
            .iter()
            .map(|e| {
                let style = match e.kind.as_str() {
                    "down" | "crashed" | "crash" | "paused" | "fault" | "damage" => look.bad(),
                    "election" | "leader" => look.leader(),
                    _ => ratatui::style::Style::new(),
                };
                Line::styled(fit(&format!("{} {:<3} {:<9} {}", clock(e.at_ms), e.node, e.kind, e.text), w), style)
            })
            .collect()
    });
}

pub fn scenarios(f: &mut Frame, area: Rect, view: &View, look: Look) {
    panel(f, area, "scenarios", look, |w, h| {
        if view.scenarios.is_empty() {
            return vec![Line::styled(fit("none running", w), look.dim())];
        }
        let mut out = Vec::new();
        // One line each, and a second with the counters when there is room for all of them.
        let two = h >= view.scenarios.len() * 2;
        for s in &view.scenarios {
            let (mark, style) = match (s.running, s.held) {
                (_, Some(false)) => ("✗ broken", look.bad()),
                (false, _) => ("stopped", look.dim()),
                (true, Some(true)) => ("✓ held", look.good()),
                (true, None) => ("…", look.dim()),
            };
            let counters: Vec<String> = s.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let errors = if s.errors > 0 { format!(" err {}", count(s.errors)) } else { String::new() };
            let head = format!("{} {}{errors} ", s.name, rate(s.ops_per_sec));
            let mark_w = mark.chars().count();
            let head = fit(&head, w.saturating_sub(mark_w));
            let rest = if two { String::new() } else { counters.join(" ") };
            let room = w.saturating_sub(unicode_width::UnicodeWidthStr::width(head.as_str()) + mark_w + 1);
            out.push(Line::from(vec![
                Span::raw(head),
                Span::styled(mark, style),
                Span::styled(
                    if rest.is_empty() || room == 0 { String::new() } else { format!(" {}", fit(&rest, room)) },
                    look.dim(),
                ),
            ]));
            if two {
                out.push(Line::styled(fit(&format!("  {}", counters.join(" ")), w), look.dim()));
            }
        }
        out
    });
}

/// The box for work this process runs: a running check first (it is what the room is waiting
/// for), else a running load, else the last check's verdict.
pub fn work(f: &mut Frame, area: Rect, view: &View, look: Look) {
    match (&view.check, &view.load) {
        (Some(c), _) if c.running => check(f, area, c, look),
        (Some(c), None) => check(f, area, c, look),
        _ => load(f, area, view, look),
    }
}

fn check(f: &mut Frame, area: Rect, c: &CheckPanel, look: Look) {
    let title = format!("check {}", c.what);
    panel(f, area, &title, look, |w, h| {
        let ops = c.ok + c.fail + c.info;
        let head = first_fit(
            &[
                format!("{} ops  ok {}  fail {}  info {}", count(ops), count(c.ok), count(c.fail), count(c.info)),
                format!("{} ops  ok {}", count(ops), count(c.ok)),
            ],
            w,
        );
        // Once judged, the verdict is what the room reads: it gets every line left.
        let judged = match (c.valid, &c.verdict) {
            (Some(true), Some(v)) => Some((format!("✓ {v}"), look.good())),
            (Some(false), Some(v)) => Some((format!("✗ {v}"), look.bad())),
            _ => None,
        };
        if let Some((verdict, style)) = judged {
            let lines = wrap(&verdict, w, h.saturating_sub(1));
            return std::iter::once(Line::raw(head)).chain(lines.into_iter().map(|l| Line::styled(l, style))).collect();
        }
        let with = c.nemesis.as_deref().map_or(String::new(), |n| format!("  under {n}"));
        let (last, style) = (format!("running {}{with}", elapsed(c.elapsed_ms)), ratatui::style::Style::new());
        let pct = format!(" {:>3.0}%", c.progress.clamp(0.0, 1.0) * 100.0);
        let gauge =
            Line::from(vec![Span::styled(bar(c.progress, w.saturating_sub(pct.len())), look.chart()), Span::raw(pct)]);
        let mut out = vec![Line::raw(head), gauge, Line::styled(fit(&last, w), style)];
        if h < 3 {
            out.remove(1);
        }
        out
    });
}

fn load(f: &mut Frame, area: Rect, view: &View, look: Look) {
    panel(f, area, "load", look, |w, h| {
        let Some(l) = &view.load else {
            return vec![Line::styled(fit("no load running here", w), look.dim())];
        };
        let pct = format!(" {:>3.0}%", l.progress.clamp(0.0, 1.0) * 100.0);
        let gauge =
            Line::from(vec![Span::styled(bar(l.progress, w.saturating_sub(pct.len())), look.chart()), Span::raw(pct)]);
        let head = first_fit(
            &[
                format!("{}  {} ops  {}", l.op, count(l.ops), rate(l.ops_per_sec)),
                format!("{} {}", l.op, rate(l.ops_per_sec)),
            ],
            w,
        );
        let tail = first_fit(
            &[
                format!("p99 {}  errors {}  {}", ms(l.p99_ms), count(l.errors), elapsed(l.elapsed_ms)),
                format!("p99 {} err {}", ms(l.p99_ms), count(l.errors)),
            ],
            w,
        );
        let tail_style = if l.errors > 0 { look.bad() } else { ratatui::style::Style::new() };
        let mut out = vec![Line::raw(head), gauge, Line::styled(tail, tail_style)];
        if h < 3 {
            out.remove(1);
        }
        out
    });
}
