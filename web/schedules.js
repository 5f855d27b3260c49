// posbench dashboard, schedules page: the regressions (GET /api/v1/regressions,
// ?rstate= filters, default open) with triage buttons; then every schedule
// (GET /api/v1/schedules) with its recent jobs (GET /api/v1/jobs?schedule=ID),
// a Chart.js line chart of their runs' accuracies over time (one line per
// suite/task run), its series (links to series.html) and its webhook's
// deliveries. ?schedule=ID shows one schedule and its regressions.
"use strict";

(function () {
  const JOBS = 20; // recent jobs per schedule plotted and listed
  const REGRESSIONS = 200; // regressions listed
  const DELIVERIES = 20; // webhook deliveries listed per schedule
  const RSTATES = ["open", "detected", "acknowledged", "fixed", "ignored", "all"];
  const $ = (id) => document.getElementById(id);
  const el = pb.el;
  const R = window.pbRegress;
  const charts = [];
  const pendingCharts = []; // timelines waiting for their card to be attached
  let gen = 0;
  let rgen = 0;

  // The regressions list for the state filter (and ?schedule=); the API's
  // count of unacknowledged ones goes in the heading.
  async function showRegressions() {
    const myGen = ++rgen;
    const q = pb.query();
    const state = RSTATES.includes(q.rstate) ? q.rstate : "open";
    $("f-rstate").value = state;
    const box = $("regressions");
    let data;
    try {
      data = await pb.api(pb.href("/api/v1/regressions", { state: state === "all" ? null : state,
        schedule: q.schedule, limit: REGRESSIONS }));
    } catch (e) {
      if (myGen !== rgen) return;
      box.replaceChildren(el("p", "note error-text", "Cannot load the regressions: " + e.message));
      return;
    }
    if (myGen !== rgen) return;
    const list = Array.isArray(data.regressions) ? data.regressions : [];
    const unack = pb.isNum(data.unacknowledged) ? data.unacknowledged : 0;
    const title = $("regress-title");
    title.replaceChildren(document.createTextNode("Regressions "));
    title.appendChild(el("span", "state " + (unack ? "state-failed" : "state-done"),
      unack ? unack + " unacknowledged" : "none unacknowledged"));
    title.dataset.unacknowledged = String(unack);
    // A note, not pb.empty: the page's empty state is the schedules'.
    if (!list.length) {
      box.replaceChildren(el("p", "note regress-none", "No " + (state === "all" ? "" : state + " ") + "regressions" +
        (q.schedule ? " for this schedule" : "") + "."));
      return;
    }
    box.replaceChildren(R.table(list, () => showRegressions()));
  }

  function runLabel(r) {
    return r.suite + " / " + r.task;
  }

  // {label: [{x: job, y: accuracy}]} over the done jobs, oldest first.
  async function series(jobs, myGen) {
    const done = jobs.filter((j) => j.state === "done").slice().reverse();
    const results = await Promise.all(done.map((j) =>
      pb.api("/api/v1/jobs/" + j.id + "/results").catch(() => null)));
    if (myGen !== gen) return null;
    const lines = new Map();
    done.forEach((j, i) => {
      const res = results[i];
      if (!res) return;
      for (const r of res.runs || []) {
        const key = "run " + r.index + ": " + runLabel(r);
        if (!lines.has(key)) lines.set(key, new Map());
        if (pb.isNum(r.accuracy)) lines.get(key).set(j.id, { acc: r.accuracy, lo: r.ci_low, hi: r.ci_high });
      }
    });
    return { done, lines };
  }

  function timeline(canvasBox, data, name) {
    const labels = data.done.map((j) => "#" + j.id + " " + pb.fmt.date(j.created_at).replace(" UTC", ""));
    const datasets = [];
    let k = 0;
    for (const [label, byJob] of data.lines) {
      const c = pb.color(k++);
      datasets.push({ label, data: data.done.map((j) => (byJob.has(j.id) ? byJob.get(j.id).acc : null)),
        borderColor: c, backgroundColor: c, spanGaps: true, pointRadius: 3, tension: 0 });
    }
    const canvas = pb.el("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "accuracy over the last " + data.done.length + " done jobs of schedule " + name);
    canvasBox.replaceChildren(canvas);
    const chart = new window.Chart(canvas, {
      type: "line",
      data: { labels, datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max: 1, title: { display: true, text: "accuracy" } },
          x: { title: { display: true, text: "job (created, UTC)" } } },
        plugins: { legend: { position: "bottom" },
          tooltip: { callbacks: { label: (ctx) => ctx.dataset.label + ": " + pb.fmt.pct(ctx.parsed.y) } } },
      },
    });
    charts.push(chart);
    canvasBox.dataset.points = String(datasets.reduce((a, d) => a + d.data.filter((v) => v !== null).length, 0));
    return chart;
  }

  async function seriesList(s, box, myGen) {
    box.appendChild(el("h3", null, "Series"));
    let list;
    try {
      list = (await pb.api(pb.href("/api/v1/series", { schedule: s.id }))).series || [];
    } catch (e) {
      box.appendChild(el("p", "note error-text", "Cannot load this schedule's series: " + e.message));
      return;
    }
    if (myGen !== gen) return;
    if (!list.length) box.appendChild(el("p", "note", "None yet: each done job adds a point to its series."));
    else box.appendChild(R.seriesTable(list));
  }

  async function deliveries(s, box, myGen) {
    box.appendChild(el("h3", null, "Webhook deliveries"));
    let list;
    try {
      list = (await pb.api(pb.href("/api/v1/deliveries", { schedule: s.id }))).deliveries || [];
    } catch (e) {
      box.appendChild(el("p", "note error-text", "Cannot load this schedule's deliveries: " + e.message));
      return;
    }
    if (myGen !== gen) return;
    if (!list.length) {
      box.appendChild(el("p", "note", s.webhook ? "None yet: one is sent when a run raises regressions." :
        "No webhook set (PATCH /api/v1/schedules/" + s.id + " {\"webhook\": URL})."));
      return;
    }
    const cols = [{ key: "id", label: "#", num: true }, { key: "job", label: "Job", num: true },
      { key: "state", label: "State" }, { key: "attempts", label: "Attempts", num: true },
      { key: "status", label: "Last status", num: true }, { key: "error", label: "Last error" },
      { key: "created", label: "Created" }, { key: "delivered", label: "Delivered" }, { key: "url", label: "URL" }];
    const rows = list.slice(0, DELIVERIES).map((d) => [{ text: "#" + d.id, sort: d.id },
      d.job_id ? { node: pb.link(pb.href("jobs.html", { job: d.job_id }), "#" + d.job_id), sort: d.job_id } : pb.DASH,
      { node: el("span", "state state-" + (d.state === "delivered" ? "done" : d.state === "failed" ? "failed" : "queued"), d.state), sort: d.state },
      { text: pb.fmt.int(d.attempts), sort: d.attempts },
      { text: pb.isNum(d.last_status) && d.last_status ? String(d.last_status) : pb.DASH, sort: d.last_status || "" },
      { node: el("span", d.last_error ? "error-text" : null, d.last_error || pb.DASH) },
      pb.fmt.date(d.created_at), pb.fmt.date(d.delivered_at), { node: el("span", "meta", d.url || pb.DASH) }]);
    const t = pb.table(cols, rows, "data deliveries-table");
    Array.from(t.tBodies[0].rows).forEach((tr, i) => { tr.dataset.state = list[i].state; });
    const w = el("div", "table-wrap");
    w.appendChild(t);
    box.appendChild(w);
  }

  async function scheduleCard(s, myGen) {
    const card = pb.el("section", "schedule");
    card.id = "schedule-" + s.id;
    card.dataset.id = String(s.id);
    const h = pb.el("h2");
    h.appendChild(pb.link(pb.href("schedules.html", { schedule: s.id }), s.name));
    h.appendChild(pb.el("span", "state " + (s.enabled ? "state-running" : "state-cancelled"), s.enabled ? "enabled" : "disabled"));
    card.appendChild(h);
    const meta = pb.el("dl", "job-meta");
    const add = (k, v) => pb.meta(meta, k, v);
    add("Cron (UTC)", s.cron);
    add("Next", s.enabled ? pb.fmt.date(s.next_fire_at) : pb.DASH);
    add("Last fired", pb.fmt.date(s.last_fired_at));
    add("Last job", s.last_job_id ? pb.link(pb.href("jobs.html", { job: s.last_job_id }), "#" + s.last_job_id) : pb.DASH);
    const tm = s.template && s.template.model ? s.template.model.name : null;
    if (tm) add("Model", tm);
    add("Webhook", s.webhook ? el("span", "meta", s.webhook) : "none");
    if (s.detect && typeof s.detect === "object" && Object.keys(s.detect).length) {
      add("Detection", el("span", "params", JSON.stringify(s.detect)));
    }
    card.appendChild(meta);
    const chartBox = pb.el("div", "chart-box");
    card.appendChild(chartBox);
    const listBox = pb.el("div", "schedule-jobs");
    card.appendChild(listBox);
    const seriesBox = pb.el("div", "schedule-series");
    card.appendChild(seriesBox);
    const hookBox = pb.el("div", "schedule-deliveries");
    card.appendChild(hookBox);
    await Promise.all([seriesList(s, seriesBox, myGen), deliveries(s, hookBox, myGen)]);

    let jobs;
    try {
      jobs = (await pb.api(pb.href("/api/v1/jobs", { schedule: s.id, limit: JOBS }))).jobs;
    } catch (e) {
      pb.error(e);
      pb.empty(listBox, "Cannot load this schedule's jobs.", e.message);
      return card;
    }
    if (myGen !== gen) return card;
    if (!jobs.length) {
      chartBox.remove();
      pb.empty(listBox, "Not fired yet.", s.enabled ? "Its first job comes at " + pb.fmt.date(s.next_fire_at) + "." : "Enable it to fire.");
      return card;
    }
    const data = await series(jobs, myGen);
    if (myGen !== gen || !data) return card;
    const cols = [{ key: "id", label: "Job", num: true }, { key: "state", label: "State" },
      { key: "created", label: "Created" }, { key: "acc", label: "Accuracy per run", sort: false }];
    const rows = jobs.map((j) => {
      const accs = [];
      for (const [label, byJob] of data.lines) if (byJob.has(j.id)) accs.push(label.replace(/^run \d+: /, "") + " " + pb.fmt.pct(byJob.get(j.id).acc));
      return [{ node: pb.link(pb.href("jobs.html", { job: j.id }), "#" + j.id), sort: j.id },
        { node: pb.el("span", "state state-" + j.state, j.state), sort: j.state }, pb.fmt.date(j.created_at),
        accs.join(" \u00b7 ") || pb.DASH];
    });
    const t = pb.table(cols, rows);
    t.classList.add("schedule-jobs-table");
    const w = pb.el("div", "table-wrap");
    w.appendChild(t);
    listBox.replaceChildren(w);
    if (!data.done.length) {
      pb.empty(chartBox, "No finished job to plot yet.");
    } else if (!pb.chartReady()) {
      pb.empty(chartBox, "Chart.js is not available (expected at vendor/chart.js).", "The table below has the same numbers.");
    } else {
      // Drawn once the card is in the page: a Chart made on a detached
      // canvas never lays itself out (Chart.js 3 skips the first update).
      pendingCharts.push(() => timeline(chartBox, data, s.name));
    }
    return card;
  }

  async function show() {
    const myGen = ++gen;
    while (charts.length) charts.pop().destroy();
    pendingCharts.length = 0;
    const box = $("schedules");
    const q = pb.query();
    let list;
    try {
      list = (await pb.api("/api/v1/schedules")).schedules || [];
    } catch (e) {
      if (myGen === gen) pb.error(e);
      return;
    }
    if (myGen !== gen) return;
    if (q.schedule) list = list.filter((s) => String(s.id) === String(q.schedule));
    if (!list.length) {
      pb.empty(box, q.schedule ? "No schedule " + q.schedule + "." : "No schedules yet.",
        "Create one with POST /api/v1/schedules {\"name\", \"cron\": \"@nightly\", \"job\": {spec}}.");
      return;
    }
    const cards = await Promise.all(list.map((s) => scheduleCard(s, myGen)));
    if (myGen !== gen) return;
    box.replaceChildren(...cards);
    if (q.schedule) box.appendChild(pb.link("schedules.html", "All schedules"));
    while (pendingCharts.length) pendingCharts.shift()();
  }

  pb.nav("schedules");
  $("f-rstate").addEventListener("change", (ev) => {
    pb.setQuery({ rstate: ev.target.value === "open" ? null : ev.target.value }, true);
    showRegressions();
  });
  pb.onNavigate(() => {
    showRegressions();
    show();
  });
  showRegressions();
  show();
})();
