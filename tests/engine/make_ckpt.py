"""Tiny random-weight checkpoints for the engine's forward-pass tests.

Safetensors are written by hand (8-byte little-endian header length, JSON
header, raw little-endian data) so the test needs only NumPy. Usage:
make_ckpt.py OUTDIR writes one directory per variant (see VARIANTS)."""
import json
import os
import struct
import sys

import numpy as np

VOCAB, D, LAYERS, HEADS, FF, MAXPOS = 61, 32, 2, 4, 48, 160


def bf16_round(a):
    """float32 -> the bf16 bit pattern (uint16), round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, dtype="F32"):
    """tensors: name -> float32 array; dtype F32 or BF16 for every tensor."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        raw = (bf16_round(a) if dtype == "BF16" else a).astype("<u2" if dtype == "BF16" else "<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rnd(rng, *shape, scale=0.2):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def llama_tensors(rng, kv_heads, bias=False, tied=False, ape=False, t5=False):
    hd = D // HEADS
    t = {"model.embed_tokens.weight": rnd(rng, VOCAB, D, scale=1.0),
         "model.norm.weight": 1 + rnd(rng, D, scale=0.1)}
    if not tied:
        t["lm_head.weight"] = rnd(rng, VOCAB, D)
    if ape:
        t["model.embed_positions.weight"] = rnd(rng, MAXPOS, D, scale=0.5)
    if t5:
        t["model.rel_attn_bias.weight"] = rnd(rng, 32, HEADS, scale=1.0)
    for i in range(LAYERS):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = 1 + rnd(rng, D, scale=0.1)
        t[p + "post_attention_layernorm.weight"] = 1 + rnd(rng, D, scale=0.1)
        for n, o in (("q", HEADS * hd), ("k", kv_heads * hd), ("v", kv_heads * hd)):
            t[p + "self_attn.%s_proj.weight" % n] = rnd(rng, o, D)
            if bias:
                t[p + "self_attn.%s_proj.bias" % n] = rnd(rng, o)
        t[p + "self_attn.o_proj.weight"] = rnd(rng, D, HEADS * hd)
        t[p + "mlp.gate_proj.weight"] = rnd(rng, FF, D)
        t[p + "mlp.up_proj.weight"] = rnd(rng, FF, D)
        t[p + "mlp.down_proj.weight"] = rnd(rng, D, FF)
    return t


def gpt2_tensors(rng):
    t = {"transformer.wte.weight": rnd(rng, VOCAB, D, scale=1.0),
         "transformer.wpe.weight": rnd(rng, MAXPOS, D, scale=0.5),
         "transformer.ln_f.weight": 1 + rnd(rng, D, scale=0.1),
         "transformer.ln_f.bias": rnd(rng, D, scale=0.1)}
    for i in range(LAYERS):
        p = "transformer.h.%d." % i
        for ln in ("ln_1", "ln_2"):
            t[p + ln + ".weight"] = 1 + rnd(rng, D, scale=0.1)
            t[p + ln + ".bias"] = rnd(rng, D, scale=0.1)
        # Conv1D stores (in, out)
        for n, i_, o in (("attn.c_attn", D, 3 * D), ("attn.c_proj", D, D),
                         ("mlp.c_fc", D, 4 * D), ("mlp.c_proj", 4 * D, D)):
            t[p + n + ".weight"] = rnd(rng, i_, o)
            t[p + n + ".bias"] = rnd(rng, o, scale=0.1)
    return t


def neox_tensors(rng, d=D, heads=HEADS, ff=FF):
    """GPTNeoXForCausalLM: fused query_key_value rows per head as [q, k, v]."""
    t = {"gpt_neox.embed_in.weight": rnd(rng, VOCAB, d, scale=1.0),
         "gpt_neox.final_layer_norm.weight": 1 + rnd(rng, d, scale=0.1),
         "gpt_neox.final_layer_norm.bias": rnd(rng, d, scale=0.1),
         "embed_out.weight": rnd(rng, VOCAB, d)}
    for i in range(LAYERS):
        p = "gpt_neox.layers.%d." % i
        for ln in ("input_layernorm", "post_attention_layernorm"):
            t[p + ln + ".weight"] = 1 + rnd(rng, d, scale=0.1)
            t[p + ln + ".bias"] = rnd(rng, d, scale=0.1)
        for n, o, i_ in (("attention.query_key_value", 3 * d, d), ("attention.dense", d, d),
                         ("mlp.dense_h_to_4h", ff, d), ("mlp.dense_4h_to_h", d, ff)):
            t[p + n + ".weight"] = rnd(rng, o, i_)
            t[p + n + ".bias"] = rnd(rng, o, scale=0.1)
    return t


