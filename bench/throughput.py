#!/usr/bin/python3
"""End-to-end throughput of posbench on loopback: a coordinator and N worker
processes run no-op-ish tasks (oracle backend, 1-digit additions, 40 items a
task); we time submit -> every job done and read the coordinator's queue
latency from /metrics. A second phase measures dispatch latency with 1,000+
tasks waiting: a probe worker (a python DEALER, 1 slot) returns each task at
once and times RESULT sent -> next TASK received. Prints figures, not
pass/fail. Usage: throughput.py [--builddir DIR] [options] (see --help)."""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"tasks_s": 5000, "items_s": 200000, "p99_ms": 10}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.environ.get("PB_BUILDDIR", os.getcwd()))
    ap.add_argument("--configs", default="16x1,16x4,64x1,64x4",
                    help="worker processes x slots each, comma separated (default %(default)s)")
    ap.add_argument("--tasks", default="20000,20000,1000",
                    help="tasks per configuration, one per --items value (default %(default)s)")
    ap.add_argument("--items", default="1,40,1000",
                    help="items per task (shard_size), comma separated: 1 measures tasks/s, "
                         "1000 items/s (default %(default)s)")
    ap.add_argument("--jobs", type=int, default=4, help="jobs the tasks are split into")
    ap.add_argument("--waiting", type=int, default=1000,
                    help="tasks that stay queued during the latency probe")
    ap.add_argument("--probes", type=int, default=1000, help="dispatches timed by the probe")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per configuration")
    ap.add_argument("--json", help="also write the figures to this file")
    return ap.parse_args()


def job_spec(name, tasks, items):
    return {"name": name, "model": {"name": "oracle", "backend": "oracle"},
            "runs": [{"suite": "arithmetic", "task": "add",
                      "params": {"digits": [1, 1], "format": "plain"},
                      "samples": tasks * items}],
            "seed": 7, "shard_size": items, "max_attempts": 3, "timeout_s": 600}


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_config(pbutil, workers, slots, tasks, items, args, tmp):
    c = pbutil.Cluster(tmp)
    try:
        c.start_coordinator(["--log-level", "warn"])
        for i in range(workers):
            c.start_worker(f"b{i + 1}", slots, env={"PB_LOG": "warn"})
        c.wait_workers(workers, timeout=120)
        per_job = [tasks // args.jobs + (1 if j < tasks % args.jobs else 0)
                   for j in range(args.jobs)]
        cpu0 = cpu_seconds(c.coord.pid)
        wcpu0 = sum(cpu_seconds(w.pid) for w in c.workers.values())
        t0 = time.monotonic()
        ids = [c.api.submit(job_spec(f"bench-{j}", n, items))
               for j, n in enumerate(per_job) if n > 0]
        t_submitted = time.monotonic()
        pending = set(ids)
        deadline = t0 + args.timeout
        # Poll the cheap /healthz until the queue is empty, then the jobs, so
        # the benchmark's own polling costs the coordinator next to nothing.
        while c.api.get_json("/healthz")["queue_depth"] > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("timed out with tasks still queued")
            time.sleep(0.05)
        while pending:
            for j in list(pending):
                state = c.api.job(j)["state"]
                if state != "running" and state != "queued":
                    if state != "done":
                        raise RuntimeError(f"job {j} ended {state}")
                    pending.discard(j)
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out with jobs {sorted(pending)} unfinished")
            time.sleep(0.02)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(c.coord.pid) - cpu0
        wcpu = sum(cpu_seconds(w.pid) for w in c.workers.values()) - wcpu0
        metrics, _ = c.api.metrics()
        recorded = c.sql("SELECT count(*) FROM items")[0][0]
        return {
            "workers": workers, "slots": slots, "tasks": tasks, "items_per_task": items,
            "items": recorded, "wall_s": wall, "submit_s": t_submitted - t0,
            "tasks_s": tasks / wall, "items_s": recorded / wall,
            "coord_cpu_pct": 100.0 * cpu / wall,
            "workers_cpu_pct": 100.0 * wcpu / wall,
            "metric_p50_ms": 1000 * metrics.get('posbench_queue_latency_seconds{quantile="0.5"}',
                                                float("nan")),
            "metric_p99_ms": 1000 * metrics.get('posbench_queue_latency_seconds{quantile="0.99"}',
                                                float("nan")),
        }
    finally:
        for p in c.close():
            print(f"warning: {p[:500]}", file=sys.stderr)


