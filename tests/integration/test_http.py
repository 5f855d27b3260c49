"""/metrics names and values, /healthz, /api/v1/suites and /api/v1/workers,
and static files from --web with every traversal attempt refused."""

import socket

import pytest

from pbutil import spec, t

METRIC_NAMES = [
    "posbench_queue_depth",
    'posbench_tasks{state="queued"}',
    'posbench_tasks{state="leased"}',
    'posbench_tasks{state="done"}',
    'posbench_tasks{state="failed"}',
    'posbench_tasks{state="cancelled"}',
    "posbench_workers",
    "posbench_results_total",
    "posbench_items_recorded_total",
    "posbench_results_per_second",
    'posbench_queue_latency_seconds{quantile="0.99"}',
]


def test_metrics_expose_documented_names(shared_cluster):
    api = shared_cluster.api
    job_id = api.submit(spec(name="metrics", digits=(1, 2), samples=10, shard_size=5))
    api.wait_job(job_id, t(60))
    values, text = api.metrics()
    for name in METRIC_NAMES:
        assert name in values, f"{name} missing from /metrics:\n{text}"
    assert values["posbench_workers"] == 2
    assert values["posbench_results_total"] >= 4
    assert values["posbench_items_recorded_total"] >= 20
    assert values['posbench_tasks{state="done"}'] >= 4
    assert values['posbench_queue_latency_seconds{quantile="0.99"}'] >= 0
    assert "# TYPE posbench_queue_depth gauge" in text
    r = api.get("/metrics")
    assert r.headers.get("content-type", "").startswith("text/plain")


def test_healthz_suites_workers(shared_cluster):
    api = shared_cluster.api
    h = api.get_json("/healthz")
    assert h["status"] == "ok" and h["workers"] == 2
    suites = api.get_json("/api/v1/suites")["suites"]
    arith = [s for s in suites if s["name"] == "arithmetic"]
    assert arith, suites
    assert {"add", "mul"} <= {tk["name"] for tk in arith[0]["tasks"]}
    ws = api.get_json("/api/v1/workers")["workers"]
    names = {w["name"]: w for w in ws}
    assert {"w1", "w2"} <= set(names), ws
    for n in ("w1", "w2"):
        caps = names[n]["capabilities"]
        assert "oracle" in caps["backends"] and "random" in caps["backends"], caps
        assert caps["slots"] == 2 and caps["device"] == "cpu", caps
        assert names[n]["state"] in ("idle", "busy"), names[n]


@pytest.fixture
def web_cluster(make_cluster, tmp_path):
    web = tmp_path / "webroot"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<html>posbench-index-marker</html>")
    (web / "app.js").write_text("console.log('posbench-js-marker');")
    (web / "sub" / "page.css").write_text("body{}/*posbench-css-marker*/")
    (tmp_path / "secret.txt").write_text("TOP-SECRET-MARKER")
    (web / "escape").symlink_to(tmp_path / "secret.txt")
    c = make_cluster()
    c.start_coordinator(["--web", str(web)])
    return c


def _raw_get(port, target):
    s = socket.create_connection(("127.0.0.1", port), timeout=t(10))
    try:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except ConnectionResetError:
        pass
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else None
    return status, head, body


def test_static_files_served(web_cluster):
    port = web_cluster.http_port
    status, head, body = _raw_get(port, b"/")
    assert status == 200 and b"posbench-index-marker" in body, head
    assert b"text/html" in head.lower()
    status, head, body = _raw_get(port, b"/app.js")
    assert status == 200 and b"posbench-js-marker" in body
    assert b"javascript" in head.lower()
    status, head, body = _raw_get(port, b"/sub/page.css")
    assert status == 200 and b"posbench-css-marker" in body
    assert b"text/css" in head.lower()
    status, _, _ = _raw_get(port, b"/nosuch.html")
    assert status == 404