def bloom_tensors(rng, d, prefix="transformer."):
    """BloomForCausalLM: embedding LayerNorm, fused qkv (heads, 3, hd), tied head."""
    t = {prefix + "word_embeddings.weight": rnd(rng, VOCAB, d, scale=1.0),
         prefix + "word_embeddings_layernorm.weight": 1 + rnd(rng, d, scale=0.1),
         prefix + "word_embeddings_layernorm.bias": rnd(rng, d, scale=0.1),
         prefix + "ln_f.weight": 1 + rnd(rng, d, scale=0.1),
         prefix + "ln_f.bias": rnd(rng, d, scale=0.1)}
    for i in range(LAYERS):
        p = prefix + "h.%d." % i
        for ln in ("input_layernorm", "post_attention_layernorm"):
            t[p + ln + ".weight"] = 1 + rnd(rng, d, scale=0.1)
            t[p + ln + ".bias"] = rnd(rng, d, scale=0.1)
        for n, o, i_ in (("self_attention.query_key_value", 3 * d, d),
                         ("self_attention.dense", d, d),
                         ("mlp.dense_h_to_4h", 4 * d, d), ("mlp.dense_4h_to_h", d, 4 * d)):
            t[p + n + ".weight"] = rnd(rng, o, i_, scale=0.5 if "query" in n else 0.2)
            t[p + n + ".bias"] = rnd(rng, o, scale=0.1)
    return t


