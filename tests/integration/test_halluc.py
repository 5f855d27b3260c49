"""The halluc suite end to end: listed at GET /api/v1/suites with its params
and metrics; on the oracle backend every caption triplet is right (pair
accuracy, InAcc and OutAcc 1.0, SAH ratio null), broken down by segment
count, distance and aspect; on the random backend (a coin per caption)
InAcc, OutAcc and pair accuracy sit near 0.25; under a tokenizer the
buckets count tokens."""

import json

import pytest

from pbutil import t

BUCKETS = [6000, 9000]
SEGMENTS = [2, 4, 8, 16]
ASPECTS = ["object", "action", "attribute", "statement"]


def _spec(name, backend, samples, buckets=BUCKETS, tokenizer=None):
    model = {"name": backend, "backend": backend}
    if tokenizer:
        model["tokenizer"] = tokenizer
    return {
        "name": name,
        "model": model,
        "runs": [{"suite": "halluc", "task": "sah", "samples": samples,
                  "params": {"lengths": buckets}}],
        "seed": 5,
        "shard_size": 32,
    }


def _run(api, job_id, buckets=BUCKETS):
    (run,) = api.get_json(f"/api/v1/jobs/{job_id}/results")["runs"]
    assert (run["suite"], run["task"]) == ("halluc", "sah")
    assert [b["bucket"] for b in run["buckets"]] == buckets
    return run


def test_suite_is_listed(shared_cluster):
    suites = shared_cluster.api.get_json("/api/v1/suites")["suites"]
    (hl,) = [s for s in suites if s["name"] == "halluc"]
    assert hl["bucket_unit"] == "chars"
    assert hl["metrics"] == ["in_acc", "out_acc"]
    (task,) = hl["tasks"]
    assert task["name"] == "sah"
    params = task["params"]
    assert set(params) == {"lengths", "segments", "aspects", "distances"}
    assert params["segments"]["default"] == SEGMENTS
    assert params["aspects"]["default"] == ASPECTS
    assert params["distances"]["default"] is None
    assert params["lengths"]["default"] == [8192, 16384, 32768]


def test_bad_params_are_refused(shared_cluster):
    spec = _spec("halluc-bad", "oracle", 4)
    spec["runs"][0]["params"] = {"lengths": [3000]}  # 16 segments' facts do not fit
    r = shared_cluster.api.post("/api/v1/jobs", spec)
    assert r.status == 400, r
    assert "lengths" in json.dumps(r.json()), r.json()


