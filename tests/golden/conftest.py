"""Fixtures for the golden tests: `golden(op, inputs, isa=..., **params)` runs
the C kernels through pk_golden and returns its float32 output; `isa` is
parametrised over every ISA this CPU runs, so each check covers each path;
`t5_split` is the sign/magnitude half of HF's T5 bucket shared by both test
files (each finishes the log-spaced half its own way)."""

import os
import subprocess

import numpy as np
import pytest

BIN = os.environ.get("PK_GOLDEN_BIN", "")


def _cpu_isas():
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isas = ["scalar"]
    if {"avx2", "fma"} <= flags:
        isas.append("avx2")
        if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
            isas.append("avx512")
    return isas


ISAS = _cpu_isas()


def run_golden(op, inputs, isa="auto", **params):
    """inputs: numpy arrays written in order (float32 or int32, C order).
    Returns the flat float32 output."""
    if not BIN or not os.path.exists(BIN):
        pytest.fail(f"pk_golden not built (PK_GOLDEN_BIN={BIN!r})", pytrace=False)
    data = b"".join(np.ascontiguousarray(a).tobytes() for a in inputs)
    for a in inputs:
        assert a.dtype in (np.float32, np.int32), f"input dtype {a.dtype}"
    args = [BIN, op] + [f"{k}={v}" for k, v in params.items()]
    env = dict(os.environ, PK_ISA=isa)
    p = subprocess.run(args, input=data, capture_output=True, env=env, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} (isa {isa}) exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')}")
    return np.frombuffer(p.stdout, dtype=np.float32)


@pytest.fixture(params=ISAS)
def isa(request):
    return request.param


@pytest.fixture
def golden(isa):
    def call(op, inputs, **params):
        return run_golden(op, inputs, isa=isa, **params)
    return call


def _t5_split(rel, bidirectional, num_buckets):
    """First half of HF _relative_position_bucket (rel = key - query): returns
    (offset for the sign half, |distance| as int64, buckets per side, max_exact)."""
    rel = np.asarray(rel, dtype=np.int64)
    ret = np.zeros_like(rel)
    nb = num_buckets
    if bidirectional:
        nb //= 2
        ret += (rel > 0).astype(np.int64) * nb
        n = np.abs(rel)
    else:
        n = -np.minimum(rel, 0)
    return ret, n, nb, nb // 2


@pytest.fixture
def t5_split():
    return _t5_split
