"""The openai backend end to end: a real coordinator and worker evaluate an
arithmetic job against fault_server.py, an OpenAI-compatible server that
misbehaves on request. Answers are complete and correct (chat and
completion); retried faults (500, 429 with Retry-After, dropped connections)
recover; bodies that are not the expected JSON, 4xx answers, timeouts and
oversized bodies are per-item errors naming what was wrong, each attempt
counted by the server; an unreachable server fails the task; a re-run job
is answered from the worker's response cache; the API key reaches the
server but never the store, the logs or an error message; a ranking run
uses /v1/embeddings and /v1/rerank; a server with /tokenize sizes a
long-context run in its tokens."""

import os
import time
import uuid

import pytest

from fault_server import FaultServer, answer
from pbutil import running_cluster, spec, t

SECRET = "sk-test-" + uuid.uuid4().hex
KEY_ENV = "PB_TEST_OPENAI_KEY"


@pytest.fixture(scope="module")
def oai(tmp_path_factory):
    srv = FaultServer(key=SECRET)
    d = tmp_path_factory.mktemp("openai")

    def setup(c):
        c.start_coordinator()
        c.start_worker("w1", slots=2, extra=["--response-cache", str(d / "responses.sqlite")],
                       env={KEY_ENV: SECRET})
        c.wait_workers(1)
        c.srv = srv
        c.cache_path = str(d / "responses.sqlite")
    try:
        yield from running_cluster(d, setup)
    finally:
        srv.close()


def model(srv, fault, **kw):
    m = {"base_url": srv.url(fault), "model": "m1", "max_concurrency": 8, "timeout_s": 5,
         "backoff_ms": 10, "api_key_env": KEY_ENV}
    m.update(kw)
    return m


def run_job(c, fault, name, samples=8, digits=(1, 2), states=("done",), seed=11, shard_size=16,
            **kw):
    """Submit an arithmetic job against fault mode and wait; returns (job, items)."""
    j = c.api.submit(spec(name=name, backend="openai", digits=digits, samples=samples,
                          seed=seed, fmt="plain", model_extra=model(c.srv, fault, **kw),
                          max_attempts=1, shard_size=shard_size))
    job = c.api.wait_job(j, t(30), states=states)
    items, _ = c.api.all_items(j)
    return job, items


def completions(c, mode):
    return c.srv.count(mode, "/v1/completions") + c.srv.count(mode, "/v1/chat/completions")


def n_tasks(job):
    ts = job["tasks"]
    return sum(v for v in ts.values() if isinstance(v, int)) if isinstance(ts, dict) else len(ts)


def test_answers_are_complete_and_correct_then_cached(oai):
    tok_before, tasks = oai.srv.count("instant", "/tokenize"), 0
    for chat in (False, True):
        mode = "instant"
        before = completions(oai, mode)
        job, items = run_job(oai, mode, f"instant-{chat}", samples=10,
                             **({"mode": "chat"} if chat else {}))
        assert len(items) == job["items_total"] == 20
        for it in items:
            assert it["error"] is None and it["score"] == 1.0, it
            assert it["prediction"] == it["reference"], it
        assert completions(oai, mode) - before == 20
        # the same job again: every answer from the worker's cache
        job2, items2 = run_job(oai, mode, f"instant-{chat}-again", samples=10,
                               **({"mode": "chat"} if chat else {}))
        assert completions(oai, mode) - before == 20, "a re-run paid the server again"
        assert sorted(i["prediction"] for i in items2) == sorted(i["prediction"] for i in items)
        tasks += n_tasks(job) + n_tasks(job2)
    # this server has no /tokenize: each task asked once, then went on in characters
    assert oai.srv.count("instant", "/tokenize") - tok_before == tasks


def test_no_cache_model_option_pays_again(oai):
    before = completions(oai, "instant")
    for k in range(2):
        run_job(oai, "instant", f"nocache-{k}", samples=3, digits=(3, 3), cache=False)
    assert completions(oai, "instant") - before == 6


def test_connections_are_kept_alive_and_reused(oai):
    job, items = run_job(oai, "reuse", "reuse", samples=64, digits=(3, 3), max_concurrency=4,
                         cache=False, shard_size=64)
    assert len(items) == 64
    assert oai.srv.count("reuse", "/v1/completions") == 64
    # one task: its four connections (and the /tokenize probe's) carry all 65 requests
    assert len(oai.srv.conns["reuse"]) <= 5, oai.srv.conns["reuse"]


def test_transient_faults_are_retried_until_right(oai):
    job, items = run_job(oai, "flaky", "flaky", samples=12, digits=(4, 4))
    assert len(items) == 12
    assert all(i["error"] is None and i["score"] == 1.0 for i in items), items
    # 500, 429, a dropped connection, then the answer: four attempts each
    assert completions(oai, "flaky") == 4 * len(items)


