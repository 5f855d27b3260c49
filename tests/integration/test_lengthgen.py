"""The length-generalisation tasks of the arithmetic suite end to end: listed
with their params at GET /api/v1/suites, run through one job with every
task, perfect on the oracle backend (in and out of distribution) and far
below on the random one."""

import pytest

from pbutil import t

TASKS = {  # task -> default train_length
    "poly": 8, "sort_single": 8, "sort_multi": 8, "sum": 8,
    "parity": 20, "copy": 20, "reverse": 20,
}


def _spec(name, backend, samples):
    return {
        "name": name,
        "model": {"name": backend, "backend": backend},
        "runs": [{"suite": "arithmetic", "task": task, "samples": samples} for task in TASKS],
        "seed": 99,
        "shard_size": 32,
    }


UNITS = {"poly": "terms", "sort_single": "elements", "sort_multi": "elements",
         "sum": "elements", "parity": "bits", "copy": "elements", "reverse": "elements"}


def test_tasks_are_listed(shared_cluster):
    suites = shared_cluster.api.get_json("/api/v1/suites")["suites"]
    (arith,) = [s for s in suites if s["name"] == "arithmetic"]
    tasks = {task["name"]: task for task in arith["tasks"]}
    for name, train in TASKS.items():
        params = tasks[name]["params"]
        assert params["train_length"]["default"] == train, params
        assert params["lengths"]["default"] == [1, 2 * train], params
        assert "Answer:" in tasks[name]["description"]
        assert tasks[name]["bucket_unit"] == UNITS[name]
    assert tasks["add"]["bucket_unit"] == "digits"


def _results(api, job_id, samples):
    res = api.get_json(f"/api/v1/jobs/{job_id}/results")
    runs = {r["task"]: r for r in res["runs"]}
    assert set(runs) == set(TASKS), runs.keys()
    for task, train in TASKS.items():
        run = runs[task]
        assert [b["bucket"] for b in run["buckets"]] == list(range(1, 2 * train + 1)), task
        assert run["unit"] == UNITS[task], (task, run["unit"])
        assert run["n"] == 2 * train * samples, (task, run["n"])
    return runs


def test_oracle_is_perfect_and_random_is_not(shared_cluster):
    api = shared_cluster.api
    orc = api.submit(_spec("lengthgen-oracle", "oracle", 4))
    rnd = api.submit(_spec("lengthgen-random", "random", 4))
    assert api.wait_job(orc, t(120))["items_total"] == 4 * 2 * sum(TASKS.values())
    api.wait_job(rnd, t(120))

    for task, run in _results(api, orc, 4).items():
        train = TASKS[task]
        assert run["accuracy"] == pytest.approx(1.0), (task, run)
        agg = run["aggregate"]
        assert agg["train_length"] == train, agg
        assert agg["effective_length"] == 2 * train, agg
        assert agg["in_distribution"]["accuracy"] == pytest.approx(1.0), agg
        assert agg["in_distribution"]["n"] == train * 4, agg
        assert agg["out_of_distribution"]["accuracy"] == pytest.approx(1.0), agg
        assert agg["out_of_distribution"]["n"] == train * 4, agg

    for task, run in _results(api, rnd, 4).items():
        # single-digit answers (parity, small sums) are right about one time
        # in ten by chance; lists almost never
        assert run["accuracy"] < 0.3, (task, run)
        assert run["aggregate"]["effective_length"] < 2 * TASKS[task], (task, run)

    # items carry the prompt format and exact references
    items, _ = api.all_items(orc, query="&run=4&bucket=3")
    assert len(items) == 4
    for it in items:
        assert it["prediction"] == it["reference"], it
        assert it["reference"] in ("0", "1"), it
