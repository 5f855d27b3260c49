"""The retrieval suite end to end: listed at GET /api/v1/suites with its
metrics, and one job per baseline (oracle, random, bm25 as a cross encoder,
hashbow as a dual encoder) through the real coordinator and workers: results
carry nDCG@10, MRR@10, Recall@k, MAP and the teacher-student taus; oracle is
perfect, bm25 and hashbow lie strictly between random and oracle; queries
split over shards rank the same corpus as queries in one shard."""

import re

import pytest

from pbutil import t

METRICS = ["ndcg@10", "mrr@10", "recall@1", "recall@10", "recall@100", "map",
           "tau_hard", "tau_easy"]
SIZES = [300, 1000]
SAMPLES = 12


def _spec(name, model, shard_size=6):
    return {
        "name": name,
        "model": dict({"name": name}, **model),
        "runs": [{"suite": "retrieval", "task": "synthetic", "samples": SAMPLES,
                  "params": {"corpus_sizes": SIZES}}],
        "seed": 11,
        "shard_size": shard_size,
    }


def test_suite_is_listed(shared_cluster):
    suites = shared_cluster.api.get_json("/api/v1/suites")["suites"]
    (ret,) = [s for s in suites if s["name"] == "retrieval"]
    assert ret["bucket_unit"] == "docs"
    assert ret["metrics"] == METRICS
    (task,) = ret["tasks"]
    assert task["name"] == "synthetic"
    assert task["params"]["corpus_sizes"]["default"] == [1000, 10000]


def _run(api, job_id):
    res = api.get_json(f"/api/v1/jobs/{job_id}/results")
    (run,) = res["runs"]
    assert [b["bucket"] for b in run["buckets"]] == SIZES
    assert run["n"] == len(SIZES) * SAMPLES
    assert set(run["metrics"]) == set(METRICS), run["metrics"]
    for b in run["buckets"]:
        assert set(b["metrics"]) == set(METRICS), b
        # the score of an item is its nDCG@10
        assert b["accuracy"] == pytest.approx(b["metrics"]["ndcg@10"]), b
    assert run["aggregate"]["ndcg@10"] == pytest.approx(run["metrics"]["ndcg@10"])
    return run


def test_baselines_between_floor_and_oracle(shared_cluster):
    api = shared_cluster.api
    jobs = {
        "oracle": api.submit(_spec("ret-oracle", {"backend": "oracle"})),
        "random": api.submit(_spec("ret-random", {"backend": "random"})),
        "bm25": api.submit(_spec("ret-bm25", {"backend": "bm25"})),
        "hashbow": api.submit(_spec("ret-hashbow", {"backend": "hashbow", "dim": 512,
                                                    "teacher": {"backend": "bm25", "k1": 1.2,
                                                                "b": 0.75}})),
    }
    runs = {}
    for name, job_id in jobs.items():
        assert api.wait_job(job_id, t(120))["items_total"] == len(SIZES) * SAMPLES
        runs[name] = _run(api, job_id)
    m = {name: run["metrics"] for name, run in runs.items()}

    for k in ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map"):
        assert m["oracle"][k] == pytest.approx(1.0), (k, m["oracle"])
    for k in ("ndcg@10", "mrr@10", "map"):
        assert m["random"][k] < 0.2, (k, m["random"])
        for model in ("bm25", "hashbow"):
            assert m["random"][k] < m[model][k] < m["oracle"][k], (k, model, m)
    # bm25 is its own (default) teacher; the oracle ties every negative.
    assert m["bm25"]["tau_hard"] == pytest.approx(1.0)
    assert m["oracle"]["tau_hard"] == 0.0
    assert -1.0 <= m["hashbow"]["tau_hard"] < 1.0

    items, _ = api.all_items(jobs["bm25"], query="&run=0&bucket=1000")
    assert len(items) == SAMPLES
    for it in items:
        docs = it["prediction"].split()
        assert len(docs) == 10 and len(set(docs)) == 10, it
        assert all(re.fullmatch(r"d\d{6}", d) for d in docs), it
        qrels = [line.split() for line in it["reference"].splitlines()]
        assert qrels and all(g in ("1", "2") for _, g in qrels), it
        assert qrels[0][1] == "2", it


def test_shards_rank_one_corpus(shared_cluster):
    api = shared_cluster.api
    split = api.submit(_spec("ret-split", {"backend": "hashbow"}, shard_size=4))
    whole = api.submit(_spec("ret-whole", {"backend": "hashbow"}, shard_size=SAMPLES))
    api.wait_job(split, t(120))
    api.wait_job(whole, t(120))
    a, _ = api.all_items(split)
    b, _ = api.all_items(whole)
    key = lambda it: (it["bucket"], it["idx"])  # noqa: E731
    a = sorted(a, key=key)
    b = sorted(b, key=key)
    assert len(a) == len(b) == len(SIZES) * SAMPLES
    for x, y in zip(a, b):
        assert (x["prediction"], x["reference"], x["score"]) == \
            (y["prediction"], y["reference"], y["score"])


def test_bad_teacher_fails_the_task(shared_cluster):
    api = shared_cluster.api
    job = api.submit(_spec("ret-bad", {"backend": "bm25", "teacher": {"backend": "nope"}}))
    j = api.wait_job(job, t(60), states=("failed",))
    assert j["state"] == "failed"


def test_unknown_backend_and_bad_params_rejected(shared_cluster):
    api = shared_cluster.api
    r = api.post("/api/v1/jobs", _spec("ret-x", {"backend": "nope"}))
    assert r.status == 400 and r.json()["field"] == "model.backend", r
    spec = _spec("ret-y", {"backend": "bm25"})
    spec["runs"][0]["params"]["corpus_sizes"] = [10]
    r = api.post("/api/v1/jobs", spec)
    assert r.status == 400 and "corpus_sizes" in r.json()["field"], r
