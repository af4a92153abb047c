//! One frame of the dashboard from one `View`: the header (who leads, how many answer, elapsed
//! time, refresh rate) and every panel, laid out compactly up to about 120×36 and roomily
//! beyond. It must stay a pure function of the view and the frame's size — no clock, no
//! terminal, no I/O — so tests render it on ratatui's `TestBackend`.

use super::look::Look;
use super::text::{elapsed, fit};
use super::{charts, lists, nodes, timeline};
use crate::live::View;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Below this the panels cannot show their numbers; the dashboard says so instead.
pub const MIN_SIZE: (u16, u16) = (60, 20);

/// Draws `view` over the whole frame.
pub fn draw(f: &mut Frame, view: &View, look: Look) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let text = format!(
            "dsh dashboard needs {}×{} at least (this is {}×{}); q leaves",
            MIN_SIZE.0, MIN_SIZE.1, area.width, area.height
        );
        f.render_widget(Paragraph::new(fit(&text, area.width as usize)), area);
        return;
    }
    if area.width >= 120 && area.height >= 36 {
        roomy(f, area, view, look)
    } else {
        compact(f, area, view, look)
    }
}

/// 80×24: every panel, each with its numbers and a line or two.
fn compact(f: &mut Frame, area: Rect, view: &View, look: Look) {
    use Constraint::{Length, Min};
    let [head, nodes_area, charts_area, mid, recent, time] =
        Layout::vertical([Length(1), Length(6), Length(5), Length(5), Min(3), Length(3)]).areas(area);
    header(f, head, view, look);
    nodes::draw(f, nodes_area, view, look);
    let [tp, lat] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(charts_area);
    charts::throughput(f, tp, view, look);
    charts::latency(f, lat, view, look);
    let [err, ev, sc, ld] =
        Layout::horizontal([Constraint::Fill(4), Constraint::Fill(5), Constraint::Fill(6), Constraint::Fill(6)])
            .areas(mid);
    lists::errors(f, err, view, look);
    lists::events_by_kind(f, ev, view, look);
    lists::scenarios(f, sc, view, look);
    lists::work(f, ld, view, look);
    lists::recent(f, recent, view, look);
    timeline::draw(f, time, view, look, false);
}

/// 200×50: taller boxes, taller sparklines, more events, a timeline with an axis and legend.
fn roomy(f: &mut Frame, area: Rect, view: &View, look: Look) {
    use Constraint::{Fill, Length, Min};
    let [head, nodes_area, charts_area, mid, recent, time] =
        Layout::vertical([Length(1), Length(9), Length(11), Length(10), Min(5), Length(6)]).areas(area);
    header(f, head, view, look);
    nodes::draw(f, nodes_area, view, look);
    let [tp, lat, err] = Layout::horizontal([Fill(2), Fill(2), Fill(1)]).areas(charts_area);
    charts::throughput(f, tp, view, look);
    charts::latency(f, lat, view, look);
    lists::errors(f, err, view, look);
    let [ev, sc, ld] = Layout::horizontal([Fill(1), Fill(2), Fill(1)]).areas(mid);
    lists::events_by_kind(f, ev, view, look);
    lists::scenarios(f, sc, view, look);
    lists::work(f, ld, view, look);
    lists::recent(f, recent, view, look);
    timeline::draw(f, time, view, look, true);
}

/// `dsh dashboard · leader n1 (term 4) · 3/3 up · elapsed 1m05s · 5.0 Hz · q quits`
fn header(f: &mut Frame, area: Rect, view: &View, look: Look) {
    let up = view.nodes.iter().filter(|n| n.state == "up").count();
    let leader = match &view.leader {
        Some(l) => format!("leader {l} (term {})", view.term),
        None => "no leader".into(),
    };
    let choices = [
        format!(
            "dsh dashboard · {leader} · {up}/{} up · elapsed {} · {:.1} Hz · q quits",
            view.nodes.len(),
            elapsed(view.elapsed_ms),
            view.refresh_hz
        ),
        format!(
            "dsh · {leader} · {up}/{} up · {} · {:.1} Hz · q quits",
            view.nodes.len(),
            elapsed(view.elapsed_ms),
            view.refresh_hz
        ),
    ];
    let text = super::text::first_fit(&choices, area.width as usize);
    let style = if view.leader.is_none() { look.bad() } else { look.title() };
    f.render_widget(Paragraph::new(Line::from(Span::styled(text, style))), area);
}
