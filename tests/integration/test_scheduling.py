"""Cancelling a running job stops its tasks and its recording; the run queue
is fair between jobs, so a small job is not stuck behind a big one."""

import time

from pbutil import db_exactly_once, spec, t, wait_for


def _items(c, job_id):
    return c.sql("SELECT count(*) FROM items WHERE job_id=?", (job_id,))[0][0]


def test_cancel_running_job(make_cluster):
    c = make_cluster().start(workers=1, slots=1)
    # 8 buckets x 200 = 1600 items; tasks of 100 items x 40 ms = 4 s each.
    big = c.api.submit(spec(name="to-cancel", digits=(1, 8), samples=200, shard_size=100,
                            model_name="oracle-slow",
                            model_extra={"delay_ms": 40, "batch_size": 1}))
    wait_for(lambda: c.api.job(big)["tasks"]["leased"] >= 1, t(10), 0.02, "a task running")
    time.sleep(0.5)  # well into the first 4 s task
    r = c.api.post(f"/api/v1/jobs/{big}/cancel")
    assert r.status == 200, r
    cancelled_at = time.monotonic()
    job = c.api.job(big)
    assert job["state"] == "cancelled", job
    assert job["tasks"]["queued"] == 0 and job["tasks"]["leased"] == 0, job["tasks"]
    # The running task stops and the only slot is free again long before
    # the cancelled task (3.5 s still to go) could have ended by itself.
    small = c.api.submit(spec(name="after-cancel", digits=(1, 1), samples=4, shard_size=4))
    c.api.wait_job(small, t(20))
    took = time.monotonic() - cancelled_at
    assert took < 2.5, f"the worker's slot stayed busy {took:.1f}s after cancel"
    n1 = _items(c, big)
    time.sleep(2.5)
    n2 = _items(c, big)
    assert n1 == n2, f"items still recorded after cancel: {n1} -> {n2}"
    job = c.api.job(big)
    assert job["state"] == "cancelled" and job["items_done"] == n2 == 0
    assert job["tasks"]["cancelled"] == 16, job["tasks"]
    states = dict(c.sql("SELECT state, count(*) FROM tasks WHERE job_id=? GROUP BY state", (big,)))
    assert set(states) <= {"done", "cancelled"}, states
    # Items of finished tasks stay consistent.
    bad = c.sql("SELECT t.id FROM tasks t WHERE t.job_id=? AND t.state='done' AND "
                "(SELECT count(*) FROM items i WHERE i.job_id=t.job_id AND i.task_id=t.id) "
                "!= t.item_hi - t.item_lo", (big,))
    assert not bad
    none_cancelled = c.sql("SELECT count(*) FROM items i JOIN tasks t ON t.id=i.task_id "
                           "WHERE i.job_id=? AND t.state='cancelled'", (big,))[0][0]
    assert none_cancelled == 0
    # Cancelling again: it is finished.
    r = c.api.post(f"/api/v1/jobs/{big}/cancel")
    assert r.status == 409 and "error" in r.json(), r
    r = c.api.post(f"/api/v1/jobs/{small}/cancel")
    assert r.status == 409, r


def test_cancel_queued_job(make_cluster):
    c = make_cluster().start(workers=0)
    job_id = c.api.submit(spec(name="queued-cancel", digits=(1, 4), samples=10))
    r = c.api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status == 200, r
    assert c.api.job(job_id)["state"] == "cancelled"
    assert c.api.get_json("/healthz")["queue_depth"] == 0
    c.start_worker("late", slots=2)
    c.wait_workers(1)
    time.sleep(0.5)
    assert _items(c, job_id) == 0


def test_small_job_not_starved_by_big_job(make_cluster):
    c = make_cluster().start(workers=1, slots=1)
    # 2000 one-item tasks of 5 ms: at least 10 s of work for the only slot.
    big = c.api.submit(spec(name="big", digits=(1, 1), samples=2000, shard_size=1,
                            model_name="oracle-5ms", model_extra={"delay_ms": 5}))
    wait_for(lambda: c.api.job(big)["items_done"] >= 20, t(30), 0.05, "the big job to run")
    small = c.api.submit(spec(name="small", digits=(1, 1), samples=10, shard_size=1,
                              model_name="oracle-5ms", model_extra={"delay_ms": 5}))
    at_submit = c.api.job(big)["items_done"]
    small_job = c.api.wait_job(small, t(30))
    big_job = c.api.job(big)
    assert small_job["items_done"] == 10
    assert big_job["state"] == "running", big_job
    ran_meanwhile = big_job["items_done"] - at_submit
    # Round-robin between the two jobs: ~10 big tasks interleave, not 2000.
    assert ran_meanwhile <= 60, f"big job ran {ran_meanwhile} tasks before the small one ended"
    assert big_job["items_done"] < 1000
    r = c.api.post(f"/api/v1/jobs/{big}/cancel")
    assert r.status == 200
    assert db_exactly_once(c, small) == 10


def test_priority_goes_first(make_cluster):
    c = make_cluster().start(workers=0)
    low = c.api.submit(spec(name="low", digits=(1, 1), samples=20, shard_size=1, priority=0))
    high = c.api.submit(spec(name="high", digits=(1, 1), samples=20, shard_size=1, priority=5))
    c.start_worker("only", slots=1)
    c.api.wait_job(high, t(30))
    c.api.wait_job(low, t(30))
    (hi_last,), = c.sql("SELECT max(done_at) FROM tasks WHERE job_id=?", (high,))
    (lo_first,), = c.sql("SELECT min(done_at) FROM tasks WHERE job_id=?", (low,))
    assert hi_last <= lo_first, "a low-priority task ran before the high-priority job ended"


def test_task_timeout_retries_then_fails_the_job(make_cluster):
    c = make_cluster().start(workers=1, slots=1)
    # One task of 20 items x 100 ms = 2 s against a 1 s timeout, 2 attempts.
    job_id = c.api.submit(spec(name="too-slow", digits=(1, 1), samples=20, shard_size=20,
                               timeout_s=1, max_attempts=2, model_name="oracle-slow",
                               model_extra={"delay_ms": 100, "batch_size": 1}))
    job = c.api.wait_job(job_id, t(30), states=("failed",))
    assert job["tasks"]["failed"] == 1, job["tasks"]
    (ft,) = job["failed_tasks"]
    assert ft["attempt"] == 2, ft
    assert "timed out" in ft["error"] and "timed out" in (job.get("error") or ""), job
    assert job["items_done"] == 0 and _items(c, job_id) == 0
    listed = c.api.get_json("/api/v1/jobs?state=failed")["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    # The worker is fine afterwards.
    ok = c.api.submit(spec(name="fast-after", digits=(1, 1), samples=4))
    c.api.wait_job(ok, t(30))
