"""The posbench CLI against a real coordinator: submit --wait, results in
json and csv, leaderboard, status, exit code 3 when nothing listens, and
`posbench up ... --submit FILE --once` running a job end to end."""

import csv
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from pbutil import binary, free_port, spec, t


def run_cli(args, url=None, env_url=None, timeout=60, stdin=None):
    env = dict(os.environ)
    env.pop("POSBENCH_URL", None)
    if env_url:
        env["POSBENCH_URL"] = env_url
    argv = [binary("posbench")] + (["--url", url] if url else []) + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=t(timeout), env=env,
                       input=stdin)
    return p


@pytest.fixture
def spec_file(tmp_path):
    def write(s, name="spec.json"):
        path = tmp_path / name
        path.write_text(json.dumps(s))
        return str(path)
    return write


def test_submit_wait_results_leaderboard(shared_cluster, spec_file):
    url = shared_cluster.url
    f = spec_file(spec(name="cli-job", digits=(1, 3), samples=12, shard_size=5))
    p = run_cli(["submit", f, "--wait"], url=url)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    first = p.stdout.strip().splitlines()[0]
    assert first.isdigit(), p.stdout
    job_id = int(first)
    job = shared_cluster.api.job(job_id)
    assert job["state"] == "done" and job["items_done"] == 36

    p = run_cli(["results", str(job_id), "--format", "json"], url=url)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    (run,) = res["runs"]
    assert run["n"] == 36 and run["accuracy"] == pytest.approx(1.0)

    p = run_cli(["results", str(job_id), "--format", "csv"], url=url)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert {"suite", "task", "bucket", "n", "accuracy", "ci_low", "ci_high"} <= set(rows[0]), rows
    buckets = [r for r in rows if r["bucket"] != "all"]
    assert [r["bucket"] for r in buckets] == ["1", "2", "3"]
    for r in buckets:
        assert r["suite"] == "arithmetic" and r["task"] == "add"
        assert int(r["n"]) == 12 and float(r["accuracy"]) == pytest.approx(1.0)
        assert 0 < float(r["ci_low"]) < 1 and float(r["ci_high"]) == pytest.approx(1.0)

    p = run_cli(["results", str(job_id)], url=url)  # the default table
    assert p.returncode == 0 and "arithmetic" in p.stdout, p.stdout

    p = run_cli(["leaderboard"], env_url=url)  # URL from POSBENCH_URL
    assert p.returncode == 0, p.stderr
    assert "arithmetic" in p.stdout and "oracle" in p.stdout, p.stdout
    p = run_cli(["leaderboard", "--suite", "arithmetic", "--format", "json"], url=url)
    assert p.returncode == 0
    entries = json.loads(p.stdout)["entries"]
    assert any(e["model"] == "oracle" for e in entries)

    p = run_cli(["status", str(job_id), "--json"], url=url)
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "done"
    p = run_cli(["status"], url=url)
    assert p.returncode == 0 and "cli-job" in p.stdout
    p = run_cli(["items", str(job_id), "--all", "--format", "jsonl"], url=url)
    assert p.returncode == 0
    assert len([ln for ln in p.stdout.splitlines() if ln.strip()]) == 36
    p = run_cli(["workers"], url=url)
    assert p.returncode == 0 and "w1" in p.stdout and "w2" in p.stdout
    p = run_cli(["suites"], url=url)
    assert p.returncode == 0 and "arithmetic" in p.stdout


def test_submit_from_stdin_and_errors(shared_cluster, spec_file):
    url = shared_cluster.url
    p = run_cli(["submit", "-"], url=url,
                stdin=json.dumps(spec(name="stdin-job", digits=(1, 1), samples=2)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().isdigit()
    bad = spec()
    bad["runs"][0]["params"]["format"] = "xyz"
    p = run_cli(["submit", spec_file(bad, "bad.json")], url=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "format" in p.stderr
    p = run_cli(["submit", "/nonexistent/spec.json"], url=url)
    assert p.returncode == 2
    p = run_cli(["status", "99999999"], url=url)
    assert p.returncode == 1
    p = run_cli(["frobnicate"], url=url)
    assert p.returncode == 2
    p = run_cli(["results"], url=url)
    assert p.returncode == 2


def test_submit_wait_cancelled_job_exits_1(make_cluster, spec_file):
    c = make_cluster().start(workers=0)  # nothing runs it: cancel it meanwhile
    f = spec_file(spec(name="cli-cancel", digits=(1, 1), samples=2))
    p = subprocess.Popen([binary("posbench"), "--url", c.url, "submit", f, "--wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job_id = None
        for _ in range(200):
            jobs = c.api.get_json("/api/v1/jobs")["jobs"]
            if jobs:
                job_id = jobs[0]["id"]
                break
            time.sleep(0.05)
        assert job_id, "the CLI did not submit"
        assert c.api.post(f"/api/v1/jobs/{job_id}/cancel").status == 200
        out, err = p.communicate(timeout=t(20))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, (out, err)
    assert out.strip().splitlines()[0] == str(job_id)


def test_connection_refused_exits_3():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["status"], ["leaderboard"], ["results", "1"], ["workers"]):
        p = run_cli(args, url=url, timeout=20)
        assert p.returncode == 3, (args, p.returncode, p.stderr)
        assert p.stderr.strip(), "no message on stderr"


def test_up_once_runs_a_job_end_to_end(tmp_path, spec_file):
    f = spec_file(spec(name="up-job", digits=(1, 4), samples=10, shard_size=5))
    http_port, broker_port = free_port(), free_port()
    argv = [binary("posbench"), "up", "--workers", "2", "--listen", f"127.0.0.1:{http_port}",
            "--broker", f"tcp://127.0.0.1:{broker_port}", "--db", str(tmp_path / "up.db"),
            "--submit", f, "--once"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=str(tmp_path), start_new_session=True)
    try:
        out, err = p.communicate(timeout=t(90))
    finally:
        # Whatever happened, nothing of the group may outlive the test.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if p.poll() is None:
            p.wait()
    assert p.returncode == 0, (p.returncode, out, err[-3000:])
    assert "oracle" in out and "arithmetic" in out, out
    assert "1.000" in out, out
    # --once stopped everything it started: nothing listens any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", http_port), timeout=2).close()
    con = sqlite3.connect(str(tmp_path / "up.db"))
    try:
        (n,), = con.execute("SELECT count(*) FROM items").fetchall()
        (state,), = con.execute("SELECT state FROM jobs").fetchall()
    finally:
        con.close()
    assert n == 40 and state == "done"
