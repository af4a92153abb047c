// Charts shared by the live page and the HTML reports: uPlot time series with fault periods
// shaded and moments (elections, crashes, restarts) marked on the same axis, as Jepsen's plots
// shade nemesis periods. Each chart's root element records how many periods it shaded and how
// many marks it drew (data-shaded, data-marks), so a test can tell without reading pixels.
(function () {
  "use strict";
  const SHADE = {
    crash: "rgba(255, 84, 84, 0.36)",
    pause: "rgba(255, 176, 0, 0.36)",
    partition: "rgba(190, 110, 255, 0.42)",
    slow: "rgba(0, 190, 255, 0.22)",
  };
  const MARK = { election: "#ffd23f", crash: "#ff5454", restart: "#5cff9d" };

  // timeline() returns {periods: [{kind, start, end|null}], marks: [{kind, at, label}]} in x units.
  function timelinePlugin(timeline) {
    return {
      hooks: {
        // Under the series: the shaded periods.
        drawClear: [
          (u) => {
            const { periods } = timeline();
            const { left, top, width, height } = u.bbox;
            const ctx = u.ctx;
            let shaded = 0;
            ctx.save();
            for (const p of periods) {
              const end = p.end == null ? u.scales.x.max : p.end;
              const a = Math.max(left, u.valToPos(p.start, "x", true));
              const b = Math.min(left + width, u.valToPos(end, "x", true));
              if (!(b > a)) continue;
              ctx.fillStyle = SHADE[p.kind] || "rgba(255,255,255,0.18)";
              ctx.fillRect(a, top, Math.max(b - a, 2), height);
              shaded++;
            }
            ctx.restore();
            u.root.dataset.shaded = String(shaded);
          },
        ],
        // Over the series: the marks, each a line with its label at the top.
        draw: [
          (u) => {
            const { marks } = timeline();
            const { left, top, width, height } = u.bbox;
            const ctx = u.ctx;
            const px = devicePixelRatio || 1;
            let drawn = 0;
            let lastLabel = -Infinity;
            ctx.save();
            ctx.font = `${Math.round(13 * px)}px sans-serif`;
            for (const m of marks) {
              const x = u.valToPos(m.at, "x", true);
              if (x < left || x > left + width) continue;
              ctx.strokeStyle = MARK[m.kind] || "#fff";
              ctx.fillStyle = ctx.strokeStyle;
              ctx.lineWidth = 2 * px;
              ctx.setLineDash(m.kind === "election" ? [] : [4 * px, 4 * px]);
              ctx.beginPath();
              ctx.moveTo(x, top);
              ctx.lineTo(x, top + height);
              ctx.stroke();
              // Close marks (an election storm) keep their lines but not overlapping labels.
              if (m.label && x - lastLabel > 70 * px) {
                ctx.fillText(m.label, x + 3 * px, top + 14 * px);
                lastLabel = x;
              }
              drawn++;
            }
            ctx.restore();
            u.root.dataset.marks = String(drawn);
          },
        ],
      },
    };
  }

  // make(el, {series: [{label, stroke}], y: "ops/s", time: true|false, height}, timeline)
  function make(el, opts, timeline) {
    const series = [{ label: opts.time === false ? "second" : "time" }].concat(
      opts.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 3, points: { show: false }, spanGaps: false }))
    );
    const axis = { stroke: "#e8edf2", grid: { stroke: "rgba(255,255,255,0.12)" }, ticks: { stroke: "rgba(255,255,255,0.25)" }, font: "16px sans-serif" };
    const u = new uPlot(
      {
        width: Math.max(300, el.clientWidth),
        height: opts.height || 260,
        series,
        scales: { x: { time: opts.time !== false } },
        axes: [Object.assign({}, axis), Object.assign({ label: opts.y, labelFont: "16px sans-serif", size: 70 }, axis)],
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        plugins: [timelinePlugin(timeline)],
      },
      [[]].concat(opts.series.map(() => [])),
      el
    );
    window.addEventListener("resize", () => u.setSize({ width: Math.max(300, el.clientWidth), height: opts.height || 260 }));
    return u;
  }

  window.dshCharts = { make };
})();
