//! A run's report as one HTML file that opens anywhere, offline (as k6's HTML report does): the
//! JSON report of `load --report` (settings, summary, per-second series, errors by kind, who
//! served, fault periods) embedded as data, drawn by uPlot and a small script, all inlined. It
//! reads only the report; nothing here runs or measures.

use super::assets;
use crate::error::{Context, Result};
use crate::live::View;
use serde_json::{json, Value};
use std::path::Path;

/// Writes a report: HTML when the name ends in `.html` or `.htm`, JSON otherwise.
pub fn write_report(path: &Path, report: &Value) -> Result<()> {
    let html = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let text = match html {
        true => html_report(report),
        false => serde_json::to_string_pretty(report).context("report")? + "\n",
    };
    std::fs::write(path, text).context(format!("write {}", path.display()))
}

/// Adds what the live model saw during a run to its report, in the run's seconds: the fault
/// periods that overlapped it (`faults`: kind, nodes, `start_s`, `end_s`) and the elections,
/// crashes and restarts within it (`marks`), plus the run's wall-clock start (`started_ms`).
pub fn with_timeline(report: &mut Value, view: &View, started_ms: u64, ended_ms: u64) {
    let rel = |ms: u64| (ms as f64 - started_ms as f64) / 1000.0;
    let faults: Vec<Value> = view
        .faults
        .iter()
        .filter(|p| p.start_ms <= ended_ms && p.end_ms.is_none_or(|e| e >= started_ms))
        .map(|p| {
            json!({"kind": p.kind, "nodes": p.nodes, "start_s": rel(p.start_ms).max(0.0),
                   "end_s": p.end_ms.map(|e| rel(e.min(ended_ms)))})
        })
        .collect();
    let marks: Vec<Value> = view
        .marks
        .iter()
        .filter(|m| (started_ms..=ended_ms).contains(&m.at_ms))
        .map(|m| json!({"kind": m.kind, "node": m.node, "term": m.term, "at_s": rel(m.at_ms)}))
        .collect();
    if let Some(obj) = report.as_object_mut() {
        obj.insert("started_ms".into(), json!(started_ms));
        obj.insert("faults".into(), Value::Array(faults));
        obj.insert("marks".into(), Value::Array(marks));
    }
}

/// The HTML file for a JSON report.
pub fn html_report(report: &Value) -> String {
    let op = report["settings"]["op"].as_str().unwrap_or("run");
    let title = format!("dsh load {} report", escape_html(op));
    // Inside <script>, `</` would end the element early; `<\/` means the same to JSON and JS.
    let data = serde_json::to_string(report).unwrap_or_else(|_| "{}".into()).replace("</", "<\\/");
    let inline_js = |s: &str| s.replace("</script", "<\\/script");
    // One pass per placeholder, data last, so nothing inserted is searched again.
    assets::REPORT_HTML
        .replace("{{TITLE}}", &title)
        .replace("{{UPLOT_CSS}}", assets::UPLOT_CSS)
        .replace("{{UPLOT_JS}}", &inline_js(assets::UPLOT_JS))
        .replace("{{CHARTS_JS}}", &inline_js(assets::CHARTS_JS))
        .replace("{{REPORT_JS}}", &inline_js(assets::REPORT_JS))
        .replace("{{DATA}}", &data)
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_report_is_one_file_with_nothing_to_fetch() {
        let r = json!({"settings": {"op": "put"}, "summary": {"ops": 10}, "series": [], "note": "</script><b>"});
        let html = html_report(&r);
        assert!(html.contains("uPlot"), "uPlot is inlined");
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "no outside links");
        assert!(!html.contains("<script src") && !html.contains("<link"), "no separate files");
        assert_eq!(html.matches("</script>").count(), html.matches("<script").count(), "data cannot end a script");
        assert!(!html.contains("{{"), "every placeholder filled");
    }
}
