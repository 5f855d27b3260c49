"""Helpers for the posbench integration tests: start real coordinator and
worker processes on loopback (ephemeral ports, a temp dir each), talk to the
HTTP API, wait with deadlines, read the SQLite store, and always clean up.
Binaries come from $PB_BUILDDIR (default: the current directory)."""

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

BUILDDIR = os.path.abspath(os.environ.get("PB_BUILDDIR", os.getcwd()))

# Lines in a process log that mean a sanitizer found a bug.
SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
)


def binary(name):
    path = os.path.join(BUILDDIR, name)
    if not os.access(path, os.X_OK):
        raise AssertionError(
            f"{path} not found or not executable: build it first, or set PB_BUILDDIR"
        )
    return path


def _sanitized():
    """True when the coordinator was built with ASan: waits get longer."""
    try:
        with open(os.path.join(BUILDDIR, "posbench-coordinator"), "rb") as f:
            data = f.read()
        return b"__asan_init" in data or b"AddressSanitizer" in data
    except OSError:
        return False


SCALE = float(os.environ.get("PB_TEST_TIMEOUT_SCALE", "0") or 0) or (3.0 if _sanitized() else 1.0)


def t(seconds):
    """A timeout scaled for slow (sanitizer) builds."""
    return seconds * SCALE


def free_port():
    """A loopback TCP port that was free a moment ago (bind to 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout, interval=0.05, what="condition"):
    """Call fn until it returns a truthy value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, http.client.HTTPException) as e:  # service restarting
            last_exc = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}{extra}")
        time.sleep(interval)


def spec(name="t", backend="oracle", digits=(1, 8), samples=40, fmt="reversed", seed=1234,
         shard_size=16, model_extra=None, model_name=None, **top):
    """A job spec for one arithmetic add run."""
    model = {"name": model_name or backend, "backend": backend}
    if model_extra:
        model.update(model_extra)
    s = {
        "name": name,
        "model": model,
        "runs": [{"suite": "arithmetic", "task": "add",
                  "params": {"digits": list(digits), "format": fmt}, "samples": samples}],
        "seed": seed,
        "shard_size": shard_size,
        "max_attempts": 3,
        "timeout_s": 600,
        "priority": 0,
    }
    s.update(top)
    return s


def wilson(successes, n, z=1.959963984540054):
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / den
    return max(0.0, centre - half), min(1.0, centre + half)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"HTTP {self.status}: body is not JSON: {self.body[:300]!r}") from e

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


class Api:
    """A tiny JSON client of one coordinator (a fresh connection per call)."""

    def __init__(self, host, port, timeout=None):
        self.host, self.port = host, port
        self.timeout = timeout or t(15)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            hdrs = dict(headers or {})
            data = body
            if body is not None and not isinstance(body, (bytes, str)):
                data = json.dumps(body)
                hdrs.setdefault("Content-Type", "application/json")
            if isinstance(data, str):
                data = data.encode()
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read())
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None, headers=None):
        return self.request("POST", path, body=body, headers=headers)

    def get_json(self, path, status=200):
        r = self.get(path)
        assert r.status == status, f"GET {path}: {r!r}"
        return r.json()

    def submit(self, job_spec, key=None):
        hdrs = {"Idempotency-Key": key} if key else None
        r = self.post("/api/v1/jobs", job_spec, headers=hdrs)
        assert r.status in (200, 201), f"submit: {r!r}"
        body = r.json()
        assert isinstance(body.get("id"), int) and body["id"] > 0, body
        return body["id"]

    def job(self, job_id):
        return self.get_json(f"/api/v1/jobs/{job_id}")

    def wait_job(self, job_id, timeout, states=("done",)):
        """Wait until the job reaches a final state; assert it is one of states."""
        final = ("done", "failed", "cancelled")
        seen = {}

        def check():
            seen["job"] = self.job(job_id)
            return seen["job"]["state"] in final

        try:
            wait_for(check, timeout, 0.1, f"job {job_id} to finish")
        except AssertionError as e:
            j = seen.get("job", {})
            raise AssertionError(f"{e}; last state {j.get('state')} items "
                                 f"{j.get('items_done')}/{j.get('items_total')} tasks {j.get('tasks')}")
        job = seen["job"]
        assert job["state"] in states, f"job {job_id} ended {job['state']}: {job}"
        return job

    def all_items(self, job_id, page=1000, query=""):
        """Every item of a job by following the items cursor."""
        out, after, pages = [], None, 0
        while True:
            path = f"/api/v1/jobs/{job_id}/items?limit={page}{query}"
            if after:
                path += f"&after={after}"
            r = self.get_json(path)
            out.extend(r["items"])
            pages += 1
            assert pages < 100000, "items cursor does not advance"
            after = r.get("next")
            if not after:
                return out, r

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        values = {}
        for line in r.text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?)\s+(\S+)$", line)
            assert m, f"bad metrics line: {line!r}"
            values[m.group(1)] = float(m.group(3))
        return values, r.text


