"""The table suite end to end: listed at GET /api/v1/suites with bucket unit
"cells", one job with every task perfect on the oracle backend with results
broken down by target row, column and table shape, and far below perfect on
the random backend."""

import pytest

from pbutil import t

TASKS = ["cell_lookup", "reverse_lookup", "column_aggregate", "row_aggregate",
         "position_probe", "two_hop"]
FORMATS = ["markdown", "csv", "html", "kv_row", "kv_col", "markdown"]
SAMPLES = 6
BUCKETS = [16, 64, 256]  # rows = cols in {4, 8, 16}


def _spec(name, backend):
    return {
        "name": name,
        "model": {"name": backend, "backend": backend},
        "runs": [{"suite": "table", "task": task, "samples": SAMPLES,
                  "params": {"rows": [4, 16], "cols": [4, 16], "format": fmt,
                             "cells": "int" if i % 2 else "mixed"}}
                 for i, (task, fmt) in enumerate(zip(TASKS, FORMATS))],
        "seed": 7,
        "shard_size": 16,
    }


def test_suite_is_listed(shared_cluster):
    suites = shared_cluster.api.get_json("/api/v1/suites")["suites"]
    (table,) = [s for s in suites if s["name"] == "table"]
    assert table["bucket_unit"] == "cells"
    tasks = {task["name"]: task for task in table["tasks"]}
    assert set(tasks) == set(TASKS)
    for task in tasks.values():
        assert task["params"]["format"]["default"] == "markdown", task
        assert task["params"]["rows"]["default"] == [4, 32], task


def _runs(api, job_id):
    res = api.get_json(f"/api/v1/jobs/{job_id}/results")
    runs = {r["task"]: r for r in res["runs"]}
    assert set(runs) == set(TASKS), runs.keys()
    for task, run in runs.items():
        assert [b["bucket"] for b in run["buckets"]] == BUCKETS, task
        assert run["unit"] == "cells", run["unit"]
        assert run["n"] == len(BUCKETS) * SAMPLES, (task, run["n"])
    return runs


def test_oracle_is_perfect_and_random_is_not(shared_cluster):
    api = shared_cluster.api
    orc = api.submit(_spec("table-oracle", "oracle"))
    rnd = api.submit(_spec("table-random", "random"))
    assert api.wait_job(orc, t(120))["items_total"] == len(TASKS) * len(BUCKETS) * SAMPLES
    api.wait_job(rnd, t(120))

    for task, run in _runs(api, orc).items():
        assert run["accuracy"] == pytest.approx(1.0), (task, run)
        assert run["aggregate"]["accuracy"] == pytest.approx(1.0), (task, run)
        assert run["aggregate"]["n"] == len(BUCKETS) * SAMPLES, run["aggregate"]
        bd = run["breakdown"]
        shapes = [g["value"] for g in bd["rows,cols"]["groups"]]
        assert shapes == ["4,4", "8,8", "16,16"], shapes
        # aggregates have one axis only: a column aggregate has no target row
        want = {"row", "col"} - ({"row"} if task == "column_aggregate" else
                                 {"col"} if task == "row_aggregate" else set())
        assert want <= set(bd), (task, bd.keys())
        for key in want:
            groups = bd[key]["groups"]
            assert sum(g["n"] for g in groups) == run["n"], (task, key, groups)
            assert all(1 <= int(g["value"]) <= 16 for g in groups), groups
            assert all(g["accuracy"] == 1.0 for g in groups), groups

    total = n = 0
    for task, run in _runs(api, rnd).items():
        # numbers guessed digit by digit and names letter by letter: small
        # counts (count > t) are the only answers chance gets right often
        assert run["accuracy"] < 0.5, (task, run)
        total += run["accuracy"] * run["n"]
        n += run["n"]
    assert total / n < 0.15

    items, _ = api.all_items(orc, query="&run=0&bucket=16")
    assert len(items) == SAMPLES
    for it in items:
        assert it["prediction"] == it["reference"], it


def test_all_formats_in_one_run(shared_cluster):
    """format "all" cycles the five serialisations by item index, so one
    run is broken down by format, every format equally often."""
    api = shared_cluster.api
    spec = {"name": "table-formats", "model": {"name": "oracle", "backend": "oracle"},
            "runs": [{"suite": "table", "task": "cell_lookup",
                      "params": {"format": "all", "rows": [4, 8], "cols": [4, 8]},
                      "samples": 10}],
            "seed": 11}
    job = api.submit(spec)
    api.wait_job(job, t(60))
    (run,) = api.get_json(f"/api/v1/jobs/{job}/results")["runs"]
    groups = run["breakdown"]["format"]["groups"]
    assert [g["value"] for g in groups] == ["csv", "html", "kv_col", "kv_row", "markdown"]
    assert all(g["n"] == 2 * 2 and g["accuracy"] == 1.0 for g in groups), groups
    items, _ = api.all_items(job)
    fmts = {it["idx"]: it["meta"]["format"] for it in items if it["bucket"] == 16}
    want = ["markdown", "csv", "html", "kv_row", "kv_col"]
    assert fmts == {i: want[i % 5] for i in range(10)}, fmts
