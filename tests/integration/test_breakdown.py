"""The results breakdown by item meta end to end (BREAKDOWN.md): an arithmetic
add job's results carry, per run, "breakdown" -> "da,db" with groups summed
over buckets in numeric value order (accuracy, Wilson interval) and the
bucket x value grid; perfect on the oracle backend, not on the random one."""

import pytest

from pbutil import spec, t, wilson

SAMPLES = 45  # per bucket: bucket d has 2d-1 (da, db) bins, all with d digits at most


def _breakdown(api, job_id):
    res = api.get_json(f"/api/v1/jobs/{job_id}/results")
    (run,) = res["runs"]
    assert "breakdown_rows" not in run, run.keys()
    bd = run["breakdown"]
    assert list(bd) == ["da,db"], bd.keys()
    return run, bd["da,db"]


def _check_shape(run, entry):
    groups, grid = entry["groups"], entry["grid"]
    values = [g["value"] for g in groups]
    # every (da, db) pair of digits [1, 3], in numeric order
    assert values == [f"{a},{b}" for a in (1, 2, 3) for b in (1, 2, 3)], values
    assert sum(g["n"] for g in groups) == run["n"] == 3 * SAMPLES, (run["n"], groups)
    for g in groups:
        assert g["n"] > 0, g
        assert g["accuracy"] == pytest.approx(g["score_sum"] / g["n"]), g
        lo, hi = wilson(g["score_sum"], g["n"])
        assert g["ci"] == [pytest.approx(lo), pytest.approx(hi)], g
    # the longer operand has the bucket's digits: one grid cell per pair
    assert [(c["bucket"], c["value"]) for c in grid] == sorted(
        ((max(int(p) for p in v.split(",")), v) for v in values)), grid
    by_value = {g["value"]: g for g in groups}
    for c in grid:
        assert c["n"] == by_value[c["value"]]["n"], (c, by_value[c["value"]])
    assert {c["bucket"] for c in grid} == {b["bucket"] for b in run["buckets"]} == {1, 2, 3}


def test_oracle_breakdown(shared_cluster):
    api = shared_cluster.api
    job = api.submit(spec("breakdown-oracle", "oracle", digits=(1, 3), samples=SAMPLES))
    api.wait_job(job, t(60))
    run, entry = _breakdown(api, job)
    _check_shape(run, entry)
    for g in entry["groups"]:
        assert g["accuracy"] == 1.0, g
    for c in entry["grid"]:
        assert c["accuracy"] == 1.0, c


def test_random_breakdown(shared_cluster):
    api = shared_cluster.api
    job = api.submit(spec("breakdown-random", "random", digits=(1, 3), samples=SAMPLES))
    api.wait_job(job, t(60))
    run, entry = _breakdown(api, job)
    _check_shape(run, entry)
    # at least 9 items per pair, guessed at random: never all right
    for g in entry["groups"]:
        assert g["accuracy"] < 1.0, g
    assert sum(g["score_sum"] for g in entry["groups"]) == pytest.approx(run["score_sum"])
