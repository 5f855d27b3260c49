"""Cron schedules through the API: create, list, disable/enable, and the
errors for a bad cron expression, a bad job template and a duplicate name."""

import calendar
import time

import pytest

from pbutil import spec


def _create(api, name, cron, job=None, enabled=True):
    return api.post("/api/v1/schedules", {"name": name, "cron": cron,
                                          "job": job or spec(name=f"{name}-job"),
                                          "enabled": enabled})


def _epoch(v):
    """A timestamp as the API gives it (ISO 8601 UTC text or epoch seconds)."""
    if isinstance(v, (int, float)):
        return float(v)
    assert isinstance(v, str) and v.endswith("Z"), v
    return float(calendar.timegm(time.strptime(v[:19], "%Y-%m-%dT%H:%M:%S")))


def _listed(api, sid):
    for s in api.get_json("/api/v1/schedules")["schedules"]:
        if s["id"] == sid:
            return s
    raise AssertionError(f"schedule {sid} not listed")


def test_schedule_lifecycle(shared_cluster):
    api = shared_cluster.api
    r = _create(api, "nightly", "0 3 * * *")
    assert r.status == 201, r
    sid = r.json()["id"]
    assert isinstance(sid, int) and sid > 0
    s = _listed(api, sid)
    assert s["name"] == "nightly" and s["cron"] == "0 3 * * *"
    assert s["enabled"] is True
    now = time.time()
    nxt = _epoch(s["next_fire_at"])
    assert now < nxt <= now + 86400 + 60, s
    assert time.gmtime(nxt).tm_min == 0 and time.gmtime(nxt).tm_hour == 3, s
    assert s["template"]["name"] == "nightly-job", s
    assert api.get_json(f"/api/v1/schedules/{sid}")["id"] == sid

    r = api.post(f"/api/v1/schedules/{sid}/disable")
    assert r.status == 200, r
    assert _listed(api, sid)["enabled"] is False
    r = api.post(f"/api/v1/schedules/{sid}/enable")
    assert r.status == 200, r
    s = _listed(api, sid)
    assert s["enabled"] is True and _epoch(s["next_fire_at"]) > time.time()

    # Disabled at creation; named ranges, steps and lists.
    r = _create(api, "weekdays", "*/15 9-17 * * 1-5", enabled=False)
    assert r.status == 201, r
    assert _listed(api, r.json()["id"])["enabled"] is False
    r = _create(api, "lists", "5,35 0 1 1,7 *")
    assert r.status == 201, r

    assert api.post("/api/v1/schedules/999999/enable").status == 404
    assert api.post(f"/api/v1/schedules/{sid}/explode").status == 404
    assert api.request("GET", f"/api/v1/schedules/{sid}/disable").status == 405


BAD_CRONS = ["61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
             "not a cron", "* * * *", "* * * * * * *", "", "*/0 * * * *", "5-1 * * * *",
             "1,,2 * * * *", "a b c d e"]


@pytest.mark.parametrize("cron", BAD_CRONS)
def test_invalid_cron_is_400_naming_cron(shared_cluster, cron):
    r = _create(shared_cluster.api, f"bad-{abs(hash(cron))}", cron)
    assert r.status == 400, (cron, r)
    err = r.json()
    assert err.get("field") == "cron", (cron, err)
    assert err["error"], err


def test_schedule_errors(shared_cluster):
    api = shared_cluster.api
    r = _create(api, "dup", "0 0 * * *")
    assert r.status == 201
    r = _create(api, "dup", "0 1 * * *")
    assert r.status == 409, r
    assert r.json().get("field") == "name"
    bad_job = spec()
    bad_job["runs"][0]["suite"] = "nosuchsuite"
    r = _create(api, "badjob", "0 0 * * *", job=bad_job)
    assert r.status == 400, r
    assert r.json().get("field") == "job.runs[0].suite", r.json()
    r = api.post("/api/v1/schedules", {"name": "nojob", "cron": "0 0 * * *"})
    assert r.status == 400 and r.json().get("field") == "job", r
    r = api.post("/api/v1/schedules", {"cron": "0 0 * * *", "job": spec()})
    assert r.status == 400 and r.json().get("field") == "name", r
    r = api.post("/api/v1/schedules", {"name": "x", "cron": "0 0 * * *", "job": spec(),
                                       "colour": 1})
    assert r.status == 400 and r.json().get("field") == "colour", r
    r = api.post("/api/v1/schedules", b"{nope")
    assert r.status == 400
    names = [s["name"] for s in api.get_json("/api/v1/schedules")["schedules"]]
    assert names.count("dup") == 1 and "badjob" not in names and "nojob" not in names


def test_schedule_fires_jobs_and_stops_when_disabled(shared_cluster):
    """The coordinator fires an enabled schedule on time, each firing is one
    job tagged with the schedule, and a disabled schedule fires no more."""
    from pbutil import t, wait_for
    api = shared_cluster.api
    r = _create(api, "every-second", "@every 1s",
                job=spec(name="fired", digits=(1, 2), samples=4))
    assert r.status == 201, r
    sid = r.json()["id"]

    def fired():
        jobs = api.get_json("/api/v1/jobs?limit=1000")["jobs"]
        return [j for j in jobs if j.get("schedule_id") == sid]

    wait_for(lambda: len(fired()) >= 2, t(20), 0.2, "two firings of the schedule")
    jobs = fired()
    assert all(j["name"] == "fired" for j in jobs)
    wait_for(lambda: all(api.job(j["id"])["state"] == "done" for j in jobs), t(20), 0.2,
             "the fired jobs to finish")
    s = _listed(api, sid)
    assert s["last_job_id"] in [j["id"] for j in fired()]
    assert _epoch(s["last_fired_at"]) <= _epoch(s["next_fire_at"])

    r = api.post(f"/api/v1/schedules/{sid}/disable")
    assert r.status == 200 and r.json()["enabled"] is False
    before = len(fired())
    time.sleep(2.5)
    assert len(fired()) == before, "a disabled schedule fired"
