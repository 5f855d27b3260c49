"""The kernels suite end to end: listed at GET /api/v1/suites with its params
and metrics; one small job over the four tasks on a local cluster (the model
spec only labels the series) finishes with every output checked against the
scalar reference, per-bucket metric means in the results (ordered quartiles,
the throughput that fits each kernel), and measured items (cycling through
the PE schemes) whose prediction is the numbers; bad params are refused."""

import json

import pytest

from pbutil import t

METRICS = ["median_us", "min_us", "p25_us", "p75_us", "spread", "gflops", "gbps"]
SMALL = {"heads": 2, "head_dim": 32, "reps": 3, "threads": 1}
RUNS = {
    # task: (params, samples, buckets, throughput metric)
    "attention": ({"lengths": [64, 128], "pe": ["rope", "alibi"], **SMALL}, 2, [64, 128],
                  "gflops"),
    "decode": ({"lengths": [256, 1024], "pe": "t5", "dtype": "bf16", **SMALL}, 1, [256, 1024],
               "gbps"),
    "rope": ({"lengths": [128, 512], **SMALL}, 1, [128, 512], "gbps"),
    "similarity": ({"vectors": [100, 1000], "dim": 32, "reps": 3, "threads": 1}, 1, [100, 1000],
                   "gflops"),
}


def _spec(name="kernels-nightly"):
    return {
        "name": name,
        "model": {"name": "kernels-cpu", "backend": "oracle"},
        "runs": [{"suite": "kernels", "task": task, "params": params, "samples": samples}
                 for task, (params, samples, _, _) in RUNS.items()],
        "seed": 3,
    }


def test_suite_is_listed(shared_cluster):
    suites = shared_cluster.api.get_json("/api/v1/suites")["suites"]
    (kn,) = [s for s in suites if s["name"] == "kernels"]
    assert kn["metrics"] == METRICS
    tasks = {task["name"]: task for task in kn["tasks"]}
    assert set(tasks) == set(RUNS)
    assert tasks["similarity"]["bucket_unit"] == "vectors"
    assert tasks["attention"]["bucket_unit"] == "tokens"
    attn = tasks["attention"]["params"]
    assert attn["pe"]["default"] == "rope"
    assert attn["pe"]["values"] == ["nope", "rope", "rope-pi", "rope-ntk", "rope-yarn", "alibi",
                                    "t5"]
    assert attn["lengths"]["default"] == [256, 512, 1024, 2048]
    for task in tasks.values():
        assert task["params"]["reps"]["default"] == 7
        assert task["params"]["reps"]["min"] == 3


def test_bad_params_are_refused(shared_cluster):
    spec = _spec("kernels-bad")
    spec["runs"][0]["params"] = {"pe": "sinusoid"}
    r = shared_cluster.api.post("/api/v1/jobs", spec)
    assert r.status == 400, r
    assert "pe" in json.dumps(r.json()), r.json()


def test_job_records_medians_and_spreads(shared_cluster):
    api = shared_cluster.api
    job = api.submit(_spec())
    total = sum(samples * len(buckets) for _, samples, buckets, _ in RUNS.values())
    assert api.wait_job(job, t(60))["items_total"] == total
    res = api.get_json(f"/api/v1/jobs/{job}/results")
    runs = {r["task"]: r for r in res["runs"]}
    assert set(runs) == set(RUNS)
    for task, run in runs.items():
        _, samples, buckets, rate = RUNS[task]
        other = "gbps" if rate == "gflops" else "gflops"
        assert run["accuracy"] == pytest.approx(1.0), (task, run)  # every output checked out
        assert [b["bucket"] for b in run["buckets"]] == buckets, task
        medians = 0
        for b in run["buckets"]:
            m = b["metrics"]
            assert set(m) == set(METRICS), (task, m)
            assert 0 < m["min_us"] <= m["p25_us"] <= m["median_us"] <= m["p75_us"], (task, m)
            assert m["spread"] >= 0, (task, m)
            if samples == 1:  # a mean of one item: the spread of its own quartiles
                assert m["spread"] == pytest.approx(
                    (m["p75_us"] - m["p25_us"]) / m["median_us"], rel=1e-3, abs=1e-9), (task, m)
            assert m[rate] > 0, (task, m)
            assert m[other] is None, (task, m)  # undefined for this kernel: no mean
            assert b["n"] == samples, (task, b)
            medians += m["median_us"]
        assert run["aggregate"]["median_us_total"] == pytest.approx(medians, rel=1e-6), run
        assert run["aggregate"]["accuracy"] == pytest.approx(1.0)

    assert runs["similarity"]["unit"] == "vectors"
    items, _ = api.all_items(job, query="&run=0")
    assert len(items) == 4
    for it in items:
        pred = json.loads(it["prediction"])  # measured numbers, not the oracle's "ok"
        assert pred["ok"] is True and pred["threads"] == 1, pred
        assert pred["median_us"] > 0 and pred["gflops"] > 0, pred
        assert it["reference"] == "ok"
        # items cycle through the pe list: every scheme once per bucket
        assert it["meta"]["pe"] == ("rope", "alibi")[it["idx"] % 2], it
        assert it["meta"]["heads"] == 2 and it["meta"]["reps"] == 3, it
        assert it["latency_us"] >= 3 * pred["min_us"], it  # the reps ran inside it

    # The attention run breaks down by PE scheme: one group per scheme,
    # with a binomial interval only for the score (a rate).
    bd = runs["attention"]["breakdown"]
    assert "pe" in bd, bd.keys()
    groups = {g["value"]: g for g in bd["pe"]["groups"]}
    assert set(groups) == {"rope", "alibi"}, groups
    assert all(g["n"] == 2 and g["accuracy"] == pytest.approx(1.0) for g in groups.values())


def test_default_is_one_case_per_bucket(shared_cluster):
    api = shared_cluster.api
    spec = _spec("kernels-default")
    spec["runs"] = [{"suite": "kernels", "task": "rope", "params": RUNS["rope"][0]}]
    job = api.submit(spec)
    assert api.wait_job(job, t(60))["items_total"] == 2  # two buckets, no "samples"
