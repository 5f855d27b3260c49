"""Nightly regressions end to end (issue 7): a schedule fired every second
over a few runs, one run made worse on purpose (the oracle with an error
rate), yields exactly one regression record and one webhook delivery; a
coordinator restart between runs loses no history; provenance is recorded
with every result; a failing webhook is retried and then marked failed, never
dropped; the change-point pass finds a step stage 1 was told to ignore;
"latest_in" follows the newest checkpoint of a directory."""

import os

import pytest

from pbutil import running_cluster, spec, t, wait_for
from regressdata import Receiver


# Fast retries, and the nightly change-point pass every second.
COORD_ARGS = ["--webhook-backoff", "0.2", "--webhook-attempts", "3", "--scan-cron", "@every 1s"]


def _job(error_rate=None, samples=200):
    extra = {"error_rate": error_rate} if error_rate is not None else None
    return spec(name="nightly-add", digits=(3, 3), samples=samples, shard_size=100,
                model_name="nightly-model", model_extra=extra)


def _schedule_jobs(api, sid):
    return api.get_json(f"/api/v1/jobs?schedule={sid}&limit=1000")["jobs"]


def _run_firings(cluster, sid, n):
    """Enable the schedule until n more of its jobs are done, then disable
    it and wait for every job it fired to finish."""
    api = cluster.api
    before = len(_schedule_jobs(api, sid))
    assert api.post(f"/api/v1/schedules/{sid}/enable").status == 200
    wait_for(lambda: len([j for j in _schedule_jobs(api, sid) if j["state"] == "done"])
             >= before + n, t(60), 0.1, f"{n} more done runs of schedule {sid}")
    assert api.post(f"/api/v1/schedules/{sid}/disable").status == 200
    wait_for(lambda: all(j["state"] in ("done", "failed", "cancelled")
                         for j in _schedule_jobs(api, sid)), t(30), 0.1, "fired jobs to finish")
    return sorted(j["id"] for j in _schedule_jobs(api, sid))


def _ingested(cluster, job_ids):
    wait_for(lambda: all(r[0] == 1 for r in cluster.sql(
        f"SELECT ingested FROM jobs WHERE id IN ({','.join(map(str, job_ids))})")),
        t(20), 0.1, "jobs ingested into series")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory.mktemp("regress"), lambda c: c.start(
        workers=1, coord_extra=COORD_ARGS))


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_one_regression_one_delivery_across_a_restart(cluster, receiver):
    api = cluster.api
    r = api.post("/api/v1/schedules", {"name": "nightly", "cron": "@every 1s", "job": _job(),
                                       "enabled": False, "webhook": receiver.url})
    assert r.status == 201, r
    sid = r.json()["id"]
    assert r.json()["schedule"]["webhook"] == receiver.url

    good = _run_firings(cluster, sid, 3)
    _ingested(cluster, good)
    series = api.get_json(f"/api/v1/series?schedule={sid}&metric=score")["series"]
    assert len(series) == 1, series
    s = series[0]
    assert s["suite"] == "arithmetic" and s["task"] == "add" and s["bucket"] == 3
    assert s["points"] == len(good) and s["last_value"] == 1.0
    assert s["testbed"]["id"] > 0 and "threads" in s["testbed"]["name"]

    # Provenance: the context of every point names versions, commit, seed
    # and the model spec's hash.
    detail = api.get_json(f"/api/v1/series/{s['id']}")
    ctx = detail["points"][-1]["context"]
    for key in ("posbench_version", "git_commit", "seed", "generator_version", "backend",
                "spec_sha256"):
        assert key in ctx, (key, ctx)
    assert ctx["seed"] == 1234 and ctx["backend"] == "oracle"
    tb = api.get_json("/api/v1/testbeds")["testbeds"]
    assert tb and tb[0]["info"]["threads"] >= 1 and tb[0]["info"]["cpu_model"]
    # The job's results say the same, per run.
    (prov,) = api.get_json(f"/api/v1/jobs/{good[-1]}/results")["runs"][0]["provenance"]
    assert prov["context"] == ctx and prov["testbed"]["name"] == s["testbed"]["name"], prov

    # Restart the coordinator between runs: history must survive.
    cluster.coord.stop()
    cluster.start_coordinator(COORD_ARGS)
    cluster.wait_workers(1)
    api = cluster.api
    assert api.get_json(f"/api/v1/series/{s['id']}")["series"]["points"] == len(good)

    # A worse model: 30 % of the items wrong.
    r = api.request("PATCH", f"/api/v1/schedules/{sid}", {"job": _job(error_rate=0.3)})
    assert r.status == 200, r
    worse = _run_firings(cluster, sid, 1)
    new = [j for j in worse if j not in good]
    _ingested(cluster, new)
    regs = wait_for(lambda: api.get_json(f"/api/v1/regressions?schedule={sid}")["regressions"]
                    or None, t(10), 0.1, "a regression")
    assert len(regs) == 1, regs
    g = regs[0]
    assert g["state"] == "detected" and g["series_id"] == s["id"]
    assert g["detector"] in ("two_prop", "fisher") and g["series"]["metric"] == "score"
    assert g["job_before"] == good[-1] and g["job_after"] == min(new)
    assert g["value_before"] == 1.0 and 0.55 < g["value_after"] < 0.85, g
    assert g["p_value"] < 1e-6 and g["ci"][0] > 0.1, g
    assert "spec_sha256" in g["changes"], g["changes"]
    assert api.get_json(f"/api/v1/regressions?schedule={sid}")["unacknowledged"] == 1
    assert "posbench_regressions_unacknowledged 1\n" in api.get("/metrics").text

    # Exactly one delivery, delivered once to the receiver, naming it.
    wait_for(lambda: len(receiver.bodies) >= 1, t(15), 0.1, "the webhook POST")
    dl = wait_for(lambda: [d for d in api.get_json(f"/api/v1/deliveries?schedule={sid}")
                           ["deliveries"] if d["state"] == "delivered"] or None, t(10), 0.1,
                  "a delivered delivery")
    assert len(api.get_json(f"/api/v1/deliveries?schedule={sid}")["deliveries"]) == 1
    assert dl[0]["attempts"] == 1 and dl[0]["last_status"] == 200
    headers, body = receiver.headers[0], receiver.bodies[0]
    assert body["event"] == "regressions" and body["count"] == 1
    assert body["schedule"] == {"id": sid, "name": "nightly"}
    assert body["regressions"][0]["id"] == g["id"] and body["job_id"] == g["job_after"]
    assert headers.get("Content-Type") == "application/json"
    assert headers.get("X-Posbench-Delivery") == str(dl[0]["id"])

    # Staying worse is not a new regression.
    more = _run_firings(cluster, sid, 1)
    _ingested(cluster, more)
    assert len(api.get_json(f"/api/v1/regressions?schedule={sid}")["regressions"]) == 1
    assert len(receiver.bodies) == 1

    # Triage: acknowledge, and a bad state is a 400 naming it.
    r = api.post(f"/api/v1/regressions/{g['id']}", {"state": "acknowledged", "note": "known"})
    assert r.status == 200 and r.json()["state"] == "acknowledged" and r.json()["note"] == "known"
    r = api.post(f"/api/v1/regressions/{g['id']}", {"state": "gone"})
    assert r.status == 400 and r.json()["field"] == "state"
    assert api.get_json(f"/api/v1/regressions?schedule={sid}")["unacknowledged"] == 0
    assert api.get(f"/api/v1/regressions/{g['id'] + 1000}").status == 404