def probe_latency(pbutil, args, tmp):
    """Dispatch latency with >= args.waiting tasks queued behind the probe."""
    import zmq
    c = pbutil.Cluster(tmp)
    ctx = zmq.Context()
    s = None
    try:
        c.start_coordinator(["--log-level", "warn"])
        total = args.waiting + args.probes + 1
        job_id = c.api.submit(job_spec("probe", total, 1))
        pbutil.wait_for(lambda: c.api.get_json("/healthz")["queue_depth"] == total, 60, 0.05,
                        "the queue to fill")
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(c.broker)

        def send(typ, body):
            s.send_multipart([b"PB1", typ, json.dumps(body).encode()])

        def next_task(timeout=10.0):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if s.poll(int(max(1, (end - time.monotonic()) * 1000))):
                    f = s.recv_multipart()
                    if len(f) == 3 and f[1] == b"TASK":
                        return json.loads(f[2]), time.perf_counter()
                    if len(f) >= 2 and f[1] == b"RESET":
                        raise RuntimeError("probe was RESET")
            raise RuntimeError("no TASK for the probe")

        send(b"HELLO", {"name": "probe", "protocol": "PB1",
                        "capabilities": {"device": "cpu", "backends": ["oracle"], "slots": 1}})
        send(b"READY", {"credit": 1})
        task, _ = next_task()
        lat, depth_min, last_hb = [], None, time.monotonic()
        for i in range(args.probes):
            lo, hi = task["item_lo"], task["item_hi"]
            items = [{"idx": k, "prompt_hash": "0", "prediction": "1", "reference": "1",
                      "score": 1.0, "latency_us": 0, "tokens": 1} for k in range(lo, hi)]
            body = {"task_id": task["task_id"], "attempt": task["attempt"], "items": items,
                    "aggregate": {"n": hi - lo, "score_sum": float(hi - lo)}}
            t_sent = time.perf_counter()
            send(b"RESULT", body)
            send(b"READY", {"credit": 1})
            task, t_got = next_task()
            lat.append((t_got - t_sent) * 1000)
            if time.monotonic() - last_hb > 0.3:
                send(b"HEARTBEAT", {"tasks": [task["task_id"]]})
                last_hb = time.monotonic()
        depth_min = c.api.get_json("/healthz")["queue_depth"]
        metrics, _ = c.api.metrics()
        lat.sort()
        return {
            "probes": len(lat), "queued_after": depth_min,
            "p50_ms": statistics.median(lat), "p99_ms": lat[int(0.99 * (len(lat) - 1))],
            "max_ms": lat[-1], "mean_ms": statistics.fmean(lat),
            "metric_p99_ms": 1000 * metrics.get('posbench_queue_latency_seconds{quantile="0.99"}',
                                                float("nan")),
            "job": job_id,
        }
    finally:
        if s is not None:
            s.close(0)
        ctx.destroy(linger=0)
        for p in c.close():
            print(f"warning: {p[:500]}", file=sys.stderr)


