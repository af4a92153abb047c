//! The node boxes: one per node, side by side — role (★ for the leader), term, state, the
//! log / commit / applied indexes with a bar of how far it lags the leader, replication round
//! trip and active faults. Drawn from `View` alone.

use super::look::Look;
use super::text::{bar, count, first_fit, fit, ms};
use crate::live::{NodeView, View};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

/// How many entries behind fills a lag bar, unless some node lags further.
const LAG_SCALE: u64 = 100;

pub fn draw(f: &mut Frame, area: Rect, view: &View, look: Look) {
    if view.nodes.is_empty() {
        let block = Block::bordered().title(Span::styled(" nodes ", look.title()));
        f.render_widget(Paragraph::new("waiting for the nodes to answer…").block(block), area);
        return;
    }
    let n = view.nodes.len() as u32;
    let boxes = Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n))).split(area);
    let scale = view.nodes.iter().map(|n| n.lag).max().unwrap_or(0).max(LAG_SCALE);
    for (node, area) in view.nodes.iter().zip(boxes.iter()) {
        draw_node(f, *area, node, is_leader(view, node), scale, look);
    }
}

/// The one leader the view names; a node that still says it leads an older term is not it.
fn is_leader(view: &View, node: &NodeView) -> bool {
    node.state == "up" && view.leader.as_deref() == Some(node.id.as_str())
}

fn draw_node(f: &mut Frame, area: Rect, node: &NodeView, leader: bool, scale: u64, look: Look) {
    let title = if leader { format!(" {} ★ ", node.id) } else { format!(" {} ", node.id) };
    let title_style = if leader { look.leader() } else { look.title() };
    let block = Block::bordered()
        .border_style(look.node_border(&node.state, leader))
        .title(Span::styled(fit(&title, area.width.saturating_sub(2) as usize), title_style));
    let inner = block.inner(area);
    let lines = lines(node, leader, scale, inner.width as usize, inner.height as usize, look);
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn lines(node: &NodeView, leader: bool, scale: u64, w: usize, h: usize, look: Look) -> Vec<Line<'static>> {
    let role = match (leader, node.state.as_str(), node.role.as_str()) {
        (true, ..) => Span::styled("leader", look.leader()),
        (false, "up", role) => Span::raw(role.to_string()),
        _ => Span::styled("—", look.dim()),
    };
    let state = match node.state.as_str() {
        "up" => Span::styled("● up", look.good()),
        "paused" => Span::styled("‖ paused", look.warn()),
        _ => Span::styled("✖ down", look.bad()),
    };
    let term = if node.term > 0 { format!("term {}", node.term) } else { String::new() };
    let rtt = node.rtt_ms.map(|r| format!("rtt {}", ms(r))).unwrap_or_default();
    let answering = node.state == "up";
    let indexes = if answering {
        let (l, c, a) = (node.last_log_index, node.commit_index, node.applied_index);
        first_fit(
            &[
                format!("log {}  commit {}  applied {}", count(l), count(c), count(a)),
                format!("log {l} commit {c} applied {a}"),
                format!("log/com/app {l}/{c}/{a}"),
                format!("{l}/{c}/{a}"),
            ],
            w,
        )
    } else {
        fit(if node.state == "paused" { "alive but silent" } else { "not answering" }, w)
    };
    let lag = lag_line(node, leader, scale, w, look);
    let faults = if node.faults.is_empty() {
        Line::styled(fit("no faults", w), look.dim())
    } else {
        Line::styled(fit(&format!("faults: {}", node.faults.join(", ")), w), look.bad())
    };
    let mut out = Vec::new();
    if h >= 6 {
        out.push(Line::from(vec![role, Span::raw(format!("  {term}"))]));
        out.push(Line::from(vec![state, Span::raw(format!("  {rtt}"))]));
        out.push(Line::raw(indexes));
        out.push(lag);
        out.push(faults);
        if h >= 7 && answering {
            out.push(Line::styled(
                fit(&format!("keys {}  leader {}", count(node.keys), node.leader.as_deref().unwrap_or("?")), w),
                look.dim(),
            ));
        }
    } else {
        // State first: in a narrow box it is what must not be cut.
        let term = if node.term > 0 { format!(" t{}", node.term) } else { String::new() };
        out.push(fit_spans(vec![state, Span::raw(" "), role, Span::raw(term)], w));
        out.push(Line::raw(indexes));
        out.push(lag);
        out.push(faults);
    }
    out.truncate(h);
    out
}

/// `lag ██░░░░ 12`: entries behind the leader, the bar full at `scale`.
fn lag_line(node: &NodeView, leader: bool, scale: u64, w: usize, look: Look) -> Line<'static> {
    if leader {
        return Line::styled(fit("lag — (leads)", w), look.dim());
    }
    if node.state != "up" {
        return Line::styled(fit("lag —", w), look.dim());
    }
    let number = format!(" {}", count(node.lag));
    let cells = w.saturating_sub(4 + number.chars().count());
    let style = if node.lag == 0 { look.good() } else { look.warn() };
    Line::from(vec![
        Span::raw("lag "),
        Span::styled(bar(node.lag as f64 / scale as f64, cells), style),
        Span::raw(number),
    ])
}

/// Spans cut so the whole line fits `w` columns.
fn fit_spans(spans: Vec<Span<'static>>, w: usize) -> Line<'static> {
    let mut left = w;
    let mut out = Vec::new();
    for s in spans {
        if left == 0 {
            break;
        }
        let text = fit(&s.content, left);
        left = left.saturating_sub(unicode_width::UnicodeWidthStr::width(text.as_str()));
        out.push(Span::styled(text, s.style));
    }
    Line::from(out)
}
