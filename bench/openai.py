#!/usr/bin/python3
"""End-to-end figures for the openai backend: one real posbench-worker (one
slot, --no-cache) evaluates arithmetic jobs through a coordinator against
bench_instant_server (a C instant-answer server: a Python one tops out near
2,500 requests/s here), at max_concurrency 1, 16 and 64. Prints requests/s
(submit to job done, so generation, scoring and recording are in it) and
the worker's CPU time per request from /proc/PID/stat, beside the server's.
Figures, not pass/fail. Usage: openai.py [--builddir DIR] [--requests N]
[--conc 1,16,64]."""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.environ.get("PB_BUILDDIR", os.getcwd()))
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--conc", default="1,16,64")
    args = ap.parse_args()
    os.environ["PB_BUILDDIR"] = os.path.abspath(args.builddir)
    import pbutil

    port = free_port()
    server = subprocess.Popen([os.path.join(args.builddir, "bench", "bench_instant_server"),
                               "--port", str(port)], stdout=subprocess.DEVNULL)
    time.sleep(0.2)
    with tempfile.TemporaryDirectory() as d:
        c = pbutil.Cluster(d)
        try:
            c.start_coordinator()
            w = c.start_worker("bench", slots=1, extra=["--no-cache", "--log-level", "warn"])
            c.wait_workers(1)
            print(f"one posbench-worker (1 slot, no cache) against bench_instant_server, "
                  f"{args.requests} requests per row")
            print(f"{'concurrency':>11} {'requests/s':>11} {'worker cpu us/req':>18} "
                  f"{'server cpu us/req':>18}")
            for k, conc in enumerate(int(x) for x in args.conc.split(",")):
                model = {"base_url": f"http://127.0.0.1:{port}", "model": "m",
                         "max_concurrency": conc, "tokenize": False}
                job = pbutil.spec(name=f"oai-bench-{conc}", backend="openai", digits=(3, 3),
                                  samples=args.requests, seed=100 + k, model_extra=model,
                                  shard_size=max(256, 16 * conc))
                w0, s0 = cpu_s(w.pid), cpu_s(server.pid)
                t0 = time.monotonic()
                j = c.api.submit(job)
                done = c.api.wait_job(j, 600)
                wall = time.monotonic() - t0
                n = done["items_done"]
                print(f"{conc:>11} {n / wall:>11.0f} {(cpu_s(w.pid) - w0) * 1e6 / n:>18.1f} "
                      f"{(cpu_s(server.pid) - s0) * 1e6 / n:>18.1f}", flush=True)
        finally:
            c.close()
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
