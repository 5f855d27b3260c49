#!/usr/bin/python3
"""Dashboard load on loopback with a full store (issue 5: "under one second
with 1,000 jobs and 100,000 items; the API responses the dashboard uses are
indexed queries, not full scans"). Starts a coordinator on a temp DB and
workers (oracle backend), runs --jobs jobs of --items items each (several
models, two tasks, a few schedules), then times every endpoint the pages
read, the leaderboard page's requests end to end, and (--browser) real page
loads in headless Chromium; finally runs EXPLAIN QUERY PLAN (sqlite3 CLI) on
every read statement of db/store_sql.h and flags full scans. Prints figures;
exits 1 only when a dashboard statement scans a big table.
Usage: dashboard_load.py [--builddir DIR] [--jobs N] [--items N] [--browser]"""

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

# Statements behind each endpoint the dashboard reads (db/store*.c).
ENDPOINT_STMTS = {
    "leaderboard": ["LB_RUNS", "RUN_BUCKETS", "RUN_RESERVED"],
    "jobs list": ["JOB_LIST_ALL", "JOB_LIST_STATE", "JOB_LIST_SCHED"],
    "job": ["JOB_GET", "JOB_RUNS", "JOB_BUCKETS", "JOB_FAILED_TASKS"],
    "results": ["JOB_RUNS", "JOB_BUCKETS", "JOB_BREAKDOWNS", "RUN_RESERVED"],
    "items": ["ITEMS_SPAN", "ITEMS_PAGE", "ITEM_SOURCE"],
    "workers": ["WORKERS_LIST", "WORKERS_LEASES"],
    "schedules": ["SCHED_LIST", "SCHED_GET"],
}
# Tables whose size is bounded by configuration, not by jobs or items: a
# scan of these is fine (a handful of workers, schedules, the stats row).
SMALL_TABLES = {"workers", "schedules", "stats", "models"}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.environ.get("PB_BUILDDIR", os.getcwd()))
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--items", type=int, default=100, help="items per job (default 100)")
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=20, help="requests per endpoint")
    ap.add_argument("--browser", action="store_true",
                    help="also time page loads in headless Chromium (selenium)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (DB) afterwards")
    return ap.parse_args()


def job_spec(i, models, per_job):
    """per_job items as 4 buckets (digits 1..4) of one add or mul run."""
    task = "add" if i % 2 == 0 else "mul"
    per_bucket = max(1, per_job // 4)
    return {"name": f"load-{i}", "model": {"name": f"model-{i % models:02d}", "backend": "oracle"},
            "runs": [{"suite": "arithmetic", "task": task,
                      "params": {"digits": [1, 4], "format": "plain"},
                      "samples": per_bucket}],
            "seed": i, "shard_size": per_bucket, "max_attempts": 3, "timeout_s": 600}


def timed_get(conn, path):
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return time.perf_counter() - t0, r.status, len(body)


def time_endpoints(port, paths, repeat):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rows = []
    for label, path in paths:
        ts, status, size = [], None, 0
        for _ in range(repeat):
            dt, status, size = timed_get(conn, path)
            ts.append(dt * 1000)
        rows.append((label, path, status, size, statistics.median(ts), max(ts)))
    conn.close()
    return rows


def page_requests(port, page, api_paths, repeat):
    """A cold page load's requests one after another on one connection (the
    browser overlaps them, so this is an upper bound); median of repeat."""
    files = [f"/{page}", "/style.css", "/static.js", "/common.js", "/" + page.replace(".html", ".js")]
    if page == "model.html":
        files.append("/vendor/chart.js")
    totals = []
    for _ in range(repeat):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t0 = time.perf_counter()
        for p in files + api_paths:
            conn.request("GET", p)
            conn.getresponse().read()
        totals.append((time.perf_counter() - t0) * 1000)
        conn.close()
    return statistics.median(totals), max(totals)


def store_statements():
    """{NAME: sql} from db/store_sql.h, string macros expanded."""
    text = open(os.path.join(SRC, "db", "store_sql.h")).read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S).replace("\\\n", " ")
    macros = {}
    tok = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)')

    def expand(s):
        out = []
        for m in tok.finditer(s):
            out.append(m.group(1) if m.group(1) is not None else macros.get(m.group(2), ""))
        return "".join(out)

    for m in re.finditer(r"#define\s+(PDB_\w+)\s+(\"[^\n]*)", text):
        macros[m.group(1)] = expand(m.group(2))
    stmts = {}
    for m in re.finditer(r"X\((\w+),\s*((?:\"(?:[^\"\\]|\\.)*\"|\s|PDB_\w+)+)\)", text):
        stmts[m.group(1)] = expand(m.group(2))
    return stmts


