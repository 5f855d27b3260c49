"""The kernels benchmark runs end to end at small shapes and prints every
figure it promises (a finite, positive rate per row), so bench/ cannot rot
between the runs that measure the issue's figures."""

import math
import re
import subprocess

import pbutil

ROW = re.compile(r"^(\S.{23}) (.{30}) +([0-9.]+) +([0-9.]+) (GB/s|GFLOP/s)")


def run(*args, timeout=300):
    return subprocess.run([pbutil.binary("bench/bench_kernels"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_quick_run_prints_every_kernel():
    p = run("--quick", "--reps", "1", "--threads", "2")
    assert p.returncode == 0, p.stderr
    assert "posbench kernel benchmark: isa" in p.stdout
    rows = {}
    for line in p.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rows.setdefault(m.group(1).strip(), []).append(float(m.group(4)))
    kernels = ["stream triad", "stream read", "stream update (in place)", "sgemm (built-in)",
               "decode attention", "prefill attention", "rope apply", "kv re-rotate",
               "similarity top-k"]
    if "BLAS builtin" not in p.stdout:  # configure found OpenBLAS
        kernels.append("sgemm (cblas_sgemm)")
    assert "pk_sgemm uses" in p.stdout
    for kernel in kernels:
        assert kernel in rows, f"no {kernel!r} row in:\n{p.stdout}"
        assert all(r > 0 and math.isfinite(r) for r in rows[kernel]), (kernel, rows[kernel])
    assert len(rows["decode attention"]) == 4  # 4k and 8k keys, f32 and bf16
    assert len(rows["prefill attention"]) == 9  # every PE scheme
    assert p.stdout.count("x NoPE") == 9


def test_bad_arguments_are_named():
    p = run("--isa", "sse9")
    assert p.returncode == 2
    assert "--isa sse9" in p.stderr
    assert run("--help").returncode == 0