def main():
    args = parse_args()
    os.environ["PB_BUILDDIR"] = os.path.abspath(args.builddir)
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    import pbutil  # noqa: E402  (reads PB_BUILDDIR at import)

    configs = []
    for part in args.configs.split(","):
        w, _, sl = part.strip().partition("x")
        configs.append((int(w), int(sl or 1)))
    sizes = [int(x) for x in args.items.split(",")]
    counts = [int(x) for x in args.tasks.split(",")]
    if len(counts) == 1:
        counts = counts * len(sizes)
    if len(counts) != len(sizes):
        sys.exit("throughput.py: give one --tasks value per --items value")
    print(f"posbench throughput: items per task {sizes}, tasks {counts}, "
          f"{os.cpu_count()} CPUs, build {args.builddir}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp:
        for items, tasks in zip(sizes, counts):
            for i, (w, sl) in enumerate(configs):
                d = os.path.join(tmp, f"run{items}-{i}")
                os.mkdir(d)
                print(f"  {tasks} tasks x {items} items, {w} workers x {sl} slots ...", flush=True)
                try:
                    rows.append(run_config(pbutil, w, sl, tasks, items, args, d))
                except Exception as e:  # keep going: a figure table with a gap
                    print(f"  {w}x{sl} failed: {e}", flush=True)
                    rows.append({"workers": w, "slots": sl, "items_per_task": items,
                                 "error": str(e)})
        d = os.path.join(tmp, "probe")
        os.mkdir(d)
        print(f"  probing dispatch latency with >= {args.waiting} tasks waiting ...", flush=True)
        try:
            probe = probe_latency(pbutil, args, d)
        except Exception as e:
            probe = {"error": str(e)}

    print()
    hdr = ("items/task", "workers", "slots", "wall s", "tasks/s", "items/s", "coord CPU%",
           "workers CPU%", "queue p50 ms", "queue p99 ms")
    print("  ".join(f"{h:>12}" for h in hdr))
    for r in rows:
        if "error" in r:
            print(f"{r['items_per_task']:>12}  {r['workers']:>12}  {r['slots']:>12}  "
                  f"error: {r['error']}")
            continue
        print("  ".join(f"{v:>12}" for v in (
            r["items_per_task"], r["workers"], r["slots"], f"{r['wall_s']:.2f}", f"{r['tasks_s']:.0f}",
            f"{r['items_s']:.0f}", f"{r['coord_cpu_pct']:.0f}", f"{r['workers_cpu_pct']:.0f}",
            f"{r['metric_p50_ms']:.1f}",
            f"{r['metric_p99_ms']:.1f}")))
    print("  (CPU%: of one core, summed over processes; queue p50/p99:"
          " posbench_queue_latency_seconds\n   from /metrics, queued -> dispatched, which"
          " includes the wait behind the backlog)")
    print()
    if "error" in probe:
        print(f"dispatch latency probe failed: {probe['error']}")
    else:
        print(f"dispatch latency, 1-slot probe worker, >= {probe['queued_after']} tasks waiting, "
              f"{probe['probes']} dispatches (RESULT sent -> next TASK received):")
        print(f"  p50 {probe['p50_ms']:.2f} ms   p99 {probe['p99_ms']:.2f} ms   "
              f"max {probe['max_ms']:.2f} ms   mean {probe['mean_ms']:.2f} ms")
    ok = [r for r in rows if "error" not in r]
    if ok:
        best_t = max(ok, key=lambda r: r["tasks_s"])
        best_i = max(ok, key=lambda r: r["items_s"])
        print()
        print(f"targets (2-core machine): >= {TARGETS['tasks_s']} tasks/s, "
              f">= {TARGETS['items_s']} items/s, p99 queue->dispatch < {TARGETS['p99_ms']} ms "
              f"with 1,000 waiting")
        print(f"best here: {best_t['tasks_s']:.0f} tasks/s ({best_t['items_per_task']} item(s) a "
              f"task, {best_t['workers']}x{best_t['slots']}), {best_i['items_s']:.0f} items/s "
              f"({best_i['items_per_task']} a task, {best_i['workers']}x{best_i['slots']}); "
              f"p99 dispatch {probe.get('p99_ms', float('nan')):.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": rows, "probe": probe}, f, indent=1)
    return 0 if ok and "error" not in probe else 1


if __name__ == "__main__":
    sys.exit(main())