def query_plans(db, stmts):
    """[(name, plan lines, full scans of big tables)] for every read statement."""
    out = []
    for name, sql in stmts.items():
        if not re.match(r"\s*(SELECT|WITH)\b", sql, re.I):
            continue
        p = subprocess.run(["sqlite3", "-readonly", db, "EXPLAIN QUERY PLAN " + sql],
                           capture_output=True, text=True, timeout=60)
        lines = [ln.strip(" |`-") for ln in p.stdout.splitlines() if ln.strip() and ln != "QUERY PLAN"]
        if p.returncode != 0:
            lines = ["error: " + p.stderr.strip()]
        scans = []
        for ln in lines:
            m = re.match(r"SCAN (\w+)(?: AS \w+)?(.*)", ln)
            if not m:
                continue
            table, rest = m.group(1), m.group(2)
            if "USING" in rest and "INDEX" in rest:
                continue  # an index walked in order (ORDER BY ... LIMIT), bounded by LIMIT
            alias = re.search(r"\bFROM\s+(\w+)\s+" + re.escape(table) + r"\b", sql)
            real = alias.group(1) if alias else table
            join = re.search(r"\bJOIN\s+(\w+)\s+" + re.escape(table) + r"\b", sql)
            real = join.group(1) if join else real
            if real.lower() not in SMALL_TABLES:
                scans.append(f"{real} ({ln})")
        out.append((name, lines, scans))
    return out


def browser_loads(base, job_id, repeat=3):
    try:
        sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        return [("browser", f"skipped: {e}", None)]
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900"):
        opts.add_argument(a)
    if os.access("/usr/bin/chromium", os.X_OK):
        opts.binary_location = "/usr/bin/chromium"
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                           options=opts)
    # Ready when the page drew its main content (a table row, chart or item).
    pages = [("leaderboard.html", "document.querySelectorAll('table tbody tr').length > 0"),
             ("model.html?model=model-00&compare=model-01,model-02",
              "window.Chart && Object.keys(window.Chart.instances).length > 0"),
             (f"jobs.html", "document.querySelectorAll('table tbody tr').length > 0"),
             (f"items.html?job={job_id}", "document.querySelector('#items article')")]
    out = []
    try:
        for page, ready in pages:
            if not os.path.exists(os.path.join(SRC, "web", page.split("?")[0])):
                out.append((page, "no such page", None))
                continue
            ts = []
            for _ in range(repeat):
                drv.get("about:blank")
                t0 = time.perf_counter()
                drv.get(f"{base}/{page}")
                deadline = time.monotonic() + 10
                ok = True
                while not drv.execute_script(f"try {{ return !!({ready}); }} catch (e) {{ return false; }}"):
                    if time.monotonic() > deadline:
                        ok = False
                        break
                    time.sleep(0.005)
                ts.append((time.perf_counter() - t0) * 1000)
            out.append((page, "ok" if ok else "NOT DRAWN", statistics.median(ts)))
    finally:
        drv.quit()
    return out


