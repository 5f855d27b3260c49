// posbench dashboard, regressions and series shared by the schedules and
// series pages: value and change formatting per series kind, a short form of
// provenance hashes, the regressions table with its triage buttons (POST
// /api/v1/regressions/ID {"state"}, then a callback so the page refreshes)
// and the table of series linking to series.html?id=.
"use strict";

(function () {
  const el = pb.el;
  const TOKEN_KEY = "posbench.token"; // the same one the jobs page keeps
  const HASH_SHOWN = 10; // characters of a commit or content hash shown
  const TRIAGE = [["acknowledged", "Acknowledge"], ["fixed", "Fixed"], ["ignored", "Ignore"]];
  // Provenance keys worth a column, in this order; others stay in the title.
  const CONTEXT_KEYS = /commit|sha|hash|checkpoint|version|dataset/i;

  // A value as its series measures it: proportions in percent, the rest with
  // 4 significant digits and the unit.
  function value(v, kind, unit) {
    if (!pb.isNum(v)) return pb.DASH;
    if (kind === "proportion") return (100 * v).toFixed(1) + "%";
    const a = Math.abs(v);
    const s = a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
    return unit ? s + " " + unit : s;
  }

  // The detectors' change: a difference of proportions (percentage points),
  // else relative to the value before.
  function change(v, kind) {
    if (!pb.isNum(v)) return pb.DASH;
    const sign = v > 0 ? "+" : v < 0 ? "\u2212" : "";
    return sign + Math.abs(100 * v).toFixed(1) + (kind === "proportion" ? " pp" : "%");
  }

  // A regression's interval: the proportion tests give one of the drop
  // (before minus after), shown here as one of the change; the performance
  // gate gives the band of values it expected.
  function interval(r, kind, unit) {
    const ci = r.ci;
    if (!Array.isArray(ci) || !pb.isNum(ci[0]) || !pb.isNum(ci[1])) return pb.DASH;
    if (r.detector === "two_prop" || r.detector === "fisher") {
      return "[" + change(-ci[1], kind) + ", " + change(-ci[0], kind) + "]";
    }
    if (r.detector === "perf_gate") return "expected [" + value(ci[0], kind, "") + ", " + value(ci[1], kind, unit) + "]";
    return "[" + change(ci[0], kind) + ", " + change(ci[1], kind) + "]";
  }

  function pval(p) {
    if (!pb.isNum(p)) return pb.DASH;
    return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
  }

  // Long hex strings (commits, content hashes) cut to HASH_SHOWN characters.
  function short(v) {
    if (v === null || v === undefined) return pb.DASH;
    if (typeof v !== "string") return typeof v === "object" ? JSON.stringify(v) : String(v);
    return /^[0-9a-f]{16,}$/i.test(v) ? v.slice(0, HASH_SHOWN) : v;
  }

  // "commit a1b2c3d4e5 · weights_hash 0f9e8d7c6b" from a provenance object;
  // the whole object goes in the element's title.
  function context(ctx) {
    const span = el("span", "meta");
    if (!ctx || typeof ctx !== "object") {
      span.textContent = pb.DASH;
      return span;
    }
    const parts = [];
    const walk = (obj, prefix) => {
      for (const [k, v] of Object.entries(obj)) {
        const name = prefix ? prefix + "." + k : k;
        if (v && typeof v === "object" && !Array.isArray(v)) walk(v, name);
        else if (CONTEXT_KEYS.test(k) && (typeof v === "string" || typeof v === "number")) parts.push(name + " " + short(v));
      }
    };
    walk(ctx, "");
    span.textContent = parts.length ? parts.join(" \u00b7 ") : pb.DASH;
    span.title = JSON.stringify(ctx, null, 1);
    return span;
  }

  // What changed between the runs: "commit a1b2 → c3d4; checkpoint x → y".
  function changes(ch) {
    if (!ch || typeof ch !== "object" || !Object.keys(ch).length) return pb.DASH;
    return Object.entries(ch).map(([k, v]) => {
      const pair = Array.isArray(v) ? v : [null, v];
      return k + ": " + short(pair[0]) + " \u2192 " + short(pair[1]);
    }).join("; ");
  }

  function seriesLabel(s) {
    if (!s) return pb.DASH;
    const parts = [s.suite + " / " + s.task];
    if (s.bucket !== undefined && s.bucket !== null) parts.push("bucket " + s.bucket);
    if (s.metric) parts.push(s.metric);
    return parts.join(" \u00b7 ");
  }

  function token() {
    try {
      return window.localStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  // POST the new state; resolves to the updated record.
  async function triage(id, state, note) {
    const headers = {};
    const tok = token();
    if (tok) headers.Authorization = "Bearer " + tok;
    const body = { state };
    if (note) body.note = note;
    return pb.api("/api/v1/regressions/" + id, { method: "POST", body, headers });
  }

  function buttons(r, onChange) {
    const box = el("span", "actions triage");
    const choices = TRIAGE.filter(([s]) => s !== r.state);
    if (r.state !== "detected") choices.push(["detected", "Reopen"]);
    for (const [state, label] of choices) {
      const b = el("button", "small", label);
      b.type = "button";
      b.dataset.state = state;
      b.setAttribute("aria-label", label + " regression " + r.id);
      b.addEventListener("click", async () => {
        box.querySelectorAll("button").forEach((x) => { x.disabled = true; });
        try {
          const upd = await triage(r.id, state);
          pb.banner("Regression " + r.id + " is now " + (upd.state || state) + ".", "ok");
        } catch (e) {
          pb.error("Cannot set regression " + r.id + " to " + state + ": " + e.message);
        }
        if (onChange) await onChange();
      });
      box.appendChild(b);
    }
    return box;
  }

  // The regressions table; opts.series: the series object when every row is
  // of the same series (the series page) so the series column is left out.
  function table(list, onChange, opts) {
    opts = opts || {};
    // Triage right after the state, so its buttons need no sideways scroll.
    const cols = [{ key: "id", label: "#", num: true }, { key: "state", label: "State" },
      { key: "triage", label: "Triage", sort: false }];
    if (!opts.series) cols.push({ key: "series", label: "Series" }, { key: "schedule", label: "Schedule" });
    cols.push({ key: "values", label: "Before \u2192 after" },
      { key: "change", label: "Change", num: true }, { key: "p", label: "p", num: true },
      { key: "ci", label: "Interval", sort: false }, { key: "jobs", label: "Runs" },
      { key: "changes", label: "Changed between", sort: false }, { key: "detector", label: "Detector" },
      { key: "created", label: "Detected" });
    const rows = list.map((r) => {
      const s = r.series || opts.series || {};
      const kind = s.kind;
      const cells = [{ text: "#" + r.id, sort: r.id },
        { node: el("span", "state state-regress-" + r.state, r.state), sort: r.state },
        { node: buttons(r, onChange) }];
      if (!opts.series) {
        cells.push({ node: pb.link(pb.href("series.html", { id: r.series_id }), seriesLabel(s)), sort: seriesLabel(s) });
        cells.push(r.schedule_id ? { node: pb.link(pb.href("schedules.html", { schedule: r.schedule_id }),
          r.schedule || "#" + r.schedule_id), sort: r.schedule || "" } : pb.DASH);
      }
      const runs = el("span");
      if (r.job_before) runs.appendChild(pb.link(pb.href("jobs.html", { job: r.job_before }), "#" + r.job_before));
      else runs.appendChild(document.createTextNode(pb.DASH));
      runs.appendChild(document.createTextNode(" \u2192 "));
      runs.appendChild(pb.link(pb.href("jobs.html", { job: r.job_after }), "#" + r.job_after));
      cells.push(value(r.value_before, kind, s.unit) + " \u2192 " + value(r.value_after, kind, s.unit),
        { text: change(r.change, kind), sort: pb.isNum(r.change) ? r.change : "" },
        { text: pval(r.p_value), sort: pb.isNum(r.p_value) ? r.p_value : "" },
        interval(r, kind, s.unit), { node: runs, sort: r.job_after },
        { node: el("span", "meta", changes(r.changes)), cls: "wrap" },
        r.detector + (r.detector_version ? " v" + r.detector_version : ""),
        { text: pb.fmt.date(r.created_at), sort: r.created_at || "" });
      return cells;
    });
    const t = pb.table(cols, rows, "data regressions-table");
    Array.from(t.tBodies[0].rows).forEach((tr, i) => {
      tr.dataset.id = String(list[i].id);
      tr.dataset.state = list[i].state;
      if (list[i].note) tr.title = "note: " + list[i].note;
    });
    pb.sortable(t);
    const w = el("div", "table-wrap");
    w.appendChild(t);
    return w;
  }

  // A list of series, each linking to its page (series.html?id=).
  function seriesTable(list) {
    const cols = [{ key: "id", label: "#", num: true }, { key: "model", label: "Model" },
      { key: "series", label: "Series" }, { key: "testbed", label: "Testbed" },
      { key: "points", label: "Points", num: true }, { key: "last", label: "Last value", num: true },
      { key: "at", label: "Last run" }, { key: "open", label: "Open regressions", num: true }];
    const rows = list.map((s) => [{ text: "#" + s.id, sort: s.id }, s.model,
      { node: pb.link(pb.href("series.html", { id: s.id }), seriesLabel(s)), sort: seriesLabel(s) },
      s.testbed ? s.testbed.name || "#" + s.testbed.id : pb.DASH,
      { text: pb.fmt.int(s.points), sort: s.points },
      { text: value(s.last_value, s.kind, s.unit), sort: pb.isNum(s.last_value) ? s.last_value : "" },
      pb.fmt.date(s.last_at),
      { text: pb.fmt.int(s.open_regressions), sort: s.open_regressions, cls: s.open_regressions ? "error-text" : null }]);
    const t = pb.table(cols, rows, "data series-table");
    Array.from(t.tBodies[0].rows).forEach((tr, i) => { tr.dataset.id = String(list[i].id); });
    pb.sortable(t);
    const w = el("div", "table-wrap");
    w.appendChild(t);
    return w;
  }

  window.pbRegress = { value, change, interval, pval, short, context, changes, seriesLabel, triage, table,
    seriesTable };
})();
