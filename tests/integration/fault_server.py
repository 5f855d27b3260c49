"""A small OpenAI-compatible server that misbehaves on request, for the openai
backend's tests and benchmark. The first path segment picks the behaviour, so
one server serves every mode at once: a model spec's base_url is
`server.url(mode)` and requests arrive at /<mode>/v1/completions and so on.

Modes (each counts its requests in `server.hits[mode]` and its TCP
connections in `server.conns[mode]`):
  instant       the right answer at once (an arithmetic prompt "A+B=" gets
                str(A + B); other prompts get "ok")
  reuse         as instant (a mode of its own, for counting connections)
  slow-MS       the right answer after MS milliseconds
  drop          closes the connection without answering
  429, 500, 400 that status every time (429 carries Retry-After: 1)
  429date       429 with Retry-After as an HTTP-date 1 s ahead
  truncated     promises more bytes (Content-Length) than it sends, closes
  cut           a 200 whose JSON body stops halfway (Content-Length matches)
  nonjson       a 200 with an HTML body
  shape         a 200 with JSON of the wrong shape ({"choices": []})
  huge          a 200 of 3 MiB of JSON
  flaky         per prompt: 500, then 429 (Retry-After: 0), then a dropped
                connection, then the right answer
  mixed         by prompt (A + B mod 4): right, nonjson, shape, 400
  auth          401 unless Authorization is "Bearer <server.key>"; a 500 that
                quotes the Authorization header when the prompt's sum is odd
/tokenize answers 404 in every mode except "tok" (one id per word; its
completions are instant's).
/v1/embeddings gives a hashed bag of words; /v1/rerank and /score give word
overlap with the query (/v1/rerank after MS in slow-MS, keeping the peak of
requests in flight in `server.peak[(mode, endpoint)]`)."""

import email.utils
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARITH = re.compile(r"(\d+)\s*\+\s*(\d+)\s*=\s*$")