class Proc:
    """One child process with its stdout/stderr in files under the test dir."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.argv = argv
        self.out_path = os.path.join(logdir, f"{name}.out")
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.expected_exit = False
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            e.update(env)
        with open(self.out_path, "ab") as out, open(self.log_path, "ab") as err:
            self.p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                      env=e)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def kill9(self):
        self.expected_exit = True
        if self.alive():
            self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=t(10))

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        self.expected_exit = True
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout or t(10))
            except subprocess.TimeoutExpired:
                self.p.send_signal(signal.SIGKILL)
                self.p.wait(timeout=t(10))
        return self.p.returncode

    def read(self, which="log"):
        path = self.log_path if which == "log" else self.out_path
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n=40):
        return "\n".join(self.read().splitlines()[-n:])

    def sanitizer_report(self):
        text = self.read()
        for pat in SANITIZER_PATTERNS:
            i = text.find(pat)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None


class Cluster:
    """A coordinator and workers in one temp dir. Call close() (the fixture
    does) to stop every process and check logs for sanitizer reports."""

    def __init__(self, tmpdir, heartbeat_ms=None):
        self.dir = str(tmpdir)
        self.db = os.path.join(self.dir, "posbench.db")
        self.broker_port = free_port()
        self.broker = f"tcp://127.0.0.1:{self.broker_port}"
        self.heartbeat_ms = heartbeat_ms
        self.http_port = 0
        self.coord = None
        self.workers = {}
        self.procs = []
        self.api = None
        self.starts = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start_coordinator(self, extra=(), env=None):
        """Start (or restart, on the same ports and DB) the coordinator."""
        self.starts += 1
        argv = [binary("posbench-coordinator"), "--listen", f"127.0.0.1:{self.http_port}",
                "--broker", self.broker, "--db", self.db]
        if self.heartbeat_ms:
            argv += ["--heartbeat-ms", str(self.heartbeat_ms)]
        argv += list(extra)
        proc = Proc(f"coordinator{self.starts}", argv, self.dir, env)
        self.procs.append(proc)
        self.coord = proc

        def port():
            if not proc.alive():
                raise AssertionError(f"coordinator exited with {proc.p.returncode} at start:\n"
                                     f"{proc.tail()}")
            m = re.search(r"listening on http://[^:/]+:(\d+)/", proc.read("out"))
            return int(m.group(1)) if m else None

        self.http_port = wait_for(port, t(15), 0.02, "the coordinator's listening line")
        self.api = Api("127.0.0.1", self.http_port)
        wait_for(lambda: self.api.get("/healthz").status == 200, t(10), 0.05, "/healthz")
        return proc

    def start_worker(self, name, slots=1, extra=(), env=None):
        argv = [binary("posbench-worker"), "--connect", self.broker, "--slots", str(slots),
                "--name", name]
        if self.heartbeat_ms:
            argv += ["--heartbeat-ms", str(self.heartbeat_ms)]
        argv += list(extra)
        proc = Proc(f"worker-{name}", argv, self.dir, env)
        self.procs.append(proc)
        self.workers[name] = proc
        return proc

    def connected_workers(self):
        return self.api.get_json("/healthz").get("workers", 0)

    def wait_workers(self, n, timeout=None):
        def ok():
            for name, w in self.workers.items():
                if not w.alive() and not w.expected_exit:
                    raise AssertionError(f"worker {name} exited with {w.p.returncode}:\n{w.tail()}")
            return self.connected_workers() >= n
        wait_for(ok, timeout or t(15), 0.05, f"{n} connected worker(s)")

    def start(self, workers=0, slots=1, coord_extra=()):
        self.start_coordinator(coord_extra)
        for i in range(workers):
            self.start_worker(f"w{i + 1}", slots)
        if workers:
            self.wait_workers(workers)
        return self

    def sql(self, query, args=()):
        """Run a read-only query on the store (WAL allows a concurrent reader)."""
        con = sqlite3.connect(self.db, timeout=t(10))
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def check_alive(self):
        """Fail if a process we did not stop has died (a crash)."""
        for p in self.procs:
            if not p.expected_exit and not p.alive():
                raise AssertionError(f"{p.name} died unexpectedly (status {p.p.returncode}):\n"
                                     f"{p.tail()}")

    def close(self):
        problems = []
        for p in self.procs:
            if not p.expected_exit and not p.alive():
                problems.append(f"{p.name} died unexpectedly (status {p.p.returncode}):\n{p.tail()}")
        # Workers first, so the coordinator sees them go; then the coordinator.
        for p in sorted(self.procs, key=lambda p: p.name.startswith("coordinator")):
            p.stop()
        for p in self.procs:
            rep = p.sanitizer_report()
            if rep:
                problems.append(f"sanitizer report in {p.name} ({p.log_path}):\n{rep}")
        return problems


def db_exactly_once(cluster, job_id):
    """Check the store: every item of every task recorded exactly once."""
    (total,), = cluster.sql("SELECT items_total FROM jobs WHERE id=?", (job_id,))
    (count,), = cluster.sql("SELECT count(*) FROM items WHERE job_id=?", (job_id,))
    (distinct,), = cluster.sql(
        "SELECT count(*) FROM (SELECT DISTINCT task_id, idx FROM items WHERE job_id=?)", (job_id,))
    assert count == total, f"items recorded {count}, expected {total}"
    assert distinct == count, f"{count - distinct} duplicate (task_id, idx) rows"
    (samples,), = cluster.sql(
        "SELECT count(*) FROM (SELECT DISTINCT run_idx, bucket, idx FROM items WHERE job_id=?)",
        (job_id,))
    assert samples == count, f"{count - samples} samples recorded under two tasks"
    # Each task's items are exactly its range [item_lo, item_hi).
    bad = cluster.sql(
        "SELECT t.id, t.item_lo, t.item_hi, count(i.idx), min(i.idx), max(i.idx) "
        "FROM tasks t LEFT JOIN items i ON i.job_id=t.job_id AND i.task_id=t.id "
        "WHERE t.job_id=? GROUP BY t.id "
        "HAVING count(i.idx) != t.item_hi - t.item_lo OR min(i.idx) != t.item_lo "
        "OR max(i.idx) != t.item_hi - 1", (job_id,))
    assert not bad, f"tasks whose items do not cover their range exactly: {bad[:10]}"
    states = dict(cluster.sql("SELECT state, count(*) FROM tasks WHERE job_id=? GROUP BY state",
                              (job_id,)))
    assert set(states) == {"done"}, f"task states: {states}"
    return total


def running_cluster(tmpdir, setup, **kw):
    """For module fixtures: `yield from running_cluster(dir, setup)` yields a
    Cluster that setup(c) started (closing it if setup raises), then stops
    it and fails the module's tests on anything close() found (a sanitizer
    report, a process that would not stop)."""
    c = Cluster(tmpdir, **kw)
    try:
        setup(c)
    except BaseException:
        c.close()
        raise
    yield c
    problems = c.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
