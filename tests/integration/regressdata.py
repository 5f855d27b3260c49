"""Real regressions for the dashboard and CLI tests, made the way production
makes them: a schedule on a 1 s interval runs the oracle backend cleanly a
few times, then its template is patched so the oracle answers half the items
wrong ("error_rate": 0.5) and the coordinator's detectors raise a regression
on the next run; a local receiver takes the schedule's webhook posts.
`make_regression(cluster)` returns what the tests look at; the `cluster` and
`data` fixtures (import them into a test module) give each module its own."""

import copy
import http.server
import json
import threading

import pytest

from pbutil import running_cluster, spec, t, wait_for

GOOD_RUNS = 3  # clean runs before the bad one: the history the detectors compare with
FINAL = ("done", "failed", "cancelled")


class Receiver:
    """A webhook endpoint on 127.0.0.1 that answers 200 and keeps each body."""

    def __init__(self):
        self.bodies = []
        self.headers = []  # each POST's headers, in the order of bodies
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                outer.headers.append(dict(self.headers))
                try:
                    outer.bodies.append(json.loads(raw))
                except ValueError:
                    outer.bodies.append(raw)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Data:
    """What make_regression made: the schedule, its jobs, the regressions
    detected on it, their series and the webhook receiver."""

    def __init__(self, sid, name, good_jobs, bad_jobs, regressions, receiver):
        self.sid, self.name = sid, name
        self.good_jobs, self.bad_jobs = good_jobs, bad_jobs
        self.regressions = regressions
        self.receiver = receiver
        self.first = regressions[0]
        self.series_id = self.first["series_id"]


def schedule_jobs(api, sid):
    return api.get_json(f"/api/v1/jobs?schedule={sid}&limit=1000")["jobs"]


def is_bad(job):
    """A job fired with the patched template (its model has the error rate)."""
    return ((job.get("model") or {}).get("error_rate") or 0) > 0


def make_regression(cluster, name="nightly-regress"):
    api = cluster.api
    hook = Receiver()
    # One bucket (2-digit sums): one accuracy series per metric, not one per length.
    good = spec(name=name, backend="oracle", digits=(2, 2), samples=40, shard_size=40)
    r = api.post("/api/v1/schedules", {"name": name, "cron": "@every 1s", "job": good})
    assert r.status == 201, r
    sid = r.json()["id"]
    r = api.request("PATCH", f"/api/v1/schedules/{sid}", {"webhook": hook.url})
    assert r.status == 200, r
    assert r.json()["webhook"] == hook.url, r.json()

    def done(jobs):
        return [j for j in jobs if j["state"] == "done"]

    wait_for(lambda: len(done(schedule_jobs(api, sid))) >= GOOD_RUNS, t(30), 0.2,
             f"{GOOD_RUNS} clean runs of the schedule")
    bad = copy.deepcopy(good)
    bad["model"]["error_rate"] = 0.5
    r = api.request("PATCH", f"/api/v1/schedules/{sid}", {"job": bad})
    assert r.status == 200, r
    # Stop after the first firing with the bad template: fewer runs, fewer records.
    wait_for(lambda: any(is_bad(j) for j in schedule_jobs(api, sid)), t(15), 0.05,
             "a firing with the patched template")
    assert api.post(f"/api/v1/schedules/{sid}/disable").status == 200
    wait_for(lambda: all(j["state"] in FINAL for j in schedule_jobs(api, sid)), t(30), 0.2,
             "the schedule's jobs to finish")
    jobs = schedule_jobs(api, sid)
    assert all(j["state"] == "done" for j in jobs), jobs
    good_jobs = sorted(j["id"] for j in jobs if not is_bad(j))
    bad_jobs = sorted(j["id"] for j in jobs if is_bad(j))
    assert len(good_jobs) >= GOOD_RUNS and max(good_jobs) < min(bad_jobs), (good_jobs, bad_jobs)
    regs = wait_for(lambda: api.get_json(f"/api/v1/regressions?schedule={sid}")["regressions"],
                    t(30), 0.2, "a regression on the schedule")
    # The first bad run is where the change is; later bad runs may add more.
    regs.sort(key=lambda x: (x["job_after"], x["id"]))
    assert regs[0]["job_after"] == bad_jobs[0], (regs, bad_jobs)
    return Data(sid, name, good_jobs, bad_jobs, regs, hook)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory.mktemp("regress"),
                               lambda c: c.start(workers=1, slots=2))


@pytest.fixture(scope="module")
def data(cluster):
    d = make_regression(cluster)
    yield d
    d.receiver.close()
