// posbench dashboard, job monitor: recent jobs (GET /api/v1/jobs, paged by
// `before`), the workers, and one job (jobs.html?job=ID) with live progress
// per run and bucket, its failed tasks and a cancel button. Polls while
// something runs and stops when nothing can change; state lives in the URL.
"use strict";

(function () {
  const POLL_MS = 1500;
  const PAGE = 50;
  const TOKEN_KEY = "posbench.token";
  const LIVE = ["queued", "running"];
  const $ = (id) => document.getElementById(id);

  let timer = null;
  let pollFailed = false; // the banner shows a failed poll
  let gen = 0; // bumped on every view change: late replies of an old view are dropped

  function schedule(fn) {
    clearTimeout(timer);
    timer = setTimeout(fn, POLL_MS);
  }

  function stopPolling() {
    clearTimeout(timer);
    timer = null;
  }

  // ---- pieces ----

  // Wide tables scroll sideways on a phone instead of widening the page.
  function wrap(t) {
    const w = pb.el("div", "table-wrap");
    w.appendChild(t);
    return w;
  }

  function stateBadge(state) {
    const s = pb.el("span", "state state-" + String(state), state);
    s.dataset.state = String(state);
    return s;
  }

  // A labelled progress bar: done of total, the text says both.
  function bar(done, total, label) {
    const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
    const wrap = pb.el("div", "pbar");
    wrap.setAttribute("role", "progressbar");
    wrap.setAttribute("aria-valuemin", "0");
    wrap.setAttribute("aria-valuemax", "100");
    wrap.setAttribute("aria-valuenow", pct.toFixed(1));
    if (label) wrap.setAttribute("aria-label", label);
    wrap.dataset.done = String(done);
    wrap.dataset.total = String(total);
    const fill = pb.el("span", "pbar-fill");
    fill.style.width = pct.toFixed(1) + "%";
    wrap.appendChild(fill);
    wrap.appendChild(pb.el("span", "pbar-text",
      pb.fmt.int(done) + " / " + pb.fmt.int(total) + " (" + pct.toFixed(pct === 100 || pct === 0 ? 0 : 1) + "%)"));
    return wrap;
  }

  function modelName(j) {
    const m = j.model && typeof j.model === "object" ? j.model : {};
    return (m.name || "?") + (m.backend && m.backend !== m.name ? " (" + m.backend + ")" : "");
  }

  function elapsed(j) {
    const start = Date.parse(j.started_at || "");
    if (!isFinite(start)) return pb.DASH;
    const end = Date.parse(j.finished_at || "") || Date.now();
    return pb.fmt.duration((end - start) / 1000);
  }

  function token() {
    try {
      return window.localStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  // ---- the list ----

  async function loadList(q, myGen) {
    const params = { limit: PAGE, state: q.state, before: q.before };
    let jobs;
    try {
      jobs = await pb.api(pb.href("/api/v1/jobs", params));
    } catch (e) {
      if (myGen === gen) pb.error(e);
      return false;
    }
    if (myGen !== gen) return false;
    const box = $("jobs-list");
    if (!jobs.jobs.length) {
      pb.empty(box, q.before ? "No older jobs." : q.state ? "No " + q.state + " jobs." : "No jobs yet.",
        "Submit one with `posbench submit job.json` or POST /api/v1/jobs.");
    } else {
      const cols = [
        { key: "id", label: "Job", num: true }, { key: "name", label: "Name" },
        { key: "model", label: "Model" }, { key: "state", label: "State" },
        { key: "progress", label: "Items", sort: false }, { key: "tasks", label: "Tasks (done/failed)" },
        { key: "created", label: "Created" }, { key: "elapsed", label: "Elapsed" },
      ];
      const rows = jobs.jobs.map((j) => [
        { node: pb.link(pb.href("jobs.html", { job: j.id }), "#" + j.id), sort: j.id },
        j.name || pb.DASH, modelName(j), { node: stateBadge(j.state), sort: j.state },
        { node: bar(j.items_done, j.items_total, "job " + j.id + " items") },
        (j.tasks ? j.tasks.done + " / " + j.tasks.failed : pb.DASH),
        pb.fmt.date(j.created_at), elapsed(j),
      ]);
      const t = pb.table(cols, rows);
      t.id = "jobs-table";
      pb.sortable(t);
      box.replaceChildren(wrap(t));
    }
    const pager = $("pager");
    pager.replaceChildren();
    if (q.before) {
      const first = pb.el("button", null, "Newest");
      first.type = "button";
      first.addEventListener("click", () => go({ before: null }));
      pager.appendChild(first);
    }
    if (jobs.next) {
      const older = pb.el("button", null, "Older jobs");
      older.type = "button";
      older.id = "older";
      older.addEventListener("click", () => go({ before: jobs.next }));
      pager.appendChild(older);
    }
    return jobs.jobs.some((j) => LIVE.includes(j.state));
  }

  async function loadWorkers(myGen) {
    let w;
    try {
      w = await pb.api("/api/v1/workers");
    } catch (e) {
      if (myGen === gen) pb.error(e);
      return false;
    }
    if (myGen !== gen) return false;
    const box = $("workers");
    const list = (w.workers || []).filter((x) => x.state !== "gone");
    const gone = (w.workers || []).length - list.length;
    if (!list.length) {
      pb.empty(box, "No workers connected" + (gone ? " (" + gone + " gone)" : "") + ".",
        "Start one with `posbench-worker --connect tcp://HOST:5555`.");
      return false;
    }
    const cols = [{ key: "name", label: "Worker" }, { key: "state", label: "State" },
      { key: "current", label: "Current tasks" }, { key: "done", label: "Tasks done", num: true },
      { key: "caps", label: "Capabilities", sort: false }, { key: "seen", label: "Last seen" }];
    const rows = list.map((x) => {
      const caps = x.capabilities && typeof x.capabilities === "object" ? x.capabilities : {};
      const capText = Object.entries(caps).filter(([, v]) => typeof v !== "object")
        .map(([k, v]) => k + "=" + v).join(" ");
      const cur = Array.isArray(x.current_tasks) ? x.current_tasks : [];
      return [x.name, { node: stateBadge(x.state), sort: x.state },
        cur.length ? cur.map((id) => "task " + id).join(", ") : "idle",
        x.tasks_done, capText || pb.DASH, pb.fmt.date(x.last_seen)];
    });
    const t = pb.table(cols, rows);
    t.id = "workers-table";
    box.replaceChildren(wrap(t));
    if (gone) box.appendChild(pb.el("p", "note", gone + " worker(s) gone, not shown."));
    return list.some((x) => x.state === "busy");
  }

  // ---- one job ----

  async function cancel(id, btn) {
    if (btn.dataset.armed !== "1") {
      // Two clicks: a stray one does not throw away a night's run.
      btn.dataset.armed = "1";
      btn.textContent = "Confirm cancel";
      setTimeout(() => {
        if (btn.isConnected && btn.dataset.armed === "1") {
          btn.dataset.armed = "";
          btn.textContent = "Cancel job";
        }
      }, 5000);
      return;
    }
    btn.disabled = true;
    const headers = {};
    const tok = token();
    if (tok) headers.Authorization = "Bearer " + tok;
    try {
      const r = await pb.api("/api/v1/jobs/" + id + "/cancel", { method: "POST", headers });
      pb.banner("Job " + id + " cancelled (" + r.cancelled_tasks + " tasks stopped).", "ok");
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        pb.error("Not allowed to cancel job " + id + " (HTTP " + e.status + "): set a valid API token under \u201cAPI token\u201d. " + e.message);
        $("settings").open = true;
      } else {
        pb.error(e);
      }
      btn.disabled = false;
      btn.dataset.armed = "";
      btn.textContent = "Cancel job";
    }
    refresh();
  }

  function runSection(job, run) {
    const sec = pb.el("section", "run");
    sec.dataset.run = String(run.index);
    const h = pb.el("h3", null, "Run " + run.index + ": " + run.suite + " / " + run.task);
    sec.appendChild(h);
    const params = run.params && typeof run.params === "object" ? JSON.stringify(run.params) : "";
    if (params) sec.appendChild(pb.el("p", "note params", params.length > 300 ? params.slice(0, 300) + "\u2026" : params));
    const buckets = run.buckets || [];
    const itemsDone = buckets.reduce((a, b) => a + b.items_done, 0);
    const itemsTotal = buckets.reduce((a, b) => a + b.items_total, 0);
    sec.appendChild(bar(itemsDone, itemsTotal, "run " + run.index + " items"));
    const cols = [{ key: "bucket", label: "Bucket", num: true }, { key: "items", label: "Items", sort: false },
      { key: "tasks", label: "Tasks done", num: true }, { key: "link", label: "Samples", sort: false }];
    const rows = buckets.map((b) => [b.bucket,
      { node: bar(b.items_done, b.items_total, "bucket " + b.bucket + " items") },
      { text: b.tasks_done + " / " + b.tasks_total, sort: b.tasks_done },
      b.items_done > 0 ? { node: pb.link(pb.href("items.html", { job: job.id, run: run.index, bucket: b.bucket }), "items") } : pb.DASH]);
    sec.appendChild(wrap(pb.table(cols, rows, "data buckets")));
    return sec;
  }

  function renderJob(job) {
    const view = $("job-view");
    const live = LIVE.includes(job.state);
    $("jobs-title").textContent = "Job #" + job.id + (job.name ? ": " + job.name : "");
    document.title = "posbench · job " + job.id;
    const head = pb.el("div", "job-head");
    head.appendChild(stateBadge(job.state));
    const meta = pb.el("dl", "job-meta");
    const add = (k, v) => pb.meta(meta, k, v);
    add("Model", modelName(job));
    add("Created", pb.fmt.date(job.created_at));
    add("Started", pb.fmt.date(job.started_at));
    add("Finished", pb.fmt.date(job.finished_at));
    add("Elapsed", elapsed(job));
    add("Seed", String(job.seed));
    const t = job.tasks || {};
    add("Tasks", ["queued", "leased", "done", "failed", "cancelled"].map((k) => k + " " + (t[k] || 0)).join(" · "));
    if (job.schedule_id) add("Schedule", pb.link(pb.href("schedules.html", { schedule: job.schedule_id }), "#" + job.schedule_id));
    head.appendChild(meta);
    const actions = pb.el("div", "actions");
    if (live) {
      const btn = pb.el("button", "danger", "Cancel job");
      btn.type = "button";
      btn.id = "cancel";
      btn.addEventListener("click", () => cancel(job.id, btn));
      actions.appendChild(btn);
    }
    actions.appendChild(pb.link(pb.href("items.html", { job: job.id }), "All samples"));
    actions.appendChild(pb.link("api/v1/jobs/" + job.id + "/results", "Results (JSON)"));
    actions.appendChild(pb.link("jobs.html", "All jobs"));
    head.appendChild(actions);

    const total = pb.el("div", "job-total");
    total.appendChild(pb.el("h2", null, "Progress"));
    const jb = bar(job.items_done, job.items_total, "job items");
    jb.id = "job-progress";
    total.appendChild(jb);
    const status = pb.el("p", "note", live ? "Updating every " + (POLL_MS / 1000) + " s." :
      "Job " + job.state + (job.state === "done" ? ": all items scored." : "."));
    status.id = "job-status";
    status.dataset.state = job.state;
    total.appendChild(status);
    if (job.error) total.appendChild(pb.el("p", "error-text", "Error: " + job.error));

    const parts = [head, total];
    const failed = job.failed_tasks || [];
    if (failed.length) {
      const fs = pb.el("section", "failed");
      fs.id = "failed-tasks";
      fs.appendChild(pb.el("h2", null, "Failed tasks (" + failed.length + (failed.length >= 100 ? "+" : "") + ")"));
      const ft = pb.table([{ key: "id", label: "Task", num: true }, { key: "bucket", label: "Bucket", num: true },
        { key: "attempt", label: "Attempts", num: true }, { key: "error", label: "Error", sort: false }],
        failed.map((f) => [f.id, f.bucket, f.attempt, { node: pb.el("code", null, f.error || "(no message)") }]));
      fs.appendChild(wrap(ft));
      parts.push(fs);
    }
    const runs = pb.el("section", "runs");
    runs.appendChild(pb.el("h2", null, "Runs"));
    for (const r of job.runs || []) runs.appendChild(runSection(job, r));
    parts.push(runs);
    // Keep a focused cancel button focused across refreshes (keyboard users).
    const hadFocus = document.activeElement && document.activeElement.id === "cancel";
    const armed = $("cancel") && $("cancel").dataset.armed === "1";
    view.replaceChildren(...parts);
    if ($("cancel") && armed) {
      $("cancel").dataset.armed = "1";
      $("cancel").textContent = "Confirm cancel";
    }
    if (hadFocus && $("cancel")) $("cancel").focus();
    return live;
  }

  async function loadJob(id, myGen) {
    let job;
    try {
      job = await pb.api("/api/v1/jobs/" + encodeURIComponent(id));
    } catch (e) {
      if (myGen !== gen) return false;
      if (e.status === 404) {
        pb.empty($("job-view"), "No job " + id + ".", "It may never have existed; see all jobs.");
        $("job-view").appendChild(pb.link("jobs.html", "All jobs"));
        return false;
      }
      pb.error(e);
      pollFailed = true;
      return true; // a passing network error: keep trying
    }
    if (myGen !== gen) return false;
    if (pollFailed) pb.banner(""); // the connection is back; other notes stay
    pollFailed = false;
    return renderJob(job);
  }

  // ---- views ----

  async function refresh() {
    const myGen = gen;
    const q = pb.query();
    let again;
    if (q.job) {
      again = await loadJob(q.job, myGen);
    } else {
      const [a, b] = await Promise.all([loadList(q, myGen), loadWorkers(myGen)]);
      again = a || b;
    }
    if (myGen !== gen) return;
    if (again) schedule(refresh);
    else stopPolling();
  }

  function show() {
    gen++;
    stopPolling();
    const q = pb.query();
    const one = !!q.job;
    $("job-view").hidden = !one;
    $("list-view").hidden = one;
    if (!one) {
      $("jobs-title").textContent = "Jobs";
      document.title = "posbench · jobs";
      $("f-state").value = q.state || "";
    } else {
      $("job-view").replaceChildren(pb.el("p", "note", "Loading job " + q.job + "\u2026"));
    }
    refresh();
  }

  function go(params) {
    pb.setQuery(params, true);
    show();
  }

  function initToken() {
    const input = $("token");
    input.value = token();
    $("token-save").addEventListener("click", () => {
      try {
        window.localStorage.setItem(TOKEN_KEY, input.value.trim());
        pb.banner("API token saved in this browser.", "ok");
      } catch (e) {
        pb.error("Cannot store the token: " + e.message);
      }
    });
    $("token-clear").addEventListener("click", () => {
      try {
        window.localStorage.removeItem(TOKEN_KEY);
      } catch (e) { /* nothing stored */ }
      input.value = "";
      pb.banner("API token forgotten.", "ok");
    });
  }

  pb.nav("jobs");
  initToken();
  $("f-state").addEventListener("change", (ev) => go({ state: ev.target.value, before: null }));
  pb.onNavigate(show);
  document.addEventListener("visibilitychange", () => {
    // Hidden tabs stop polling; coming back picks it up again.
    if (document.hidden) stopPolling();
    else if (!timer) refresh();
  });
  show();
})();
