// posbench dashboard, schedules page: every schedule (GET /api/v1/schedules)
// with its recent jobs (GET /api/v1/jobs?schedule=ID) and a Chart.js line
// chart of their runs' accuracies over time (one line per suite/task run).
// ?schedule=ID shows one schedule.
"use strict";

(function () {
  const JOBS = 20; // recent jobs per schedule plotted and listed
  const $ = (id) => document.getElementById(id);
  const charts = [];
  const pendingCharts = []; // timelines waiting for their card to be attached
  let gen = 0;

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

  async function scheduleCard(s, myGen) {
    const card = pb.el("section", "schedule");
    card.id = "schedule-" + s.id;
    card.dataset.id = String(s.id);
    const h = pb.el("h2");
    h.appendChild(pb.link(pb.href("schedules.html", { schedule: s.id }), s.name));
    h.appendChild(pb.el("span", "state " + (s.enabled ? "state-running" : "state-cancelled"), s.enabled ? "enabled" : "disabled"));
    card.appendChild(h);
    const meta = pb.el("dl", "job-meta");
    const add = (k, v) => {
      meta.appendChild(pb.el("dt", null, k));
      const dd = pb.el("dd");
      if (v instanceof Node) dd.appendChild(v);
      else dd.textContent = v;
      meta.appendChild(dd);
    };
    add("Cron (UTC)", s.cron);
    add("Next", s.enabled ? pb.fmt.date(s.next_fire_at) : pb.DASH);
    add("Last fired", pb.fmt.date(s.last_fired_at));
    add("Last job", s.last_job_id ? pb.link(pb.href("jobs.html", { job: s.last_job_id }), "#" + s.last_job_id) : pb.DASH);
    const tm = s.template && s.template.model ? s.template.model.name : null;
    if (tm) add("Model", tm);
    card.appendChild(meta);
    const chartBox = pb.el("div", "chart-box");
    card.appendChild(chartBox);
    const listBox = pb.el("div", "schedule-jobs");
    card.appendChild(listBox);

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
  pb.onNavigate(() => show());
  show();
})();