def test_bad_bodies_are_item_errors_naming_what_was_wrong(oai):
    job, items = run_job(oai, "mixed", "mixed", samples=12)
    assert job["state"] == "done" and len(items) == 24
    kinds = {0: 0, 1: 0, 2: 0, 3: 0}
    for it in items:
        kind = int(it["reference"]) % 4
        kinds[kind] += 1
        if kind == 0:
            assert it["error"] is None and it["score"] == 1.0, it
            continue
        assert it["score"] == 0 and it["prediction"] == "", it
        want = {1: "not JSON", 2: "choices[0].text", 3: "HTTP 400"}[kind]
        assert want in it["error"], it
    assert all(kinds.values()), kinds
    # none of these is retried: one request per item
    assert completions(oai, "mixed") == len(items)


@pytest.mark.parametrize("mode,want,retried,extra", [
    ("500", "HTTP 500", True, {}),
    ("drop", "Server returned nothing", True, {}),
    ("truncated", "partial file", True, {}),
    ("cut", "not JSON", False, {}),
    ("huge", "larger than 1048576 bytes", False, {"max_response_mb": 1}),
    ("slow-1500", "Timeout", True, {"timeout_s": 0.3}),
])
def test_persistent_faults_are_item_errors(oai, mode, want, retried, extra):
    job, items = run_job(oai, mode, f"fault-{mode}", samples=2, digits=(2, 2), retries=2,
                         **extra)
    assert job["state"] == "done" and len(items) == 2
    for it in items:
        assert it["score"] == 0 and want in it["error"], it
    hits = completions(oai, mode)
    if mode in ("drop", "truncated"):
        # curl itself resends once on a fresh connection when a reused one
        # turns out dead: up to two hits per attempt
        assert len(items) * 3 <= hits <= len(items) * 6, hits
    else:
        assert hits == len(items) * (3 if retried else 1)


@pytest.mark.parametrize("mode", ["429", "429date"])
def test_429_waits_for_retry_after(oai, mode):
    t0 = time.monotonic()
    job, items = run_job(oai, mode, f"rate-{mode}", samples=2, digits=(1, 1), retries=1,
                         backoff_ms=1)
    assert time.monotonic() - t0 >= 0.9, "the retry did not wait for Retry-After"
    assert all("HTTP 429" in i["error"] for i in items), items
    assert completions(oai, mode) == 2 * len(items)


def test_unreachable_server_fails_the_task(oai):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    m = model(oai.srv, "x", base_url=f"http://127.0.0.1:{port}", retries=2)
    j = oai.api.submit(spec(name="unreachable", backend="openai", digits=(1, 1), samples=2,
                            model_extra=m, max_attempts=1))
    job = oai.api.wait_job(j, t(30), states=("failed",))
    (ft,) = job["failed_tasks"]
    assert "unreachable" in ft["error"] and "3 attempts" in ft["error"], ft


@pytest.mark.parametrize("extra,field", [
    ({"base_url": None}, "model.base_url"),
    ({"base_url": "ftp://x"}, "model.base_url"),
    ({"model": None}, "model.model"),
    ({"mode": "edit"}, "model.mode"),
    ({"max_concurrency": 0}, "model.max_concurrency"),
    ({"timeout_s": "soon"}, "model.timeout_s"),
    ({"api_key_env": "PB_TEST_NO_SUCH_VARIABLE"}, "model.api_key_env"),
    ({"rerank": "cohere"}, "model.rerank"),
    ({"extra": [1]}, "model.extra"),
])
def test_bad_spec_fails_naming_the_field(oai, extra, field):
    """Shapes are refused at submit (400 naming the field); a key variable
    missing from the worker's environment can only fail the task there."""
    m = model(oai.srv, "instant")
    m.update(extra)
    for k in [k for k, v in m.items() if v is None]:
        del m[k]
    body = spec(name="bad-spec", backend="openai", digits=(1, 1), samples=1, model_extra=m,
                max_attempts=1)
    if field != "model.api_key_env":
        r = oai.api.post("/api/v1/jobs", body)
        assert r.status == 400 and r.json()["field"] == field, r
        return
    j = oai.api.submit(body)
    job = oai.api.wait_job(j, t(30), states=("failed",))
    (ft,) = job["failed_tasks"]
    assert field in ft["error"], ft
    assert "PB_TEST_NO_SUCH_VARIABLE is not set" in ft["error"], ft


