"""The native engine's forward pass against an independent NumPy one
(tests/engine/ref_forward.py) on tiny random checkpoints written by
tests/engine/make_ckpt.py: Llama (GQA), Qwen2 (biases, tied, one KV head),
GPT-2 and the research decoder with every PE. Tolerance: |c - r| <=
1e-4 + 1e-4 |r| for f32 weights (float64 reference). Also: KV-cache decode
equals one prefill, greedy generation equals NumPy's argmax loop, a PE
override with factor 1 equals none, a bf16 checkpoint equals its f32 twin
holding the same (bf16-representable) values, and bad overrides are refused
with the field named."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pbutil import binary

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
import make_ckpt  # noqa: E402
import ref_forward  # noqa: E402

ATOL = RTOL = 1e-4
# 140 tokens: more than one 128-token prefill chunk
IDS = [int(i) for i in np.random.default_rng(7).integers(0, make_ckpt.VOCAB, 140)]
SHORT = IDS[:24]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    make_ckpt.main(str(d))
    return str(d)


def run(ckpt, ids, mode="logits", n=1, pe=None, extra=(), ok=True):
    cmd = [binary("tests/engine/pe_forward"), ckpt, "--ids", ",".join(map(str, ids)),
           "--mode", mode, "--n", str(n)] + list(extra)
    if pe is not None:
        cmd += ["--pe", json.dumps(pe)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert (p.returncode == 0) == ok, p.stdout + p.stderr
    assert "runtime error" not in p.stderr and "Sanitizer" not in p.stderr, p.stderr
    return json.loads(p.stdout)


def close(c, r, atol=ATOL, rtol=RTOL):
    c, r = np.asarray(c), np.asarray(r)
    assert c.shape == r.shape
    bad = np.abs(c - r) > atol + rtol * np.abs(r)
    assert not bad.any(), "max |diff| %g at %s" % (np.abs(c - r).max(), np.argwhere(bad)[:3])


ARCHS = ["llama", "qwen2", "gpt2", "research_nope", "research_ape", "research_ape_sin",
         "research_rope", "research_alibi", "research_t5"]


@pytest.mark.parametrize("name", ARCHS)
def test_logits_match_numpy(ckpts, name):
    d = os.path.join(ckpts, name)
    c = run(d, IDS)["logits"]
    close(c, ref_forward.forward(d, IDS))


@pytest.mark.parametrize("name", ["llama", "gpt2", "research_alibi", "research_t5"])
def test_decode_equals_prefill(ckpts, name):
    d = os.path.join(ckpts, name)
    full = run(d, SHORT)["logits"]
    step = run(d, SHORT, mode="decode")
    assert step["len"] == len(SHORT)
    close(step["logits"], full, 1e-5, 1e-5)
    # a bf16 KV cache stays near the f32 one
    close(run(d, SHORT, mode="decode", extra=["--kv-bf16"])["logits"], full, 0.05, 0.02)


@pytest.mark.parametrize("name", ["llama", "gpt2", "research_rope"])
def test_greedy_matches_numpy(ckpts, name):
    d = os.path.join(ckpts, name)
    got = run(d, SHORT[:8], mode="generate", n=10)
    assert got["ids"] == ref_forward.greedy(d, SHORT[:8], 10)
    assert got["stop"] == 0  # max tokens


def test_loglik_matches_numpy(ckpts):
    d = os.path.join(ckpts, "llama")
    got = run(d, SHORT, mode="loglik", n=5)
    lg = ref_forward.forward(d, SHORT)
    lp = lg - lg.max(-1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
    want = sum(lp[i - 1, SHORT[i]] for i in range(len(SHORT) - 5, len(SHORT)))
    assert abs(got["ll"] - want) < 1e-3
    greedy = all(np.argmax(lg[i - 1]) == SHORT[i] for i in range(len(SHORT) - 5, len(SHORT)))
    assert got["greedy"] == greedy


def test_override_factor_one_is_identity(ckpts):
    d = os.path.join(ckpts, "llama")
    base = run(d, SHORT)["logits"]
    for pe in ({"type": "rope"}, {"type": "rope", "scaling": {"type": "linear", "factor": 1}},
               {"type": "rope", "scaling": {"type": "yarn", "factor": 1,
                                            "original_max_position": 64}},
               {"type": "rope", "scaling": {"type": "ntk", "factor": 1}}):
        close(run(d, SHORT, pe=pe)["logits"], base, 1e-6, 1e-6)


def test_override_changes_pe(ckpts):
    d = os.path.join(ckpts, "llama")
    base = np.array(run(d, SHORT)["logits"])
    for pe in ({"type": "nope"}, {"type": "alibi"},
               {"type": "rope", "scaling": {"type": "linear", "factor": 4}}):
        got = run(d, SHORT, pe=pe)["logits"]
        close(got, ref_forward.forward(d, SHORT, pe))
        assert np.abs(np.array(got) - base)[1:].max() > 1e-3  # position 0 is unchanged by rope


def test_bf16_matches_f32_twin(ckpts):
    a = run(os.path.join(ckpts, "llama_bf16"), SHORT)["logits"]
    b = run(os.path.join(ckpts, "llama_bf16ref"), SHORT)["logits"]
    close(a, b, 1e-6, 1e-6)  # same values: the conversion is exact


def test_bad_overrides_name_the_field(ckpts):
    d = os.path.join(ckpts, "llama")
    cases = [({"type": "yarn"}, "pe.type"),
             ({"type": "rope", "scaling": {"type": "yarn", "factor": 4}},
              "pe.scaling.original_max_position"),
             ({"type": "rope", "scaling": {"type": "linear", "factor": 0.5}},
              "pe.scaling.factor"),
             ({"type": "alibi", "theta": 10}, "pe.type"),
             ({"type": "rope", "bogus": 1}, "pe"),
             ({"type": "t5"}, "pe.type"),   # valid spec, but llama has no bias table
             ({"type": "ape"}, "pe.type")]
    for pe, field in cases:
        got = run(d, SHORT, pe=pe, ok=False)
        assert got["field"] == field, (pe, got)
        assert got["code"] == -2, got  # PB_EINVAL
    assert run(d, [], pe={"type": "rope", "scaling": {"type": "dynamic", "factor": 2,
                                                     "original_max_position": 32}},
               extra=["--validate"])["ok"]


def test_bad_ids_and_context(ckpts):
    d = os.path.join(ckpts, "gpt2")
    assert run(d, [1, make_ckpt.VOCAB], ok=False)["code"] == -2
    assert run(d, list(range(50)) * 4, ok=False)["code"] == -6  # past the 160 positions


def test_sampling_seeded(ckpts):
    d = os.path.join(ckpts, "research_rope")
    greedy = run(d, SHORT[:8], mode="generate", n=12)["ids"]
    args = ["--temperature", "1.5", "--seed", "42"]
    a = run(d, SHORT[:8], mode="generate", n=12, extra=args)["ids"]
    assert a == run(d, SHORT[:8], mode="generate", n=12, extra=args)["ids"]
    others = [run(d, SHORT[:8], mode="generate", n=12,
                  extra=["--temperature", "1.5", "--seed", str(s)])["ids"] for s in range(1, 4)]
    assert any(o != a for o in others)  # the seed matters
    assert all(0 <= t < make_ckpt.VOCAB for t in a)
    # top_k 1 and a tiny top_p are greedy whatever the temperature
    assert run(d, SHORT[:8], mode="generate", n=12, extra=args + ["--top-k", "1"])["ids"] == greedy
    assert run(d, SHORT[:8], mode="generate", n=12,
               extra=args + ["--top-p", "1e-6"])["ids"] == greedy


def test_dynamic_ntk_within_original_context_is_plain(ckpts):
    d = os.path.join(ckpts, "llama")
    pe = {"type": "rope", "scaling": {"type": "dynamic", "factor": 2,
                                      "original_max_position": 64}}
    close(run(d, SHORT, pe=pe)["logits"], run(d, SHORT)["logits"], 1e-6, 1e-6)
    # past it the base grows: later positions change
    pe["scaling"]["original_max_position"] = 8
    got = np.array(run(d, SHORT, pe=pe)["logits"])
    assert np.abs(got - np.array(run(d, SHORT)["logits"]))[1:].max() > 1e-3


def test_broken_checkpoints_name_the_tensor(tmp_path):
    cfg, t, _ = make_ckpt.variants()["llama"]
    cases = {"missing": ("model.layers.1.mlp.up_proj.weight", None),
             "shape": ("model.layers.0.self_attn.k_proj.weight", np.zeros((3, 3), np.float32))}
    for name, (tensor, repl) in cases.items():
        d = tmp_path / name
        d.mkdir()
        t2 = dict(t)
        if repl is None:
            del t2[tensor]
        else:
            t2[tensor] = repl
        (d / "config.json").write_text(json.dumps(cfg))
        make_ckpt.write_safetensors(str(d / "model.safetensors"), t2)
        got = run(str(d), SHORT, ok=False)
        assert tensor in got["error"], got
    d = tmp_path / "arch"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(dict(cfg, architectures=["FooForCausalLM"])))
    make_ckpt.write_safetensors(str(d / "model.safetensors"), t)
    got = run(str(d), SHORT, ok=False)
    assert got["field"] == "architectures" and got["code"] == -14


# ---- GPT-NeoX, BLOOM, BERT (engine/model_arch.c) ----------------------------
# neox: partial rotary (rotary_pct 0.5), parallel residual, erf GELU;
# neox_seq: rotary_pct 0.25, sequential residual, tanh GELU, rope_theta;
# bloom: 4 heads, "transformer." names; bloom_h6: 6 heads (non-power-of-two
# ALiBi slopes), bare BloomModel names; bert_mlm: BertForMaskedLM logits.
# Same tolerance as above.
MORE = ["neox", "neox_seq", "bloom", "bloom_h6", "bert_mlm"]


@pytest.mark.parametrize("name", MORE)
def test_more_archs_logits_match_numpy(ckpts, name):
    d = os.path.join(ckpts, name)
    ids = IDS if not name.startswith("bert") else IDS[:100]
    close(run(d, ids)["logits"], ref_forward.forward(d, ids))


@pytest.mark.parametrize("name", ["neox", "neox_seq", "bloom", "bloom_h6"])
def test_more_archs_decode_equals_prefill(ckpts, name):
    d = os.path.join(ckpts, name)
    full = run(d, SHORT)["logits"]
    step = run(d, SHORT, mode="decode")
    assert step["len"] == len(SHORT)
    # decode's matvec sums in another order than prefill's sgemm: the
    # tolerance scales with the logits (BLOOM's tied head makes them ~15)
    close(step["logits"], full, 1e-5 * max(1.0, np.abs(full).max()), 1e-5)


@pytest.mark.parametrize("name", ["neox", "bloom_h6"])
def test_more_archs_greedy_matches_numpy(ckpts, name):
    d = os.path.join(ckpts, name)
    assert run(d, SHORT[:8], mode="generate", n=8)["ids"] == ref_forward.greedy(d, SHORT[:8], 8)


def test_fused_qkv_layout_matters(ckpts, tmp_path):
    # the per-head [q, k, v] reorder is what makes neox match: read the fused
    # rows as [q all | k all | v all] (GPT-2's split) and the logits differ
    d = os.path.join(ckpts, "neox")
    cfg, W = ref_forward.load(d)
    t = {k: v.astype(np.float32) for k, v in W.items()}
    Dm, H = cfg["hidden_size"], cfg["num_attention_heads"]
    for l in range(cfg["num_hidden_layers"]):
        n = "gpt_neox.layers.%d.attention.query_key_value.weight" % l
        w = t[n].reshape(3, H, Dm // H, Dm)  # block layout ...
        t[n] = np.ascontiguousarray(w.transpose(1, 0, 2, 3).reshape(3 * Dm, Dm))  # ... per head
    d2 = tmp_path / "neox_perm"
    d2.mkdir()
    (d2 / "config.json").write_text(json.dumps(cfg))
    make_ckpt.write_safetensors(str(d2 / "model.safetensors"), t)
    assert np.abs(np.array(run(str(d2), SHORT)["logits"]) -
                  np.array(run(d, SHORT)["logits"])).max() > 1e-2
    close(run(str(d2), SHORT)["logits"], ref_forward.forward(str(d2), SHORT))


@pytest.mark.parametrize("name", ["bert", "bert_mlm"])
def test_bert_embeddings_match_numpy(ckpts, name):
    d = os.path.join(ckpts, name)
    for ids in (SHORT, IDS):  # 140 tokens: one bidirectional pass, no chunking
        for pool, n in (("mean", 0), ("cls", 1)):
            got = run(d, ids, mode="embed", n=n)["embedding"][0]
            close(got, ref_forward.embed(d, ids, pool))
    # bidirectional: the first token's state depends on the last token
    a = np.array(run(d, SHORT, mode="embed", n=1)["embedding"][0])
    b = np.array(run(d, SHORT[:-1] + [(SHORT[-1] + 1) % make_ckpt.VOCAB], mode="embed",
                     n=1)["embedding"][0])
    assert np.abs(a - b).max() > 1e-4


def test_bert_limits(ckpts):
    d = os.path.join(ckpts, "bert")
    assert run(d, SHORT, ok=False)["code"] == -14  # BertModel: no LM head for logits
    # an encoder cannot be extended token by token
    assert run(os.path.join(ckpts, "bert_mlm"), SHORT[:3], mode="decode", ok=False)["code"] == -2
    assert run(d, IDS + IDS, mode="embed", n=0, ok=False)["code"] == -6  # past 160 positions


# ---- several sequences in one pass (pe_model_forward_batch) ------------------
# Mixed lengths, one longer than a 128-row chunk (it spans chunks and shares
# them with its neighbours), then 3 batched decode steps: last-token logits
# equal per-sequence pe_model_forward within 1e-5 of the row's scale, and
# every state holds what it would alone. nseq = 1 is the single path.
BATCH_SEQS = [IDS[:5], IDS[:140], IDS[3:4], IDS[10:70], SHORT]


def seqs_arg(seqs):
    return ";".join(",".join(map(str, s)) for s in seqs)


@pytest.mark.parametrize("name", ["llama", "qwen2", "gpt2", "research_rope", "research_ape",
                                  "research_ape_sin", "research_alibi", "research_t5", "neox",
                                  "bloom"])
def test_forward_batch_equals_per_sequence(ckpts, name):
    d = os.path.join(ckpts, name)
    for seqs in (BATCH_SEQS, [IDS[:140]], [SHORT, SHORT[:1]]):
        got = run(d, [], mode="batch", n=3, extra=["--ids", seqs_arg(seqs)])
        assert got["lens"] == got["want_lens"] == [len(s) + 3 for s in seqs]
        assert got["max_rel"] <= 1e-5, got["max_rel"]


def test_forward_batch_with_dynamic_ntk(ckpts):
    # the rope table follows each sequence's own length: still per sequence
    pe = {"type": "rope", "scaling": {"type": "dynamic", "factor": 2, "original_max_position": 8}}
    got = run(os.path.join(ckpts, "llama"), [], mode="batch", n=2, pe=pe,
              extra=["--ids", seqs_arg(BATCH_SEQS)])
    assert got["lens"] == got["want_lens"] and got["max_rel"] <= 1e-5


@pytest.mark.parametrize("extra", [[], ["--temperature", "0.9", "--top-k", "20", "--seed", "5"]])
def test_generate_batch_equals_one_by_one(ckpts, extra):
    d = os.path.join(ckpts, "llama")
    got = run(d, [], mode="batch-generate", n=12, extra=["--ids", seqs_arg(BATCH_SEQS), *extra])
    assert got["same"], got
    assert [len(x) for x in got["ids"]] == [12] * len(BATCH_SEQS)


def test_forward_batch_refuses_bad_input_before_running(ckpts):
    d = os.path.join(ckpts, "llama")
    got = run(d, [], mode="batch", n=0, ok=False,
              extra=["--ids", seqs_arg([SHORT, [1, make_ckpt.VOCAB]])])
    assert got["code"] == -2 and got["field"] == "ids"
