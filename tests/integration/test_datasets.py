"""User datasets end to end: POST /api/v1/datasets stores checked JSONL by
its SHA-256 (201, then 200 for the same bytes), names the first bad line
(400, nothing stored), refuses bodies over --max-dataset (413); a job that
names a dataset runs its lines on the oracle backend (accuracy 1.0, each
prediction its line's reference), and the worker fetches the file once into
its cache for all of the job's tasks. A large upload is checked off the
coordinator's event loop (/healthz keeps answering); a download whose bytes
do not match the hash fails the task and leaves nothing in the cache."""

import hashlib
import http.client
import http.server
import json
import os
import re
import socket
import threading
import time

import pytest

import pbutil
from pbutil import t

MAX_DATASET = 64 << 10


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    d = tmp_path_factory.mktemp("datasets")

    def setup(c):
        c.cache = os.path.join(str(d), "cache")
        c.start_coordinator(["--max-dataset", str(MAX_DATASET)])
        c.start_worker("w1", slots=2, extra=["--cache", c.cache])
        c.wait_workers(1)
    yield from pbutil.running_cluster(d, setup)


def jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def upload(api, body, suite, name="t"):
    return api.post(f"/api/v1/datasets?suite={suite}&name={name}", body,
                    headers={"Content-Type": "application/x-ndjson"})


def stored_files(cluster):
    d = cluster.db + "-datasets"
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# longctx: several references per line (string_match_all wants every one);
# buckets 0 (the default) and 7.
LONGCTX = [{"prompt": f"Remember {i} and {i * 7}. What were they?",
            "references": [str(i), str(i * 7)], "metadata": {"depth": 10 * i}}
           for i in range(5)] + \
          [{"prompt": f"The code is {900 + i}. The code?", "reference": str(900 + i),
            "bucket": 7, "id": f"q{i}"} for i in range(3)]


def test_upload_is_stored_by_hash_once(cluster):
    api = cluster.api
    body = jsonl(LONGCTX)
    r = upload(api, body, "longctx", "lc-demo")
    assert r.status == 201, r
    rec = r.json()
    assert rec["hash"] == hashlib.sha256(body).hexdigest()
    assert (rec["name"], rec["suite"], rec["bytes"], rec["lines"]) == \
        ("lc-demo", "longctx", len(body), 8)
    assert rec["buckets"] == [{"bucket": 0, "lines": 5}, {"bucket": 7, "lines": 3}]
    again = upload(api, body, "longctx", "other-name")
    assert again.status == 200, again
    assert again.json() == rec
    assert api.get_json(f"/api/v1/datasets/{rec['hash']}") == rec
    assert rec["hash"] in [d["hash"] for d in api.get_json("/api/v1/datasets")["datasets"]]
    content = api.get(f"/api/v1/datasets/{rec['hash']}/content")
    assert content.status == 200 and content.body == body
    assert content.headers["content-type"] == "application/x-ndjson"
    assert api.get("/api/v1/datasets/" + "0" * 64).status == 404
    assert api.get("/api/v1/datasets/nothex").status == 404


@pytest.mark.parametrize("lines,bad,what", [
    (['{"prompt": "a", "reference": "1"}', '{"prompt": "b", "reference": "2"}', '{"prompt": '],
     3, "malformed JSON"),
    (['{"prompt": "a", "reference": "1"}', "", '{"prompt": "b", "references": ["1", "2"]}'],
     3, "exactly one reference"),
    (['{"prompt": "a", "refrence": "1"}'], 1, "unknown key"),
    (['{"prompt": "a", "reference": "1", "bucket": -2}'], 1, "bucket"),
    (['[1, 2]'], 1, "JSON object"),
    (['{"prompt": "a", "reference": "1"}'] * 16 + ['{"reference": "x"}'], 17, "prompt"),
])
def test_bad_line_is_named_and_nothing_stored(cluster, lines, bad, what):
    api = cluster.api
    before = api.get_json("/api/v1/datasets")["datasets"]
    files = stored_files(cluster)
    body = ("\n".join(lines) + "\n").encode()
    r = upload(api, body, "arithmetic")
    assert r.status == 400, r
    err = r.json()
    assert err["field"] == f"line {bad}", err
    assert err["error"].startswith(f"line {bad}: ") and what in err["error"], err
    assert api.get_json("/api/v1/datasets")["datasets"] == before
    assert stored_files(cluster) == files
    assert api.get(f"/api/v1/datasets/{hashlib.sha256(body).hexdigest()}").status == 404


