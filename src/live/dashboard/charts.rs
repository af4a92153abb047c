//! Throughput and latency: the numbers now, and a sparkline of the last 60 seconds squeezed
//! into the box's width (each column the peak of its seconds). Drawn from `View::series`.

use super::look::Look;
use super::text::{first_fit, ms, rate, squeeze};
use crate::live::{ClusterSecond, View};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline};
use ratatui::Frame;

/// The window the sparklines and the average cover.
pub const WINDOW_SECS: usize = 60;

fn window(view: &View) -> &[ClusterSecond] {
    &view.series[view.series.len().saturating_sub(WINDOW_SECS)..]
}

pub fn throughput(f: &mut Frame, area: Rect, view: &View, look: Look) {
    let block = Block::bordered().title(Span::styled(" throughput · 60 s ", look.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let secs = window(view);
    let requests: Vec<u64> = secs.iter().map(|s| s.requests).collect();
    let now = requests.last().copied().unwrap_or(0) as f64;
    let avg = if requests.is_empty() { 0.0 } else { requests.iter().sum::<u64>() as f64 / requests.len() as f64 };
    let peak = requests.iter().copied().max().unwrap_or(0) as f64;
    let words = first_fit(
        &[
            format!("now {}   avg {}   peak {}", rate(now), rate(avg), rate(peak)),
            format!("now {} avg {} peak {}", rate(now), rate(avg), rate(peak)),
            format!("{} avg {} pk {}", rate(now), rate(avg), rate(peak)),
        ],
        inner.width as usize,
    );
    numbers_and_line(f, inner, words, &requests, look.chart());
}

pub fn latency(f: &mut Frame, area: Rect, view: &View, look: Look) {
    let block = Block::bordered().title(Span::styled(" latency · p99 over 60 s ", look.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let secs = window(view);
    let last = secs.iter().rev().find(|s| s.requests > 0);
    let words = match last {
        Some(s) => first_fit(
            &[
                format!("p50 {}   p95 {}   p99 {}", ms(s.p50_ms), ms(s.p95_ms), ms(s.p99_ms)),
                format!("p50 {} p95 {} p99 {}", ms(s.p50_ms), ms(s.p95_ms), ms(s.p99_ms)),
                format!("{:.1}/{:.1}/{:.1} ms", s.p50_ms, s.p95_ms, s.p99_ms),
            ],
            inner.width as usize,
        ),
        None => "p50 —  p95 —  p99 —  (no requests)".into(),
    };
    // Microseconds, so sub-millisecond differences still show as bar heights.
    let p99: Vec<u64> = secs.iter().map(|s| (s.p99_ms * 1000.0) as u64).collect();
    numbers_and_line(f, inner, words, &p99, look.latency());
}

fn numbers_and_line(f: &mut Frame, inner: Rect, words: String, values: &[u64], style: Style) {
    let [top, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(Line::raw(words)), top);
    let data = squeeze(values, rest.width as usize);
    f.render_widget(Sparkline::default().data(data).style(style), rest);
}
