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
