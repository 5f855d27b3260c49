"""The retrieval suite end to end: listed at GET /api/v1/suites with its
metrics, and one job per baseline (oracle, random, bm25 as a cross encoder,
hashbow as a dual encoder) through the real coordinator and workers: results
carry nDCG@10, MRR@10, Recall@k, MAP and the teacher-student taus; oracle is
perfect, bm25 and hashbow lie strictly between random and oracle; queries
split over shards rank the same corpus as queries in one shard."""

import json
import math
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
    # bm25 is its own (default) teacher; the oracle ties every negative, so
    # its tau is undefined for every query: no mean at all, not a zero.
    assert m["bm25"]["tau_hard"] == pytest.approx(1.0)
    assert m["oracle"]["tau_hard"] is None
    assert runs["oracle"]["aggregate"]["tau_hard"] is None
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


# ---- a user's retrieval dataset ----

def _rdata():
    """Seven docs, two queries (the unit test's dataset): bm25 ranks q1's
    relevant doc first and q2's second (a score tie broken by docno)."""
    docs = {"d1": "red apple fruit", "d2": "green apple pie", "d3": "zebra stripes animal",
            "d4": "blue sky", "d5": "red car fast", "d6": "zebra crossing road",
            "d7": "ocean wave"}
    rows = [{"type": "doc", "id": k, "text": v} for k, v in docs.items()]
    rows += [{"type": "query", "id": "q1", "text": "zebra stripes",
              "hard_negatives": ["d6", "d4"]},
             {"type": "query", "id": 2, "text": "red", "hard_negatives": ["d5"]},
             {"type": "qrel", "query": "q1", "doc": "d3", "grade": 2},
             {"type": "qrel", "query": "q1", "doc": "d4", "grade": 0},
             {"type": "qrel", "query": 2, "doc": "d1", "grade": 1}]
    return rows


def _upload(api, rows):
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return api.post("/api/v1/datasets?suite=retrieval&name=rd", body,
                    headers={"Content-Type": "application/x-ndjson"})


def _ds_run(api, h, model):
    job = api.submit({"name": "rd-" + model, "model": {"name": model, "backend": model},
                      "runs": [{"suite": "retrieval", "dataset": h}], "shard_size": 1})
    assert api.wait_job(job, t(60))["items_total"] == 2
    (run,) = api.get_json(f"/api/v1/jobs/{job}/results")["runs"]
    items, _ = api.all_items(job)
    return run, sorted(items, key=lambda it: it["idx"])


def test_dataset_oracle_and_bm25(shared_cluster):
    api = shared_cluster.api
    r = _upload(api, _rdata())
    assert r.status in (200, 201), r
    rec = r.json()
    assert rec["suite"] == "retrieval"
    assert rec["buckets"] == [{"bucket": 7, "lines": 2}]  # the corpus size; its queries
    h = rec["hash"]
    run, items = _ds_run(api, h, "oracle")
    assert [(b["bucket"], b["n"]) for b in run["buckets"]] == [(7, 2)]
    for k in ("ndcg@10", "mrr@10", "map", "recall@10"):
        assert run["metrics"][k] == pytest.approx(1.0), (k, run["metrics"])
    assert [it["reference"] for it in items] == ["d3 2", "d1 1"]
    assert [it["meta"]["id"] for it in items] == ["q1", "2"]
    bm, items = _ds_run(api, h, "bm25")
    m = bm["metrics"]
    assert 0 < m["ndcg@10"] < 1
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert m["mrr@10"] == pytest.approx(0.75) and m["map"] == pytest.approx(0.75)
    # q1: d6 > d4 agree (tau 1); q2 has one hard negative, no pair: left out
    assert m["tau_hard"] == pytest.approx(1.0)
    assert [it["prediction"].split()[:2] for it in items] == [["d3", "d6"], ["d5", "d1"]]
    again, items2 = _ds_run(api, h, "bm25")
    assert again["metrics"] == m
    assert [(a["prediction"], a["score"]) for a in items] == \
        [(b["prediction"], b["score"]) for b in items2]


@pytest.mark.parametrize("bad,line,what", [
    ({"type": "qrel", "query": "q1", "doc": "d9", "grade": 1}, 13, 'unknown doc "d9"'),
    ({"type": "qrel", "query": "q1", "doc": "d3", "grade": -1}, 13, '"grade"'),
    ({"type": "qrel", "query": "q1", "doc": "d3", "grade": 1}, 13, "duplicate qrel"),
])
def test_dataset_bad_qrel_names_the_line(shared_cluster, bad, line, what):
    api = shared_cluster.api
    r = _upload(api, _rdata() + [bad])
    assert r.status == 400, r
    err = r.json()
    assert err["field"] == f"line {line}", err
    assert err["error"].startswith(f"line {line}: ") and what in err["error"], err