def answer(prompt):
    m = ARITH.search(prompt)
    return str(int(m.group(1)) + int(m.group(2))) if m else "ok"


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def embed(text, dim=16):
    v = [0.0] * dim
    for w in words(text):
        v[int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    n = sum(x * x for x in v) ** 0.5 or 1.0
    return [x / n for x in v]


def overlap(q, d):
    qs = set(words(q))
    return float(sum(1 for w in words(d) if w in qs))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle and
        # the client's delayed ACK add 40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def send(self, status, body, headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_POST(self):
        srv = self.server.fault
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        parts = self.path.split("/", 2)
        mode, endpoint = (parts[1], "/" + parts[2]) if len(parts) == 3 else ("", self.path)
        try:
            req = json.loads(raw)
        except ValueError:
            return self.send(400, {"error": "bad json"})
        prompt = req.get("prompt")
        if prompt is None and req.get("messages"):
            prompt = req["messages"][-1].get("content", "")
        prompt = prompt if isinstance(prompt, str) else ""
        with srv.lock:
            srv.hits[mode] += 1
            srv.endpoints[(mode, endpoint)] += 1
            srv.per_prompt[(mode, endpoint, prompt)] += 1
            srv.conns.setdefault(mode, set()).add(self.client_address)
            nth = srv.per_prompt[(mode, endpoint, prompt)]
            if self.headers.get("Authorization"):
                srv.auth_seen.add(self.headers["Authorization"])
        if endpoint == "/tokenize":
            if mode != "tok":
                return self.send(404, {"error": "no tokenizer"})
            return self.send(200, {"tokens": list(range(len(prompt.split()))),
                                   "count": len(prompt.split())})
        if endpoint == "/v1/embeddings":
            data = [{"object": "embedding", "index": i, "embedding": embed(t)}
                    for i, t in enumerate(req.get("input", []))]
            return self.send(200, {"object": "list", "data": data})
        if endpoint == "/v1/rerank":
            if mode.startswith("slow-"):
                srv.wait_counted(mode, endpoint, int(mode[5:]) / 1000)
            res = [{"index": i, "relevance_score": overlap(req["query"], d)}
                   for i, d in enumerate(req.get("documents", []))]
            return self.send(200, {"results": list(reversed(res))})
        if endpoint == "/score":
            res = [{"index": i, "object": "score", "score": overlap(req["text_1"], d)}
                   for i, d in enumerate(req.get("text_2", []))]
            return self.send(200, {"data": res})
        ans = answer(prompt)
        chat = endpoint == "/v1/chat/completions"
        ok = ({"choices": [{"index": 0, "message": {"role": "assistant", "content": ans}}]}
              if chat else {"choices": [{"index": 0, "text": ans}]})
        ok["usage"] = {"completion_tokens": 1}
        if mode in ("instant", "tok", "reuse"):
            return self.send(200, ok)
        if mode.startswith("slow-"):
            time.sleep(int(mode[5:]) / 1000)
            return self.send(200, ok)
        if mode == "drop":
            return self.drop()
        if mode in ("429", "500", "400"):
            hdr = [("Retry-After", "1")] if mode == "429" else []
            return self.send(int(mode), {"error": f"status {mode}"}, hdr)
        if mode == "429date":
            when = email.utils.formatdate(time.time() + 1.5, usegmt=True)
            return self.send(429, {"error": "slow down"}, [("Retry-After", when)])
        if mode == "truncated":
            body = json.dumps(ok).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return self.drop()
        if mode == "cut":
            body = json.dumps(ok)
            return self.send(200, body[: len(body) // 2])
        if mode == "nonjson":
            return self.send(200, "<html><body>Bad gateway</body></html>")
        if mode == "shape":
            return self.send(200, {"choices": []})
        if mode == "huge":
            return self.send(200, {"choices": [{"text": "x" * (3 << 20)}]})
        if mode == "flaky":
            if nth == 1:
                return self.send(500, {"error": "internal"})
            if nth == 2:
                return self.send(429, {"error": "rate"}, [("Retry-After", "0")])
            if nth == 3:
                return self.drop()
            return self.send(200, ok)
        if mode == "mixed":
            kind = int(ans) % 4 if ans.isdigit() else 0
            if kind == 1:
                return self.send(200, "<html>oops</html>")
            if kind == 2:
                return self.send(200, {"choices": [{"index": 0}]})
            if kind == 3:
                return self.send(400, {"error": "bad request"})
            return self.send(200, ok)
        if mode == "auth":
            got = self.headers.get("Authorization", "")
            if got != f"Bearer {srv.key}":
                return self.send(401, {"error": "no key"})
            if ans.isdigit() and int(ans) % 2:
                return self.send(500, {"error": f"upstream refused {got}"})
            return self.send(200, ok)
        return self.send(404, {"error": f"unknown mode {mode}"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops SYNs when 64 clients connect at once


class FaultServer:
    def __init__(self, key=""):
        self.lock = threading.Lock()
        self.hits = Counter()
        self.endpoints = Counter()
        self.per_prompt = Counter()
        self.auth_seen = set()
        self.inflight = Counter()  # (mode, endpoint) -> requests being answered (slow rerank)
        self.peak = Counter()
        self.conns = {}  # mode -> client (host, port)s seen: one per TCP connection
        self.key = key
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.fault = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, mode):
        return f"http://127.0.0.1:{self.port}/{mode}"

    def wait_counted(self, mode, endpoint, seconds):
        """Sleep as a slow server does, keeping the peak of requests in flight."""
        key = (mode, endpoint)
        with self.lock:
            self.inflight[key] += 1
            self.peak[key] = max(self.peak[key], self.inflight[key])
        time.sleep(seconds)
        with self.lock:
            self.inflight[key] -= 1

    def count(self, mode, endpoint=None):
        with self.lock:
            return self.hits[mode] if endpoint is None else self.endpoints[(mode, endpoint)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    import sys
    s = FaultServer()
    print(f"listening on http://127.0.0.1:{s.port}/", flush=True)
    try:
        time.sleep(int(sys.argv[1]) if len(sys.argv) > 1 else 3600)
    finally:
        s.close()
