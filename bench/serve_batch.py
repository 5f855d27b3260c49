"""posbench-serve's batching benchmark (issue 8): requests/s and generated
tokens/s for C concurrent clients, each sending R greedy completions back
to back over keep-alive, with --max-batch C (continuous batching: up to C
sequences per engine step, requests joining and leaving between tokens)
against --max-batch 1 (one request at a time), side by side on the same
checkpoint, and whether both gave the same answers. Checkpoints: the
tests' tiny byte-level Llama (2 layers, d_model 32) and, with --big, the
engine benchmark's ~100M-parameter Llama (bench/make_engine_ckpt.py) with
a byte-level tokenizer written over its 16000-token vocabulary.
Usage: bench/serve_batch.py [--build DIR] [--big] [--clients 8]
       [--requests 4] [--max-tokens 32] [--threads 2]"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
from test_native import _byte_unicode, make_checkpoint, write_byte_tokenizer  # noqa: E402
import make_engine_ckpt  # noqa: E402


def big_checkpoint(d):
    """make_engine_ckpt's model plus a byte-level tokenizer: bytes 0-255,
    <|endoftext|> 256, then two-byte tokens up to the vocabulary's size
    (never produced by encoding, but generated ids decode)."""
    make_engine_ckpt.main(str(d))
    bu = _byte_unicode()
    vocab = {ch: b for b, ch in bu.items()}
    vocab["<|endoftext|>"] = 256
    i = 257
    for a in range(256):
        for b in range(256):
            if i >= make_engine_ckpt.VOCAB:
                break
            vocab.setdefault(bu[a] + bu[b], i)
            i += 1
    write_byte_tokenizer(d, vocab)
    return d


def serve(build, ckpt, max_batch, threads):
    p = subprocess.Popen([os.path.join(build, "posbench-serve"), "--model", str(ckpt),
                          "--listen", "127.0.0.1:0", "--threads", str(threads),
                          "--max-batch", str(max_batch)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if "listening on http://" not in line:
        p.kill()
        sys.exit("posbench-serve did not start: " + line)
    host, port = line.split()[3].rstrip("/").split("//")[1].split(":")
    return p, host, int(port)


def load(host, port, clients, requests, max_tokens):
    """(seconds, requests, generated tokens, answers by prompt)."""
    answers, tokens, errors = {}, [0] * clients, []

    def client(c):
        conn = http.client.HTTPConnection(host, port, timeout=600)
        try:
            for r in range(requests):
                prompt = f"Client {c} asks question {r}: what comes after {c * 7 + r}?"
                body = json.dumps({"prompt": prompt, "max_tokens": max_tokens,
                                   "temperature": 0})
                conn.request("POST", "/v1/completions", body,
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                got = json.loads(resp.read())
                if resp.status != 200:
                    raise RuntimeError(got)
                answers[prompt] = got["choices"][0]["text"]
                tokens[c] += got["usage"]["completion_tokens"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            conn.close()

    th = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for x in th:
        x.start()
    for x in th:
        x.join()
    dt = time.perf_counter() - t0
    if errors:
        sys.exit("client errors: %s" % errors[:3])
    return dt, clients * requests, sum(tokens), answers


def batches(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    m = dict(ln.rsplit(" ", 1) for ln in conn.getresponse().read().decode().splitlines()
             if not ln.startswith("#"))
    conn.close()
    steps = int(m["posbench_serve_generate_steps_total"])
    return int(m["posbench_serve_generate_step_sequences_total"]) / max(steps, 1)


def bench(name, build, ckpt, a):
    print(f"{name}: {a.clients} clients x {a.requests} requests, max_tokens {a.max_tokens}, "
          f"--threads {a.threads}")
    print(f"  {'--max-batch':>12} {'wall s':>8} {'req/s':>8} {'tok/s':>9} {'seqs/step':>10}")
    got = {}
    for mb in (a.clients, 1):
        p, host, port = serve(build, ckpt, mb, a.threads)
        try:
            load(host, port, 1, 1, 2)  # warm the mapping and the kernels
            dt, n, toks, answers = load(host, port, a.clients, a.requests, a.max_tokens)
            spb = batches(host, port)
        finally:
            p.terminate()
            p.wait()
        got[mb] = (dt, n, toks, answers)
        print(f"  {mb:>12} {dt:>8.2f} {n / dt:>8.1f} {toks / dt:>9.1f} {spb:>10.2f}")
    b, one = got[a.clients], got[1]
    print(f"  speed-up {one[0] / b[0]:.2f}x; same answers: "
          f"{'yes' if b[3] == one[3] else 'NO'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("PB_BUILDDIR", str(HERE.parent / "build")))
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("tiny (2 layers, d_model 32, vocab 257)", a.build,
              make_checkpoint(Path(tmp) / "tiny"), a)
        if a.big:
            d = Path(tmp) / "big"
            d.mkdir()
            bench("big (12 layers, d_model 768, vocab 16000, 100M parameters f32)", a.build,
                  big_checkpoint(d), a)


if __name__ == "__main__":
    main()
