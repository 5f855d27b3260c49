"""posbench-serve against an independent client (the curl binary) on
test_native's tiny byte-level Llama checkpoint: every endpoint's documented
shape, including server-sent event streams; greedy completions equal the
engine's own generation (tests/engine/pe_forward); echo + logprobs sums
equal the native backend's loglik (tests/engine/pb_loglik); a PE override
from --rope-scaling reaches the model; eight concurrent clients are
batched together (several sequences in one engine pass) and get the
answers they get alone; a full queue answers 503; errors are OpenAI's
shape with the right status."""

import json
import os
import signal
import subprocess
import threading

import pytest

from pbutil import SANITIZER_PATTERNS, binary, t
from test_native import make_checkpoint

PROMPTS = ["Hello world", "The quick brown fox", "1 + 2 =", "posbench"]
MAX_BODY = 65536


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return str(make_checkpoint(tmp_path_factory.mktemp("serve") / "tiny-llama"))


class Server:
    def __init__(self, ckpt, *extra):
        self.proc = subprocess.Popen(
            [binary("posbench-serve"), "--model", ckpt, "--listen", "127.0.0.1:0",
             "--threads", "1", "--max-batch", "4", "--max-body", str(MAX_BODY), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "listening on http://" in line, line + self.proc.stderr.read()
        self.url = line.split()[3].rstrip("/")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        err = self.proc.communicate(timeout=t(20))[1]
        assert self.proc.returncode == 0, err
        assert not any(m in err for m in SANITIZER_PATTERNS), err


@pytest.fixture(scope="module")
def srv(ckpt):
    s = Server(ckpt)
    yield s
    s.stop()


def curl(srv, path, body=None, raw=None, method=None, stream=False):
    """(status, content type, body text) of one request made by curl."""
    args = ["curl", "-sS", "--noproxy", "*", "-m", str(int(t(30))),
            "-w", "\n%{http_code} %{content_type}"]
    if stream:
        args.append("-N")
    if method:
        args += ["-X", method]
    data = raw if raw is not None else json.dumps(body) if body is not None else None
    if data is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    p = subprocess.run(args + [srv.url + path], input=data, capture_output=True, text=True,
                       timeout=t(40))
    assert p.returncode == 0, p.stderr
    text, _, tail = p.stdout.rpartition("\n")
    status, _, ctype = tail.partition(" ")
    return int(status), ctype, text


def ok_json(srv, path, body=None, method=None):
    status, ctype, text = curl(srv, path, body, method=method)
    assert status == 200 and ctype.startswith("application/json"), (status, text)
    return json.loads(text)


def events(text):
    """The JSON payloads of an SSE body; asserts the framing and [DONE]."""
    blocks = text.split("\n\n")
    assert blocks[-1] == "" and blocks[-2] == "data: [DONE]", text[-200:]
    out = []
    for b in blocks[:-2]:
        assert b.startswith("data: ") and "\n" not in b, b
        out.append(json.loads(b[len("data: "):]))
    return out


def run_tool(tool, *args):
    p = subprocess.run([binary(tool), *args], capture_output=True, text=True, timeout=t(60))
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def engine_greedy(ckpt, prompt, n, pe=None):
    """The engine's greedy continuation (byte tokens, EOS 256 stops)."""
    args = [ckpt, "--ids", ",".join(str(b) for b in prompt.encode()), "--mode", "generate",
            "--n", str(n)]
    ids = run_tool("tests/engine/pe_forward", *args, *(["--pe", pe] if pe else []))["ids"]
    if 256 in ids:
        ids = ids[:ids.index(256)]
    return bytes(ids).decode("utf-8", "replace")


def complete(srv, prompt, **kw):
    body = {"model": "tiny-llama", "prompt": prompt, "max_tokens": 8, "temperature": 0}
    body.update(kw)
    return ok_json(srv, "/v1/completions", body)


# ---- shapes ----

def test_models_and_health(srv):
    got = ok_json(srv, "/v1/models")
    assert got["object"] == "list"
    (m,) = got["data"]
    assert m["id"] == "tiny-llama" and m["object"] == "model" and m["max_model_len"] == 1024
    assert ok_json(srv, "/v1/models/tiny-llama")["id"] == "tiny-llama"
    assert ok_json(srv, "/health") == {"status": "ok"}


def test_greedy_completion_equals_the_engine(srv, ckpt):
    for p in PROMPTS:
        got = complete(srv, p)
        (c,) = got["choices"]
        assert got["object"] == "text_completion" and got["model"] == "tiny-llama"
        assert c["text"] == engine_greedy(ckpt, p, 8), p
        assert c["index"] == 0 and c["logprobs"] is None
        assert c["finish_reason"] in ("length", "stop")
        u = got["usage"]
        assert u["prompt_tokens"] == len(p.encode()) and u["completion_tokens"] <= 8
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]


def test_several_prompts_and_token_ids(srv):
    got = complete(srv, PROMPTS[:3])
    assert [c["index"] for c in got["choices"]] == [0, 1, 2]
    alone = [complete(srv, p)["choices"][0]["text"] for p in PROMPTS[:3]]
    assert [c["text"] for c in got["choices"]] == alone
    ids = complete(srv, list(PROMPTS[0].encode()))
    assert ids["choices"][0]["text"] == alone[0]


def test_echo_logprobs_equal_the_native_loglik(srv, ckpt):
    text = "Question: the capital of France? Answer: Paris"
    got = complete(srv, text, max_tokens=0, echo=True, logprobs=3)
    (c,) = got["choices"]
    lp = c["logprobs"]
    assert c["text"] == text
    assert lp["tokens"] == list(text) and lp["text_offset"] == list(range(len(text)))
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert all(len(top) == 3 for top in lp["top_logprobs"][1:])
    for tok, l, top in zip(lp["tokens"][1:], lp["token_logprobs"][1:], lp["top_logprobs"][1:]):
        assert l <= 0 and max(top.values()) >= l - 1e-9
        if tok in top:
            assert abs(top[tok] - l) < 1e-9
    total = sum(lp["token_logprobs"][1:])
    want = run_tool("tests/engine/pb_loglik", ckpt, text[0], text[1:])["ll"][0]
    assert abs(total - want) < 1e-5 * max(1, abs(want)), (total, want)
    assert got["usage"]["completion_tokens"] == 0


def test_text_offset_counts_characters(srv):
    # OpenAI and vLLM count text_offset in characters; one byte per token
    # here, so a character counts once its last byte is in
    text = "caf\u00e9 \u00fc\u2192x"
    lp = complete(srv, text, max_tokens=0, echo=True, logprobs=0)["choices"][0]["logprobs"]
    raw = text.encode()
    want = [len(raw[:i].decode("utf-8", "ignore")) for i in range(len(raw))]
    assert lp["text_offset"] == want
    assert want[-1] == len(text) - 1 < len(raw) - 1


def test_logprobs_of_generated_tokens(srv):
    got = complete(srv, "Hello", max_tokens=4, logprobs=1)
    lp = got["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == got["usage"]["completion_tokens"] == 4
    # greedy: every chosen token is the top alternative
    for l, top in zip(lp["token_logprobs"], lp["top_logprobs"]):
        assert abs(max(top.values()) - l) < 1e-9


def test_stream_equals_the_plain_answer(srv):
    for p in PROMPTS[:2]:
        plain = complete(srv, p, max_tokens=12)["choices"][0]
        status, ctype, text = curl(srv, "/v1/completions", {"prompt": p, "max_tokens": 12,
                                                            "temperature": 0, "stream": True},
                                   stream=True)
        assert status == 200 and ctype.startswith("text/event-stream"), (status, text)
        ev = events(text)
        assert all(e["object"] == "text_completion" and e["id"] == ev[0]["id"] for e in ev)
        assert "".join(e["choices"][0]["text"] for e in ev) == plain["text"]
        assert [e["choices"][0]["finish_reason"] for e in ev][-1] == plain["finish_reason"]
        assert all(e["choices"][0]["finish_reason"] is None for e in ev[:-1])


def test_chat_plain_template_and_stream(srv):
    body = {"model": "tiny-llama", "messages": [{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "hi"}],
            "max_tokens": 6, "temperature": 0}
    got = ok_json(srv, "/v1/chat/completions", body)
    assert got["object"] == "chat.completion"
    (c,) = got["choices"]
    assert c["message"]["role"] == "assistant" and isinstance(c["message"]["content"], str)
    # the plain template: "role: content\n" lines, then "assistant:"
    assert got["usage"]["prompt_tokens"] == len("system: Be brief.\nuser: hi\nassistant:")
    status, ctype, text = curl(srv, "/v1/chat/completions",
                               {**body, "stream": True, "stream_options": {"include_usage": True}},
                               stream=True)
    assert status == 200 and ctype.startswith("text/event-stream")
    ev = events(text)
    assert all(e["object"] == "chat.completion.chunk" for e in ev)
    assert ev[0]["choices"][0]["delta"]["role"] == "assistant"
    assert ev[-1]["choices"] == [] and ev[-1]["usage"] == got["usage"]
    deltas = [e["choices"][0]["delta"].get("content", "") for e in ev[:-1]]
    assert "".join(deltas) == c["message"]["content"]
    assert ev[-2]["choices"][0]["finish_reason"] == c["finish_reason"]


def test_stop_strings_cut_plain_and_streamed_answers(srv):
    found = None
    for p in PROMPTS:
        text = complete(srv, p, max_tokens=16)["choices"][0]["text"]
        cands = [ch for ch in text[1:] if ch.isascii() and ch.isalnum()]
        if cands:
            found = (p, text, cands[0])
            break
    assert found, "no greedy answer holds an ASCII letter"
    p, text, stop = found
    got = complete(srv, p, max_tokens=16, stop=[stop, "never-there"])["choices"][0]
    assert got["text"] == text[:text.index(stop)] and got["finish_reason"] == "stop"
    _, _, body = curl(srv, "/v1/completions", {"prompt": p, "max_tokens": 16, "temperature": 0,
                                               "stop": stop, "stream": True}, stream=True)
    assert "".join(e["choices"][0]["text"] for e in events(body)) == got["text"]


def test_embeddings_equal_the_engine(srv, ckpt):
    got = ok_json(srv, "/v1/embeddings", {"model": "tiny-llama", "input": ["abc", "xy z"]})
    assert got["object"] == "list" and got["model"] == "tiny-llama"
    assert [d["index"] for d in got["data"]] == [0, 1]
    assert got["usage"]["prompt_tokens"] == 7
    want = run_tool("tests/engine/pe_forward", ckpt, "--ids", "97,98,99", "--mode", "embed",
                    "--n", "0")["embedding"][0]
    vec = got["data"][0]["embedding"]
    assert len(vec) == 32 and got["data"][0]["object"] == "embedding"
    assert all(abs(a - b) < 1e-5 * max(1, abs(b)) for a, b in zip(vec, want))
    assert got["data"][1]["embedding"] != vec


def test_tokenize_and_detokenize(srv):
    got = ok_json(srv, "/tokenize", {"prompt": "Hi!"})
    assert got["tokens"] == [72, 105, 33] and got["count"] == 3
    assert ok_json(srv, "/detokenize", {"tokens": [72, 105, 33]}) == {"prompt": "Hi!"}


def test_rope_scaling_flag_reaches_the_model(ckpt):
    text = "positional encodings under yarn scaling"
    pe = '{"type":"rope","scaling":{"type":"yarn","factor":4,"original_max_position":1024}}'
    s = Server(ckpt, "--rope-scaling", "yarn:4", "--name", "tiny-yarn")
    try:
        got = complete(s, text, model="tiny-yarn", max_tokens=0, echo=True, logprobs=0)
        total = sum(got["choices"][0]["logprobs"]["token_logprobs"][1:])
        ids = ",".join(str(b) for b in text.encode())
        want = run_tool("tests/engine/pe_forward", ckpt, "--ids", ids, "--mode", "loglik",
                        "--n", str(len(text) - 1), "--pe", pe)["ll"]
        plain = run_tool("tests/engine/pe_forward", ckpt, "--ids", ids, "--mode", "loglik",
                         "--n", str(len(text) - 1))["ll"]
        assert abs(total - want) < 1e-5 * max(1, abs(want)), (total, want)
        assert abs(want - plain) > 1e-4, "yarn changed nothing: the test proves nothing"
        assert complete(s, "abc", model="tiny-yarn")["choices"][0]["text"] == \
            engine_greedy(ckpt, "abc", 8, pe)
    finally:
        s.stop()
    bad = subprocess.run([binary("posbench-serve"), "--model", ckpt, "--rope-scaling", "yarn:0.5"],
                         capture_output=True, text=True, timeout=t(20))
    assert bad.returncode != 0 and "factor" in bad.stderr, bad.stderr


def test_seeded_sampling(srv):
    a, b, c = (complete(srv, "Once upon a time", temperature=1.0, max_tokens=12, seed=seed)
               ["choices"][0]["text"] for seed in (7, 7, 8))
    assert a == b and a != c


def test_chatml_template_from_the_tokenizer_config(ckpt, tmp_path):
    d = tmp_path / "chatml"
    d.mkdir()
    for f in os.listdir(ckpt):
        os.symlink(os.path.join(ckpt, f), d / f)
    (d / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                         "<|im_end|>\n{% endfor %}<|im_start|>assistant\n"}))
    msgs = [{"role": "user", "content": "hi"}]
    chatml = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    for extra, prompt in (((), chatml), (("--chat-template", "plain"), "user: hi\nassistant:")):
        s = Server(str(d), *extra)
        try:
            got = ok_json(s, "/v1/chat/completions", {"messages": msgs, "max_tokens": 3,
                                                      "temperature": 0})
            # the byte-level test vocabulary spells the markers byte by byte
            assert got["usage"]["prompt_tokens"] == len(prompt.encode()), extra
            via_completion = complete(s, prompt, model="chatml", max_tokens=3)
            assert got["choices"][0]["message"]["content"] == \
                via_completion["choices"][0]["text"]
        finally:
            s.stop()