def test_oracle_is_perfect(shared_cluster):
    api = shared_cluster.api
    samples = 16  # E cycles fastest, then the aspect: every (E, aspect) once per bucket
    job = api.submit(_spec("halluc-oracle", "oracle", samples))
    assert api.wait_job(job, t(120))["items_total"] == len(BUCKETS) * samples
    run = _run(api, job)
    assert run["accuracy"] == pytest.approx(1.0), run
    assert run["unit"] == "chars"
    assert run["metrics"] == {"in_acc": pytest.approx(1.0), "out_acc": pytest.approx(1.0)}
    for b in run["buckets"]:
        assert b["metrics"] == {"in_acc": pytest.approx(1.0), "out_acc": pytest.approx(1.0)}, b
    agg = run["aggregate"]
    assert agg["in_acc"] == pytest.approx(1.0) and agg["out_acc"] == pytest.approx(1.0), agg
    assert agg["pair_accuracy"] == pytest.approx(1.0), agg
    assert agg["sah_ratio"] is None, agg
    assert agg["n"] == len(BUCKETS) * samples
    assert [b["bucket"] for b in agg["buckets"]] == BUCKETS
    bd = run["breakdown"]
    assert [g["value"] for g in bd["segments"]["groups"]] == [str(e) for e in SEGMENTS]
    assert all(g["n"] == len(BUCKETS) * samples // 4 for g in bd["segments"]["groups"])
    assert sorted(g["value"] for g in bd["aspect"]["groups"]) == sorted(ASPECTS)
    dists = [int(g["value"]) for g in bd["distance"]["groups"]]
    assert 1 in dists and max(dists) <= 15, dists
    # per-group metric means ride on every group and grid cell
    for key in ("segments", "distance", "aspect"):
        for g in bd[key]["groups"] + bd[key]["grid"]:
            assert g["metrics"] == {"in_acc": pytest.approx(1.0), "out_acc": pytest.approx(1.0)}, g
    assert not any("@" in k for k in bd), sorted(bd)
    # the prediction is the three answers; meta carries the coin's choices
    items, _ = api.all_items(job)
    assert len(items) == len(BUCKETS) * samples
    it = items[0]
    assert json.loads(it["prediction"]) == ["Yes", "No", "No"], it
    assert it["reference"] == "Yes\nNo\nNo"
    meta = it["meta"] if isinstance(it["meta"], dict) else json.loads(it["meta"])
    assert meta["choices"] == ["Yes", "No"]
    assert 1 <= meta["segment"] <= meta["segments"]
    assert it["bucket"] * 0.95 <= meta["length"] <= it["bucket"], (it["bucket"], meta)


def test_random_is_a_coin_per_caption(shared_cluster):
    """Each caption gets an independent fair Yes/No, so per triplet
    InAcc ~ Bernoulli(1/4), OutAcc too, and pair accuracy averages them.
    With n = 400 triplets the standard error of a quarter is
    sqrt(0.25 * 0.75 / 400) = 0.022: a tolerance of 0.08 is 3.7 standard
    errors (the seed is fixed, so the outcome is too; the tolerance says how
    far a correct coin could have landed)."""
    api = shared_cluster.api
    n = 400
    job = api.submit(_spec("halluc-random", "random", n, buckets=[6000]))
    api.wait_job(job, t(180))
    run = _run(api, job, buckets=[6000])
    agg = run["aggregate"]
    assert agg["n"] == n
    assert agg["in_acc"] == pytest.approx(0.25, abs=0.08), agg
    assert agg["out_acc"] == pytest.approx(0.25, abs=0.08), agg
    assert agg["pair_accuracy"] == pytest.approx(0.25, abs=0.08), agg
    assert run["accuracy"] == pytest.approx(agg["pair_accuracy"])
    assert run["metrics"]["in_acc"] == pytest.approx(agg["in_acc"])
    # SAH = (OutAcc - InAcc) / (1 - InAcc) x 100, recomputed from the means
    want = (agg["out_acc"] - agg["in_acc"]) / (1 - agg["in_acc"]) * 100
    assert agg["sah_ratio"] == pytest.approx(want)
    assert abs(agg["sah_ratio"]) < 20, agg
    # per-group InAcc: recounted from the items' own scores and meta
    items, _ = api.all_items(job)
    by_aspect = {}
    for it in items:
        meta = it["meta"] if isinstance(it["meta"], dict) else json.loads(it["meta"])
        ans = json.loads(it["prediction"])
        ok = [a == r for a, r in zip(ans, ["Yes", "No", "No"])]
        by_aspect.setdefault(meta["aspect"], []).append(1.0 if ok[0] and ok[1] else 0.0)
    groups = {g["value"]: g for g in run["breakdown"]["aspect"]["groups"]}
    assert sorted(groups) == sorted(by_aspect)
    for aspect, vals in by_aspect.items():
        assert groups[aspect]["metrics"]["in_acc"] == pytest.approx(sum(vals) / len(vals)), aspect

    # the leaderboard entry carries the same metrics and SAH ratio
    spec = _spec("halluc-random-lb", "random", 40, buckets=[6000])
    spec["model"]["name"] = "coin-for-leaderboard"
    job2 = api.submit(spec)
    api.wait_job(job2, t(120))
    run2 = _run(api, job2, buckets=[6000])
    (e,) = [e for e in api.get_json("/api/v1/leaderboard?suite=halluc")["entries"]
            if e["model"] == "coin-for-leaderboard"]
    assert e["metrics"] == pytest.approx(run2["metrics"]), (e, run2["metrics"])
    assert e["aggregate"]["sah_ratio"] == pytest.approx(run2["aggregate"]["sah_ratio"])
    assert e["score"] == pytest.approx(run2["accuracy"])
    assert "breakdown_rows" not in e


def test_tokenizer_sizes_in_tokens(shared_cluster):
    api = shared_cluster.api
    buckets = [4096, 6000]
    job = api.submit(_spec("halluc-tokens", "oracle", 8, buckets=buckets, tokenizer="words"))
    api.wait_job(job, t(120))
    run = _run(api, job, buckets=buckets)
    assert run["unit"] == "tokens", run
    assert run["accuracy"] == pytest.approx(1.0)
    items, _ = api.all_items(job)
    assert len(items) == len(buckets) * 8
    for it in items:
        meta = it["meta"] if isinstance(it["meta"], dict) else json.loads(it["meta"])
        assert it["bucket"] * 0.95 <= meta["length"] <= it["bucket"], (it["bucket"], meta)
