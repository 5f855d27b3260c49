"""The longctx suite end to end: listed at GET /api/v1/suites with bucket
unit "chars", every task perfect on the oracle backend with the results
broken down by needle depth (every depth covered in every bucket; cwe and
fwe have none), near zero on the random backend, and sized in tokens when
the model has a tokenizer (the baselines' "words"): the run's unit says
"tokens" and every item's length is at most its bucket and close to it."""

import pytest

from pbutil import t

TASKS = ["passkey", "niah_single_1", "niah_single_2", "niah_single_3", "kv_retrieval",
         "niah_multikey_1", "niah_multikey_2", "niah_multikey_3", "niah_multivalue",
         "niah_multiquery", "variable_tracking", "common_words", "frequent_words",
         "altered_numeric_qa"]
DEPTHLESS = {"common_words", "frequent_words"}
# four needles and a four-key question, or cwe's and fwe's lists, need a
# longer shortest bucket
LONG_MIN = {"niah_multikey_1", "niah_multivalue", "niah_multiquery", "common_words",
            "frequent_words"}
BUCKETS = [1024, 2048]
DEPTHS = 5  # 0, 25, 50, 75, 100 percent
SAMPLES = 10  # two items per depth per bucket


def _spec(name, backend, tokenizer=None, samples=SAMPLES):
    model = {"name": backend, "backend": backend}
    if tokenizer:
        model["tokenizer"] = tokenizer
    return {
        "name": name,
        "model": model,
        "runs": [{"suite": "longctx", "task": task, "samples": samples,
                  "params": {"lengths": BUCKETS, "depths": DEPTHS}} for task in TASKS],
        "seed": 11,
        "shard_size": 16,
    }


def test_suite_is_listed(shared_cluster):
    suites = shared_cluster.api.get_json("/api/v1/suites")["suites"]
    (lc,) = [s for s in suites if s["name"] == "longctx"]
    assert lc["bucket_unit"] == "chars"
    tasks = {task["name"]: task for task in lc["tasks"]}
    assert set(tasks) == set(TASKS)
    for task in tasks.values():
        assert task["params"]["depths"]["default"] == 11, task
        assert task["params"]["threshold"]["default"] == pytest.approx(0.856), task
        assert task["params"]["lengths"]["default"] == [1024, 2048, 4096, 8192, 16384], task
        assert "tokens under the model's tokenizer" in task["params"]["lengths"]["description"]
    for name in TASKS:
        assert tasks[name]["params"]["lengths"]["min"] == (1024 if name in LONG_MIN else 512), name


def test_lengths_error_names_the_unit(shared_cluster):
    spec = _spec("longctx-bad", "oracle")
    spec["runs"] = [{"suite": "longctx", "task": "common_words", "params": {"lengths": [512]}}]
    r = shared_cluster.api.post("/api/v1/jobs", spec)
    assert r.status == 400, r
    assert "length units (tokens under the model's tokenizer, else characters)" in r.text


def _runs(api, job_id, unit="chars", samples=SAMPLES):
    res = api.get_json(f"/api/v1/jobs/{job_id}/results")
    runs = {r["task"]: r for r in res["runs"]}
    assert set(runs) == set(TASKS), runs.keys()
    for task, run in runs.items():
        assert [b["bucket"] for b in run["buckets"]] == BUCKETS, task
        assert run["unit"] == unit, (task, run["unit"])
        assert run["n"] == len(BUCKETS) * samples, (task, run["n"])
    return runs


def test_oracle_is_perfect_and_random_is_not(shared_cluster):
    api = shared_cluster.api
    orc = api.submit(_spec("longctx-oracle", "oracle"))
    rnd = api.submit(_spec("longctx-random", "random"))
    assert api.wait_job(orc, t(120))["items_total"] == len(TASKS) * len(BUCKETS) * SAMPLES
    api.wait_job(rnd, t(120))

    for task, run in _runs(api, orc).items():
        assert run["accuracy"] == pytest.approx(1.0), (task, run)
        agg = run["aggregate"]
        assert agg["accuracy"] == pytest.approx(1.0), (task, agg)
        assert agg["effective_length"] == BUCKETS[-1], (task, agg)
        depth = (run.get("breakdown") or {}).get("depth")
        if task in DEPTHLESS:
            assert not depth or not depth["groups"], (task, depth)
            continue
        assert [g["value"] for g in depth["groups"]] == ["0", "25", "50", "75", "100"], depth
        assert all(g["n"] == len(BUCKETS) * 2 and g["accuracy"] == 1.0
                   for g in depth["groups"]), depth
        cells = {(c["bucket"], c["value"]) for c in depth["grid"]}
        assert cells == {(b, v) for b in BUCKETS for v in ["0", "25", "50", "75", "100"]}

    for task, run in _runs(api, rnd).items():
        # random digits / letters of the reference's length: a short passkey
        # is the only answer chance gets right now and then
        assert run["accuracy"] <= 0.2, (task, run)
        assert run["aggregate"]["effective_length"] == 0, (task, run["aggregate"])


def test_tokens_under_a_tokenizer(shared_cluster):
    api = shared_cluster.api
    samples = 5
    job = api.submit(_spec("longctx-tokens", "oracle", tokenizer="words", samples=samples))
    api.wait_job(job, t(120))
    for task, run in _runs(api, job, unit="tokens", samples=samples).items():
        assert run["accuracy"] == pytest.approx(1.0), (task, run)
        assert run["aggregate"]["effective_length"] == BUCKETS[-1], (task, run["aggregate"])
    items, _ = api.all_items(job)
    assert len(items) == len(TASKS) * len(BUCKETS) * samples
    for it in items:
        bucket, length = it["bucket"], it["meta"]["length"]
        # within 2% or one needle line / filler line (~30 words)
        assert bucket - max(bucket // 50, 32) <= length <= bucket, it
        # items name their run by its index in the spec
        assert ("depth" in it["meta"]) == (TASKS[it["run"]] not in DEPTHLESS), it
