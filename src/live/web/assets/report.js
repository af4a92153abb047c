// Draws a load report from the JSON embedded in this file: summary, per-second charts with the
// fault periods of the run shaded, errors by kind, who served. Seconds count from the run's start.
(function () {
  "use strict";
  const r = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const s = r.summary || {};
  const set = r.settings || {};

  function rows(table, header, body) {
    const t = $(table);
    const tr = (cells, tag) => {
      const row = document.createElement("tr");
      cells.forEach((c, i) => {
        const cell = document.createElement(tag);
        if (c instanceof Node) cell.appendChild(c);
        else cell.textContent = c;
        if (i > 0) cell.className = "n";
        row.appendChild(cell);
      });
      return row;
    };
    t.replaceChildren(tr(header, "th"), ...body.map((b) => tr(b, "td")));
  }

  const what = set.duration_ms ? `for ${set.duration_ms / 1000} s` : `${set.count} operations`;
  $("settings").textContent = `${set.op} ${what}, ${set.concurrency} in flight, ${set.loop || "closed"} loop` +
    (set.rate ? ` at ${set.rate}/s` : "") + `, ${set.keys} keys, ${set.value_size} B values` +
    (r.started_ms ? ` · started ${new Date(r.started_ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "");

  const f = (x, d) => (x == null ? "—" : Number(x).toFixed(d));
  rows("summary", ["ops", "ops/s", "errors", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms", "elapsed s"], [
    [String(s.ops), f(s.ops_per_sec, 0), String(s.errors), f(s.p50_ms, 2), f(s.p95_ms, 2), f(s.p99_ms, 2), f(s.p999_ms, 2), f(s.max_ms, 2), f((s.elapsed_ms || 0) / 1000, 1)],
  ]);

  const errs = Object.entries(r.errors_by_kind || s.errors_by_kind || {});
  rows("errors", ["kind", "count"], errs.length ? errs.map(([k, n]) => [k, String(n)]) : [["none", "0"]]);

  const served = Object.entries(s.by_node || {});
  const most = Math.max(1, ...served.map(([, n]) => n));
  rows("served", ["node", "operations", ""], served.map(([node, n]) => {
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.round((300 * n) / most) + "px";
    return [node, String(n), bar];
  }));

  const series = r.series || [];
  const timeline = {
    periods: (r.faults || []).map((p) => ({ kind: p.kind, start: p.start_s, end: p.end_s == null ? null : p.end_s })),
    marks: (r.marks || []).map((m) => ({ kind: m.kind, at: m.at_s, label: m.kind === "election" ? `${m.node} T${m.term ?? ""}` : `${m.kind} ${m.node}` })),
  };
  if (timeline.periods.length) {
    $("faults-note").textContent = "shaded: " + r.faults.map((p) => `${p.kind} ${(p.nodes || []).join(",")} ${f(p.start_s, 1)}–${p.end_s == null ? "end" : f(p.end_s, 1)} s`).join("; ");
  }
  const xs = series.map((p) => p.second);
  const tput = dshCharts.make($("tput"), { time: false, y: "ops/s", series: [{ label: "ops/s", stroke: "#5cff9d" }, { label: "errors/s", stroke: "#ff5454" }] }, () => timeline);
  tput.setData([xs, series.map((p) => p.ops), series.map((p) => p.errors)]);
  const lat = dshCharts.make($("latency"), { time: false, y: "ms", series: [{ label: "p50", stroke: "#2f9bff" }, { label: "p99", stroke: "#ff6bd6" }] }, () => timeline);
  lat.setData([xs, series.map((p) => p.p50_ms), series.map((p) => p.p99_ms)]);
  window.dshReport = { report: r, charts: { tput, latency: lat } };
})();
