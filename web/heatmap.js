// posbench dashboard, heatmaps: one run's breakdown from GET
// /api/v1/jobs/ID/results as a table of viridis-coloured cells. Pair keys
// ("da,db", "rows,cols") map their groups onto a two-way grid; other keys
// (longctx "depth") use their bucket x value grid. Hover or focus shows n,
// accuracy and interval, and each cell links to its items.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = pb.el;
  let jobs = []; // [job_id, label] from the leaderboard, newest first
  let results = null; // the loaded job's results
  let loadedJob = null;

  const numSort = (a, b) => {
    const na = Number(a), nb = Number(b);
    return isFinite(na) && isFinite(nb) ? na - nb : String(a).localeCompare(String(b));
  };

  // The 2-D views a run offers: [{key, label, rowName, colName, cells}] where
  // cells are {r, c, n, acc, lo, hi, bucket}.
  function views(run) {
    const out = [];
    const bd = run && run.breakdown && typeof run.breakdown === "object" ? run.breakdown : {};
    const keys = Object.keys(bd);
    const order = (k) => (k === "depth" ? 0 : k.includes(",") ? 1 : 2);
    keys.sort((a, b) => order(a) - order(b) || a.localeCompare(b));
    for (const key of keys) {
      const b = bd[key] || {};
      const grid = Array.isArray(b.grid) ? b.grid : [];
      const groups = Array.isArray(b.groups) ? b.groups : [];
      if (key.includes(",")) {
        const [rn, cn] = key.split(",");
        // A pair value's bucket, when the grid puts it in exactly one.
        const bucketOf = new Map();
        for (const g of grid) {
          const prev = bucketOf.get(g.value);
          bucketOf.set(g.value, prev === undefined || prev === g.bucket ? g.bucket : null);
        }
        const cells = [];
        for (const g of groups) {
          const [r, c] = String(g.value).split(",");
          if (c === undefined) continue;
          const ci = Array.isArray(g.ci) ? g.ci : [];
          cells.push({ r, c, n: g.n, acc: g.accuracy, lo: ci[0], hi: ci[1],
            bucket: bucketOf.get(g.value) === undefined ? null : bucketOf.get(g.value) });
        }
        if (cells.length) out.push({ key, label: rn + " × " + cn, rowName: rn, colName: cn, cells });
      } else if (grid.length) {
        const unit = run.unit || "length";
        const cells = grid.map((g) => ({ r: g.value, c: g.bucket, n: g.n, acc: g.accuracy,
          lo: g.ci_low, hi: g.ci_high, bucket: g.bucket }));
        out.push({ key, label: key + " × length", rowName: key, colName: "length (" + unit + ")", cells });
      }
    }
    return out;
  }

  function showDetail(job, run, cell, v) {
    const d = $("detail");
    const parts = [v.rowName + " " + cell.r + ", " + v.colName + " " + cell.c + ": accuracy " +
      pb.fmt.acc(cell.acc, cell.lo, cell.hi) + ", n " + pb.fmt.int(cell.n) + " "];
    d.replaceChildren(document.createTextNode(parts[0]));
    if (!pb.isStatic()) {
      d.appendChild(pb.link(pb.href("items.html", { job, run, bucket: cell.bucket }), "items"));
    }
  }

  function grid(job, runIdx, v) {
    const rows = [...new Set(v.cells.map((c) => String(c.r)))].sort(numSort);
    const cols = [...new Set(v.cells.map((c) => String(c.c)))].sort(numSort);
    const at = new Map(v.cells.map((c) => [String(c.r) + "\u0000" + String(c.c), c]));
    const t = el("table", "heatmap");
    t.appendChild(el("caption", "note", v.label));
    const hr = el("tr");
    const corner = el("th", null, v.rowName + " \\ " + v.colName);
    corner.scope = "col";
    hr.appendChild(corner);
    for (const c of cols) {
      const th = el("th", "num", c);
      th.scope = "col";
      hr.appendChild(th);
    }
    t.appendChild(el("thead")).appendChild(hr);
    const body = t.appendChild(el("tbody"));
    for (const r of rows) {
      const tr = el("tr");
      const th = el("th", "num", r);
      th.scope = "row";
      tr.appendChild(th);
      for (const c of cols) {
        const cell = at.get(r + "\u0000" + c);
        if (!cell || !pb.isNum(cell.acc)) {
          const td = el("td", "cell nodata", "·");
          td.title = "no items";
          tr.appendChild(td);
          continue;
        }
        const td = el("td", "cell");
        const bg = pb.seqColor(cell.acc);
        td.style.background = bg;
        td.style.color = pb.textOn(bg);
        td.dataset.row = r;
        td.dataset.col = c;
        td.dataset.acc = String(cell.acc);
        td.dataset.n = String(cell.n);
        const label = v.rowName + " " + r + ", " + v.colName + " " + c + ": accuracy " +
          pb.fmt.acc(cell.acc, cell.lo, cell.hi) + ", n " + pb.fmt.int(cell.n);
        td.title = label;
        const text = pb.fmt.num(cell.acc, 2);
        if (pb.isStatic()) {
          td.textContent = text;
          td.tabIndex = 0;
          td.setAttribute("aria-label", label);
        } else {
          const a = pb.link(pb.href("items.html", { job, run: runIdx, bucket: cell.bucket }), text);
          a.setAttribute("aria-label", label + "; open its items");
          td.appendChild(a);
        }
        const show = () => showDetail(job, runIdx, cell, v);
        td.addEventListener("mouseenter", show);
        td.addEventListener("focusin", show);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    return t;
  }

  function fillSelect(sel, opts, value) {
    sel.replaceChildren(...opts.map(([v, t]) => {
      const o = el("option", null, t);
      o.value = String(v);
      return o;
    }));
    if (value !== undefined && value !== null) sel.value = String(value);
  }

  function render() {
    const q = pb.query();
    const job = q.job && /^\d+$/.test(q.job) ? q.job : "";
    fillSelect($("f-job"), [["", jobs.length ? "choose a job" : "no jobs with results"]].concat(jobs),
      jobs.some(([id]) => String(id) === job) ? job : "");
    if (document.activeElement !== $("f-jobid")) $("f-jobid").value = job;
    $("detail").textContent = "";
    $("legend").replaceChildren();
    const box = $("heat");
    if (!job) {
      fillSelect($("f-run"), [], null);
      fillSelect($("f-key"), [], null);
      $("note").textContent = "";
      pb.empty(box, "Choose a job.", jobs.length ? "Pick one above, or type its id."
        : "No results yet: heatmaps appear once a job has finished items.");
      return;
    }
    if (!results || String(loadedJob) !== job) {
      load(job);
      return;
    }
    const runs = Array.isArray(results.runs) ? results.runs : [];
    const runIdx = runs.some((r) => String(r.index) === q.run) ? q.run
      : (runs.find((r) => views(r).length) || runs[0] || {}).index;
    const run = runs.find((r) => String(r.index) === String(runIdx));
    fillSelect($("f-run"), runs.map((r) => [r.index, "#" + r.index + " " + r.suite + " / " + r.task +
      (views(r).length ? "" : " (no breakdown)")]), runIdx);
    const vs = run ? views(run) : [];
    const v = vs.find((x) => x.key === q.key) || vs[0];
    fillSelect($("f-key"), vs.map((x) => [x.key, x.label]), v ? v.key : null);
    $("title").textContent = "Heatmaps · job " + job;
    if (!run || !v) {
      $("note").textContent = "";
      pb.empty(box, run ? "This run has no two-way breakdown." : "This job has no results yet.",
        "Heatmaps show longctx length × depth, arithmetic operand digits and table rows × columns.");
      return;
    }
    $("note").textContent = run.suite + " / " + run.task + ": " + v.cells.length + " cells; rows " +
      v.rowName + ", columns " + v.colName + ", colour and number: accuracy. Hover or focus a cell for n, accuracy and its 95% interval; follow it to the items.";
    $("legend").replaceChildren(pb.legend(0, 1, "accuracy"));
    box.replaceChildren(grid(job, run.index, v));
  }

  async function load(job) {
    pb.empty($("heat"), "Loading job " + job + "…");
    try {
      results = await pb.api("/api/v1/jobs/" + encodeURIComponent(job) + "/results");
      loadedJob = job;
      pb.banner("");
    } catch (err) {
      results = { runs: [] };
      loadedJob = job;
      pb.error(err);
    }
    render();
  }

  async function loadJobs() {
    try {
      const data = await pb.api("/api/v1/leaderboard");
      const seen = new Map();
      for (const e of Array.isArray(data.entries) ? data.entries : []) {
        if (!seen.has(e.job_id)) seen.set(e.job_id, "#" + e.job_id + " " + e.model + " (" + pb.fmt.date(e.date) + ")");
      }
      jobs = [...seen.entries()].sort((a, b) => b[0] - a[0]).slice(0, 500);
    } catch (err) {
      pb.error(err);
    }
    render();
  }

  pb.nav("heatmaps");
  const setJob = (v) => {
    pb.setQuery({ job: v, run: null, key: null }, true);
    render();
  };
  $("f-job").addEventListener("change", (ev) => setJob(ev.target.value));
  $("f-jobid").addEventListener("change", (ev) => setJob(ev.target.value));
  $("f-run").addEventListener("change", (ev) => {
    pb.setQuery({ run: ev.target.value, key: null }, true);
    render();
  });
  $("f-key").addEventListener("change", (ev) => {
    pb.setQuery({ key: ev.target.value }, true);
    render();
  });
  pb.onNavigate(render);
  loadJobs();
})();