# ---- load ----

def metrics(srv):
    _, ctype, text = curl(srv, "/metrics")
    assert ctype.startswith("text/plain")
    return {k: int(v) for k, v in (ln.rsplit(" ", 1) for ln in text.splitlines()
                                   if not ln.startswith("#"))}


def wait_running(srv):
    """Until the model thread has taken a request."""
    for _ in range(2000):
        if metrics(srv)["posbench_serve_running"] >= 1:
            return
    raise AssertionError("the model thread never started the request")


def test_concurrent_clients_get_their_own_answers(srv):
    prompts = [f"client {i} says {PROMPTS[i % 4]}" for i in range(8)]
    alone = {p: complete(srv, p, max_tokens=10)["choices"][0]["text"] for p in prompts}
    before = metrics(srv)
    results, errors = {}, []

    def client(i):
        try:
            p = prompts[i]
            if i % 2:
                _, _, body = curl(srv, "/v1/completions", {"prompt": p, "max_tokens": 10,
                                                           "temperature": 0, "stream": True},
                                  stream=True)
                results[i] = "".join(e["choices"][0]["text"] for e in events(body))
            else:
                results[i] = complete(srv, p, max_tokens=10)["choices"][0]["text"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    slow = [f"slow {i}" for i in range(128)]
    for _ in range(2):
        # a long request holds the model thread, so the eight queue up and
        # join the engine's batch as its sequences end (--max-batch 4)
        blocker = threading.Thread(target=complete, args=(srv, slow),
                                   kwargs={"max_tokens": 400})
        blocker.start()
        wait_running(srv)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in [blocker, *threads]:
            th.join(t(60))
        assert not errors, errors
        assert {prompts[i]: r for i, r in results.items()} == alone
    m = metrics(srv)
    assert m['posbench_serve_requests_total{endpoint="/v1/completions",status="200"}'] >= 24
    assert m["posbench_serve_batch_size_count"] >= 1
    assert m["posbench_serve_batch_size_sum"] >= 24
    assert m["posbench_serve_generation_tokens_total"] > 0
    assert m["posbench_serve_queue_depth"] == 0

    # requests went through the engine together: the tests before this one
    # sent one request at a time
    assert before["posbench_serve_generate_step_requests_max"] <= 1
    assert m["posbench_serve_generate_step_requests_max"] > 1
    assert m["posbench_serve_generate_step_sequences_max"] == 4  # --max-batch
    assert m["posbench_serve_generate_step_sequences_total"] > \
        m["posbench_serve_generate_steps_total"]


def test_full_queue_answers_503(ckpt):
    s = Server(ckpt, "--max-queue", "1", "--max-batch", "1")
    slow = {"prompt": [f"slow {i}" for i in range(64)], "max_tokens": 400, "temperature": 0}
    statuses, errs = [], []

    def client():
        status, _, text = curl(s, "/v1/completions", slow)
        statuses.append(status)
        if status != 200:
            errs.append(json.loads(text)["error"])

    try:
        first = threading.Thread(target=client)
        first.start()
        wait_running(s)
        # one more fits the queue (1); the rest are refused while it waits
        threads = [threading.Thread(target=client) for _ in range(6)]
        for th in threads:
            th.start()
        for th in [first, *threads]:
            th.join(t(60))
        assert sorted(statuses)[:2] == [200, 200] and set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) >= 3, statuses
        assert all("queue is full" in e["message"] for e in errs), errs
        assert metrics(s)['posbench_serve_requests_total{endpoint="/v1/completions",status="503"}'] \
            == statuses.count(503)
        assert complete(s, "abc")["choices"][0]["text"]  # still serving
    finally:
        s.stop()


