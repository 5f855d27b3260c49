// posbench dashboard, model page: one model (?model=) across all suites, one
// Chart.js accuracy-vs-length chart per suite/task from the leaderboard
// entries' buckets, 95% interval bands (fill between ci_low and ci_high), and
// the models of ?compare=A,B overlaid in Okabe-Ito colours. Each chart has its
// numbers as a table too (screen readers, or no Chart.js).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = pb.el;
  const MAX_CHARTS = 60; // one per suite/task; a suite filter narrows further
  // Units counted in whole numbers: their axes get integer ticks only.
  const INT_UNITS = ["digits", "cells", "docs", "elements", "terms", "bits", "rows", "items"];
  const MAX_BUCKET_TICKS = 12; // up to this many lengths: one tick at each
  const SHAPES = ["circle", "rect", "triangle", "rectRot", "crossRot", "star", "rectRounded", "cross"];
  let entries = [];
  const charts = [];

  function selected() {
    const q = pb.query();
    const models = [];
    if (q.model) models.push(q.model);
    for (const m of (q.compare || "").split(",")) {
      const s = m.trim();
      if (s && !models.includes(s)) models.push(s);
    }
    return models;
  }

  function setModels(models, push) {
    pb.setQuery({ model: models[0] || null, compare: models.slice(1).join(",") || null }, push);
    render();
  }

  // The entry a model is shown with for a task: its best-ranked one.
  function pick(list, model) {
    let best = null;
    for (const e of list) {
      if (e.model !== model) continue;
      if (!best || (e.rank || 1e9) < (best.rank || 1e9)) best = e;
    }
    return best;
  }

  function points(e, key) {
    const bs = Array.isArray(e.buckets) ? e.buckets : [];
    return bs.filter((b) => pb.isNum(b.bucket) && pb.isNum(b.accuracy))
      .sort((a, b) => a.bucket - b.bucket)
      .map((b) => ({ x: b.bucket, y: pb.isNum(b[key]) ? b[key] : b.accuracy }));
  }

  function datasets(rows) {
    const out = [];
    rows.forEach(({ model, entry }, i) => {
      const c = pb.color(i);
      // Band first (low, then high filled down to it), the line on top.
      out.push({ label: model + " 95% low", pbRole: "ci_low", data: points(entry, "ci_low"),
        borderWidth: 0, pointRadius: 0, pointHitRadius: 0, fill: false, borderColor: "transparent" });
      out.push({ label: model + " 95% high", pbRole: "ci_high", data: points(entry, "ci_high"),
        borderWidth: 0, pointRadius: 0, pointHitRadius: 0, fill: "-1",
        backgroundColor: pb.alpha(c, 0.18), borderColor: "transparent" });
      out.push({ label: model, pbRole: "accuracy", pbEntry: entry, data: points(entry, "accuracy"),
        borderColor: c, backgroundColor: c, borderWidth: 2, pointRadius: 3.5, fill: false, clip: 6,
        pointStyle: SHAPES[i % SHAPES.length], borderDash: i % 2 ? [6, 3] : [] });
    });
    return out;
  }

  // x ticks: at the measured lengths when there are few (no in-between
  // values, so integer units never show "1, 2, 2, 3"); else whole numbers for
  // counted units, and 1/2/4/8 x 10^k on a log axis.
  function xScale(unit, logX, xs) {
    const few = xs.length > 0 && xs.length <= MAX_BUCKET_TICKS;
    const counted = INT_UNITS.includes(String(unit || "").toLowerCase());
    const ticks = {
      callback: (v) => {
        const n = Number(v);
        if (counted && !Number.isInteger(n)) return "";
        if (logX && !few && ![1, 2, 4, 8].includes(Number(String(n)[0]))) return "";
        return pb.fmt.int(n);
      },
    };
    if (counted) ticks.precision = 0;
    if (few) ticks.autoSkip = true;
    const x = { type: logX ? "logarithmic" : "linear", ticks,
      title: { display: true, text: "length (" + (unit || "length") + ")" } };
    if (xs.length) {
      // The axis spans the data (not the next round number), padded on a log axis.
      x.min = logX ? xs[0] / 1.15 : xs[0];
      x.max = logX ? xs[xs.length - 1] * 1.15 : xs[xs.length - 1];
      if (xs.length === 1) {
        x.min = logX ? xs[0] / 2 : xs[0] - 1;
        x.max = logX ? xs[0] * 2 : xs[0] + 1;
      }
    }
    if (few) x.afterBuildTicks = (axis) => { axis.ticks = xs.map((v) => ({ value: v })); };
    return x;
  }

  function chartOptions(unit, logX, xs) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: true,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: xScale(unit, logX, xs),
        y: { min: 0, max: 1, title: { display: true, text: "accuracy" } },
      },
      plugins: {
        // Point-style entries: a dashed legend box draws as a squiggle.
        legend: { labels: { usePointStyle: true, boxHeight: 7,
          filter: (item, data) => data.datasets[item.datasetIndex].pbRole === "accuracy" } },
        tooltip: {
          filter: (item) => item.dataset.pbRole === "accuracy",
          callbacks: {
            label: (ctx) => {
              const e = ctx.dataset.pbEntry;
              const b = (e.buckets || []).find((x) => x.bucket === ctx.parsed.x) || {};
              return ctx.dataset.label + ": " + pb.fmt.acc(b.accuracy, b.ci_low, b.ci_high) +
                " (n " + pb.fmt.int(b.n) + ")";
            },
          },
        },
      },
    };
  }

  function dataTable(rows, unit) {
    const buckets = [...new Set(rows.flatMap(({ entry }) =>
      (entry.buckets || []).map((b) => b.bucket)))].sort((a, b) => a - b);
    const cols = [{ label: "length (" + (unit || "length") + ")", num: true }]
      .concat(rows.map(({ model }) => ({ label: model, num: true })));
    const body = buckets.map((bk) => [pb.fmt.int(bk)].concat(rows.map(({ entry }) => {
      const b = (entry.buckets || []).find((x) => x.bucket === bk);
      return b ? pb.fmt.acc(b.accuracy, b.ci_low, b.ci_high) + " n " + pb.fmt.int(b.n) : "";
    })));
    const d = el("details", "data-table");
    d.appendChild(el("summary", "note", "numbers"));
    const wrap = el("div", "table-wrap");
    wrap.appendChild(pb.table(cols, body, "data"));
    d.appendChild(wrap);
    return d;
  }

  function card(key, rows) {
    const first = rows[0].entry;
    const unit = first.unit || "";
    const c = el("section", "chart-card");
    c.dataset.task = key;
    c.appendChild(el("h3", null, key));
    const meta = rows.map(({ model, entry }) => model + ": score " +
      pb.fmt.acc(entry.score, entry.ci_low, entry.ci_high) +
      (pb.isNum(entry.effective_length) ? ", effective length " + pb.fmt.int(entry.effective_length) + " " + unit : ""));
    c.appendChild(el("p", "note", meta.join(" · ")));
    const box = el("div", "chart-box");
    const canvas = el("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "accuracy vs length (" + unit + ") for " + key + ": " +
      rows.map((r) => r.model).join(", "));
    box.appendChild(canvas);
    c.appendChild(box);
    c.appendChild(dataTable(rows, unit));
    const xs = [...new Set(rows.flatMap(({ entry }) => (entry.buckets || []).map((b) => b.bucket))
      .filter((v) => pb.isNum(v)))].sort((a, b) => a - b);
    // A log axis for lengths spanning 16x or more, except small counts (digits
    // 1..20 read better evenly spaced).
    const counted = INT_UNITS.includes(String(unit).toLowerCase());
    const logX = xs.length > 1 && xs[0] > 0 && xs[xs.length - 1] / xs[0] >= 16 &&
      (!counted || xs[xs.length - 1] > 100);
    return { node: c, canvas, rows, unit, logX, xs };
  }

  function render() {
    for (const ch of charts.splice(0)) ch.destroy();
    const q = pb.query();
    const names = [...new Set(entries.map((e) => String(e.model)))].sort();
    const models = selected();
    const modelSel = $("f-model");
    modelSel.replaceChildren(...[["", "choose a model"]].concat(names.map((n) => [n, n])).map(([v, t]) => {
      const o = el("option", null, t);
      o.value = v;
      return o;
    }));
    modelSel.value = names.includes(models[0]) ? models[0] : "";
    $("model-names").replaceChildren(...names.slice(0, 500).map((n) => {
      const o = el("option");
      o.value = n;
      return o;
    }));
    const suites = [...new Set(entries.map((e) => String(e.suite)))].sort();
    const suiteSel = $("f-suite");
    suiteSel.replaceChildren(...[["", "all suites"]].concat(suites.map((s) => [s, s])).map(([v, t]) => {
      const o = el("option", null, t);
      o.value = v;
      return o;
    }));
    suiteSel.value = suites.includes(q.suite) ? q.suite : "";

    const chips = models.map((m, i) => {
      const li = el("li");
      const sw = el("span", "swatch");
      sw.style.background = pb.color(i);
      li.appendChild(sw);
      li.appendChild(el("span", null, m));
      if (i > 0) {
        const b = el("button", "chip-x", "×");
        b.type = "button";
        b.setAttribute("aria-label", "remove " + m);
        b.addEventListener("click", () => setModels(models.filter((x) => x !== m), true));
        li.appendChild(b);
      }
      return li;
    });
    $("chips").replaceChildren(...chips);
    $("title").textContent = models.length ? "Model: " + models.join(" vs ") : "Models";
    document.title = "posbench · " + (models.length ? models.join(" vs ") : "models");

    const box = $("charts");
    if (entries.length === 0) {
      $("note").textContent = "";
      pb.empty(box, "No results yet.", "Finished jobs appear here; each model gets accuracy-vs-length charts.");
      return;
    }
    if (!models.length) {
      $("note").textContent = "";
      pb.empty(box, "Choose a model.", "Pick one above (" + names.length + " models have results); " +
        "add others to overlay them.");
      return;
    }
    const groups = pb.groupBy(entries.filter((e) => !q.suite || e.suite === q.suite),
      (e) => e.suite + " / " + e.task);
    const cards = [];
    for (const [key, list] of groups) {
      const rows = models.map((m) => ({ model: m, entry: pick(list, m) })).filter((r) => r.entry);
      if (rows.length) cards.push(card(key, rows));
      if (cards.length >= MAX_CHARTS) break;
    }
    if (!cards.length) {
      $("note").textContent = "";
      pb.empty(box, "No results for " + models.join(", ") + (q.suite ? " in " + q.suite : "") + ".",
        "Check the name, or clear the suite filter.");
      return;
    }
    $("note").textContent = cards.length + " tasks. Lines: accuracy per length bucket (the task's " +
      "best-ranked run per model); bands: 95% Wilson intervals.";
    box.replaceChildren(...cards.map((c) => c.node));
    if (!pb.chartReady()) {
      pb.banner("Chart.js is not available (vendor/chart.js): showing the numbers only.", "error");
      for (const c of cards) c.node.querySelector("details").open = true;
      return;
    }
    for (const c of cards) {
      charts.push(new window.Chart(c.canvas, { type: "line", data: { datasets: datasets(c.rows) },
        options: chartOptions(c.unit, c.logX, c.xs) }));
    }
  }

  async function load() {
    try {
      const data = await pb.api("/api/v1/leaderboard");
      entries = Array.isArray(data.entries) ? data.entries : [];
      pb.banner("");
      render();
    } catch (err) {
      pb.error(err);
      pb.empty($("charts"), "Cannot load results.", err.message);
    }
  }

  pb.nav("models");
  $("f-model").addEventListener("change", (ev) => {
    const rest = selected().slice(1).filter((m) => m !== ev.target.value);
    setModels(ev.target.value ? [ev.target.value].concat(rest) : rest, true);
  });
  $("f-suite").addEventListener("change", (ev) => {
    pb.setQuery({ suite: ev.target.value }, true);
    render();
  });
  $("compare").addEventListener("submit", () => {
    const v = $("f-add").value.trim();
    if (!v) return;
    const models = selected();
    if (!models.includes(v)) models.push(v);
    $("f-add").value = "";
    setModels(models, true);
  });
  pb.onNavigate(render);
  load();
})();