def test_failed_webhook_is_retried_then_recorded(cluster):
    """A receiver that is down: the delivery is tried --webhook-attempts
    times with back-off, then marked failed with the error, not dropped."""
    api = cluster.api
    dead = "http://127.0.0.1:9/unreachable"
    r = api.post("/api/v1/schedules", {"name": "dead-hook", "cron": "@every 1s",
                                       "job": _job(), "enabled": False, "webhook": dead})
    assert r.status == 201, r
    sid = r.json()["id"]
    _run_firings(cluster, sid, 1)
    assert api.request("PATCH", f"/api/v1/schedules/{sid}",
                       {"job": _job(error_rate=0.5)}).status == 200
    _run_firings(cluster, sid, 1)
    d = wait_for(lambda: [x for x in api.get_json(f"/api/v1/deliveries?schedule={sid}")
                          ["deliveries"] if x["state"] == "failed"] or None, t(30), 0.2,
                 "the delivery to fail for good")
    assert d[0]["attempts"] == 3 and d[0]["url"] == dead and d[0]["last_error"], d
    assert len(api.get_json(f"/api/v1/regressions?schedule={sid}")["regressions"]) == 1


def test_change_point_pass_finds_a_step(cluster):
    """Stage 1 told to ignore an 8-point drop (alpha 1e-9); the nightly
    change-point pass (every second here) finds it once 6 runs a side
    exist, once, and a forced pass over every series adds nothing."""
    api = cluster.api
    r = api.post("/api/v1/schedules", {"name": "cp", "cron": "@every 1s", "job": _job(),
                                       "enabled": False, "detect": {"alpha": 1e-9}})
    assert r.status == 201, r
    sid = r.json()["id"]
    assert r.json()["schedule"]["detect"] == {"alpha": 1e-9}
    before = _run_firings(cluster, sid, 6)
    assert api.request("PATCH", f"/api/v1/schedules/{sid}",
                       {"job": _job(error_rate=0.08)}).status == 200
    jobs = _run_firings(cluster, sid, 6)
    _ingested(cluster, jobs)
    regs = wait_for(lambda: api.get_json(f"/api/v1/regressions?schedule={sid}")["regressions"]
                    or None, t(15), 0.2, "the nightly pass to record the step")
    # "changepoint": stage 1 did not flag it (the pass keeps an earlier record).
    assert len(regs) == 1 and regs[0]["detector"] == "changepoint", regs
    first_bad = min(j for j in jobs if j not in before)
    assert regs[0]["job_after"] == first_bad and regs[0]["value_before"] == 1.0
    assert regs[0]["p_value"] < 0.001 and regs[0]["detector_version"] >= 1
    cps = api.get_json(f"/api/v1/series/{regs[0]['series_id']}")["change_points"]
    assert [c["job_id"] for c in cps] == [first_bad]
    r = api.post("/api/v1/regressions/scan", {"all": True})
    assert r.status == 200, r
    assert r.json()["change_points"] >= 1 and r.json()["regressions_created"] == 0, r.json()
    assert len(api.get_json(f"/api/v1/regressions?schedule={sid}")["regressions"]) == 1


