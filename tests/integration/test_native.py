"""The native backend end to end: a tiny Llama-style checkpoint with random
weights (written here as safetensors with NumPy) and a byte-level BPE
tokenizer.json run through the real coordinator and worker. The job
completes; seeded sampling gives the same predictions on a rerun and other
ones under another seed; a longctx run is sized in the model's tokens; a
bad checkpoint path is a clear task error; an invalid PE override or a
missing path is refused at submit naming the field."""

import json
import struct

import numpy as np
import pytest

from pbutil import running_cluster, spec, t

VOCAB = 257  # 256 byte tokens and <|endoftext|>
DIM, LAYERS, HEADS, KV_HEADS, FF, MAX_POS = 32, 2, 4, 2, 64, 1024


def _byte_unicode():
    """GPT-2's byte-to-unicode map: printable bytes stand for themselves."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_byte_tokenizer(d, vocab):
    """d/tokenizer.json: GPT-2's byte-level BPE over vocab (no merges), with
    <|endoftext|> (id 256) as its special token."""
    (d / "tokenizer.json").write_text(json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": 256, "content": "<|endoftext|>", "special": True,
                          "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": []},
    }, ensure_ascii=False))


def make_checkpoint(d):
    """A LlamaForCausalLM of 2 layers, d_model 32, grouped-query attention."""
    d.mkdir()
    rng = np.random.default_rng(7)
    hd = DIM // HEADS

    def w(*shape):
        return rng.normal(0, 0.3, shape).astype(np.float32)

    ts = {"model.embed_tokens.weight": w(VOCAB, DIM), "model.norm.weight": np.ones(DIM),
          "lm_head.weight": w(VOCAB, DIM)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        ts.update({p + "input_layernorm.weight": np.ones(DIM),
                   p + "post_attention_layernorm.weight": np.ones(DIM),
                   p + "self_attn.q_proj.weight": w(HEADS * hd, DIM),
                   p + "self_attn.k_proj.weight": w(KV_HEADS * hd, DIM),
                   p + "self_attn.v_proj.weight": w(KV_HEADS * hd, DIM),
                   p + "self_attn.o_proj.weight": w(DIM, HEADS * hd),
                   p + "mlp.gate_proj.weight": w(FF, DIM),
                   p + "mlp.up_proj.weight": w(FF, DIM),
                   p + "mlp.down_proj.weight": w(DIM, FF)})
    write_safetensors(d / "model.safetensors", ts)
    (d / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "vocab_size": VOCAB, "hidden_size": DIM,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "intermediate_size": FF,
        "max_position_embeddings": MAX_POS, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False}))
    vocab = {ch: b for b, ch in _byte_unicode().items()}
    write_byte_tokenizer(d, {**vocab, "<|endoftext|>": 256})
    return d


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    ckpt = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-llama")

    def setup(c):
        c.start_coordinator()
        c.start_worker("w1", slots=2, extra=["--threads", "1"])
        c.wait_workers(1)
        c.ckpt = str(ckpt)
    yield from running_cluster(tmp_path_factory.mktemp("native"), setup)


def _model(path, **extra):
    m = {"path": path, "max_tokens": 6, "temperature": 1.0, "top_k": 20}
    m.update(extra)
    return m


def _predictions(api, job_id):
    items, _ = api.all_items(job_id)
    return {(i["bucket"], i["idx"]): i["prediction"] for i in items}


def test_seeded_sampling_is_deterministic(native):
    api = native.api
    jobs = [api.submit(spec(name=f"native-{k}", backend="native", digits=(1, 3), samples=6,
                            seed=seed, model_name="tiny-llama", model_extra=_model(native.ckpt)))
            for k, seed in enumerate([5, 5, 6])]
    for j in jobs:
        job = api.wait_job(j, t(60))
        assert job["items_done"] == 18, job
    a, b, other = (_predictions(api, j) for j in jobs)
    assert len(a) == 18 and a == b
    assert any(p for p in a.values()), "the model generated nothing"
    assert a != other, "another seed sampled the very same answers"


def test_greedy_is_top_k_one_in_any_batch(native):
    api = native.api
    models = [_model(native.ckpt, temperature=0),
              _model(native.ckpt, temperature=1.5, top_k=1, batch_size=1)]
    jobs = [api.submit(spec(name=f"greedy-{k}", backend="native", digits=(2, 2), samples=4,
                            seed=9, model_name="tiny-llama", model_extra=m))
            for k, m in enumerate(models)]
    for j in jobs:
        api.wait_job(j, t(60))
    assert _predictions(api, jobs[0]) == _predictions(api, jobs[1])


def test_longctx_is_sized_in_tokens(native):
    api = native.api
    job = api.submit({"name": "native-longctx",
                      "model": {"name": "tiny-llama", "backend": "native",
                                **_model(native.ckpt, max_tokens=3)},
                      "runs": [{"suite": "longctx", "task": "passkey", "samples": 2,
                                "params": {"lengths": [512], "depths": 2}}],
                      "seed": 3})
    api.wait_job(job, t(120))
    (run,) = api.get_json(f"/api/v1/jobs/{job}/results")["runs"]
    assert run["unit"] == "tokens", run
    items, _ = api.all_items(job)
    assert len(items) == 2
    # sized by the model's tokenizer: at most the bucket and close to it
    for it in items:
        assert 490 <= it["meta"]["length"] <= 512, it
        assert it["error"] is None, it


def test_bad_path_is_a_clear_task_error(native, tmp_path):
    api = native.api
    missing = str(tmp_path / "no-such-model")
    job = api.submit(spec(name="native-missing", backend="native", digits=(1, 1), samples=2,
                          max_attempts=1, model_extra=_model(missing)))
    done = api.wait_job(job, t(60), states=("failed",))
    (ft,) = done["failed_tasks"]
    assert missing in ft["error"] and "No such file" in ft["error"], ft


def test_malformed_checkpoint_is_a_clear_task_error(native, tmp_path):
    api = native.api
    bad = make_checkpoint(tmp_path / "truncated")
    st = bad / "model.safetensors"
    st.write_bytes(st.read_bytes()[:-100])
    job = api.submit(spec(name="native-truncated", backend="native", digits=(1, 1), samples=2,
                          max_attempts=1, model_extra=_model(str(bad))))
    done = api.wait_job(job, t(60), states=("failed",))
    (ft,) = done["failed_tasks"]
    assert "model.safetensors" in ft["error"], ft


@pytest.mark.parametrize("extra,field", [
    ({"pe": {"type": "rope", "scaling": {"type": "yarn", "factor": 0.5}}}, "model.pe.scaling.factor"),
    ({"pe": {"type": "sinusoid"}}, "model.pe"),
    ({"pe": "rope"}, "model.pe"),
    ({"path": None}, "model.path"),
    ({"top_p": 0}, "model.top_p"),
    ({"stop": ["ok", 3]}, "model.stop"),
])
def test_bad_model_is_refused_at_submit(native, extra, field):
    m = _model(native.ckpt)
    m.update(extra)
    if m["path"] is None:
        del m["path"]
    r = native.api.post("/api/v1/jobs", spec(name="native-bad", backend="native",
                                             model_extra=m))
    assert r.status == 400, r
    assert r.json()["field"].startswith(field), r.json()


def test_valid_pe_override_runs(native):
    api = native.api
    m = _model(native.ckpt, temperature=0,
               pe={"type": "rope", "scaling": {"type": "yarn", "factor": 4,
                                                "original_max_position": 256}})
    job = api.submit(spec(name="native-yarn", backend="native", digits=(1, 2), samples=4,
                          model_name="tiny-llama-yarn", model_extra=m))
    assert api.wait_job(job, t(60))["items_done"] == 8


def test_stop_strings_cut_the_answer(native):
    api = native.api
    job = api.submit(spec(name="native-nostop", backend="native", digits=(3, 3), samples=8,
                          seed=4, model_extra=_model(native.ckpt, temperature=0)))
    api.wait_job(job, t(60))
    plain = _predictions(api, job)
    # an ASCII letter or digit some answer holds after its first character
    # (not "?": the store writes it for bytes that are not UTF-8)
    def ok(ch):
        return ch.isascii() and ch.isalnum()
    cut = [(k, p) for k, p in sorted(plain.items()) if any(ok(ch) for ch in p[1:])]
    assert cut, plain
    key, text = cut[0]
    stop = next(ch for ch in text[1:] if ok(ch))
    job = api.submit(spec(name="native-stop", backend="native", digits=(3, 3), samples=8,
                          seed=4, model_extra=_model(native.ckpt, temperature=0, stop=[stop])))
    api.wait_job(job, t(60))
    stopped = _predictions(api, job)
    assert stopped[key] == text[:text.find(stop)], (stop, text, stopped[key])
    for k, p in plain.items():
        assert stop not in stopped[k] and p.startswith(stopped[k]), (stop, p, stopped[k])


def test_model_is_loaded_once_per_worker(native):
    api = native.api
    jobs = [api.submit(spec(name=f"native-cache-{k}", backend="native", digits=(1, 2),
                            samples=8, shard_size=2, seed=k,
                            model_extra=_model(native.ckpt, temperature=0)))
            for k in range(3)]
    for j in jobs:
        api.wait_job(j, t(60))
    worker = native.workers["w1"]
    loads = [ln for ln in worker.read().splitlines()
             if f"native model {native.ckpt} loaded" in ln]
    # twelve tasks on two runner threads here, more before: one load per
    # PE override this module uses (none, yarn), never one per task
    assert 1 <= len(loads) <= 2, loads


def test_bad_pe_in_a_schedule_is_refused(native):
    job = spec(name="native-sched", backend="native",
               model_extra=_model(native.ckpt, pe={"type": "alibi", "theta": 10000.0}))
    r = native.api.post("/api/v1/schedules", {"name": "native-bad-pe", "cron": "0 * * * *",
                                              "job": job})
    assert r.status == 400, r
    assert r.json()["field"].startswith("job.model.pe"), r.json()