def test_api_key_is_sent_but_never_stored_logged_or_echoed(oai):
    job, items = run_job(oai, "auth", "auth", samples=8)
    assert f"Bearer {SECRET}" in oai.srv.auth_seen
    odd = [i for i in items if int(i["reference"]) % 2]
    even = [i for i in items if not int(i["reference"]) % 2]
    assert odd and even
    assert all(i["error"] is None and i["score"] == 1.0 for i in even), even
    # the server quoted the Authorization header back: scrubbed in the error
    for i in odd:
        assert "HTTP 500" in i["error"] and "upstream refused Bearer ***" in i["error"], i
        assert SECRET not in i["error"]
    spec_back = oai.api.job(job["id"])
    assert SECRET not in str(spec_back)
    for root, _, files in os.walk(oai.dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert SECRET.encode() not in fh.read(), f"the API key is in {f}"


def test_ranking_uses_embeddings_and_rerank(oai):
    api = oai.api
    rerank = model(oai.srv, "instant", rerank="rerank")
    rerank["backend"] = "openai"
    j = api.submit({"name": "oai-retrieval",
                    "model": {"name": "emb", "backend": "openai",
                              **model(oai.srv, "instant"), "teacher": rerank},
                    "runs": [{"suite": "retrieval", "task": "synthetic", "samples": 4}],
                    "seed": 5, "max_attempts": 1})
    job = api.wait_job(j, t(60))
    items, _ = api.all_items(j)
    assert len(items) == job["items_total"] > 0
    assert all(i["error"] is None for i in items), items[:3]
    assert oai.srv.count("instant", "/v1/embeddings") > 0
    assert oai.srv.count("instant", "/v1/rerank") >= len(items)
    assert answer("12+30=") == "42"


def test_rerank_teacher_scores_a_round_concurrently(oai):
    """The retrieval teacher's rerank requests for a round of queries are in
    flight together, not one after another."""
    api = oai.api
    teacher = model(oai.srv, "slow-300", rerank="rerank", max_concurrency=8)
    teacher["backend"] = "openai"
    j = api.submit({"name": "oai-rerank-round",
                    "model": {"name": "emb", "backend": "openai",
                              **model(oai.srv, "instant"), "teacher": teacher},
                    "runs": [{"suite": "retrieval", "task": "synthetic", "samples": 8}],
                    "seed": 6, "max_attempts": 1, "shard_size": 8})
    job = api.wait_job(j, t(60))
    items, _ = api.all_items(j)
    assert len(items) == job["items_total"] >= 8, job  # 8 queries per bucket
    assert all(i["error"] is None for i in items), items[:2]
    assert oai.srv.count("slow-300", "/v1/rerank") == len(items)
    assert oai.srv.peak[("slow-300", "/v1/rerank")] >= 4, oai.srv.peak


def test_server_tokenizer_sizes_prompts_in_tokens(oai):
    api = oai.api
    j = api.submit({"name": "oai-longctx",
                    "model": {"name": "tok", "backend": "openai", **model(oai.srv, "tok")},
                    "runs": [{"suite": "longctx", "task": "passkey", "samples": 2,
                              "params": {"lengths": [512], "depths": 2}}],
                    "seed": 3, "max_attempts": 1})
    api.wait_job(j, t(60))
    (run,) = api.get_json(f"/api/v1/jobs/{j}/results")["runs"]
    assert run["unit"] == "tokens", run
    items, _ = api.all_items(j)
    assert len(items) == 2
    for it in items:
        # the fault server counts words: close to the bucket, never over it
        assert 450 <= it["meta"]["length"] <= 512, it
        assert it["error"] is None, it
    assert oai.srv.count("tok", "/tokenize") > 2


def test_cancel_stops_requests_in_flight(oai):
    """A job stuck on a slow server is cancelled: the worker gives the batch
    up at once (its slots come free for the next job) instead of waiting
    out the server's timeout and retries."""
    api = oai.api
    # Two tasks: both of the worker's slots wait on the slow server.
    slow = api.submit(spec(name="cancel-slow", backend="openai", digits=(1, 2), samples=4,
                           fmt="plain", max_attempts=1, shard_size=4,
                           model_extra=model(oai.srv, "slow-20000", timeout_s=30, retries=3,
                                             cache=False)))
    deadline = time.time() + t(10)
    while api.job(slow)["tasks"].get("leased", 0) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the requests are in flight
    t0 = time.time()
    assert api.post(f"/api/v1/jobs/{slow}/cancel").status == 200
    # Both slots free again: a two-task job finishes well before the slow
    # server would have answered (20 s) or the backend timed out (30 s).
    quick = api.submit(spec(name="after-cancel", backend="openai", digits=(1, 2), samples=2,
                            fmt="plain", max_attempts=1, shard_size=2,
                            model_extra=model(oai.srv, "instant", cache=False)))
    api.wait_job(quick, t(8))
    assert time.time() - t0 < 8, "the cancelled task held its slot"
    assert api.job(slow)["state"] == "cancelled"