def bert_tensors(rng, mlm):
    """BertForMaskedLM ("bert." prefix, cls.predictions head) or a bare BertModel."""
    pre = "bert." if mlm else ""
    t = {pre + "embeddings.word_embeddings.weight": rnd(rng, VOCAB, D, scale=1.0),
         pre + "embeddings.position_embeddings.weight": rnd(rng, MAXPOS, D, scale=0.5),
         pre + "embeddings.token_type_embeddings.weight": rnd(rng, 2, D, scale=0.5),
         pre + "embeddings.LayerNorm.weight": 1 + rnd(rng, D, scale=0.1),
         pre + "embeddings.LayerNorm.bias": rnd(rng, D, scale=0.1)}
    for i in range(LAYERS):
        p = pre + "encoder.layer.%d." % i
        for n, o, i_ in (("attention.self.query", D, D), ("attention.self.key", D, D),
                         ("attention.self.value", D, D), ("attention.output.dense", D, D),
                         ("intermediate.dense", FF, D), ("output.dense", D, FF)):
            t[p + n + ".weight"] = rnd(rng, o, i_)
            t[p + n + ".bias"] = rnd(rng, o, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"] = 1 + rnd(rng, D, scale=0.1)
            t[p + ln + ".bias"] = rnd(rng, D, scale=0.1)
    if mlm:
        t["cls.predictions.transform.dense.weight"] = rnd(rng, D, D)
        t["cls.predictions.transform.dense.bias"] = rnd(rng, D, scale=0.1)
        t["cls.predictions.transform.LayerNorm.weight"] = 1 + rnd(rng, D, scale=0.1)
        t["cls.predictions.transform.LayerNorm.bias"] = rnd(rng, D, scale=0.1)
        t["cls.predictions.bias"] = rnd(rng, VOCAB, scale=0.1)
    return t


def llama_config(arch="LlamaForCausalLM", kv=2, tied=False, **extra):
    c = {"architectures": [arch], "vocab_size": VOCAB, "hidden_size": D,
         "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
         "num_key_value_heads": kv, "intermediate_size": FF,
         "max_position_embeddings": MAXPOS, "rms_norm_eps": 1e-6,
         "rope_theta": 10000.0, "tie_word_embeddings": tied}
    c.update(extra)
    return c


def research_config(pe):
    c = llama_config("PosbenchResearchForCausalLM", kv=HEADS, tied=True, pe=pe)
    del c["rope_theta"]
    c["rms_norm_eps"] = 1e-5
    return c


def variants():
    """name -> (config, tensors, dtype)."""
    v = {}
    rng = np.random.default_rng(1)
    v["llama"] = (llama_config(kv=2), llama_tensors(rng, 2), "F32")
    rng = np.random.default_rng(2)
    v["qwen2"] = (llama_config("Qwen2ForCausalLM", kv=1, tied=True, rope_theta=1000.0),
                  llama_tensors(rng, 1, bias=True, tied=True), "F32")
    rng = np.random.default_rng(3)
    t = {k: bf16_to_f32(bf16_round(a)) for k, a in llama_tensors(rng, 2).items()}
    v["llama_bf16"] = (llama_config(kv=2), t, "BF16")
    v["llama_bf16ref"] = (llama_config(kv=2), t, "F32")
    rng = np.random.default_rng(4)
    v["gpt2"] = ({"architectures": ["GPT2LMHeadModel"], "vocab_size": VOCAB, "n_embd": D,
                  "n_layer": LAYERS, "n_head": HEADS, "n_positions": MAXPOS,
                  "layer_norm_epsilon": 1e-5}, gpt2_tensors(rng), "F32")
    rng = np.random.default_rng(20)
    neox = {"architectures": ["GPTNeoXForCausalLM"], "vocab_size": VOCAB, "hidden_size": D,
            "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": FF,
            "max_position_embeddings": MAXPOS, "rotary_pct": 0.5, "rotary_emb_base": 10000,
            "layer_norm_eps": 1e-5, "use_parallel_residual": True, "hidden_act": "gelu",
            "tie_word_embeddings": False}
    v["neox"] = (neox, neox_tensors(rng), "F32")
    rng = np.random.default_rng(21)
    v["neox_seq"] = (dict(neox, use_parallel_residual=False, rotary_pct=0.25,
                          hidden_act="gelu_new", rope_theta=500.0), neox_tensors(rng), "F32")
    for name, d, heads, pre, seed in (("bloom", D, HEADS, "transformer.", 22),
                                      ("bloom_h6", 48, 6, "", 23)):
        rng = np.random.default_rng(seed)
        v[name] = ({"architectures": ["BloomForCausalLM"], "vocab_size": VOCAB,
                    "hidden_size": d, "n_layer": LAYERS, "n_head": heads,
                    "layer_norm_epsilon": 1e-5}, bloom_tensors(rng, d, pre), "F32")
    for name, mlm, seed in (("bert_mlm", True, 24), ("bert", False, 25)):
        rng = np.random.default_rng(seed)
        v[name] = ({"architectures": ["BertForMaskedLM" if mlm else "BertModel"],
                    "vocab_size": VOCAB, "hidden_size": D, "num_hidden_layers": LAYERS,
                    "num_attention_heads": HEADS, "intermediate_size": FF,
                    "max_position_embeddings": MAXPOS, "type_vocab_size": 2,
                    "layer_norm_eps": 1e-12, "hidden_act": "gelu",
                    "position_embedding_type": "absolute"}, bert_tensors(rng, mlm), "F32")
    for i, pe in enumerate(({"type": "nope"}, {"type": "ape"}, {"type": "ape", "sinusoidal": True},
                            {"type": "rope", "theta": 500.0}, {"type": "alibi"},
                            {"type": "t5", "num_buckets": 32, "max_distance": 20})):
        rng = np.random.default_rng(10 + i)
        name = "research_" + pe["type"] + ("_sin" if pe.get("sinusoidal") else "")
        v[name] = (research_config(pe),
                   llama_tensors(rng, HEADS, tied=True, ape=pe["type"] == "ape" and not pe.get("sinusoidal"),
                                 t5=pe["type"] == "t5"), "F32")
    return v


def main(out):
    for name, (cfg, tensors, dtype) in variants().items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, dtype)


if __name__ == "__main__":
    main(sys.argv[1])