def test_schedule_alert_settings_are_checked(cluster):
    api = cluster.api
    for body, field in (({"webhook": "ftp://x"}, "webhook"),
                        ({"webhook": 5}, "webhook"),
                        ({"detect": {"alpha": 2}}, "detect.alpha"),
                        ({"detect": {"colour": 1}}, "detect.colour"),
                        ({"detect": []}, "detect")):
        r = api.post("/api/v1/schedules", dict({"name": "bad", "cron": "@every 1s",
                                                "job": _job()}, **body))
        assert r.status == 400 and r.json().get("field") == field, (body, r)
    assert api.get("/api/v1/regressions?state=nope").status == 400
    assert api.get("/api/v1/series/0").status == 404
    assert api.get("/api/v1/series/99999").status == 404


def test_latest_in_follows_the_newest_checkpoint(cluster, tmp_path):
    api = cluster.api
    for name in ("checkpoint-900", "checkpoint-1200", "checkpoint-100", "notes"):
        os.makedirs(tmp_path / name)
        if name != "notes":
            (tmp_path / name / "config.json").write_text("{}")
    job = {"name": "latest", "model": {"name": "trainee", "backend": "native",
                                       "latest_in": str(tmp_path)},
           "runs": [{"suite": "arithmetic", "task": "add", "params": {"digits": [1, 1]},
                     "samples": 1}],
           "requires": {"device": "gpu"}}  # no GPU worker here: it stays queued
    r = api.post("/api/v1/jobs", job)
    assert r.status == 201, r
    j = api.job(r.json()["id"])
    assert j["model"]["path"] == str(tmp_path / "checkpoint-1200"), j["model"]
    assert api.post(f"/api/v1/jobs/{j['id']}/cancel").status == 200
    r = api.post("/api/v1/jobs", dict(job, model={"name": "x", "backend": "native",
                                                  "latest_in": str(tmp_path / "notes")}))
    assert r.status == 400 and r.json()["field"] == "model.latest_in", r
    assert "no checkpoint" in r.json()["error"]


def test_native_provenance_follows_latest_checkpoint(cluster, tmp_path):
    """A schedule on "latest_in" runs the newest checkpoint each time it
    fires; each point records the checkpoint's path and the SHA-256 of its
    weights and config, so the series shows where the checkpoint changed."""
    import hashlib
    import shutil
    from test_native import make_checkpoint

    def hashes(d):
        w = hashlib.sha256()
        for f in sorted(p.name for p in d.iterdir() if p.name.endswith(".safetensors")):
            w.update(f.encode() + b"\0" + (d / f).read_bytes())
        return w.hexdigest(), hashlib.sha256((d / "config.json").read_bytes()).hexdigest()

    runs = tmp_path / "runs"
    runs.mkdir()
    first = make_checkpoint(runs / "checkpoint-100")
    job = spec(name="trainee", backend="native", digits=(1, 1), samples=4, model_name="trainee",
               model_extra={"latest_in": str(runs), "max_tokens": 2})
    api = cluster.api
    r = api.post("/api/v1/schedules", {"name": "trainee", "cron": "@every 1s", "job": job,
                                       "enabled": False})
    assert r.status == 201, r
    sid = r.json()["id"]
    a = _run_firings(cluster, sid, 1)
    # Training saves a newer checkpoint: other weights, same config.
    second = runs / "checkpoint-200"
    shutil.copytree(first, second)
    raw = bytearray((second / "model.safetensors").read_bytes())
    raw[-4:] = b"\x00\x00\x80\x3f"  # the last weight becomes 1.0
    (second / "model.safetensors").write_bytes(bytes(raw))
    b = _run_firings(cluster, sid, 1)
    new = [j for j in b if j not in a]
    _ingested(cluster, b)
    assert api.job(a[-1])["model"]["path"] == str(first)
    assert api.job(new[-1])["model"]["path"] == str(second)
    (s,) = api.get_json(f"/api/v1/series?schedule={sid}&metric=score")["series"]
    points = api.get_json(f"/api/v1/series/{s['id']}")["points"]
    ctx = {p["job_id"]: p["context"] for p in points}
    for jid, d in ((a[-1], first), (new[-1], second)):
        w, c = hashes(d)
        assert ctx[jid]["path"] == str(d) and ctx[jid]["backend"] == "native"
        assert ctx[jid]["weights_sha256"] == w and ctx[jid]["config_sha256"] == c, ctx[jid]
    assert ctx[a[-1]]["config_sha256"] == ctx[new[-1]]["config_sha256"]
    assert ctx[a[-1]]["weights_sha256"] != ctx[new[-1]]["weights_sha256"]
