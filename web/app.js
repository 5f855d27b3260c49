// posbench dashboard, first page: polls the coordinator's JSON API every 2 s
// and renders the job monitor and the leaderboard. Every API string reaches
// the page through textContent, never as HTML.
"use strict";

const REFRESH_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const JOB_STATES = ["queued", "running", "done", "failed", "cancelled"];

function $(id) {
  return document.getElementById(id);
}

// Element with optional class and text (text is always set as text).
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function cell(text, cls) {
  return el("td", cls, text === undefined || text === null || text === "" ? "—" : text);
}

function fmtNum(v, digits) {
  return typeof v === "number" && isFinite(v) ? v.toFixed(digits) : "—";
}

// "2026-11-25T21:00:00Z" -> "2026-11-25 21:00:00 UTC"; anything else as is.
function fmtDate(v) {
  if (typeof v !== "string") return v === undefined || v === null ? "" : String(v);
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(v);
  return m ? m[1] + " " + m[2] + " UTC" : v;
}

async function getJSON(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(url, { cache: "no-store", signal: ctl.signal });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) {
      const msg = body && typeof body.error === "string" ? body.error : r.statusText;
      throw new Error(url + ": HTTP " + r.status + " " + msg);
    }
    if (body === null || typeof body !== "object") throw new Error(url + ": not JSON");
    return body;
  } finally {
    clearTimeout(timer);
  }
}

function progressCell(job) {
  const total = Number(job.items_total) || 0;
  const done = Math.min(Number(job.items_done) || 0, total);
  const pct = total > 0 ? (100 * done) / total : 0;
  const td = el("td", "progress-col");
  const bar = el("div", "bar");
  const fill = el("div", "bar-fill");
  fill.style.width = pct.toFixed(1) + "%";
  bar.appendChild(fill);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", String(total));
  bar.setAttribute("aria-valuenow", String(done));
  td.appendChild(bar);
  td.appendChild(el("span", "bar-text", done + " / " + total + " (" + pct.toFixed(0) + "%)"));
  return td;
}

function renderJobs(data) {
  const jobs = Array.isArray(data.jobs) ? data.jobs : [];
  const rows = jobs.map((job) => {
    const tr = el("tr");
    tr.appendChild(cell(job.id, "num"));
    tr.appendChild(cell(job.name));
    const model = job.model && typeof job.model === "object" ? job.model.name : job.model;
    tr.appendChild(cell(model));
    const state = String(job.state || "");
    // Only known states become a class name; the text is shown either way.
    const td = el("td");
    td.appendChild(el("span", "state " + (JOB_STATES.includes(state) ? "state-" + state : ""), state));
    if (job.error) td.title = String(job.error);
    tr.appendChild(td);
    tr.appendChild(cell(fmtDate(job.created_at)));
    tr.appendChild(progressCell(job));
    return tr;
  });
  $("jobs-body").replaceChildren(...rows);
  $("jobs-table").hidden = jobs.length === 0;
  $("jobs-empty").hidden = jobs.length !== 0;
  $("jobs-more").hidden = data.next === null || data.next === undefined;
}

function leaderboardTable(entries) {
  const table = el("table", "lb-table");
  const head = el("tr");
  const cols = [
    ["Rank", "num"], ["Model", ""], ["Backend", ""], ["Score", "num"], ["95% CI", "num"],
    ["n", "num"], ["Effective length", "num"], ["Job", "num"], ["Date", ""],
  ];
  for (const [name, cls] of cols) {
    const th = el("th", cls, name);
    th.scope = "col";
    head.appendChild(th);
  }
  table.appendChild(el("thead")).appendChild(head);
  const body = table.appendChild(el("tbody"));
  for (const e of entries) {
    const tr = el("tr");
    tr.appendChild(cell(e.rank, "num"));
    tr.appendChild(cell(e.model));
    tr.appendChild(cell(e.backend));
    tr.appendChild(cell(fmtNum(e.score, 3), "num"));
    const ci =
      typeof e.ci_low === "number" && typeof e.ci_high === "number"
        ? "[" + fmtNum(e.ci_low, 3) + ", " + fmtNum(e.ci_high, 3) + "]"
        : "";
    tr.appendChild(cell(ci, "num"));
    tr.appendChild(cell(typeof e.n === "number" ? Math.round(e.n) : e.n, "num"));
    tr.appendChild(cell(e.effective_length, "num"));
    tr.appendChild(cell(e.job_id, "num"));
    tr.appendChild(cell(fmtDate(e.date)));
    body.appendChild(tr);
  }
  return table;
}

function renderLeaderboard(data) {
  const entries = Array.isArray(data.entries) ? data.entries : [];
  // Group by suite/task, keeping the API's order (ranked within a group).
  const groups = new Map();
  for (const e of entries) {
    const key = String(e.suite) + " / " + String(e.task);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(e);
  }
  const blocks = [];
  for (const [key, list] of groups) {
    const div = el("div", "lb-group");
    div.appendChild(el("h3", null, key));
    div.appendChild(leaderboardTable(list));
    blocks.push(div);
  }
  $("lb-groups").replaceChildren(...blocks);
  $("lb-empty").hidden = entries.length !== 0;
}

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

async function refresh() {
  if (!document.hidden) {
    const [jobs, lb] = await Promise.allSettled([
      getJSON("/api/v1/jobs?limit=50"),
      getJSON("/api/v1/leaderboard"),
    ]);
    // A failed fetch keeps the last good data on screen and says so.
    const errors = [];
    if (jobs.status === "fulfilled") renderJobs(jobs.value);
    else errors.push(jobs.reason.message);
    if (lb.status === "fulfilled") renderLeaderboard(lb.value);
    else errors.push(lb.reason.message);
    const now = new Date().toLocaleTimeString();
    if (errors.length) setStatus("cannot reach the coordinator (" + now + "): " + errors.join("; "), true);
    else setStatus("updated " + now, false);
  }
  setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) setStatus("refreshing…", false);
});
refresh();
