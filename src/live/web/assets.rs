//! The files the page and the reports are made of, compiled into the binary so a browser never
//! loads anything from outside the dsh server (or, for a report, from outside the file).
//! uPlot comes from npm at the version pinned in `package.json`; see `assets/uPlot.LICENSE`.

pub const PAGE_HTML: &str = include_str!("assets/page.html");
pub const PAGE_CSS: &str = include_str!("assets/page.css");
pub const PAGE_JS: &str = include_str!("assets/page.js");
pub const CHARTS_JS: &str = include_str!("assets/charts.js");
pub const REPORT_HTML: &str = include_str!("assets/report.html");
pub const REPORT_JS: &str = include_str!("assets/report.js");
pub const UPLOT_JS: &str = include_str!("assets/uPlot.iife.min.js");
pub const UPLOT_CSS: &str = include_str!("assets/uPlot.min.css");
pub const UPLOT_LICENSE: &str = include_str!("assets/uPlot.LICENSE");

/// An asset by the name the page asks for, with its content type.
pub fn by_name(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "page.css" => (PAGE_CSS, "text/css; charset=utf-8"),
        "page.js" => (PAGE_JS, "text/javascript; charset=utf-8"),
        "charts.js" => (CHARTS_JS, "text/javascript; charset=utf-8"),
        "uPlot.iife.min.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uPlot.min.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        "uPlot.LICENSE" => (UPLOT_LICENSE, "text/plain; charset=utf-8"),
        _ => return None,
    })
}
