"""A rogue ZeroMQ peer (a python DEALER) sends garbage, wrong versions,
unknown types, results and failures for tasks it does not hold, and huge
frames, while a real job runs. It must get RESET or be ignored; the real job
must still complete correctly and the service stay healthy."""

import json
import time

import pytest
import zmq

from pbutil import db_exactly_once, spec, t

FRAME_MAX = 64 << 20  # PB_FRAME_MAX, the coordinator's ZMQ_MAXMSGSIZE


class Rogue:
    def __init__(self, ctx, endpoint):
        self.s = ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(endpoint)

    def send(self, *frames):
        self.s.send_multipart([f if isinstance(f, bytes) else f.encode() for f in frames])

    def send_msg(self, typ, body):
        self.send("PB1", typ, json.dumps(body) if not isinstance(body, (bytes, str)) else body)

    def recv_all(self, wait):
        """Every message that arrives within wait seconds."""
        out, deadline = [], time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.s.poll(int(left * 1000)):
                return out
            out.append(self.s.recv_multipart())

    def got_reset(self, wait):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for m in self.recv_all(0.1):
                if len(m) >= 2 and m[0] == b"PB1" and m[1] == b"RESET":
                    return True
        return False

    def close(self):
        self.s.close(0)


@pytest.fixture
def zctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


# (label, frames) sent by a peer that never said HELLO: each must be RESET.
RESET_CASES = [
    ("unknown peer READY", ["PB1", "READY", '{"credit": 4}']),
    ("unknown peer RESULT", ["PB1", "RESULT", '{"task_id": 1, "attempt": 1, "items": [], '
                                              '"aggregate": {"n": 0, "score_sum": 0}}']),
    ("wrong version", ["PB9", "HELLO", '{"name": "x", "protocol": "PB9", "capabilities": {}}']),
    ("unknown type", ["PB1", "GIMME", "{}"]),
    ("one garbage frame", [b"\x00\xff\xfe garbage"]),
    ("malformed JSON HELLO", ["PB1", "HELLO", '{"name": "x", "capabilities": {']),
    ("HELLO without name", ["PB1", "HELLO", '{"protocol": "PB1", "capabilities": {}}']),
    ("HELLO, bad protocol", ["PB1", "HELLO",
                             '{"name": "x", "protocol": "PB0", "capabilities": {"slots": 1}}']),
    ("HELLO body not an object", ["PB1", "HELLO", "[1, 2, 3]"]),
    ("too many frames", ["PB1", "HELLO"] + ["{}"] * 50),
]


def test_rogue_frames_get_reset(shared_cluster, zctx):
    c = shared_cluster
    failed = []
    for label, frames in RESET_CASES:
        r = Rogue(zctx, c.broker)
        r.send(*frames)
        if not r.got_reset(t(3)):
            failed.append(label)
        r.close()
    assert not failed, f"no RESET for: {failed}"
    assert c.api.get("/healthz").status == 200
    values, _ = c.api.metrics()
    assert values.get("posbench_protocol_errors_total", 0) >= 5, values


def _victim(c):
    """A real job on one 2-slot worker: 16 tasks of 8 items x 25 ms, so
    tasks stay leased long enough to be targeted."""
    return c.api.submit(spec(name="victim", digits=(1, 4), samples=32, shard_size=8,
                             model_name="oracle-slow",
                             model_extra={"delay_ms": 25, "batch_size": 1}))


def _hello(rogue):
    # A backend no task needs, and never a READY: it is never given a task,
    # so every task it talks about belongs to someone else.
    rogue.send_msg("HELLO", {"name": "rogue", "protocol": "PB1",
                             "capabilities": {"device": "cpu", "backends": ["nosuch"],
                                              "slots": 0}})


def _items(lo, hi, prediction="ROGUE"):
    return [{"idx": i, "prompt_hash": "00", "prediction": prediction, "reference": prediction,
             "score": 0.0, "latency_us": 1, "tokens": 1} for i in range(lo, hi)]