def main():
    args = parse_args()
    sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
    os.environ["PB_BUILDDIR"] = os.path.abspath(args.builddir)
    import pbutil

    tmp = tempfile.mkdtemp(prefix="pb-dashload-")
    c = pbutil.Cluster(tmp)
    bad = False
    try:
        c.start(workers=args.workers, slots=args.slots)
        api = c.api
        t0 = time.perf_counter()
        ids = [api.submit(job_spec(i, args.models, args.items)) for i in range(args.jobs)]
        t_submit = time.perf_counter() - t0
        last = ids[-1]
        pbutil.wait_for(lambda: all(api.job(i)["state"] == "done" for i in (ids[0], last)),
                        3600, 0.5, "the jobs to finish")
        pbutil.wait_for(lambda: api.get_json("/api/v1/jobs?state=running&limit=1")["jobs"] == []
                        and api.get_json("/api/v1/jobs?state=queued&limit=1")["jobs"] == [],
                        3600, 0.5, "every job to finish")
        t_fill = time.perf_counter() - t0
        for k in range(5):
            api.post("/api/v1/schedules", {"name": f"nightly-{k}", "cron": "0 3 * * *",
                                           "enabled": False, "job": job_spec(k, args.models, 8)})
        (n_jobs,), = c.sql("SELECT count(*) FROM jobs")
        (n_items,), = c.sql("SELECT count(*) FROM items")
        print(f"store: {n_jobs} jobs, {n_items} items "
              f"(submit {t_submit:.1f} s, submit+run {t_fill:.1f} s, "
              f"{args.workers}x{args.slots} oracle workers)")

        mid = ids[len(ids) // 2]
        paths = [("leaderboard", "/api/v1/leaderboard"),
                 ("suites", "/api/v1/suites"),
                 ("jobs list", "/api/v1/jobs?limit=50"),
                 ("jobs list (done)", "/api/v1/jobs?state=done&limit=50"),
                 ("job", f"/api/v1/jobs/{mid}"),
                 ("results", f"/api/v1/jobs/{mid}/results"),
                 ("items", f"/api/v1/jobs/{mid}/items?limit=50"),
                 ("items (first job)", f"/api/v1/jobs/{ids[0]}/items?limit=50"),
                 ("workers", "/api/v1/workers"),
                 ("schedules", "/api/v1/schedules"),
                 ("chart.js", "/vendor/chart.js")]
        print(f"\nendpoint timings ({args.repeat} requests each, keep-alive, ms):")
        print(f"  {'endpoint':<20} {'status':>6} {'bytes':>9} {'median':>8} {'max':>8}  path")
        for label, path, status, size, med, mx in time_endpoints(c.http_port, paths, args.repeat):
            print(f"  {label:<20} {status:>6} {size:>9} {med:>8.2f} {mx:>8.2f}  {path}")

        print("\npage loads, every request in sequence (upper bound of a cold load, ms):")
        loads = [("leaderboard.html", ["/api/v1/leaderboard", "/api/v1/suites"]),
                 ("model.html", ["/api/v1/leaderboard", "/api/v1/suites"] +
                  [f"/api/v1/jobs/{i}/results" for i in ids[-args.models:]]),
                 ("jobs.html", ["/api/v1/jobs?limit=50", "/api/v1/workers"]),
                 ("items.html", [f"/api/v1/jobs/{mid}", f"/api/v1/jobs/{mid}/items?limit=50"])]
        for page, api_paths in loads:
            med, mx = page_requests(c.http_port, page, api_paths, 5)
            print(f"  {page:<20} {len(api_paths):>3} API calls  median {med:8.2f}  max {mx:8.2f}"
                  f"  {'OK' if mx < 1000 else 'OVER 1 s'}")

        if args.browser:
            print("\nheadless Chromium, navigation to content drawn (median of 3, ms):")
            for page, state, ms in browser_loads(c.url, mid):
                print(f"  {page:<28} {state:<14} {'' if ms is None else f'{ms:8.1f}'}")

        print("\nEXPLAIN QUERY PLAN of the store's read statements (sqlite3 CLI):")
        plans = query_plans(c.db, store_statements())
        dash = {s for v in ENDPOINT_STMTS.values() for s in v}
        for name, lines, scans in plans:
            mark = "SCAN!" if scans else "ok"
            if scans and name in dash:
                bad = True
            where = ",".join(k for k, v in ENDPOINT_STMTS.items() if name in v) or "-"
            print(f"  {name:<20} {mark:<6} [{where}] " + " / ".join(lines))
        scans = [(n, s) for n, _, s in plans if s and n in dash]
        print("\nfull scans of big tables behind dashboard endpoints: " +
              ("none" if not scans else "; ".join(f"{n}: {', '.join(s)}" for n, s in scans)))
    finally:
        problems = c.close()
        for p in problems:
            print(p, file=sys.stderr)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
