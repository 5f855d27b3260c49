"""The openai backend against posbench-serve (issue 8): the same job run
through a worker's native backend and through its openai backend talking
to posbench-serve on loopback, both over test_native's tiny checkpoint,
gives the same prompts (sized in the model's tokens: natively, and through
the server's /tokenize), the same greedy answers and the same scores."""

import signal
import subprocess

import pytest

from pbutil import binary, running_cluster, t
from test_native import make_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ckpt = str(make_checkpoint(tmp_path_factory.mktemp("serveoai") / "tiny-llama"))
    srv = subprocess.Popen([binary("posbench-serve"), "--model", ckpt, "--name", "tiny",
                            "--listen", "127.0.0.1:0", "--threads", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    assert "listening on http://" in line, line + srv.stderr.read()
    url = line.split()[3].rstrip("/")

    def start(c):
        c.start_coordinator()
        c.start_worker("w1", slots=2, extra=["--threads", "1", "--no-cache"])
        c.wait_workers(1)
    try:
        for c in running_cluster(tmp_path_factory.mktemp("serveoai-cluster"), start):
            yield c, ckpt, url
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=t(10))
        except subprocess.TimeoutExpired:
            srv.kill()
        err = srv.stderr.read()
        assert "ERROR: AddressSanitizer" not in err and "runtime error:" not in err, err


RUNS = [
    {"suite": "arithmetic", "task": "add", "params": {"digits": [1, 3], "format": "plain"},
     "samples": 6},
    {"suite": "longctx", "task": "passkey", "params": {"lengths": [512, 600]}, "samples": 3},
]


def _job(name, model):
    return {"name": name, "model": model, "runs": RUNS, "seed": 21, "shard_size": 8,
            "max_attempts": 1}


def _items(api, job):
    items, _ = api.all_items(job)
    return {(i["run"], i["bucket"], i["idx"]): i for i in items}


def test_openai_through_serve_equals_native(setup):
    c, ckpt, url = setup
    api = c.api
    native = api.submit(_job("native", {"name": "tiny", "backend": "native", "path": ckpt,
                                        "max_tokens": 6, "threads": 1}))
    remote = api.submit(_job("remote", {"name": "tiny", "backend": "openai", "base_url": url,
                                        "model": "tiny", "max_tokens": 6, "max_concurrency": 4}))
    for j in (native, remote):
        job = api.wait_job(j, t(120))
        assert job["items_done"] == job["items_total"] == 6 * 3 + 3 * 2, job
    a, b = _items(api, native), _items(api, remote)
    assert a.keys() == b.keys()
    for k in a:
        assert b[k]["error"] is None, b[k]
        assert a[k]["prompt_hash"] == b[k]["prompt_hash"], k  # same tokens, same prompt
        assert a[k]["prediction"] == b[k]["prediction"], (k, a[k], b[k])
        assert a[k]["score"] == b[k]["score"], k
    # The long-context prompts were sized in the model's tokens both ways.
    ra, rb = (api.get_json(f"/api/v1/jobs/{j}/results")["runs"][1] for j in (native, remote))
    assert ra["length_unit"] == rb["length_unit"] == "tokens", (ra, rb)
    assert any(x["prediction"] for x in a.values()), "the model generated nothing"