# ---- errors ----

def error_of(srv, path, body=None, raw=None, method=None):
    status, ctype, text = curl(srv, path, body, raw=raw, method=method)
    assert ctype.startswith("application/json"), (status, text)
    err = json.loads(text)["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    return status, err


@pytest.mark.parametrize("path,body,raw,method,status,param,code,words", [
    ("/v1/completions", None, '{"prompt": "a",', None, 400, None, "invalid_json", "invalid JSON"),
    ("/v1/completions", None, "[1, 2]", None, 400, None, "invalid_json", "JSON object"),
    ("/v1/completions", {"model": "gpt-9", "prompt": "a"}, None, None, 404, "model",
     "model_not_found", "gpt-9"),
    ("/v1/models/gpt-9", None, None, None, 404, "model", "model_not_found", "gpt-9"),
    ("/v1/nothing", {"prompt": "a"}, None, None, 404, None, "unknown_url", "/v1/nothing"),
    ("/v1/completions", None, None, "GET", 405, None, "method_not_allowed", "POST"),
    ("/v1/completions", {"max_tokens": 3}, None, None, 400, "prompt", None, "prompt is required"),
    ("/v1/completions", {"prompt": "a", "n": 2}, None, None, 400, "n", None, "n"),
    ("/v1/completions", {"prompt": "a", "max_tokens": "many"}, None, None, 400, "max_tokens",
     None, "max_tokens"),
    ("/v1/completions", {"prompt": "a", "stream": True, "logprobs": 1}, None, None, 400,
     "logprobs", None, "not supported"),
    ("/v1/completions", {"prompt": "x" * 2000}, None, None, 400, "prompt",
     "context_length_exceeded", "context"),
    ("/v1/completions", {"prompt": [1, 99999]}, None, None, 400, "prompt", None, "vocabulary"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, None, None,
     400, "messages", None, "role"),
    ("/v1/embeddings", {"input": "a", "encoding_format": "base64"}, None, None, 400,
     "encoding_format", None, "base64"),
    ("/v1/completions", None, json.dumps({"prompt": "x" * (MAX_BODY + 10)}), None, 413, None,
     None, "too large"),
])
def test_errors_are_openai_shaped(srv, path, body, raw, method, status, param, code, words):
    got_status, err = error_of(srv, path, body, raw, method)
    assert got_status == status, err
    assert err["param"] == param and err["code"] == code, err
    assert words in err["message"], err
    assert err["type"] == ("NotFoundError" if status == 404 else "invalid_request_error")


def test_server_still_answers_after_errors(srv, ckpt):
    assert complete(srv, "abc")["choices"][0]["text"] == engine_greedy(ckpt, "abc", 8)
