"""API additions the dashboard's monitor pages use: an item's prompt
regenerated on demand (GET /api/v1/jobs/{id}/items/{task}/{idx}/prompt,
checked against the stored prompt hash, capped, with the reference and the
parts of multi-part items; a dataset run's prompt is its stored line) and
the jobs a schedule fired (GET /api/v1/jobs?schedule=ID, paged)."""

import json

import pytest

import pbutil
from pbutil import spec, t, wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from pbutil.running_cluster(tmp_path_factory.mktemp("apidash"),
                                      lambda c: c.start(workers=1, slots=2))


def prompt_path(job, it, q=""):
    return f"/api/v1/jobs/{job}/items/{it['task_id']}/{it['idx']}/prompt{q}"


def test_prompt_is_regenerated_with_the_stored_hash(cluster):
    api = cluster.api
    s = spec(name="p", backend="random", digits=(3, 5), samples=3)
    s["runs"].append({"suite": "longctx", "task": "passkey", "samples": 2,
                      "params": {"lengths": [1024, 2048], "depths": 2}})
    s["runs"].append({"suite": "halluc", "task": "sah", "samples": 1,
                      "params": {"lengths": [6000]}})
    job = api.submit(s)
    api.wait_job(job, t(60))
    items, _ = api.all_items(job)
    assert len(items) == 9 + 4 + 1
    seen_runs = set()
    for it in items:
        p = api.get_json(prompt_path(job, it, "?max=100000"))
        assert p["prompt_hash"] == it["prompt_hash"], (it, p)
        assert (p["run"], p["bucket"], p["idx"]) == (it["run"], it["bucket"], it["idx"])
        assert p["truncated"] is False and len(p["prompt"]) == p["length"]
        assert p["reference"] == it["reference"]
        seen_runs.add(p["suite"])
        if p["suite"] == "arithmetic":
            # the longer operand has bucket digits, plus "+" and "="
            assert p["length"] >= it["bucket"] + 2 and "+" in p["prompt"]
        if p["suite"] == "longctx":
            assert p["length"] >= 0.8 * it["bucket"], p["length"]
            assert it["reference"] in p["prompt"]  # the passkey is in its haystack
        if p["suite"] == "halluc":
            assert len(p["parts"]) >= 2 and all(x["prompt"] for x in p["parts"])
    assert seen_runs == {"arithmetic", "longctx", "halluc"}

    # capped: head and tail around an ellipsis, full length reported
    it = next(i for i in items if i["run"] == 1 and i["bucket"] == 2048)
    full = api.get_json(prompt_path(job, it, "?max=100000"))["prompt"]
    p = api.get_json(prompt_path(job, it, "?max=200"))
    assert p["truncated"] is True and p["length"] == len(full)
    assert "characters left out" in p["prompt"] and len(p["prompt"]) < 300
    assert full.startswith(p["prompt"].split("\n\u2026")[0])
    assert full.endswith(p["prompt"].split("\u2026\n")[-1])
    d = api.get_json(prompt_path(job, it))  # default cap 4096
    assert d["truncated"] is (len(full) > 4096) and len(d["prompt"]) < 4200


def test_prompt_errors_are_json_with_status(cluster):
    api = cluster.api
    job = api.submit(spec(name="e", digits=(1, 1), samples=2))
    api.wait_job(job, t(30))
    items, _ = api.all_items(job)
    it = items[0]
    tid, idx = it["task_id"], it["idx"]
    cases = [
        (f"/api/v1/jobs/{job}/items/{tid}/99/prompt", 404),
        (f"/api/v1/jobs/{job}/items/{tid + 1000}/0/prompt", 404),
        (f"/api/v1/jobs/999999/items/{tid}/{idx}/prompt", 404),
        (f"/api/v1/jobs/{job}/items/{tid}/{idx}/nope", 404),
        (f"/api/v1/jobs/{job}/items/{tid}/-1/prompt", 404),
        (f"/api/v1/jobs/{job}/items/x/0/prompt", 404),
        (f"/api/v1/jobs/{job}/items/{tid}/{idx}/prompt?max=abc", 400),
        (f"/api/v1/jobs/{job}/items/{tid}/{idx}/prompt?max=1", 400),
        (f"/api/v1/jobs/{job}/items/{tid}/{idx}/prompt?max=99999999", 400),
    ]
    for path, status in cases:
        r = api.get(path)
        assert r.status == status, (path, r)
        assert isinstance(r.json().get("error"), str), (path, r)
    r = api.post(f"/api/v1/jobs/{job}/items/{tid}/{idx}/prompt", {})
    assert r.status == 405 and r.headers.get("allow") == "GET", r
    # a stored hash that does not match (a tokenizer sized it): 409, not a wrong prompt
    cluster_sql_update(cluster, "UPDATE items SET prompt_hash = '0000000000000000' "
                       "WHERE job_id = ? AND task_id = ? AND idx = ?", (job, tid, idx))
    r = api.get(f"/api/v1/jobs/{job}/items/{tid}/{idx}/prompt")
    assert r.status == 409 and r.json()["field"] == "prompt_hash", r


