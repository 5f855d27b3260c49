// posbench dashboard, shared client: the global `pb` every page uses for API
// calls (live, or the JSON files of a static snapshot), DOM building (text
// only, never HTML), query-string state, the nav header, banners and empty
// states, sortable tables and colour-blind-safe colours. Plain script, no build.
"use strict";

(function () {
  const FETCH_TIMEOUT_MS = 10000;

  // Pages of the nav bar; `live` ones need the coordinator (not in a snapshot).
  const PAGES = [
    ["leaderboard", "leaderboard.html", "Leaderboard", false],
    ["models", "model.html", "Models", false],
    ["heatmaps", "heatmap.html", "Heatmaps", false],
    ["jobs", "jobs.html", "Jobs", true],
    ["items", "items.html", "Items", true],
    ["schedules", "schedules.html", "Schedules", true],
    ["series", "series.html", "Series", true],
  ];

  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
    "#F0E442", "#000000"];

  // Viridis at 9 stops (perceptually uniform, colour-blind safe, greyscale ok).
  const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80",
    "#5ec962", "#addc30", "#fde725"];

  const isStatic = () => window.PB_STATIC === true;

  // A snapshot has only a few JSON files: map the API paths onto them, query
  // strings dropped (the pages filter client-side).
  function staticPath(path) {
    const p = String(path).split("?")[0];
    if (p === "/api/v1/leaderboard") return "data/leaderboard.json";
    if (p === "/api/v1/suites") return "data/suites.json";
    const m = /^\/api\/v1\/jobs\/(\d+)\/results$/.exec(p);
    if (m) return "data/jobs/" + m[1] + "/results.json";
    return null;
  }

  class ApiError extends Error {
    constructor(message, status, field) {
      super(message);
      this.status = status || 0;
      this.field = field || null;
    }
  }

  // GET (or opts.method) a JSON document; rejects with an ApiError whose
  // message says what failed (URL, status, the API's error text).
  async function api(path, opts) {
    opts = opts || {};
    let url = path;
    if (isStatic()) {
      url = staticPath(path);
      if (!url) throw new ApiError(path + ": not available in a static snapshot", 404);
    } else if (url.charAt(0) === "/") {
      // Relative to the page's directory, so a dashboard behind a path prefix works.
      url = url.slice(1);
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), opts.timeout || FETCH_TIMEOUT_MS);
    const init = { cache: "no-store", signal: ctl.signal, method: opts.method || "GET",
      headers: Object.assign({}, opts.headers || {}) };
    if (opts.body !== undefined) {
      init.body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      init.headers["Content-Type"] = "application/json";
    }
    let r;
    try {
      r = await fetch(url, init);
    } catch (e) {
      const why = e && e.name === "AbortError" ? "timed out" : "cannot reach the server";
      throw new ApiError(path + ": " + why, 0);
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) {
      const msg = body && typeof body.error === "string" ? body.error : r.statusText;
      throw new ApiError(path + ": HTTP " + r.status + " " + msg, r.status,
        body && typeof body.field === "string" ? body.field : null);
    }
    if (body === null || typeof body !== "object") throw new ApiError(path + ": not JSON", r.status);
    return body;
  }

  // Element with optional class and text (always textContent).
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // "page.html?k=v" from a params object (null/undefined/"" left out).
  function href(page, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return s ? page + "?" + s : page;
  }

  function link(url, text, cls) {
    const a = el("a", cls, text);
    a.href = url;
    return a;
  }

  const isNum = (v) => typeof v === "number" && isFinite(v);
  const DASH = "—";

  const fmt = {
    num(v, digits) {
      return isNum(v) ? v.toFixed(digits === undefined ? 3 : digits) : DASH;
    },
    int(v) {
      return isNum(v) ? Math.round(v).toLocaleString("en-US") : DASH;
    },
    pct(v, digits) {
      return isNum(v) ? (100 * v).toFixed(digits === undefined ? 1 : digits) + "%" : DASH;
    },
    // "2026-11-25T21:00:00Z" -> "2026-11-25 21:00 UTC"; anything else as is.
    date(v) {
      if (typeof v !== "string") return v === undefined || v === null ? DASH : String(v);
      const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(:\d\d)?(\.\d+)?Z$/.exec(v);
      return m ? m[1] + " " + m[2] + " UTC" : v;
    },
    // 0.912 [0.880, 0.940]
    acc(v, lo, hi, digits) {
      if (!isNum(v)) return DASH;
      const d = digits === undefined ? 3 : digits;
      if (!isNum(lo) || !isNum(hi)) return v.toFixed(d);
      return v.toFixed(d) + " [" + lo.toFixed(d) + ", " + hi.toFixed(d) + "]";
    },
    ci(lo, hi, digits) {
      if (!isNum(lo) || !isNum(hi)) return DASH;
      const d = digits === undefined ? 3 : digits;
      return "[" + lo.toFixed(d) + ", " + hi.toFixed(d) + "]";
    },
    // Seconds -> "1h 02m", "3m 05s", "12s".
    duration(s) {
      if (!isNum(s) || s < 0) return DASH;
      s = Math.round(s);
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
      if (h) return h + "h " + String(m).padStart(2, "0") + "m";
      if (m) return m + "m " + String(sec).padStart(2, "0") + "s";
      return sec + "s";
    },
  };

  // The query string as a plain object (last value wins).
  function query() {
    const out = {};
    for (const [k, v] of new URLSearchParams(window.location.search)) out[k] = v;
    return out;
  }

  // Merge obj into the query string (null/"" removes a key). push=true adds a
  // history entry (a new view the back button returns from); else replaces.
  function setQuery(obj, push) {
    const q = new URLSearchParams(window.location.search);
    for (const [k, v] of Object.entries(obj || {})) {
      if (v === undefined || v === null || v === "") q.delete(k);
      else q.set(k, String(v));
    }
    const s = q.toString();
    const url = window.location.pathname + (s ? "?" + s : "") + window.location.hash;
    if (url === window.location.pathname + window.location.search + window.location.hash) return;
    if (push) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
  }

  // fn(query()) on back/forward.
  function onNavigate(fn) {
    window.addEventListener("popstate", () => fn(query()));
  }

  // The shared header: title, links to every page (the live-only ones hidden
  // in a snapshot) and a status banner slot. Put before <main>.
  function nav(active) {
    let header = document.getElementById("pb-header");
    if (!header) {
      header = el("header");
      header.id = "pb-header";
      document.body.insertBefore(header, document.body.firstChild);
    }
    header.className = "pb-header";
    const brand = link("leaderboard.html", "posbench", "brand");
    const navEl = el("nav");
    navEl.setAttribute("aria-label", "pages");
    const ul = el("ul");
    for (const [key, page, label, live] of PAGES) {
      if (live && isStatic()) continue;
      const li = el("li");
      const a = link(page, label);
      if (key === active) {
        a.setAttribute("aria-current", "page");
        a.className = "active";
      }
      li.appendChild(a);
      ul.appendChild(li);
    }
    navEl.appendChild(ul);
    const banner = el("div", "banner");
    banner.id = "pb-banner";
    banner.setAttribute("role", "status");
    banner.setAttribute("aria-live", "polite");
    banner.hidden = true;
    const skip = link("#main", "skip to content", "skip");
    header.replaceChildren(skip, brand, navEl);
    if (isStatic()) header.appendChild(el("span", "snapshot", "static snapshot"));
    header.appendChild(banner);
    return header;
  }

  // Show (or with msg empty, hide) the banner under the header.
  function banner(msg, kind) {
    const b = document.getElementById("pb-banner");
    if (!b) return;
    if (!msg) {
      b.hidden = true;
      b.textContent = "";
      return;
    }
    b.className = "banner " + (kind === "error" ? "banner-error" : kind === "ok" ? "banner-ok" : "banner-info");
    b.setAttribute("role", kind === "error" ? "alert" : "status");
    b.textContent = String(msg);
    b.hidden = false;
  }
  const error = (msg) => banner(msg instanceof Error ? msg.message : msg, "error");

  // One term and its value appended to a <dl>: v a Node, or text (empty,
  // null or undefined shows DASH).
  function meta(dl, k, v) {
    dl.appendChild(el("dt", null, k));
    const dd = el("dd");
    if (v instanceof Node) dd.appendChild(v);
    else dd.textContent = v === undefined || v === null || v === "" ? DASH : String(v);
    dl.appendChild(dd);
  }

  // Replace container's content with an empty-state note (title + hint).
  function empty(container, title, hint) {
    const box = el("div", "empty");
    box.appendChild(el("p", "empty-title", title));
    if (hint) box.appendChild(el("p", "empty-hint", hint));
    container.replaceChildren(box);
    return box;
  }

  // A table from column specs [{key, label, num, sort:false}] and rows of
  // cells (each a string/number or a Node). Returns the <table>.
  function table(cols, rows, cls) {
    const t = el("table", cls || "data");
    const tr = el("tr");
    for (const c of cols) {
      const th = el("th", c.num ? "num" : null, c.label);
      th.scope = "col";
      if (c.key) th.dataset.key = c.key;
      if (c.title) th.title = c.title;
      if (c.sort === false) th.dataset.nosort = "1";
      tr.appendChild(th);
    }
    t.appendChild(el("thead")).appendChild(tr);
    const body = t.appendChild(el("tbody"));
    for (const r of rows) body.appendChild(row(r, cols));
    return t;
  }

  // One <tr>; a cell may be {text, sort, cls, node} to carry a sort key.
  function row(cells, cols) {
    const tr = el("tr");
    cells.forEach((c, i) => {
      const num = cols && cols[i] && cols[i].num;
      const td = el("td", num ? "num" : null);
      let v = c;
      if (c && typeof c === "object" && !(c instanceof Node)) {
        if (c.sort !== undefined && c.sort !== null) td.dataset.sort = String(c.sort);
        if (c.cls) td.className = (td.className ? td.className + " " : "") + c.cls;
        v = c.node !== undefined ? c.node : c.text;
      }
      if (v instanceof Node) td.appendChild(v);
      else td.textContent = v === undefined || v === null || v === "" ? DASH : String(v);
      tr.appendChild(td);
    });
    return tr;
  }

  function cmpValues(a, b) {
    const na = parseFloat(a), nb = parseFloat(b);
    const an = a !== "" && isFinite(na) && String(na) === String(a).trim();
    const bn = b !== "" && isFinite(nb) && String(nb) === String(b).trim();
    if (an && bn) return na - nb;
    if (an !== bn) return an ? -1 : 1; // numbers before text (dashes last)
    return String(a).localeCompare(String(b));
  }

  // Make a table's header cells sort its body: click, or Enter/Space on a
  // focused <th>. Cells sort by data-sort, else their text. opts.onSort(key,
  // dir) is told after each sort (to keep it in the query string);
  // opts.initial = {key, dir} sorts at once. Returns sort(key, dir).
  function sortable(t, opts) {
    opts = opts || {};
    const ths = Array.from(t.tHead.rows[0].cells);
    const sortBy = (idx, dir) => {
      const body = t.tBodies[0];
      const rows = Array.from(body.rows);
      const key = (r) => {
        const c = r.cells[idx];
        if (!c) return "";
        return c.dataset.sort !== undefined ? c.dataset.sort : c.textContent.trim();
      };
      rows.sort((a, b) => {
        const ka = key(a), kb = key(b);
        const missA = ka === "" || ka === DASH, missB = kb === "" || kb === DASH;
        if (missA !== missB) return missA ? 1 : -1; // missing values always last
        return dir === "asc" ? cmpValues(ka, kb) : cmpValues(kb, ka);
      });
      body.replaceChildren(...rows);
      ths.forEach((th, i) => {
        if (th.dataset.nosort) return;
        th.setAttribute("aria-sort", i === idx ? (dir === "asc" ? "ascending" : "descending") : "none");
      });
    };
    ths.forEach((th, idx) => {
      if (th.dataset.nosort) return;
      th.tabIndex = 0;
      th.classList.add("sortable");
      th.setAttribute("aria-sort", "none");
      const go = () => {
        const cur = th.getAttribute("aria-sort");
        const dir = cur === "descending" ? "asc" : cur === "ascending" ? "desc" : th.classList.contains("num") ? "desc" : "asc";
        sortBy(idx, dir);
        if (opts.onSort) opts.onSort(th.dataset.key || String(idx), dir);
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          go();
        }
      });
    });
    const sort = (key, dir) => {
      const idx = ths.findIndex((th, i) => (th.dataset.key || String(i)) === String(key));
      if (idx >= 0) sortBy(idx, dir === "asc" ? "asc" : "desc");
    };
    if (opts.initial && opts.initial.key) sort(opts.initial.key, opts.initial.dir);
    return sort;
  }

  function hexRgb(hex) {
    const h = hex.replace("#", "");
    return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
  }

  function rgbHex(rgb) {
    return "#" + rgb.map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
  }

  // The i-th line colour (Okabe-Ito, cycling).
  const color = (i) => PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];

  // "#rrggbb" with alpha a -> "rgba(...)" (interval bands).
  function alpha(hex, a) {
    const [r, g, b] = hexRgb(hex);
    return "rgba(" + r + "," + g + "," + b + "," + a + ")";
  }

  // Sequential colour for t in [0, 1] (viridis; outside clamps).
  function seqColor(t) {
    if (!isNum(t)) return null;
    const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const f = x - i;
    const a = hexRgb(VIRIDIS[i]), b = hexRgb(VIRIDIS[i + 1]);
    return rgbHex(a.map((v, k) => v + (b[k] - v) * f));
  }

  // Black or white, whichever reads better on a background colour.
  function textOn(hex) {
    const [r, g, b] = hexRgb(hex);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 140 ? "#000000" : "#ffffff";
  }

  // A horizontal legend for seqColor over [min, max]: gradient bar + ticks.
  function legend(min, max, label, format) {
    const f = format || ((v) => fmt.num(v, 2));
    const box = el("div", "legend");
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", (label ? label + ": " : "") + "colour scale from " + f(min) +
      " (dark purple) to " + f(max) + " (yellow)");
    if (label) box.appendChild(el("span", "legend-label", label));
    const bar = el("span", "legend-bar");
    bar.style.background = "linear-gradient(to right, " +
      VIRIDIS.map((c, i) => c + " " + ((100 * i) / (VIRIDIS.length - 1)).toFixed(1) + "%").join(", ") + ")";
    const ticks = el("span", "legend-ticks");
    for (let i = 0; i <= 4; i++) ticks.appendChild(el("span", null, f(min + ((max - min) * i) / 4)));
    const scale = el("span", "legend-scale");
    scale.appendChild(bar);
    scale.appendChild(ticks);
    box.appendChild(scale);
    return box;
  }

  function debounce(fn, ms) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), ms === undefined ? 200 : ms);
    };
  }

  // A labelled <select> from [value, text] pairs (or plain strings).
  function select(id, label, options, value) {
    const wrap = el("label", "field");
    wrap.htmlFor = id;
    wrap.appendChild(el("span", null, label));
    const s = el("select");
    s.id = id;
    for (const o of options) {
      const [v, t] = Array.isArray(o) ? o : [o, o];
      const opt = el("option", null, t);
      opt.value = String(v);
      s.appendChild(opt);
    }
    if (value !== undefined && value !== null) s.value = String(value);
    wrap.appendChild(s);
    return wrap;
  }

  // Group an array into a Map by key(x), keeping first-seen order.
  function groupBy(list, key) {
    const m = new Map();
    for (const x of list) {
      const k = key(x);
      if (!m.has(k)) m.set(k, []);
      m.get(k).push(x);
    }
    return m;
  }

  window.pb = {
    api, ApiError, isStatic, staticPath, el, href, link, fmt, query, setQuery, onNavigate,
    nav, banner, error, empty, meta, table, row, sortable, palette: PALETTE, color, alpha,
    seqColor, textOn, legend, debounce, select, groupBy, isNum, DASH,
    chartReady: () => typeof window.Chart === "function",
  };
})();
