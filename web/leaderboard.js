// posbench dashboard, leaderboard page: GET /api/v1/leaderboard grouped per
// suite and task, filtered by suite, task and model name, each table sortable.
// The default order answers "which model is best at long lengths": effective
// length first where the task defines one, then score. State lives in the URL.
"use strict";

(function () {
  const ROWS_SHOWN = 25; // per group until "show all": thousands of entries stay cheap
  let entries = [];
  const expanded = new Set();

  const $ = (id) => document.getElementById(id);

  function metricsText(e) {
    const m = e.metrics && typeof e.metrics === "object" ? e.metrics : null;
    const agg = e.aggregate && typeof e.aggregate === "object" ? e.aggregate : {};
    const parts = [];
    for (const [k, v] of Object.entries(m || {})) if (pb.isNum(v)) parts.push(k + " " + pb.fmt.num(v, 3));
    for (const [k, v] of Object.entries(agg)) {
      if (["accuracy", "n", "threshold", "effective_length"].includes(k)) continue;
      if (pb.isNum(v) && !(m && k in m)) parts.push(k + " " + pb.fmt.num(v, 3));
    }
    return parts.join(" · ");
  }

  function hasEffLen(list) {
    return list.some((e) => pb.isNum(e.effective_length));
  }

  const COLS = [
    { key: "rank", label: "Rank", num: true, title: "rank by score within the suite and task" },
    { key: "model", label: "Model" },
    { key: "backend", label: "Backend" },
    { key: "score", label: "Score [95% CI]", num: true, title: "accuracy with its 95% Wilson interval" },
    { key: "efflen", label: "Effective length", num: true,
      title: "longest length whose accuracy reaches the task's threshold" },
    { key: "n", label: "n", num: true, title: "number of scored items" },
    { key: "metrics", label: "Metrics", sort: false },
    { key: "date", label: "Date (UTC)" },
    { key: "job", label: "Job", num: true },
  ];

  function entryRow(e) {
    const model = pb.link(pb.href("model.html", { model: e.model }), e.model);
    const eff = pb.isNum(e.effective_length)
      ? pb.fmt.int(e.effective_length) + (e.unit ? " " + e.unit : "") : "";
    const jobCell = el("span");
    if (pb.isStatic()) jobCell.textContent = "#" + e.job_id;
    else jobCell.appendChild(pb.link(pb.href("jobs.html", { job: e.job_id }), "#" + e.job_id));
    jobCell.appendChild(document.createTextNode(" "));
    const hm = pb.link(pb.href("heatmap.html", { job: e.job_id, run: e.run }), "heatmap", "minor");
    hm.title = "breakdown heatmap of this run";
    jobCell.appendChild(hm);
    return pb.row([
      { text: e.rank, sort: e.rank },
      { node: model, sort: e.model },
      e.backend,
      { text: pb.fmt.acc(e.score, e.ci_low, e.ci_high), sort: pb.isNum(e.score) ? e.score : "" },
      { text: eff, sort: pb.isNum(e.effective_length) ? e.effective_length : "" },
      { text: pb.fmt.int(e.n), sort: pb.isNum(e.n) ? e.n : "" },
      { text: metricsText(e), cls: "metrics" },
      { text: pb.fmt.date(e.date).replace(/ UTC$/, ""), sort: e.date || "" },
      { node: jobCell, sort: e.job_id },
    ], COLS);
  }
  const el = pb.el;

  function fillSelect(sel, values, current, allLabel) {
    const opts = [["", allLabel]].concat(values.map((v) => [v, v]));
    sel.replaceChildren(...opts.map(([v, t]) => {
      const o = el("option", null, t);
      o.value = v;
      return o;
    }));
    sel.value = values.includes(current) ? current : "";
  }

  function render() {
    const q = pb.query();
    const suites = [...new Set(entries.map((e) => String(e.suite)))].sort();
    fillSelect($("f-suite"), suites, q.suite || "", "all suites");
    const inSuite = entries.filter((e) => !q.suite || e.suite === q.suite);
    const tasks = [...new Set(inSuite.map((e) => String(e.task)))].sort();
    fillSelect($("f-task"), tasks, q.task || "", "all tasks");
    if (document.activeElement !== $("f-model")) $("f-model").value = q.model || "";

    const needle = (q.model || "").trim().toLowerCase();
    const shown = inSuite.filter((e) => (!q.task || e.task === q.task) &&
      (!needle || String(e.model).toLowerCase().includes(needle) ||
       String(e.backend).toLowerCase().includes(needle)));
    const box = $("lb-groups");
    if (entries.length === 0) {
      $("lb-note").textContent = "";
      pb.empty(box, "No results yet.",
        "Finished jobs appear here, ranked per suite and task. Submit one with: posbench submit job.json");
      return;
    }
    if (shown.length === 0) {
      $("lb-note").textContent = "";
      pb.empty(box, "No entries match these filters.", "Clear the model filter or pick another suite or task.");
      return;
    }
    const groups = pb.groupBy(shown, (e) => e.suite + " / " + e.task);
    $("lb-note").textContent = shown.length + " entries in " + groups.size + " suite/task groups. " +
      "Each table is ranked by score; by default it is ordered by effective length (the longest " +
      "length still at the task's accuracy threshold, best at long lengths first) where the task " +
      "has one, else by score. Click a column header to sort by it.";
    const blocks = [];
    for (const [key, list] of groups) {
      const sec = el("section", "lb-group");
      const h = el("h2", null, key);
      h.id = "g-" + key.replace(/[^A-Za-z0-9_-]+/g, "-");
      sec.setAttribute("aria-labelledby", h.id);
      sec.appendChild(h);
      const eff = hasEffLen(list);
      sec.appendChild(el("p", "note", eff
        ? "Ordered by effective length, then score (unit: " + (list[0].unit || "length") + ")."
        : "Ordered by score (this task has no effective length)."));
      const all = expanded.has(key);
      const t = pb.table(COLS, [], "data lb-table");
      const body = t.tBodies[0];
      // Default order on the full list, then cut; a header click sorts what is shown.
      const ordered = list.slice().sort((a, b) => {
        if (eff) {
          const ea = pb.isNum(a.effective_length) ? a.effective_length : -1;
          const eb = pb.isNum(b.effective_length) ? b.effective_length : -1;
          if (ea !== eb) return eb - ea;
        }
        return (b.score || 0) - (a.score || 0) || (a.rank || 0) - (b.rank || 0);
      });
      for (const e of all ? ordered : ordered.slice(0, ROWS_SHOWN)) body.appendChild(entryRow(e));
      const wrap = el("div", "table-wrap");
      wrap.appendChild(t);
      sec.appendChild(wrap);
      pb.sortable(t, {
        initial: q.sort ? { key: q.sort, dir: q.dir } : null,
        onSort: (k, dir) => pb.setQuery({ sort: k, dir: dir }, false),
      });
      if (!all && list.length > ROWS_SHOWN) {
        const more = el("button", "more", "Show all " + list.length + " entries");
        more.type = "button";
        more.addEventListener("click", () => {
          expanded.add(key);
          render();
        });
        sec.appendChild(more);
      }
      blocks.push(sec);
    }
    box.replaceChildren(...blocks);
    // For the scale test: when the first full render happened.
    if (!performance.getEntriesByName("pb-leaderboard-rendered").length) {
      performance.mark("pb-leaderboard-rendered");
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
      pb.empty($("lb-groups"), "Cannot load the leaderboard.", err.message);
    }
  }

  pb.nav("leaderboard");
  $("f-suite").addEventListener("change", (ev) => {
    pb.setQuery({ suite: ev.target.value, task: null }, true);
    render();
  });
  $("f-task").addEventListener("change", (ev) => {
    pb.setQuery({ task: ev.target.value }, true);
    render();
  });
  $("f-model").addEventListener("input", pb.debounce((ev) => {
    pb.setQuery({ model: ev.target.value.trim() }, false);
    render();
  }, 200));
  pb.onNavigate(render);
  load();
})();