def test_upload_limits(cluster):
    api = cluster.api
    files = stored_files(cluster)
    line = json.dumps({"prompt": "x" * 1000, "reference": "1"}) + "\n"
    huge = (line * (MAX_DATASET // len(line) + 2)).encode()
    assert len(huge) > MAX_DATASET
    r = upload(api, huge, "arithmetic")
    assert r.status == 413, r
    assert stored_files(cluster) == files
    # a declared length over the cap is refused before any body is sent
    with socket.create_connection(("127.0.0.1", cluster.http_port), timeout=t(10)) as s:
        s.sendall(b"POST /api/v1/datasets?suite=arithmetic HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % (MAX_DATASET + 1))
        assert s.recv(4096).startswith(b"HTTP/1.1 413 "), "no 413 for the declared length"
    r = api.post("/api/v1/datasets", jsonl(LONGCTX))
    assert r.status == 400 and r.json()["field"] == "suite", r
    r = upload(api, jsonl(LONGCTX), "nosuch")
    assert r.status == 400 and r.json()["field"] == "suite", r
    r = upload(api, b"\n\n", "arithmetic")
    assert r.status == 400, r


def test_pipelined_requests_behind_an_upload_answer_in_order(cluster):
    body = jsonl([{"prompt": f"{a}-0=", "reference": str(a)} for a in range(7)])
    req = (b"POST /api/v1/datasets?suite=arithmetic&name=pipe HTTP/1.1\r\nHost: x\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body) + body +
           b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /api/v1/datasets/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
           % hashlib.sha256(body).hexdigest().encode())
    data = b""
    with socket.create_connection(("127.0.0.1", cluster.http_port), timeout=t(10)) as s:
        s.sendall(req)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    answers = []
    while data:  # status line, headers, Content-Length bytes of body
        head, _, rest = data.partition(b"\r\n\r\n")
        n = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        answers.append((head.split(b" ")[1], json.loads(rest[:n])))
        data = rest[n:]
    assert [a[0] for a in answers] == [b"201", b"200", b"200"], answers
    assert answers[0][1]["name"] == "pipe" and answers[1][1]["status"] == "ok", answers
    assert answers[2][1] == answers[0][1]


def test_job_on_a_dataset_is_perfect_on_oracle_and_fetched_once(cluster):
    api = cluster.api
    body = jsonl(LONGCTX)
    h = upload(api, body, "longctx").json()["hash"]
    arith = jsonl([{"prompt": f"{a}+{a}=", "reference": str(2 * a), "bucket": len(str(a))}
                   for a in (3, 5, 12, 40, 99, 123)])
    ha = upload(api, arith, "arithmetic").json()["hash"]
    spec = {"name": "ds", "model": {"name": "oracle", "backend": "oracle"}, "shard_size": 2,
            "runs": [{"suite": "longctx", "task": "niah_single_1", "dataset": h},
                     {"suite": "arithmetic", "task": "add", "dataset": ha, "samples": 2}]}
    job = api.submit(spec)
    state = api.wait_job(job, t(60))
    assert state["items_total"] == 8 + 5  # arithmetic: 1 + 2 + 2 (samples caps each bucket)
    pbutil.db_exactly_once(cluster, job)
    res = api.get_json(f"/api/v1/jobs/{job}/results")
    lc, ar = res["runs"]
    assert [(b["bucket"], b["n"]) for b in lc["buckets"]] == [(0, 5), (7, 3)]
    assert [(b["bucket"], b["n"]) for b in ar["buckets"]] == [(1, 2), (2, 2), (3, 1)]
    assert lc["accuracy"] == 1.0 and ar["accuracy"] == 1.0, res
    items, _ = api.all_items(job)
    assert len(items) == 13
    by_line = {}
    for it in items:
        assert it["prediction"] == it["reference"] and it["score"] == 1.0, it
        if it["run"] == 0:
            by_line[it["meta"]["line"]] = it
    for n, row in enumerate(LONGCTX, 1):
        refs = row.get("references") or [row["reference"]]
        assert by_line[n]["reference"] == "\n".join(refs)
        assert by_line[n]["meta"].get("depth") == row.get("metadata", {}).get("depth")
    assert by_line[6]["meta"]["id"] == "q0"
    # several tasks, one download per dataset, both kept in the cache
    assert sorted(os.listdir(cluster.cache)) == sorted([f"{h}.jsonl", f"{ha}.jsonl"])
    with open(os.path.join(cluster.cache, f"{h}.jsonl"), "rb") as f:
        assert f.read() == body
    log = cluster.workers["w1"].read()
    assert log.count(f"dataset {h[:16]} fetched") == 1, log
    assert log.count(f"dataset {ha[:16]} fetched") == 1, log
    # a second job reuses the cached file
    api.wait_job(api.submit(spec), t(60))
    assert cluster.workers["w1"].read().count("fetched from") == 2


def test_halluc_triplets_on_oracle(cluster):
    api = cluster.api
    rows = [{"parts": [f"Does the video show {w}?", f"Does it show {w} twice?",
                       "Does it show a whale?"], "references": ["yes", "no", "no"]}
            for w in ("a cat", "a dog", "a car")]
    h = upload(api, jsonl(rows), "halluc").json()["hash"]
    suites = {s["name"]: s for s in api.get_json("/api/v1/suites")["suites"]}
    task = suites["halluc"]["tasks"][0]["name"]
    job = api.submit({"model": {"name": "oracle", "backend": "oracle"},
                      "runs": [{"suite": "halluc", "task": task, "dataset": h}]})
    api.wait_job(job, t(60))
    (run,) = api.get_json(f"/api/v1/jobs/{job}/results")["runs"]
    assert run["n"] == 3 and run["accuracy"] == 1.0, run
    assert run["metrics"]["in_acc"] == 1.0 and run["metrics"]["out_acc"] == 1.0, run


def test_job_naming_a_bad_dataset_is_refused(cluster):
    api = cluster.api
    h = upload(api, jsonl(LONGCTX), "longctx").json()["hash"]

    def refused(run, field):
        spec = {"model": {"name": "oracle", "backend": "oracle"}, "runs": [run]}
        r = api.post("/api/v1/jobs", spec)
        assert r.status == 400, r
        assert r.json()["field"] == field, r.json()
        return r.json()["error"]

    assert "unknown dataset" in refused({"suite": "longctx", "dataset": "ab" * 32},
                                        "runs[0].dataset")
    refused({"suite": "longctx", "dataset": "not-a-hash"}, "runs[0].dataset")
    assert "longctx dataset" in refused({"suite": "arithmetic", "dataset": h}, "runs[0].dataset")


def test_cli_upload_and_list(cluster, tmp_path):
    import subprocess
    f = tmp_path / "mine.jsonl"
    body = jsonl([{"prompt": f"{a}*2=", "reference": str(2 * a), "bucket": 1} for a in range(4)])
    f.write_bytes(body)
    cli = [pbutil.binary("posbench"), "--url", cluster.url]
    run = subprocess.run(cli + ["dataset", "upload", str(f), "--suite", "arithmetic",
                                "--name", "cli-demo"], capture_output=True, text=True,
                         timeout=t(30))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == hashlib.sha256(body).hexdigest()
    assert "4 lines" in run.stderr and "stored" in run.stderr
    listed = subprocess.run(cli + ["dataset", "list"], capture_output=True, text=True,
                            timeout=t(30))
    assert listed.returncode == 0 and "cli-demo" in listed.stdout, listed
    f.write_bytes(body + b'{"prompt": "x"}\n')
    bad = subprocess.run(cli + ["dataset", "upload", str(f), "--suite", "arithmetic"],
                         capture_output=True, text=True, timeout=t(30))
    assert bad.returncode == 1 and "line 5" in bad.stderr, bad


def own_cluster(tmp_path, coord_extra=()):
    c = pbutil.Cluster(tmp_path)
    try:
        c.start_coordinator(list(coord_extra))
    except BaseException:
        c.close()
        raise
    return c


def close_cluster(c):
    problems = c.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# ~48 MB: long enough that checking, hashing and fsync'ing it on the loop
# thread stalled every other request for seconds.
BIG_LINES = 240_000


def test_large_upload_does_not_stall_the_loop(tmp_path):
    c = own_cluster(tmp_path)
    try:
        c.start_worker("w1", extra=["--cache", os.path.join(str(tmp_path), "cache")])
        c.wait_workers(1)
        pad = "y" * 150
        body = "".join(f'{{"prompt": "{i}+{i}= {pad}", "reference": "{2 * i}", '
                       f'"bucket": {i % 3}}}\n' for i in range(BIG_LINES)).encode()
        assert len(body) > 40 << 20
        out = {}

        def send():
            conn = http.client.HTTPConnection("127.0.0.1", c.http_port, timeout=t(120))
            try:
                conn.request("POST", "/api/v1/datasets?suite=arithmetic&name=big", body=body,
                             headers={"Content-Type": "application/x-ndjson"})
                r = conn.getresponse()
                out["status"], out["body"] = r.status, r.read()
            except Exception as e:  # reported below
                out["error"] = e
            finally:
                conn.close()

        th = threading.Thread(target=send)
        th.start()
        lat = []
        while th.is_alive():
            t0 = time.monotonic()
            r = c.api.get("/healthz")
            lat.append(time.monotonic() - t0)
            assert r.status == 200, r
            time.sleep(0.02)
        th.join()
        assert "error" not in out, out
        assert out["status"] == 201, out
        rec = json.loads(out["body"])
        assert rec["hash"] == hashlib.sha256(body).hexdigest()
        assert (rec["lines"], rec["bytes"]) == (BIG_LINES, len(body))
        with open(os.path.join(c.db + "-datasets", rec["hash"] + ".jsonl"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == rec["hash"]
        print(f"upload: {len(lat)} /healthz polls, max {max(lat) * 1000:.0f} ms")
        assert len(lat) >= 3, "the upload finished before it could be observed"
        assert max(lat) < t(0.5), f"/healthz took {max(lat):.2f} s during the upload"
        assert c.connected_workers() == 1
        # a bad line deep in a large body is still found, off the loop
        bad = body + b'{"prompt": "x"}\n'
        r = upload(c.api, bad, "arithmetic")
        assert r.status == 400 and r.json()["field"] == f"line {BIG_LINES + 1}", r
        # a client that hangs up while its upload is checked: no answer to
        # send, the coordinator carries on and the dataset is stored
        other = body[: len(body) // 2]
        with socket.create_connection(("127.0.0.1", c.http_port), timeout=t(30)) as s:
            s.sendall(b"POST /api/v1/datasets?suite=arithmetic HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(other) + other)
        h = hashlib.sha256(other).hexdigest()
        pbutil.wait_for(lambda: c.api.get(f"/api/v1/datasets/{h}").status == 200, t(30), 0.05,
                        "the abandoned upload stored")
        c.check_alive()
    finally:
        close_cluster(c)


class _WrongBytes(http.server.BaseHTTPRequestHandler):
    """Serves the same JSONL with one byte changed, whatever the path."""
    payload = b""
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


def test_download_hash_mismatch_fails_and_keeps_nothing(tmp_path):
    body = jsonl([{"prompt": f"{a}+{a}=", "reference": str(2 * a)} for a in range(4)])
    _WrongBytes.payload = body.replace(b"0+0=", b"0+1=")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WrongBytes)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    c = own_cluster(tmp_path)
    cache = os.path.join(str(tmp_path), "cache")
    try:
        c.start_worker("w1", extra=["--cache", cache, "--http",
                                    f"http://127.0.0.1:{srv.server_address[1]}"])
        c.wait_workers(1)
        h = upload(c.api, body, "arithmetic").json()["hash"]
        job = c.api.submit({"model": {"name": "oracle", "backend": "oracle"},
                            "runs": [{"suite": "arithmetic", "task": "add", "dataset": h}]})
        state = c.api.wait_job(job, t(60), states=("failed",))
        assert state["state"] == "failed", state
        errors = [e for (e,) in c.sql("SELECT error FROM tasks WHERE job_id=?", (job,))]
        wrong = hashlib.sha256(_WrongBytes.payload).hexdigest()
        assert errors and all(e and "hash mismatch" in e and h[:16] in e and wrong[:16] in e
                              for e in errors), errors
        assert _WrongBytes.hits >= 1
        assert not os.path.isdir(cache) or os.listdir(cache) == [], os.listdir(cache)
    finally:
        srv.shutdown()
        srv.server_close()
        close_cluster(c)
