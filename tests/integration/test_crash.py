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


def _busy(c, name):
    for w in c.api.get_json("/api/v1/workers")["workers"]:
        if w["name"] == name and w.get("current_tasks"):
            return w["current_tasks"]
    return None


def test_worker_kill9_mid_task(make_cluster):
    c = make_cluster(heartbeat_ms=HB).start(workers=2, slots=2)
    # 4 buckets x 96 = 384 items, 24 tasks of 16 items x 20 ms = ~0.3 s each.
    job_id = c.api.submit(_slow_spec("kill-worker", 20, (1, 4), 96, 16))
    held = set()
    # Kill w1 mid-task; a replacement joins; then kill w2 mid-task too.
    for victim, replacement in (("w1", "w3"), ("w2", None)):
        tasks = wait_for(lambda: _busy(c, victim), t(20), 0.02, f"worker {victim} to hold a task")
        time.sleep(0.08)  # a few items into the task
        c.workers[victim].kill9()
        held |= set(tasks)
        if replacement:
            c.start_worker(replacement, slots=2)
    job = c.api.wait_job(job_id, t(60))
    assert job["items_done"] == job["items_total"] == 384
    assert db_exactly_once(c, job_id) == 384
    retried = c.sql("SELECT id, attempt FROM tasks WHERE job_id=? AND attempt > 1", (job_id,))
    assert retried, f"no task was retried after the workers holding {held} died"
    assert {tid for tid, _ in retried} & held, (retried, held)
    res = c.api.get_json(f"/api/v1/jobs/{job_id}/results")["runs"][0]
    assert res["n"] == 384 and res["accuracy"] == pytest.approx(1.0)
    # Only the survivor is still connected; the dead are marked gone.
    wait_for(lambda: c.connected_workers() == 1, t(10), 0.1, "the dead workers to be dropped")
    states = {w["name"]: w["state"] for w in c.api.get_json("/api/v1/workers")["workers"]}
    assert states.get("w1") == "gone" and states.get("w2") == "gone", states
    assert states.get("w3") in ("idle", "busy"), states


def test_coordinator_kill9_mid_job_and_restart(make_cluster):
    c = make_cluster(heartbeat_ms=HB).start(workers=2, slots=2)
    # 8 buckets x 64 = 512 items, 32 tasks of 16 x 10 ms: ~4 tasks at a time.
    job_id = c.api.submit(_slow_spec("kill-coordinator", 10, (1, 8), 64, 16))
    # Crash it twice: early in the job and again after the first restart.
    for lo, hi in ((0.1, 0.4), (0.5, 0.8)):
        def part_done():
            j = c.api.job(job_id)
            return lo * j["items_total"] <= j["items_done"] <= hi * j["items_total"]

        wait_for(part_done, t(60), 0.02, f"the job to be {lo:.0%}-{hi:.0%} done")
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
    # A new job after the restarts runs normally.
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