TRAVERSALS = [
    b"/../secret.txt",
    b"/../../../../../../etc/passwd",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    b"/%2e%2e%2fsecret.txt",
    b"/..%2fsecret.txt",
    b"/..%5csecret.txt",
    b"/sub/../../secret.txt",
    b"/sub/%2e%2e/%2e%2e/secret.txt",
    b"/./../secret.txt",
    b"//etc/passwd",
    b"/%2fetc%2fpasswd",
    b"/escape",
    b"/index.html%00.txt",
    b"/%252e%252e/secret.txt",
    b"/..;/secret.txt",
    b"http://x/../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=[x.decode() for x in TRAVERSALS])
def test_static_traversal_refused(web_cluster, target):
    status, head, body = _raw_get(web_cluster.http_port, target)
    assert status is not None and 400 <= status < 500, (target, status, head)
    assert b"TOP-SECRET-MARKER" not in body and b"root:" not in body, (target, body[:200])


def test_static_refuses_other_methods(web_cluster):
    api = web_cluster.api
    r = api.post("/index.html", b"x")
    assert r.status == 405
    r = api.request("HEAD", "/index.html")
    assert r.status == 200 and r.body == b""


def test_static_content_types(web_cluster, tmp_path):
    """Every kind of file the dashboard ships is served with its type and
    revalidated (no stale page after an upgrade); HEAD has the headers only."""
    web = tmp_path / "webroot"
    files = {
        "leaderboard.html": (b"<html>lb</html>", "text/html"),
        "model.html": (b"<html>model</html>", "text/html"),
        "heatmap.html": (b"<html>hm</html>", "text/html"),
        "jobs.html": (b"<html>jobs</html>", "text/html"),
        "items.html": (b"<html>items</html>", "text/html"),
        "schedules.html": (b"<html>sched</html>", "text/html"),
        "common.js": (b"var pb = {};", "text/javascript"),
        "sub/theme.css": (b"body{}", "text/css"),
        "logo.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        "icon.png": (b"\x89PNG\r\n\x1a\nfake", "image/png"),
        "data.json": (b'{"a": 1}', "application/json"),
    }
    for name, (data, _) in files.items():
        (web / name).write_bytes(data)
    api = web_cluster.api
    for name, (data, ctype) in files.items():
        r = api.get("/" + name)
        assert r.status == 200 and r.body == data, (name, r)
        assert r.headers["content-type"].startswith(ctype), (name, r.headers)
        assert r.headers.get("cache-control") == "no-cache", (name, r.headers)
        h = api.request("HEAD", "/" + name)
        assert h.status == 200 and h.body == b"", (name, h)
        assert int(h.headers["content-length"]) == len(data), (name, h.headers)
    r = api.get("/sub/")  # a folder without index.html
    assert r.status == 404 and "error" in r.json()


def test_vendor_chartjs(shared_cluster):
    """Debian's Chart.js, from the path configure found, at /vendor/chart.js."""
    r = shared_cluster.api.get("/vendor/chart.js")
    if r.status == 404:
        pytest.skip(f"Chart.js not installed (libjs-chart.js): {r.json()['error']}")
    assert r.status == 200, r
    assert "javascript" in r.headers["content-type"], r.headers
    assert len(r.body) > 10000 and b"Chart" in r.body
    h = shared_cluster.api.request("HEAD", "/vendor/chart.js")
    assert h.status == 200 and h.body == b""
    assert int(h.headers["content-length"]) == len(r.body)


def test_vendor_chartjs_missing_is_json_404(make_cluster, tmp_path):
    c = make_cluster()
    c.start_coordinator(["--chartjs", str(tmp_path / "nope" / "chart.min.js")])
    r = c.api.get("/vendor/chart.js")
    assert r.status == 404, r
    assert "Chart.js" in r.json()["error"] and "libjs-chart.js" in r.json()["error"]
    assert "Chart.js not found" in c.coord.read()


def test_vendor_chartjs_flag(make_cluster, tmp_path):
    f = tmp_path / "mychart.js"
    f.write_text("/* Chart test copy */ window.Chart = function () {};")
    c = make_cluster()
    c.start_coordinator(["--chartjs", str(f)])
    r = c.api.get("/vendor/chart.js")
    assert r.status == 200 and r.body == f.read_bytes(), r
    assert r.headers["content-type"].startswith("text/javascript")


def test_static_js_live_stub(web_cluster, tmp_path):
    """Pages load static.js (set only in exported snapshots): live, the
    coordinator answers a script saying so; a real file in --web wins."""
    r = web_cluster.api.get("/static.js")
    assert r.status == 200 and b"PB_STATIC = false" in r.body, r
    assert r.headers["content-type"].startswith("text/javascript")
    (tmp_path / "webroot" / "static.js").write_text("window.PB_STATIC = true;")
    r = web_cluster.api.get("/static.js")
    assert r.status == 200 and r.body == b"window.PB_STATIC = true;", r