def _attack_until_done(c, job_id, rogue, attack):
    """Call attack(task_id, attempt, item_lo, item_hi) for every task leased
    to the real worker until the job is final. Returns the targeted ids."""
    targeted = set()
    deadline = time.monotonic() + t(30)
    while c.api.job(job_id)["state"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, "victim job did not finish"
        for tid, attempt, lo, hi in c.sql("SELECT id, attempt, item_lo, item_hi FROM tasks "
                                          "WHERE job_id=? AND state='leased'", (job_id,)):
            targeted.add(tid)
            attack(tid, attempt, lo, hi)
        rogue.recv_all(0.01)
        time.sleep(0.03)
    assert targeted, "never saw a leased task to target"
    return targeted


def _check_victim(c, job_id):
    rogue_rows = c.sql("SELECT task_id, idx FROM items WHERE job_id=? AND "
                       "(prediction='ROGUE' OR score < 1)", (job_id,))
    assert not rogue_rows, f"items from the rogue were recorded: {rogue_rows[:10]}"
    job = c.api.job(job_id)
    assert job["state"] == "done", f"rogue messages broke the job: {job['state']} " \
        f"{job.get('error')} tasks {job['tasks']}"
    retried = c.sql("SELECT id, attempt FROM tasks WHERE job_id=? AND attempt != 1", (job_id,))
    assert not retried, f"rogue messages made tasks run again: {retried}"
    assert db_exactly_once(c, job_id) == 128
    res = c.api.get_json(f"/api/v1/jobs/{job_id}/results")["runs"][0]
    assert res["accuracy"] == pytest.approx(1.0) and res["n"] == 128
    c.check_alive()


def test_rogue_result_for_a_task_it_does_not_hold(make_cluster, zctx):
    """Well-formed RESULTs (right attempt, right item range) for tasks leased
    to another worker must not be recorded."""
    c = make_cluster().start(workers=1, slots=2)
    job_id = _victim(c)
    rogue = Rogue(zctx, c.broker)
    _hello(rogue)

    def attack(tid, attempt, lo, hi):
        rogue.send_msg("RESULT", {"task_id": tid, "attempt": attempt, "items": _items(lo, hi),
                                  "aggregate": {"n": hi - lo, "score_sum": 0}})

    _attack_until_done(c, job_id, rogue, attack)
    rogue.close()
    _check_victim(c, job_id)


def test_rogue_malformed_result_for_a_task_it_does_not_hold(make_cluster, zctx):
    """A malformed RESULT for another worker's task must not take that
    worker's lease away (nor requeue the task under it)."""
    c = make_cluster().start(workers=1, slots=2)
    job_id = _victim(c)
    rogue = Rogue(zctx, c.broker)
    _hello(rogue)

    def attack(tid, attempt, lo, hi):
        rogue.send_msg("RESULT", {"task_id": tid, "attempt": attempt,
                                  "items": _items(hi + 100, hi + 108),
                                  "aggregate": {"n": 8, "score_sum": 0}})
        rogue.send_msg("RESULT", {"task_id": tid, "attempt": attempt, "items": "nope"})

    _attack_until_done(c, job_id, rogue, attack)
    rogue.close()
    _check_victim(c, job_id)


def test_rogue_fail_for_a_task_it_does_not_hold(make_cluster, zctx):
    """FAIL (retryable or not) for another worker's task must be ignored."""
    c = make_cluster().start(workers=1, slots=2)
    job_id = _victim(c)
    rogue = Rogue(zctx, c.broker)
    _hello(rogue)

    def attack(tid, attempt, lo, hi):
        for retryable in (False, True):
            rogue.send_msg("FAIL", {"task_id": tid, "attempt": attempt, "error_class": "rogue",
                                    "retryable": retryable, "message": "rogue says it failed"})

    _attack_until_done(c, job_id, rogue, attack)
    rogue.close()
    _check_victim(c, job_id)


def test_rogue_noise_during_a_real_job(make_cluster, zctx):
    """Garbage, unknown tasks, unexpected types and huge frames while a real
    job runs: RESETs, no harm, and the service stays up."""
    c = make_cluster().start(workers=1, slots=2)
    job_id = _victim(c)
    rogue = Rogue(zctx, c.broker)
    rogue.send(b"")
    rogue.send(b"PB1")
    rogue.send("PB1", "HEARTBEAT")
    rogue.send("PB1", "RESULT", "\xff\xfe not json")
    assert rogue.got_reset(t(3)), "no RESET for garbage from an unknown peer"
    _hello(rogue)

    def attack(tid, attempt, lo, hi):
        rogue.send_msg("RESULT", {"task_id": 987654, "attempt": 1, "items": _items(0, 8),
                                  "aggregate": {"n": 8, "score_sum": 0}})
        rogue.send_msg("RESULT", {"task_id": "x", "attempt": None})
        rogue.send_msg("FAIL", {"task_id": 987654, "attempt": 1, "retryable": True})
        rogue.send_msg("TASK", {"task_id": tid, "attempt": attempt})
        rogue.send_msg("ACK", {"task_id": tid, "attempt": attempt})
        rogue.send_msg("CANCEL", {"task_id": tid, "attempt": attempt})
        rogue.send_msg("READY", "not json")
        rogue.send_msg("READY", {"credit": -5})
        rogue.send_msg("HEARTBEAT", {"tasks": [tid] * 1000})

    _attack_until_done(c, job_id, rogue, attack)
    _check_victim(c, job_id)
    # Huge frames: one over the limit (the peer is dropped), one under it
    # that is not JSON (RESET). The service stays up.
    big = Rogue(zctx, c.broker)
    big.send("PB1", "HELLO", b"{" + b"x" * (FRAME_MAX + 1024))
    under = Rogue(zctx, c.broker)
    under.send("PB1", "HELLO", b'{"name": "' + b"y" * (10 << 20))
    assert under.got_reset(t(10)), "no RESET for a 10 MiB malformed HELLO"
    big.close()
    under.close()
    rogue.close()
    assert c.api.get_json("/healthz")["status"] == "ok"
    after = c.api.submit(spec(name="after-rogue", digits=(1, 2), samples=4))
    c.api.wait_job(after, t(30))
    c.check_alive()
