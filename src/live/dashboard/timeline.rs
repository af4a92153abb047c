//! The timeline strip: the last 60 seconds, one column per slice of time, with fault periods
//! shaded (a different shade per kind, so it reads without colour) and elections, crashes and
//! restarts marked where they happened. Drawn from `View::faults` and `View::marks`.

use super::look::Look;
use super::text::fit;
use crate::live::{Fault, View};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

const SPAN_MS: u64 = 60_000;

pub const LEGEND: &str = "▓ crash  ▒ pause  ░ partition  ≈ slow   ◆ election  ✖ crash  ▲ restart";
/// The same in the title line of the compact layout.
const SHORT_LEGEND: &str = "▓ crash ▒ pause ░ cut ≈ slow ◆ election ✖ crash ▲ restart";

fn shade(kind: Fault) -> char {
    match kind {
        Fault::Crash => '▓',
        Fault::Pause => '▒',
        Fault::Partition => '░',
        Fault::Slow => '≈',
    }
}

fn mark(kind: &str) -> char {
    match kind {
        "election" => '◆',
        "crash" => '✖',
        "restart" => '▲',
        _ => '•',
    }
}

/// `roomy`: a full box with an axis and a legend; otherwise a line on top and two rows.
pub fn draw(f: &mut Frame, area: Rect, view: &View, look: Look, roomy: bool) {
    let block = if roomy { Block::bordered() } else { Block::new().borders(Borders::TOP) };
    let title =
        if roomy { " timeline · last 60 s ".to_string() } else { format!(" timeline · 60 s · {SHORT_LEGEND} ") };
    let block = block.title(Span::styled(fit(&title, area.width.saturating_sub(2) as usize), look.title()));
    let inner = block.inner(area);
    let w = inner.width as usize;
    let mut lines = vec![faults_row(view, w, look), marks_row(view, w, look)];
    if roomy {
        lines.push(Line::styled(axis(w), look.dim()));
        lines.push(Line::styled(fit(LEGEND, w), look.dim()));
    }
    lines.truncate(inner.height as usize);
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// The time slice column `i` of `w` covers, in ms since the epoch.
fn slice(view: &View, i: usize, w: usize) -> (u64, u64) {
    let start = view.at_ms.saturating_sub(SPAN_MS);
    let at = |i: usize| start + SPAN_MS * i as u64 / w.max(1) as u64;
    (at(i), at(i + 1))
}

fn faults_row(view: &View, w: usize, look: Look) -> Line<'static> {
    let cells = (0..w).map(|i| {
        let (from, to) = slice(view, i, w);
        let open = view.faults.iter().rev().find(|p| p.start_ms < to && p.end_ms.unwrap_or(u64::MAX) >= from);
        match open {
            Some(p) => Span::styled(shade(p.kind).to_string(), look.fault()),
            None => Span::styled("─", look.dim()),
        }
    });
    Line::from(cells.collect::<Vec<_>>())
}

fn marks_row(view: &View, w: usize, look: Look) -> Line<'static> {
    let cells = (0..w).map(|i| {
        let (from, to) = slice(view, i, w);
        // A later mark in the same slice wins: an election after a crash is the news.
        match view.marks.iter().rev().find(|m| m.at_ms >= from && m.at_ms < to.max(from + 1)) {
            Some(m) => {
                let style = if m.kind == "election" { look.leader() } else { look.bad() };
                Span::styled(mark(&m.kind).to_string(), style)
            }
            None => Span::raw(" "),
        }
    });
    Line::from(cells.collect::<Vec<_>>())
}

/// `-60s          -30s          now`.
fn axis(w: usize) -> String {
    let mut cells = vec![' '; w];
    let mut put = |at: usize, s: &str| {
        for (k, c) in s.chars().enumerate() {
            if let Some(cell) = cells.get_mut(at + k) {
                *cell = c;
            }
        }
    };
    put(0, "-60s");
    put((w / 2).saturating_sub(2), "-30s");
    put(w.saturating_sub(3), "now");
    cells.into_iter().collect()
}
