"""Crashes: kill -9 of a worker or of the coordinator in the middle of a job.
The job must still complete with every item recorded exactly once (checked
in the store itself). Small heartbeats make dead-peer detection fast."""

import time

import pytest

from pbutil import db_exactly_once, spec, t, wait_for

HB = 200  # ms, both sides: a peer is dead after 5 missed beats = 1 s


def _slow_spec(name, per_item_ms, digits, samples, shard):
    # batch_size 1: a task is many short backend calls, so a kill lands mid-task.
    return spec(name=name, digits=digits, samples=samples, shard_size=shard,
                model_name="oracle-slow", model_extra={"delay_ms": per_item_ms, "batch_size": 1})


def test_worker_kill9_mid_task(make_cluster):
    c = make_cluster(heartbeat_ms=HB).start(workers=2, slots=2)
    # 4 buckets x 64 = 256 items, 16 tasks of 16 items x 20 ms = ~0.3 s each.
    job_id = c.api.submit(_slow_spec("kill-worker", 20, (1, 4), 64, 16))

    def victim_busy():
        for w in c.api.get_json("/api/v1/workers")["workers"]:
            if w["name"] == "w1" and w.get("current_tasks"):
                return w["current_tasks"]
        return None

    held = wait_for(victim_busy, t(20), 0.02, "worker w1 to hold a task")
    # Let it get into the task (a few items in), then kill it.
    time.sleep(0.08)
    c.workers["w1"].kill9()
    job = c.api.wait_job(job_id, t(60))
    assert job["items_done"] == job["items_total"] == 256
    total = db_exactly_once(c, job_id)
    assert total == 256
    retried = c.sql("SELECT id, attempt FROM tasks WHERE job_id=? AND attempt > 1", (job_id,))
    assert retried, f"no task was retried after w1 (holding {held}) died"
    assert {tid for tid, _ in retried} & set(held), (retried, held)
    res = c.api.get_json(f"/api/v1/jobs/{job_id}/results")["runs"][0]
    assert res["n"] == 256 and res["accuracy"] == pytest.approx(1.0)
    # The survivor did the rest; the dead worker is no longer connected.
    wait_for(lambda: c.connected_workers() == 1, t(10), 0.1, "the dead worker to be dropped")


def test_coordinator_kill9_mid_job_and_restart(make_cluster):
    c = make_cluster(heartbeat_ms=HB).start(workers=2, slots=2)
    # 8 buckets x 64 = 512 items, 32 tasks of 16 x 10 ms: ~4 tasks at a time.
    job_id = c.api.submit(_slow_spec("kill-coordinator", 10, (1, 8), 64, 16))

    def mid_job():
        j = c.api.job(job_id)
        return 0.1 * j["items_total"] <= j["items_done"] <= 0.6 * j["items_total"]

    wait_for(mid_job, t(30), 0.02, "the job to be part done")
    c.coord.kill9()
    before = c.sql("SELECT count(*) FROM items WHERE job_id=?", (job_id,))[0][0]
    assert 0 < before < 512
    time.sleep(0.5)  # workers keep running and must hold on to their results
    c.start_coordinator()  # same DB, same HTTP port and broker endpoint
    c.wait_workers(2, t(30))  # workers reconnect by themselves
    job = c.api.wait_job(job_id, t(90))
    assert job["items_done"] == job["items_total"] == 512
    assert db_exactly_once(c, job_id) == 512
    res = c.api.get_json(f"/api/v1/jobs/{job_id}/results")["runs"][0]
    assert res["n"] == 512 and res["accuracy"] == pytest.approx(1.0)
    # A new job after the restart runs normally.
    again = c.api.submit(spec(name="after-restart", digits=(1, 2), samples=8))
    c.api.wait_job(again, t(60))
    assert db_exactly_once(c, again) == 16


def test_restart_with_queued_jobs_and_no_workers(make_cluster):
    """Jobs queued before a crash (no worker ever connected) run after it."""
    c = make_cluster(heartbeat_ms=HB).start(workers=0)
    ids = [c.api.submit(spec(name=f"queued-{i}", digits=(1, 3), samples=10, shard_size=4))
           for i in range(3)]
    assert all(c.api.job(i)["state"] == "queued" for i in ids)
    c.coord.kill9()
    c.start_coordinator()
    assert c.api.get_json("/healthz")["queue_depth"] == 27
    c.start_worker("late", slots=2)
    for i in ids:
        c.api.wait_job(i, t(60))
        assert db_exactly_once(c, i) == 30


def test_sigterm_stops_everything_cleanly(make_cluster):
    c = make_cluster().start(workers=2, slots=2)
    job_id = c.api.submit(spec(name="before-stop", digits=(1, 2), samples=8))
    c.api.wait_job(job_id, t(60))
    for name, w in c.workers.items():
        assert w.stop() == 0, f"worker {name} exit status {w.p.returncode}:\n{w.tail()}"
    assert c.coord.stop() == 0, f"coordinator exit status {c.coord.p.returncode}:\n{c.coord.tail()}"
    # The store is consistent and reopens.
    c.start_coordinator()
    assert c.api.job(job_id)["state"] == "done"
