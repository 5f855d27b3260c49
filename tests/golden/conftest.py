"""Fixtures for the golden tests: `golden(op, inputs, isa=..., **params)` runs
the C kernels through pk_golden and returns its float32 output; `isa` is
parametrised over every ISA this CPU runs, so each check covers each path."""

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
