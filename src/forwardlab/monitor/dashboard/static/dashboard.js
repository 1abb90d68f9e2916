// forwardlab monitoring dashboard: polls api/summary and redraws when the stored results change.
// Charts are uPlot (vendored under static/vendor/uplot); every value from the server is set as text, never as HTML.
(() => {
  "use strict";

  const CHART_HEIGHT = 230;
  const COLORS = {
    mae: "#2f6fdf", rmse: "#8e44ad", ref: "#7f8c8d", share: "#e67e22", score: "#16a085", threshold: "#c0392b",
    realized: "#27ae60", estimated: "#d35400", band: "rgba(211, 84, 0, 0.12)",
  };
  const state = { spec: new URLSearchParams(location.search).get("window"), body: null, charts: {}, timer: null, segmentWindow: null };
  const $ = (id) => document.getElementById(id);

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
  }

  function sig(v) {
    if (v === null || v === undefined) return "–";
    return Math.abs(v) >= 1000 ? num(v) : Number(v).toPrecision(3);
  }

  function usdAxis(v) {
    if (v === null) return "";
    const a = Math.abs(v);
    return a >= 1e6 ? (v / 1e6).toFixed(1) + "M" : a >= 1e3 ? Math.round(v / 1e3) + "k" : String(Math.round(v));
  }

  function pct(v) {
    return v === null || v === undefined ? "–" : (100 * v).toLocaleString("en-US", { maximumFractionDigits: 1 }) + "%";
  }

  function flag(v) {
    return v === null || v === undefined ? "–" : v ? "yes" : "no";
  }

  function setStatus(text, error) {
    const status = $("status");
    status.textContent = text;
    status.dataset.state = error ? "error" : "ok";
  }

  // ---------------------------------------------------------------- charts

  // bands: [upper, lower] index pairs into `series`, filled between (uPlot counts the x series as 0).
  function lineChart(id, x, series, valueFormat, axisFormat, bands) {
    const box = $(id);
    if (state.charts[id]) state.charts[id].destroy();
    const opts = {
      width: Math.max(box.clientWidth, 300),
      height: CHART_HEIGHT,
      scales: { x: { time: true } },
      series: [
        { label: "window from", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toISOString().slice(0, 10)) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: s.dash ? 1.5 : 2,
          dash: s.dash,
          points: { show: !s.dash, size: 6 },
          value: (u, v) => valueFormat(v),
        })),
      ],
      axes: [{}, { size: 64, values: (u, vals) => vals.map(axisFormat) }],
      legend: { live: true },
      bands: (bands || []).map(([upper, lower]) => ({ series: [upper + 1, lower + 1], fill: COLORS.band })),
    };
    state.charts[id] = new uPlot(opts, [x, ...series.map((s) => s.values)], box);
    box.dataset.points = String(x.length);
  }

  function renderCharts(data) {
    const ok = data.windows;
    const x = ok.map((w) => w.start_s);
    const metric = (name) => ok.map((w) => w.metrics[name]);
    const ref = data.reference ? data.reference.metrics.mae_usd : null;
    const errors = [
      { label: "MAE", values: metric("mae_usd"), stroke: COLORS.mae },
      { label: "RMSE", values: metric("rmse_usd"), stroke: COLORS.rmse },
      { label: "reference MAE", values: x.map(() => ref), stroke: COLORS.ref, dash: [6, 4] },
    ];
    const bands = [];
    if (ok.some((w) => w.production)) {  // records with the "production" block: predictions made in the window
      const made = (name) => ok.map((w) => (w.production ? w.production[name] : null));
      errors.push(
        { label: "realized MAE (made in window)", values: made("realized_mae_usd"), stroke: COLORS.realized },
        { label: "estimated MAE", values: made("estimated_mae_usd"), stroke: COLORS.estimated },
        { label: "estimated upper", values: made("estimated_mae_upper_usd"), stroke: COLORS.estimated, dash: [2, 3] },
        { label: "estimated lower", values: made("estimated_mae_lower_usd"), stroke: COLORS.estimated, dash: [2, 3] },
      );
      bands.push([errors.length - 2, errors.length - 1]);
    }
    lineChart("chart-error", x, errors, (v) => (v === null ? "–" : num(v) + " USD"), usdAxis, bands);
    lineChart("chart-drift-share", x, [
      { label: "drift share", values: ok.map((w) => w.drift_share), stroke: COLORS.share },
      { label: "dataset drift at", values: ok.map((w) => w.drift_share_threshold), stroke: COLORS.threshold, dash: [6, 4] },
    ], sig, (v) => (v === null ? "" : v.toFixed(2)));
    for (const [id, key] of [["chart-target-drift", "target_drift"], ["chart-prediction-drift", "prediction_drift"]]) {
      const verdicts = ok.map((w) => w[key]);
      const test = (verdicts.find((v) => v && v.test) || {}).test || "score";
      lineChart(id, x, [
        { label: test, values: verdicts.map((v) => (v ? v.score : null)), stroke: COLORS.score },
        { label: "threshold", values: verdicts.map((v) => (v ? v.threshold : null)), stroke: COLORS.threshold, dash: [6, 4] },
      ], sig, (v) => (v === null ? "" : Number(v).toPrecision(2)));
    }
  }

  // ---------------------------------------------------------------- tables

  function heatColor(cell) {
    // Green (far from drift) to pale yellow (at the threshold); orange to dark red for 1x to 10x past it.
    const s = Math.max(cell.severity, 0);
    if (!cell.drift) {
      const t = Math.min(s, 1);
      return [`hsl(${120 - 70 * t}, 55%, ${88 - 4 * t}%)`, "#1d2330"];
    }
    const t = Math.min(Math.log10(Math.max(s, 1)), 1);
    return [`hsl(${32 - 32 * t}, 80%, ${62 - 30 * t}%)`, t > 0.4 ? "#fff" : "#1d2330"];
  }

  function renderHeatmap(data) {
    const table = $("heatmap");
    table.replaceChildren();
    const head = el("tr");
    head.append(el("th", "feature"));
    for (const w of data.windows) head.append(el("th", w.label.slice(0, 7), { title: w.label }));
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    data.heatmap.features.forEach((feature, i) => {
      const row = el("tr");
      row.append(el("th", feature));
      data.heatmap.cells[i].forEach((cell, j) => {
        const where = `${feature}, ${data.windows[j].label}`;
        if (!cell || cell.test === null || cell.severity === null) {
          row.append(el("td", "–", { class: "untested", title: `${where}: not tested${cell && cell.note ? " (" + cell.note + ")" : ""}` }));
          return;
        }
        const td = el("td", sig(cell.score), {
          title: `${where}: ${cell.test} ${sig(cell.score)}, threshold ${sig(cell.threshold)}: ${cell.drift ? "drift" : "no drift"}`,
          "data-drift": String(cell.drift),
        });
        [td.style.background, td.style.color] = heatColor(cell);
        row.append(td);
      });
      table.tBodies[0].append(row);
    });
  }

  function renderWindows(data) {
    const body = $("windows").tBodies[0];
    body.replaceChildren();
    for (const w of [...data.windows].reverse()) {
      const row = el("tr", null, { class: `status-${w.status}` });
      const cells = [
        [w.status, w.note], [num(w.n_current)], [num(w.n_reference)],
        [w.drift_share === null ? "–" : `${sig(w.drift_share)} (${w.drifted_features}/${w.tested_features})`],
        [flag(w.dataset_drift)], [flag(w.target_drift && w.target_drift.drift)], [flag(w.prediction_drift && w.prediction_drift.drift)],
        [num(w.metrics.mae_usd)], [num(w.metrics.rmse_usd)], [num(w.metrics.mape_pct, 1)], [num(w.metrics.r2, 3)],
      ];
      const links = el("td", w.report_error ? "failed" : w.reports.length ? null : "–", { class: "reports" });
      if (w.report_error) links.title = w.report_error;
      for (const r of w.reports) links.append(el("a", r.title, { href: r.url, target: "_blank", rel: "noopener", "data-report": r.name }));
      row.append(el("td", w.label), links);
      cells.forEach(([text, title], i) => {
        const td = el("td", text, title ? { title } : {});
        if (i >= 4 && i <= 6 && text === "yes") td.className = "flag-yes";
        row.append(td);
      });
      body.append(row);
    }
  }

  function markedCell(text, alert, what) {
    // A value with a mark when its check raised an alert (`what` names the check in the tooltip).
    const td = el("td", text, { "data-alert": String(alert === true) });
    if (alert) {
      td.append(el("span", "▲", { class: "alert-mark", title: `${what}: alert` }));
      td.className = "flag-yes";
    }
    return td;
  }

  function renderProduction(data) {
    const made = [...data.windows].reverse().filter((w) => w.production);
    $("production").hidden = made.length === 0;
    const body = $("production-table").tBodies[0];
    body.replaceChildren();
    for (const w of made) {
      const p = w.production;
      const row = el("tr");
      const coverage = el("td", pct(p.label_coverage), { title: `minimum ${pct(p.min_coverage)}` });
      if (p.provisional) coverage.append(el("span", "provisional", { class: "badge" }));
      const pca = p.pca || {};
      const domain = p.domain_classifier || {};
      row.append(el("td", w.label), el("td", num(p.n_predictions)), el("td", num(p.n_labelled)), coverage,
        el("td", num(p.realized_mae_usd)),
        markedCell(`${num(p.estimated_mae_usd)} (${num(p.estimated_mae_lower_usd)} – ${num(p.estimated_mae_upper_usd)})`,
          p.estimated_mae_alert, "estimated MAE"),
        markedCell(`${sig(pca.value)} (${sig(pca.lower)} – ${sig(pca.upper)})`, pca.alert, "PCA reconstruction error"),
        markedCell(`${sig(domain.value)} (${sig(domain.upper)})`, domain.alert, "domain classifier"));
      body.append(row);
    }
    renderSegments(made);
  }

  function renderSegments(made) {
    // The selected window's segments (default: the newest window with a production block), as the record ranks them.
    const select = $("segment-window");
    if (!made.some((w) => w.label === state.segmentWindow)) state.segmentWindow = made.length ? made[0].label : null;
    select.replaceChildren(...made.map((w) => el("option", w.label, { value: w.label })));
    if (state.segmentWindow) select.value = state.segmentWindow;
    const body = $("segments").tBodies[0];
    body.replaceChildren();
    const chosen = made.find((w) => w.label === state.segmentWindow);
    const segments = chosen ? chosen.production.segments : [];
    if (!segments.length) {
      const row = el("tr");
      row.append(el("td", "No segments in this window.", { colspan: "8" }));
      body.append(row);
    }
    for (const s of segments) {
      const row = el("tr");
      for (const text of [s.by, s.new ? `${s.segment} (new)` : s.segment, num(s.n), num(s.n_labelled), num(s.reference_mae_usd), num(s.mae_usd),
        num(s.estimated_mae_usd), num(s.increase_usd)]) row.append(el("td", text));
      body.append(row);
    }
  }

  function renderAlerts(data) {
    const body = $("alerts").tBodies[0];
    body.replaceChildren();
    if (!data.alerts.length) {
      const row = el("tr");
      row.append(el("td", "No alerts.", { colspan: "6" }));
      body.append(row);
      return;
    }
    for (const a of [...data.alerts].reverse()) {
      const row = el("tr");
      for (const text of [a.rule, `${a.window_start.slice(0, 10)}..${a.window_end.slice(0, 10)}`, a.message, sig(a.value),
        a.raised_at.slice(0, 19).replace("T", " "), a.delivered_at ? a.delivered_at.slice(0, 19).replace("T", " ") : "–"]) {
        row.append(el("td", text));
      }
      body.append(row);
    }
  }

  function renderSpecs(data) {
    const select = $("spec");
    select.replaceChildren(...data.window_specs.map((s) => el("option", s, { value: s })));
    if (data.window_spec) select.value = data.window_spec;
    select.disabled = data.window_specs.length < 2;
  }

  function render(data) {
    renderSpecs(data);
    $("empty").hidden = data.windows.length > 0;
    const ref = data.reference;
    $("reference").textContent = ref
      ? `Reference: ${ref.source}, ${num(ref.n)} rows, MAE ${num(ref.metrics.mae_usd)} USD (newest run ${ref.run_at.slice(0, 19).replace("T", " ")} UTC)`
      : "";
    renderCharts(data);
    renderAlerts(data);
    renderProduction(data);
    renderHeatmap(data);
    renderWindows(data);
  }

  // ---------------------------------------------------------------- polling

  async function poll() {
    clearTimeout(state.timer);
    let refresh = 5;
    try {
      const query = state.spec ? "?window=" + encodeURIComponent(state.spec) : "";
      const response = await fetch("api/summary" + query, { cache: "no-cache", credentials: "same-origin" });
      if (response.status === 401) {
        location.assign("login?next=" + encodeURIComponent(location.pathname + location.search));
        return;
      }
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const text = await response.text();
      const data = JSON.parse(text);
      refresh = data.refresh_s;
      if (text !== state.body) {
        state.body = text;
        render(data);
      }
      setStatus(`${data.windows.length} windows · checked ${new Date().toLocaleTimeString()}`, false);
    } catch (err) {
      setStatus(`cannot update: ${err.message}`, true);
    }
    state.timer = setTimeout(poll, refresh * 1000);
  }

  $("spec").addEventListener("change", (event) => {
    state.spec = event.target.value;
    history.replaceState(null, "", "?window=" + encodeURIComponent(state.spec));
    state.body = null;
    poll();
  });
  $("segment-window").addEventListener("change", (event) => {
    state.segmentWindow = event.target.value;
    renderSegments(JSON.parse(state.body).windows.filter((w) => w.production).reverse());
  });
  window.addEventListener("resize", () => {
    for (const [id, chart] of Object.entries(state.charts)) chart.setSize({ width: Math.max($(id).clientWidth, 300), height: CHART_HEIGHT });
  });
  poll();
})();
