// The audience's page: one EventSource on /events, each message the whole live model (nodes,
// series, events, fault periods, marks, scenarios, load), drawn as it arrives. The first
// message after a (re)connect carries the history too, so nothing is accumulated here.
// window.dshPage exposes the latest view and the charts to whoever inspects the page.
(function () {
  "use strict";
  const WINDOW_SECS = 300;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // The presenter's link carries the token once; it is kept for this tab and taken off the
  // address bar, which a projector shows.
  const params = new URLSearchParams(location.search);
  if (params.get("token")) {
    sessionStorage.setItem("dsh-token", params.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  const token = sessionStorage.getItem("dsh-token");

  const page = (window.dshPage = { view: null, views: 0, connected: false, charts: {}, source: null, controls: false, errors: [] });
  // Kept for whoever inspects the page (the browser tests): a drawing bug should not pass
  // silently as a stale picture.
  window.addEventListener("error", (e) => page.errors.push(String(e.message)));
  let timeline = { periods: [], marks: [] };
  // What each node last said while it answered: a down node is drawn with what it had.
  const lastSeen = {};
  function remember(nodes) {
    return nodes.map((n) => {
      if (n.state === "up" && n.role !== "unknown") {
        lastSeen[n.id] = n;
        return n;
      }
      const was = lastSeen[n.id];
      return was ? Object.assign({}, n, { last: was }) : n;
    });
  }
  const getTimeline = () => timeline;

  function el(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  function clock(ms) {
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function cutBetween(a, b) {
    const says = (n, other) =>
      (n.faults || []).some((f) => /^(cut|isolated|partition)/.test(f) && (f.split(/[\s,|]+/).includes(other.id) || /^isolated/.test(f)));
    return says(a, b) || says(b, a);
  }

  function drawRing(nodes) {
    const svg = $("ring");
    svg.replaceChildren();
    const cx = 320, cy = 320, R = nodes.length > 1 ? 190 : 0, r = 78;
    const pos = nodes.map((n, i) => {
      const t = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
      return { x: cx + R * Math.cos(t), y: cy + R * Math.sin(t) };
    });
    const links = el("g", { class: "links" });
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i], b = nodes[j], p = pos[i], q = pos[j];
        const cut = cutBetween(a, b);
        const dead = a.state !== "up" || b.state !== "up";
        const leaderEnd = a.role === "leader" ? i : b.role === "leader" ? j : -1;
        let cls = "link";
        if (cut) cls += " cut";
        else if (dead) cls += " dead";
        else if (leaderEnd >= 0) cls += " live";
        // Traffic flows away from the leader: draw the line from its end.
        const [s, t] = leaderEnd === j ? [q, p] : [p, q];
        links.appendChild(el("line", { class: cls, x1: s.x, y1: s.y, x2: t.x, y2: t.y, "data-a": a.id, "data-b": b.id, "data-cut": String(cut) }));
        const mx = (p.x + q.x) / 2, my = (p.y + q.y) / 2;
        if (cut) {
          const d = 16;
          links.appendChild(el("line", { class: "cut-mark", x1: mx - d, y1: my - d, x2: mx + d, y2: my + d }));
          links.appendChild(el("line", { class: "cut-mark", x1: mx - d, y1: my + d, x2: mx + d, y2: my - d }));
        } else if (leaderEnd >= 0 && !dead) {
          const follower = leaderEnd === i ? b : a;
          if (follower.rtt_ms != null) links.appendChild(el("text", { class: "rtt", x: mx, y: my - 8 }, follower.rtt_ms.toFixed(1) + " ms"));
        }
      }
    }
    svg.appendChild(links);
    nodes.forEach((n, i) => {
      const { x, y } = pos[i];
      const g = el("g", { class: "node", "data-id": n.id, "data-role": n.role, "data-state": n.state, "data-term": String(n.term) });
      g.appendChild(el("circle", { class: "body", cx: x, cy: y, r }));
      g.appendChild(el("text", { class: "label", x, y: y - r - 12 }, n.id));
      const up = n.state === "up";
      g.appendChild(el("text", { class: "term", x, y: y + 6 }, up ? "T" + n.term : n.state.toUpperCase()));
      g.appendChild(el("text", { class: "what", x, y: y + 32 }, up ? n.role : n.last ? `was T${n.last.term} ${n.last.role}` : ""));
      const idx = up ? n : n.last;
      g.appendChild(el("text", { class: "idx", x, y: y + r + 24 }, idx ? `log ${idx.last_log_index} · commit ${idx.commit_index}` : ""));
      const title = el("title", {}, `${n.id} ${n.state} ${n.role} term ${n.term}; log ${n.last_log_index}, commit ${n.commit_index}, applied ${n.applied_index}, lag ${n.lag}` + ((n.faults || []).length ? "; " + n.faults.join(", ") : ""));
      g.appendChild(title);
      svg.appendChild(g);
    });
  }

  function drawLogs(nodes) {
    const hi = Math.max(1, ...nodes.map((n) => n.last_log_index));
    const upApplied = nodes.filter((n) => n.state === "up").map((n) => n.applied_index);
    const lo = Math.max(0, Math.min(hi - 10, ...(upApplied.length ? upApplied : [hi])) - 5);
    const pct = (v) => (100 * Math.max(0, v - lo)) / Math.max(1, hi - lo);
    $("logs").replaceChildren(
      ...nodes.map((shown) => {
        const down = shown.state !== "up";
        const n = down && shown.last ? shown.last : shown;
        const row = document.createElement("div");
        row.className = "logrow";
        row.dataset.id = n.id;
        row.innerHTML =
          `<b></b><div class="track"><div class="fill"></div><div class="commit" title="commit"></div><div class="applied" title="applied"></div></div><span></span>`;
        row.children[0].textContent = n.id;
        row.querySelector(".fill").style.width = pct(n.last_log_index) + "%";
        row.querySelector(".commit").style.left = `calc(${pct(n.commit_index)}% - 2px)`;
        row.querySelector(".applied").style.left = `calc(${pct(n.applied_index)}% - 2px)`;
        row.children[2].textContent = down
          ? `${shown.state}` + (shown.last ? ` · had log ${n.last_log_index}` : "")
          : `log ${n.last_log_index} · commit ${n.commit_index} · applied ${n.applied_index}` + (n.lag ? ` · lag ${n.lag}` : "");
        if (down) row.classList.add("down");
        return row;
      })
    );
  }

  function ensureCharts() {
    if (page.charts.tput || typeof uPlot === "undefined") return;
    page.charts.tput = dshCharts.make($("tput"), { y: "requests/s", series: [{ label: "requests/s", stroke: "#5cff9d" }, { label: "errors/s", stroke: "#ff5454" }] }, getTimeline);
    page.charts.latency = dshCharts.make($("latency"), { y: "ms", series: [{ label: "p50", stroke: "#2f9bff" }, { label: "p99", stroke: "#ff6bd6" }] }, getTimeline);
  }

  function drawCharts(v) {
    ensureCharts();
    if (!page.charts.tput) return;
    const now = v.at_ms / 1000;
    const from = now - WINDOW_SECS;
    const pts = (v.series || []).filter((s) => s.sec >= from);
    const xs = pts.map((s) => s.sec);
    timeline = {
      periods: (v.faults || []).map((p) => ({ kind: p.kind, start: p.start_ms / 1000, end: p.end_ms == null ? null : p.end_ms / 1000 })),
      marks: (v.marks || []).map((m) => ({ kind: m.kind, at: m.at_ms / 1000, label: m.kind === "election" ? `${m.node} T${m.term ?? ""}` : `${m.kind} ${m.node}` })),
    };
    const span = Math.min(WINDOW_SECS, Math.max(30, xs.length ? now - xs[0] : 30));
    for (const [chart, data] of [
      [page.charts.tput, [xs, pts.map((s) => s.requests), pts.map((s) => s.errors)]],
      [page.charts.latency, [xs, pts.map((s) => s.p50_ms), pts.map((s) => s.p99_ms)]],
    ]) {
      chart.batch(() => {
        chart.setData(data, false);
        chart.setScale("x", { min: now - span, max: now });
      });
    }
  }

  function drawWork(v) {
    const l = v.load;
    if (l) {
      $("load").className = "";
      $("load").innerHTML = `<div class="bar"><div></div></div><span></span>`;
      $("load").querySelector(".bar > div").style.width = Math.round(100 * (l.progress || 0)) + "%";
      $("load").querySelector("span").textContent =
        `${l.op}: ${l.ops} ops · ${Math.round(l.ops_per_sec)}/s · ${l.errors} errors · p99 ${l.p99_ms.toFixed(1)} ms · ${clock(l.elapsed_ms)}`;
    } else {
      $("load").className = "dim";
      $("load").textContent = "no load running";
    }
    drawCheck(v.check);
    const rows = (v.scenarios || []).map((s) => {
      const tr = document.createElement("tr");
      const held = s.held == null ? "–" : s.held ? "✓ holds" : "✗ broken";
      const counters = Object.entries(s.counters || {}).map(([k, n]) => `${k} ${n}`).join(" · ");
      for (const text of [s.name, s.running ? "running" : "stopped", `${Math.round(s.ops_per_sec)}/s`, `${s.errors} errors`, counters, held]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    });
    $("scenarios").tBodies[0].replaceChildren(...(rows.length ? rows : [Object.assign(document.createElement("tr"), { innerHTML: '<td class="dim">none running</td>' })]));
  }

  // A running check's outcomes so far, then its verdict, which stays until the next check.
  function drawCheck(c) {
    const el = $("check");
    if (!c) {
      el.className = "dim";
      el.textContent = "no check run yet";
      return;
    }
    const ops = c.ok + c.fail + c.info;
    const head = `check ${c.what}${c.nemesis ? " under " + c.nemesis : ""}: ${ops} ops · ok ${c.ok} · fail ${c.fail} · info ${c.info}`;
    el.className = c.running ? "" : c.valid ? "verdict good" : "verdict bad";
    el.innerHTML = `<div class="bar"><div></div></div><span></span><div class="line"></div>`;
    el.querySelector(".bar > div").style.width = Math.round(100 * (c.progress || 0)) + "%";
    el.querySelector("span").textContent = head;
    el.querySelector(".line").textContent = c.running ? `running · ${clock(c.elapsed_ms)}` : `${c.valid ? "✓" : "✗"} ${c.verdict}`;
  }

  function drawEvents(v) {
    const items = (v.events || []).slice(-12).reverse().map((e) => {
      const li = document.createElement("li");
      const t = new Date(e.at_ms).toTimeString().slice(0, 8);
      li.innerHTML = `<span class="dim"></span> <b></b> <span class="k"></span> <span></span>`;
      li.children[0].textContent = t;
      li.children[1].textContent = e.node;
      li.children[2].textContent = e.kind;
      li.children[3].textContent = e.text;
      return li;
    });
    $("events").replaceChildren(...items);
  }

  function drawControls(v) {
    if (!page.controls) return;
    const box = $("node-controls");
    if (box.dataset.nodes === v.nodes.map((n) => n.id).join(",")) return;
    box.dataset.nodes = v.nodes.map((n) => n.id).join(",");
    box.replaceChildren(
      ...v.nodes.map((n) => {
        const row = document.createElement("div");
        row.className = "row";
        const b = document.createElement("b");
        b.textContent = n.id + " ";
        row.appendChild(b);
        for (const action of page.actions.filter((a) => !["heal", "scenario start", "scenario stop"].includes(a))) {
          const btn = document.createElement("button");
          btn.className = "ctl";
          btn.dataset.action = action;
          btn.dataset.node = n.id;
          btn.textContent = action;
          row.appendChild(btn);
        }
        return row;
      })
    );
  }

  // Each part is redrawn only when what it shows changed: views arrive five times a second,
  // series and events change about once, and a presenter's laptop also runs the cluster.
  const drawn = {};
  function changed(part, key) {
    if (drawn[part] === key) return false;
    drawn[part] = key;
    return true;
  }

  function render(v) {
    $("leader").textContent = v.leader || "none";
    $("term").textContent = v.term;
    $("elapsed").textContent = clock(v.elapsed_ms);
    const nodes = remember(v.nodes || []);
    const nodeKey = JSON.stringify(nodes.map((n) => [n.id, n.state, n.role, n.term, n.last_log_index, n.commit_index, n.applied_index, n.lag, n.faults, n.rtt_ms, !!n.last]));
    if (changed("nodes", nodeKey)) {
      drawRing(nodes);
      drawLogs(nodes);
    }
    const series = v.series || [], faults = v.faults || [], marks = v.marks || [];
    const last = (a) => (a.length ? a[a.length - 1] : null);
    const chartKey = JSON.stringify([Math.floor(v.at_ms / 1000), series.length, last(series), faults, marks.length]);
    if (changed("charts", chartKey)) drawCharts(v);
    if (changed("work", JSON.stringify([v.load, v.scenarios, v.check]))) drawWork(v);
    const events = v.events || [];
    if (changed("events", JSON.stringify([events.length, last(events)]))) drawEvents(v);
    drawControls(v);
  }

  function setLive(on) {
    page.connected = on;
    $("live").className = "live " + (on ? "on" : "off");
    $("live").textContent = on ? `● live` : "● reconnecting";
  }

  function connect() {
    const es = new EventSource("/events");
    page.source = es;
    es.addEventListener("view", (e) => {
      const v = JSON.parse(e.data);
      page.view = v;
      page.views++;
      setLive(true);
      render(v);
      $("live").textContent = `● live ${v.refresh_hz.toFixed(0)}/s`;
    });
    // EventSource retries on its own (the server asks for 500 ms); say so meanwhile.
    es.onerror = () => setLive(false);
  }
  page.render = render;
  page.reconnect = () => {
    page.source.close();
    connect();
  };

  async function control(body) {
    const status = $("ctl-status");
    status.textContent = "…";
    try {
      const r = await fetch("/api/control", { method: "POST", headers: { "content-type": "application/json", "x-dsh-token": token || "" }, body: JSON.stringify(body) });
      const j = await r.json();
      status.textContent = j.ok ? `✓ ${j.command}` : `✗ ${j.error.kind}: ${j.error.message}`;
    } catch (e) {
      status.textContent = "✗ " + e;
    }
  }

  document.addEventListener("click", (e) => {
    const b = e.target.closest("button.ctl");
    if (!b) return;
    const body = { action: b.dataset.action };
    if (b.dataset.node) body.node = b.dataset.node;
    if (b.dataset.action.startsWith("scenario")) body.scenario = $("scenario-pick").value;
    control(body);
  });

  async function loadControls() {
    try {
      const c = await (await fetch("/api/controls")).json();
      if (!c.enabled || !token) return;
      page.actions = c.actions;
      $("scenario-pick").replaceChildren(...c.scenarios.map((s) => Object.assign(document.createElement("option"), { value: s, textContent: s })));
      $("controls").hidden = false;
      page.controls = true;
      if (page.view) drawControls(page.view);
    } catch (e) {
      /* no controls */
    }
  }

  loadControls();
  connect();
})();
