"""`posbench regressions` against a real coordinator with a regression raised
the real way (regressdata): the table and --json list what the API has, the
command exits 1 while any regression is unacknowledged and 0 once all are
acknowledged (the CI gate), ack/fix/ignore/reopen set the state and note,
and bad arguments, unknown ids and an absent coordinator give 2, 1 and 3."""

import json
import os
import subprocess

import pytest

from regressdata import cluster, data  # noqa: F401 (fixtures)
from pbutil import binary, free_port, t


def run_cli(args, url):
    env = dict(os.environ)
    env.pop("POSBENCH_URL", None)
    return subprocess.run([binary("posbench"), "--url", url] + list(args), capture_output=True,
                          text=True, timeout=t(30), env=env)




def _state(api, rid):
    return api.get_json(f"/api/v1/regressions/{rid}")


def test_list_gates_until_acknowledged(cluster, data):
    api, url, sid = cluster.api, cluster.url, data.sid
    regs = api.get_json(f"/api/v1/regressions?schedule={sid}")["regressions"]
    assert regs and all(r["state"] == "detected" for r in regs), regs

    p = run_cli(["regressions"], url=url)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATE", "SCHEDULE"], lines
    first = data.first
    s = first["series"]
    row = next(ln for ln in lines[1:] if ln.split()[0] == str(first["id"]))
    assert "detected" in row and data.name in row, row
    assert f"{s['suite']}/{s['task']}/{s['bucket']}/{s['metric']}" in row, row
    assert f"{first['value_before']:.3f} -> {first['value_after']:.3f}" in row, row
    assert f"{100 * first['change']:+.1f}pp" in row, row
    assert "unacknowledged" in p.stderr, p.stderr

    p = run_cli(["regressions", "--schedule", str(sid), "--json"], url=url)
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert [r["id"] for r in out["regressions"]] == [r["id"] for r in regs]
    assert out["unacknowledged"] == len(regs)

    # acknowledge all but one: still gated; the last one: open, but not gated
    for r in regs[:-1]:
        p = run_cli(["regressions", "ack", str(r["id"])], url=url)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"regression {r['id']}: acknowledged", p.stdout
    assert run_cli(["regressions", "--schedule", str(sid)], url=url).returncode == 1
    last = regs[-1]["id"]
    p = run_cli(["regressions", "ack", str(last), "--note", "known: the oracle was degraded"], url=url)
    assert p.returncode == 0, p.stderr
    got = _state(api, last)
    assert got["state"] == "acknowledged" and got["note"] == "known: the oracle was degraded", got
    p = run_cli(["regressions", "--schedule", str(sid)], url=url)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert all("acknowledged" in ln for ln in p.stdout.splitlines()[1:]), p.stdout
    assert "unacknowledged" not in p.stderr

    # reopen gates again; fix and ignore take it out of the open list
    assert run_cli(["regressions", "reopen", str(last)], url=url).returncode == 0
    assert _state(api, last)["state"] == "detected"
    assert run_cli(["regressions", "--schedule", str(sid)], url=url).returncode == 1
    assert run_cli(["regressions", "fix", str(last)], url=url).returncode == 0
    assert _state(api, last)["state"] == "fixed"
    p = run_cli(["regressions", "--schedule", str(sid), "--state", "fixed"], url=url)
    assert p.returncode == 0 and [ln.split()[0] for ln in p.stdout.splitlines()[1:]] == [str(last)], p.stdout
    assert run_cli(["regressions", "ignore", str(last)], url=url).returncode == 0
    assert _state(api, last)["state"] == "ignored"
    p = run_cli(["regressions", "--schedule", str(sid)], url=url)
    assert str(last) not in [ln.split()[0] for ln in p.stdout.splitlines()[1:]], p.stdout
    p = run_cli(["regressions", "--state", "all", "--schedule", str(sid), "--json"], url=url)
    assert {r["id"] for r in json.loads(p.stdout)["regressions"]} == {r["id"] for r in regs}


def test_errors(cluster):
    url = cluster.url
    for args in (["regressions", "--state", "bogus"], ["regressions", "--schedule", "x"],
                 ["regressions", "ack"], ["regressions", "ack", "abc"], ["regressions", "frob", "1"],
                 ["regressions", "--limit", "0"], ["regressions", "extra"]):
        p = run_cli(args, url=url)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert "usage:" in p.stderr, (args, p.stderr)
    p = run_cli(["regressions", "ack", "999999"], url=url)
    assert p.returncode == 1 and "error:" in p.stderr, (p.returncode, p.stderr)
    p = run_cli(["regressions"], url=f"http://127.0.0.1:{free_port()}")
    assert p.returncode == 3, (p.returncode, p.stderr)
    p = run_cli(["regressions", "--help"], url=url)
    assert p.returncode == 0 and "ack|fix|ignore|reopen" in p.stdout, p.stdout
    p = run_cli(["help"], url=url)
    assert "regressions" in p.stdout
