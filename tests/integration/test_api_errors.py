"""Bad requests: malformed JSON, unknown suite/task/field, bad parameters,
oversized bodies and headers. Each gets a 4xx JSON error naming the problem
(and the field where there is one); the service stays healthy."""

import json
import select
import socket
import time

import pytest

from pbutil import spec, t


def _spec_with(**changes):
    s = spec(name="bad")
    run = s["runs"][0]
    for k, v in changes.items():
        if k.startswith("run_"):
            run[k[4:]] = v
        elif k.startswith("param_"):
            run["params"][k[6:]] = v
        else:
            s[k] = v
    return s


# (label, body, field or None, words the message must contain)
CASES = [
    ("malformed JSON", '{"name": "x", "runs": [', None, ["json"]),
    ("trailing garbage", '{"name": "x"} xyz', None, ["json"]),
    ("not an object", "[1, 2, 3]", None, ["object"]),
    ("empty body", "", None, []),
    ("NUL byte", "{\"name\": \"a\x00b\"}", None, []),
    ("duplicate key", '{"name": "a", "name": "b"}', None, []),
    ("unknown suite", _spec_with(run_suite="nosuchsuite"), "runs[0].suite", ["nosuchsuite"]),
    ("unknown task", _spec_with(run_task="divide"), "runs[0].task", ["divide"]),
    ("digits start at 0", _spec_with(param_digits=[0, 5]), "runs[0].params.digits", ["digits"]),
    ("digits reversed", _spec_with(param_digits=[8, 2]), "runs[0].params.digits", ["digits"]),
    ("digits not a pair", _spec_with(param_digits="many"), "runs[0].params.digits", ["digits"]),
    ("format xyz", _spec_with(param_format="xyz"), "runs[0].params.format", ["format"]),
    ("unknown param", _spec_with(param_colour="red"), "runs[0].params.colour", ["colour"]),
    ("unknown top-level field", _spec_with(colour="blue"), "colour", ["colour"]),
    ("unknown run field", _spec_with(run_colour="blue"), "runs[0].colour", ["colour"]),
    ("samples 0", _spec_with(run_samples=0), "runs[0].samples", ["samples"]),
    ("samples a string", _spec_with(run_samples="ten"), "runs[0].samples", ["samples"]),
    ("no runs", _spec_with(runs=[]), "runs", ["runs"]),
    ("no model", {k: v for k, v in spec().items() if k != "model"}, "model", ["model"]),
    ("unknown backend", _spec_with(model={"name": "m", "backend": "telepathy"}),
     "model.backend", ["telepathy"]),
    ("negative seed", _spec_with(seed=-1), "seed", ["seed"]),
    ("priority out of range", _spec_with(priority=10 ** 6), "priority", ["priority"]),
    ("too many tasks", _spec_with(run_samples=1000000, shard_size=1), "runs", ["tasks"]),
    ("bad requires.device", _spec_with(requires={"device": "tpu"}), "requires.device", ["device"]),
]


@pytest.mark.parametrize("label,body,field,words", CASES, ids=[c[0] for c in CASES])
def test_bad_job_spec_is_refused(shared_cluster, label, body, field, words):
    api = shared_cluster.api
    data = body if isinstance(body, str) else json.dumps(body)
    r = api.post("/api/v1/jobs", data.encode(), headers={"Content-Type": "application/json"})
    assert r.status == 400, f"{label}: {r!r}"
    err = r.json()
    assert isinstance(err.get("error"), str) and err["error"], err
    if field is not None:
        assert err.get("field") == field, f"{label}: {err}"
    for w in words:
        assert w.lower() in err["error"].lower(), f"{label}: message does not name {w!r}: {err}"


def test_wrong_methods_and_paths(shared_cluster):
    api = shared_cluster.api
    r = api.request("DELETE", "/api/v1/jobs")
    assert r.status == 405 and "error" in r.json()
    assert "allow" in r.headers
    r = api.request("PUT", "/api/v1/jobs/1/cancel")
    assert r.status == 405
    r = api.get("/api/v1/nosuch")
    assert r.status == 404 and r.json()["error"]
    r = api.get("/api/v2/jobs")
    assert r.status == 404
    r = api.get("/api/v1/jobs?limit=0")
    assert r.status == 400 and r.json().get("field") == "limit"
    r = api.get("/api/v1/jobs?limit=abc")
    assert r.status == 400 and r.json().get("field") == "limit"
    r = api.post("/api/v1/jobs/999999/cancel")
    assert r.status == 404


def _raw(port, data, read_timeout=None):
    """Send raw bytes, return (status, whole response) - tolerating a close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout or t(10))
    try:
        s.sendall(data)
        return _read_response(s)
    finally:
        s.close()


def _read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        rest += chunk
    return status, head, rest


def _send_big_body(port, total, chunked=False):
    """Stream a body of total bytes; stop as soon as a response arrives."""
    s = socket.create_connection(("127.0.0.1", port), timeout=t(20))
    try:
        if chunked:
            s.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        else:
            s.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: %d\r\n\r\n" % total)
        piece = b'{"name": "' + b"x" * (256 * 1024)
        sent = 0
        deadline = time.monotonic() + t(30)
        while sent < total and time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break  # the server answered before the end of the body
            n = min(len(piece), total - sent)
            data = piece[:n]
            try:
                if chunked:
                    s.sendall(b"%x\r\n" % n + data + b"\r\n")
                else:
                    s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += n
        return _read_response(s)
    finally:
        s.close()


def test_oversized_body_is_413(shared_cluster):
    port = shared_cluster.http_port
    status, head, body = _send_big_body(port, (8 << 20) + 4096)
    assert status == 413, (status, head)
    assert "error" in json.loads(body)
    status, head, body = _send_big_body(port, (8 << 20) + 4096, chunked=True)
    assert status == 413, (status, head)
    # A declared length over the cap is refused before any body is sent.
    status, head, _ = _raw(port, b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 99999999999\r\n\r\n")
    assert status == 413, (status, head)
    assert shared_cluster.api.get("/healthz").status == 200


def test_huge_headers_are_431(shared_cluster):
    port = shared_cluster.http_port
    status, head, _ = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                           b"a" * (20 << 10) + b"\r\n\r\n")
    assert status == 431, (status, head)
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(300))
    status, head, _ = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status == 431, (status, head)
    status, head, _ = _raw(port, b"GET /" + b"a" * (20 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status in (414, 431, 400), (status, head)


def test_garbage_requests_do_not_hurt(shared_cluster):
    port = shared_cluster.http_port
    for data in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"HELLO WORLD\r\n\r\n",
                 b"POST /api/v1/jobs HTTP/1.1\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n",
                 b"POST /api/v1/jobs HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                 b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"):
        status, head, _ = _raw(port, data)
        assert status is None or 400 <= status < 500, (data, status, head)
    # A client that connects and says nothing, or half a request, then leaves.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    s.close()
    socket.create_connection(("127.0.0.1", port)).close()


def test_service_healthy_after_abuse(shared_cluster):
    api = shared_cluster.api
    shared_cluster.check_alive()
    h = api.get_json("/healthz")
    assert h["status"] == "ok"
    job_id = api.submit(spec(name="after-abuse", digits=(1, 3), samples=5))
    job = api.wait_job(job_id, t(60))
    assert job["items_done"] == 15
    # Keep-alive: several requests on one connection.
    s = socket.create_connection(("127.0.0.1", shared_cluster.http_port), timeout=t(10))
    try:
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = _read_response(s)
            assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        s.close()
