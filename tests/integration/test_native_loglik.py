"""The native backend's loglik op (worker/backend.h; no suite calls it yet)
through tests/engine/pb_loglik on test_native's tiny byte-level checkpoint:
each continuation's log-likelihood and greedy flag equal the engine
driver's (pe_forward --mode loglik) on the same tokens; the context's
trailing whitespace moves to the continuation; an empty context is scored
after EOS; a continuation adding no token is refused."""

import json
import os
import subprocess

import pytest

from test_native import make_checkpoint

CONTEXT = "Question: the capital of France? Answer:"
CONTS = [" Paris", " London", " a much longer continuation, with punctuation.", "x"]


def binary(rel):
    return os.path.join(os.environ.get("PB_BUILDDIR", "."), rel)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return str(make_checkpoint(tmp_path_factory.mktemp("ll") / "tiny-llama"))


def run(tool, *args, ok=True):
    p = subprocess.run([binary(tool), *args], capture_output=True, text=True, timeout=60)
    assert (p.returncode == 0) == ok, p.stdout + p.stderr
    assert "runtime error" not in p.stderr and "Sanitizer" not in p.stderr, p.stderr
    return json.loads(p.stdout)


def engine(ckpt, ctx_ids, cont_ids):
    ids = ",".join(map(str, ctx_ids + cont_ids))
    return run("tests/engine/pe_forward", ckpt, "--ids", ids, "--mode", "loglik",
               "--n", str(len(cont_ids)))


def test_loglik_equals_the_engine(ckpt):
    got = run("tests/engine/pb_loglik", ckpt, CONTEXT, *CONTS)
    assert len(got["ll"]) == len(CONTS)
    for i, c in enumerate(CONTS):
        # Byte-level vocabulary without merges: one token per byte, no BOS.
        want = engine(ckpt, list(CONTEXT.encode()), list(c.encode()))
        assert abs(got["ll"][i] - want["ll"]) < 1e-6 * max(1, abs(want["ll"]))
        assert got["greedy"][i] == want["greedy"]
        assert got["ll"][i] < 0
    assert len(set(got["ll"])) == len(CONTS)


def test_trailing_space_moves_to_the_continuation(ckpt):
    a = run("tests/engine/pb_loglik", ckpt, CONTEXT + " ", "Paris")
    b = run("tests/engine/pb_loglik", ckpt, CONTEXT, " Paris")
    assert a["ll"] == b["ll"] and a["greedy"] == b["greedy"]


def test_empty_context_is_scored_after_eos(ckpt):
    got = run("tests/engine/pb_loglik", ckpt, "", "hi")
    want = engine(ckpt, [256], list(b"hi"))
    assert abs(got["ll"][0] - want["ll"]) < 1e-6 * max(1, abs(want["ll"]))


def test_empty_continuation_is_refused(ckpt):
    got = run("tests/engine/pb_loglik", ckpt, CONTEXT, " ok", "", ok=False)
    assert "adds no token" in got["error"]