def cluster_sql_update(cluster, query, args):
    import sqlite3
    con = sqlite3.connect(cluster.db, timeout=t(10))
    try:
        con.execute(query, args)
        con.commit()
    finally:
        con.close()


def test_dataset_prompt_is_its_line(cluster):
    api = cluster.api
    rows = [{"prompt": f"{a}+{a}=", "reference": str(2 * a), "bucket": len(str(a))}
            for a in (3, 5, 12, 40, 99, 123)]
    body = "".join(json.dumps(r) + "\n" for r in rows)
    r = api.post("/api/v1/datasets?suite=arithmetic&name=dash", body,
                 headers={"Content-Type": "application/x-ndjson"})
    assert r.status in (200, 201), r
    h = r.json()["hash"]
    job = api.submit({"name": "ds", "model": {"name": "oracle", "backend": "oracle"},
                      "runs": [{"suite": "arithmetic", "task": "add", "dataset": h}]})
    api.wait_job(job, t(30))
    items, _ = api.all_items(job)
    assert len(items) == 6
    for it in items:
        p = api.get_json(prompt_path(job, it))
        want = [x for x in rows if x["bucket"] == it["bucket"]][it["idx"]]
        assert p["prompt"] == want["prompt"] and p["reference"] == want["reference"], (it, p)
        assert p["prompt_hash"] == it["prompt_hash"]


def test_jobs_filtered_by_schedule(cluster):
    api = cluster.api
    r = api.post("/api/v1/schedules", {"name": "dash-every", "cron": "@every 1s",
                                       "job": spec(name="fired", digits=(1, 1), samples=2)})
    assert r.status == 201, r
    sid = r.json()["id"]
    other = api.submit(spec(name="not-fired", digits=(1, 1), samples=2))

    def fired():
        return api.get_json(f"/api/v1/jobs?schedule={sid}&limit=1000")["jobs"]

    wait_for(lambda: len(fired()) >= 3, t(20), 0.2, "three firings")
    assert api.post(f"/api/v1/schedules/{sid}/disable").status == 200
    jobs = fired()
    ids = [j["id"] for j in jobs]
    assert ids == sorted(ids, reverse=True) and other not in ids
    assert all(j["schedule_id"] == sid and j["name"] == "fired" for j in jobs)
    # paged: limit and before, next links the pages
    page = api.get_json(f"/api/v1/jobs?schedule={sid}&limit=2")
    assert [j["id"] for j in page["jobs"]] == ids[:2] and page["next"] == ids[1]
    page2 = api.get_json(f"/api/v1/jobs?schedule={sid}&limit=1000&before={page['next']}")
    assert [j["id"] for j in page2["jobs"]] == ids[2:]
    # no such schedule: an empty list; bad values: 400 naming the field
    assert api.get_json("/api/v1/jobs?schedule=987654")["jobs"] == []
    for q, field in (("schedule=0", "schedule"), ("schedule=x", "schedule"),
                     ("schedule=1&state=done", "schedule")):
        r = api.get(f"/api/v1/jobs?{q}")
        assert r.status == 400 and r.json()["field"] == field, (q, r)
    # the query uses the jobs_schedule index, not a scan of jobs
    plan = cluster.sql("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE schedule_id = ? "
                       "AND id < ? ORDER BY id DESC LIMIT 5", (sid, 1 << 62))
    assert any("jobs_schedule" in str(row) for row in plan), plan
