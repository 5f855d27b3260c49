// posbench dashboard, series page: series.html?id=N plots one series (GET
// /api/v1/series/N) in run order with Chart.js: values with their error bars,
// the stage-1 gate's band (limit_lo..limit_hi), segment means around each
// change point, regression points marked; then its regressions (with triage)
// and a table of the points. Without ?id= it lists the series (?schedule=).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = pb.el;
  const R = window.pbRegress;
  const LINE = pb.color(0);
  const BAND = pb.color(4);
  const ALERT = pb.color(5);
  const MEAN = pb.color(1);
  let chart = null;

  // Vertical bars from each value's lower to upper bound, capped.
  const errorBars = {
    id: "pbErrorBars",
    afterDatasetsDraw(ch) {
      const i = ch.data.datasets.findIndex((d) => d.pbRole === "value");
      if (i < 0 || !ch.isDatasetVisible(i)) return;
      const ds = ch.data.datasets[i];
      const y = ch.scales.y;
      const ctx = ch.ctx;
      ctx.save();
      ctx.strokeStyle = LINE;
      ctx.lineWidth = 1.2;
      ch.getDatasetMeta(i).data.forEach((pt, k) => {
        const lo = ds.pbLower[k], hi = ds.pbUpper[k];
        if (!pb.isNum(lo) || !pb.isNum(hi)) return;
        const x = pt.x, y0 = y.getPixelForValue(lo), y1 = y.getPixelForValue(hi);
        ctx.beginPath();
        ctx.moveTo(x, y0);
        ctx.lineTo(x, y1);
        ctx.moveTo(x - 3, y0);
        ctx.lineTo(x + 3, y0);
        ctx.moveTo(x - 3, y1);
        ctx.lineTo(x + 3, y1);
        ctx.stroke();
      });
      ctx.restore();
    },
  };

  // A dashed line between the last point before and the first after each
  // change point, labelled with the means on either side.
  const changeMarkers = {
    id: "pbChangePoints",
    afterDraw(ch) {
      const cps = ch.options.plugins.pbChangePoints.points || [];
      const i = ch.data.datasets.findIndex((d) => d.pbRole === "value");
      if (i < 0 || !cps.length) return;
      const els = ch.getDatasetMeta(i).data;
      const area = ch.chartArea;
      const ctx = ch.ctx;
      ctx.save();
      ctx.strokeStyle = MEAN;
      ctx.fillStyle = MEAN;
      ctx.setLineDash([5, 4]);
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      for (const cp of cps) {
        if (cp.index <= 0 || cp.index >= els.length) continue;
        const x = (els[cp.index - 1].x + els[cp.index].x) / 2;
        ctx.beginPath();
        ctx.moveTo(x, area.top);
        ctx.lineTo(x, area.bottom);
        ctx.stroke();
        // On a backing box: the label may cross the line it annotates.
        const tx = Math.min(Math.max(x, area.left + 70), area.right - 70);
        const w = ctx.measureText(cp.label).width + 8;
        ctx.save();
        ctx.fillStyle = getComputedStyle(ch.canvas).getPropertyValue("--bg") || "#fff";
        ctx.globalAlpha = 0.85;
        ctx.fillRect(tx - w / 2, area.bottom - 22, w, 16);
        ctx.restore();
        ctx.fillText(cp.label, tx, area.bottom - 10);
      }
      ctx.restore();
    },
  };

  function params(p) {
    if (p === null || p === undefined) return pb.DASH;
    return typeof p === "string" ? p : JSON.stringify(p);
  }

  // Index of each change point in the points: by its job when given (points
  // and change points may be cut from different windows), else its index.
  function changeIndex(points, cp) {
    if (cp.job_id !== undefined && cp.job_id !== null) {
      const k = points.findIndex((p) => p.job_id === cp.job_id);
      if (k >= 0) return k;
    }
    return pb.isNum(cp.index) ? cp.index : -1;
  }

  // Per point: the mean of the segment it is in (null outside any).
  function segmentMeans(n, cps) {
    const out = new Array(n).fill(null);
    cps.forEach((cp, j) => {
      const from = j > 0 ? cps[j - 1].at : 0;
      const to = j + 1 < cps.length ? cps[j + 1].at : n;
      for (let k = from; k < cp.at; k++) if (out[k] === null) out[k] = cp.mean_before;
      for (let k = cp.at; k < to; k++) out[k] = cp.mean_after;
    });
    return out;
  }

  // The y range: every value, error bar and gate limit, padded; proportions
  // keep their 0..1 scale.
  function yBounds(points, kind) {
    const vs = points.flatMap((p) => [p.value, p.lower, p.upper, p.limit_lo, p.limit_hi]).filter(pb.isNum);
    if (kind === "proportion") return [Math.min(0, ...vs), Math.max(1, ...vs)];
    let lo = Math.min(...vs), hi = Math.max(...vs);
    const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
    lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
    return [lo, hi + pad];
  }

  function labels(points) {
    const perJob = pb.groupBy(points, (p) => p.job_id);
    return points.map((p) => "#" + p.job_id + (perJob.get(p.job_id).length > 1 ? "." + p.run : ""));
  }

  function draw(s, points, cps, regs) {
    const box = $("chart");
    if (chart) chart.destroy();
    chart = null;
    if (!points.length) {
      pb.empty(box, "No points yet.", "Each done run of the series adds one.");
      return;
    }
    if (!pb.chartReady()) {
      pb.empty(box, "Chart.js is not available (expected at vendor/chart.js).", "The table below has the same numbers.");
      return;
    }
    const byAfter = new Map(regs.map((r) => [r.job_after, r]));
    const isReg = points.map((p) => byAfter.has(p.job_id));
    const marks = cps.map((cp) => ({ at: changeIndex(points, cp), mean_before: cp.mean_before, mean_after: cp.mean_after }))
      .filter((cp) => cp.at > 0 && cp.at < points.length).sort((a, b) => a.at - b.at);
    const [yMin, yMax] = yBounds(points, s.kind);
    // A one-sided gate (only the bad side has a limit) shades to the axis end.
    const gated = (p) => pb.isNum(p.limit_lo) || pb.isNum(p.limit_hi);
    const anyGate = points.some(gated);
    const datasets = [
      { label: "gate low", pbRole: "limit_lo",
        data: points.map((p) => (pb.isNum(p.limit_lo) ? p.limit_lo : gated(p) ? yMin : null)),
        borderWidth: 0, pointRadius: 0, pointHitRadius: 0, fill: false, borderColor: "transparent", spanGaps: false },
      { label: "gate band", pbRole: "limit_hi",
        data: points.map((p) => (pb.isNum(p.limit_hi) ? p.limit_hi : gated(p) ? yMax : null)),
        borderWidth: 0, pointRadius: 0, pointHitRadius: 0, fill: "-1", backgroundColor: pb.alpha(BAND, 0.18),
        borderColor: "transparent", spanGaps: false },
    ];
    if (marks.length) {
      datasets.push({ label: "segment mean", pbRole: "segment", data: segmentMeans(points.length, marks),
        borderColor: MEAN, borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, pointHitRadius: 0,
        stepped: "middle", fill: false });
    }
    datasets.push({ label: s.metric || "value", pbRole: "value", data: points.map((p) => p.value),
      pbLower: points.map((p) => p.lower), pbUpper: points.map((p) => p.upper),
      borderColor: LINE, backgroundColor: LINE, borderWidth: 2, tension: 0, fill: false, clip: 10,
      pointRadius: isReg.map((r) => (r ? 7 : 3)), pointStyle: isReg.map((r) => (r ? "triangle" : "circle")),
      pointBackgroundColor: isReg.map((r) => (r ? ALERT : LINE)),
      pointBorderColor: isReg.map((r) => (r ? ALERT : LINE)) });
    const canvas = el("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", (s.metric || "value") + " over " + points.length + " runs" +
      (regs.length ? ", " + regs.length + " regressions marked" : "") +
      (marks.length ? ", " + marks.length + " change points" : ""));
    box.replaceChildren(canvas);
    const y = { min: yMin, max: yMax, title: { display: true, text: (s.metric || "value") + (s.unit ? " (" + s.unit + ")" : "") },
      ticks: { callback: (v) => R.value(Number(v), s.kind, "") } };
    chart = new window.Chart(canvas, {
      type: "line",
      data: { labels: labels(points), datasets },
      plugins: [errorBars, changeMarkers],
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        layout: { padding: { top: 8 } }, // room for a point or bar at the top of the scale
        interaction: { mode: "index", intersect: false },
        scales: { y, x: { title: { display: true, text: "run (job id, oldest first)" } } },
        plugins: {
          pbChangePoints: { points: marks.map((m) => ({ index: m.at,
            label: "mean " + R.value(m.mean_before, s.kind, s.unit) + " \u2192 " + R.value(m.mean_after, s.kind, s.unit) })) },
          legend: { position: "bottom", labels: { filter: (item) => item.text !== "gate low" &&
            (anyGate || item.text !== "gate band") } },
          tooltip: {
            filter: (item) => item.dataset.pbRole === "value",
            callbacks: {
              title: (items) => {
                const p = points[items[0].dataIndex];
                return "job #" + p.job_id + ", run " + p.run + " \u00b7 " + pb.fmt.date(p.t);
              },
              label: (ctx) => {
                const p = points[ctx.dataIndex];
                let txt = (s.metric || "value") + " " + R.value(p.value, s.kind, s.unit);
                if (pb.isNum(p.lower) && pb.isNum(p.upper)) txt += " [" + R.value(p.lower, s.kind, "") + ", " + R.value(p.upper, s.kind, "") + "]";
                return txt + (pb.isNum(p.n) ? " (n " + pb.fmt.int(p.n) + ")" : "");
              },
              afterLabel: (ctx) => {
                const p = points[ctx.dataIndex];
                const lines = [];
                if (pb.isNum(p.baseline)) lines.push("baseline " + R.value(p.baseline, s.kind, s.unit));
                if (pb.isNum(p.limit_lo) || pb.isNum(p.limit_hi)) {
                  lines.push("gate [" + R.value(p.limit_lo, s.kind, "") + ", " + R.value(p.limit_hi, s.kind, "") + "]");
                }
                const r = byAfter.get(p.job_id);
                if (r) lines.push("regression #" + r.id + " (" + r.detector + ", " + r.state + ")");
                return lines;
              },
            },
          },
        },
      },
    });
    box.dataset.points = String(points.length);
    $("chart-note").textContent = "Bars: " + (s.kind === "proportion" ? "95% intervals" : "spread of the repetitions") +
      (anyGate ? "; shaded: the per-run gate's band" : "") + "; triangles: the first run of a regression" +
      (marks.length ? "; dashed: change points with the means either side." : ".");
  }

  function pointsTable(s, points, regs) {
    const byAfter = new Map(regs.map((r) => [r.job_after, r]));
    const cols = [{ key: "job", label: "Job", num: true }, { key: "run", label: "Run", num: true },
      { key: "t", label: "Time" }, { key: "value", label: "Value", num: true },
      { key: "bar", label: "Error bar", sort: false }, { key: "n", label: "n", num: true },
      { key: "baseline", label: "Baseline", num: true }, { key: "gate", label: "Gate band", sort: false },
      { key: "context", label: "Context", sort: false }];
    const rows = points.slice().reverse().map((p) => [
      { node: pb.link(pb.href("jobs.html", { job: p.job_id }), "#" + p.job_id), sort: p.job_id },
      { text: p.run, sort: p.run }, pb.fmt.date(p.t),
      { text: R.value(p.value, s.kind, s.unit), sort: p.value },
      pb.isNum(p.lower) && pb.isNum(p.upper) ? "[" + R.value(p.lower, s.kind, "") + ", " + R.value(p.upper, s.kind, "") + "]" : pb.DASH,
      { text: pb.fmt.int(p.n), sort: pb.isNum(p.n) ? p.n : "" },
      { text: R.value(p.baseline, s.kind, s.unit), sort: pb.isNum(p.baseline) ? p.baseline : "" },
      pb.isNum(p.limit_lo) || pb.isNum(p.limit_hi) ? "[" + R.value(p.limit_lo, s.kind, "") + ", " + R.value(p.limit_hi, s.kind, "") + "]" : pb.DASH,
      { node: R.context(p.context), cls: "wrap" }]);
    const t = pb.table(cols, rows, "data points-table");
    Array.from(t.tBodies[0].rows).forEach((tr, i) => {
      const p = points[points.length - 1 - i];
      tr.dataset.job = String(p.job_id);
      if (byAfter.has(p.job_id)) tr.classList.add("regressed");
    });
    pb.sortable(t);
    const w = el("div", "table-wrap");
    w.appendChild(t);
    $("points").replaceChildren(w);
    $("points-title").textContent = "Points (" + points.length + ", newest first)";
  }

  async function showOne(id) {
    let data;
    try {
      data = await pb.api("/api/v1/series/" + encodeURIComponent(id));
    } catch (e) {
      pb.error(e);
      pb.empty($("chart"), "Cannot load series " + id + ".", e.message);
      return;
    }
    const s = data.series || {};
    const points = Array.isArray(data.points) ? data.points : [];
    const cps = Array.isArray(data.change_points) ? data.change_points : [];
    const regs = Array.isArray(data.regressions) ? data.regressions : [];
    const name = (s.model ? s.model + " \u00b7 " : "") + R.seriesLabel(s);
    $("title").textContent = "Series: " + name;
    document.title = "posbench \u00b7 " + name;
    $("subtitle").textContent = "Series " + s.id + ": one metric of one run configuration on one testbed, oldest run first.";
    const dl = $("meta");
    dl.replaceChildren();
    pb.meta(dl, "Schedule", s.schedule_id ? pb.link(pb.href("schedules.html", { schedule: s.schedule_id }), "#" + s.schedule_id) : pb.DASH);
    pb.meta(dl, "Model", s.model);
    pb.meta(dl, "Suite / task", s.suite + " / " + s.task);
    pb.meta(dl, "Params", el("span", "params", params(s.params)));
    pb.meta(dl, "Bucket", s.bucket);
    pb.meta(dl, "Metric", (s.metric || pb.DASH) + " (" + (s.kind || "?") + (s.unit ? ", " + s.unit : "") + ")");
    pb.meta(dl, "Testbed", s.testbed ? (s.testbed.name || "#" + s.testbed.id) : pb.DASH);
    pb.meta(dl, "Points", pb.fmt.int(points.length));
    draw(s, points, cps, regs);
    $("regressions-box").hidden = !regs.length;
    if (regs.length) $("regressions").replaceChildren(R.table(regs, () => showOne(id), { series: s }));
    pointsTable(s, points, regs);
  }

  async function showList(q) {
    $("chart").remove();
    $("points-title").textContent = "All series";
    let list;
    try {
      list = (await pb.api(pb.href("/api/v1/series", { schedule: q.schedule, model: q.model, suite: q.suite }))).series || [];
    } catch (e) {
      pb.error(e);
      pb.empty($("points"), "Cannot load the series.", e.message);
      return;
    }
    if (!list.length) {
      pb.empty($("points"), "No series yet.", "Done jobs of schedules and models add them.");
      return;
    }
    $("points").replaceChildren(R.seriesTable(list));
  }

  pb.nav("series");
  const q = pb.query();
  if (q.id) showOne(q.id);
  else showList(q);
})();
