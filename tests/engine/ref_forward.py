"""An independent NumPy forward pass (float64) for the engine tests: reads a
checkpoint directory written by make_ckpt.py (its own safetensors reader) and
computes every position's logits from the formulas: HF Llama (rotate_half
RoPE, RMSNorm, SwiGLU, GQA), GPT-2 (Conv1D (in, out) weights, LayerNorm,
GELU tanh, learned APE), GPT-NeoX (fused per-head qkv, partial rotary,
parallel residual), BLOOM (ALiBi as build_alibi_tensor, embedding
LayerNorm), BERT (post-LN encoder, MLM head, pooled embeddings) and
posbench's research decoder (nope, ape, ape sinusoidal, rope, alibi, t5). pe: an override dict as the engine takes
(nope, alibi, rope with linear scaling)."""
import json
import math
import os
import struct

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    for name, m in header.items():
        if name == "__metadata__":
            continue
        b, e = m["data_offsets"]
        raw = data[base + b:base + e]
        if m["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4")
        elif m["dtype"] == "BF16":
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(m["dtype"])
        out[name] = a.reshape(m["shape"]).astype(np.float64)
    return out


def load(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    return cfg, read_safetensors(os.path.join(d, "model.safetensors"))


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1 + np.exp(-x))


def rope(x, pos, theta, factor=1.0):
    """x: (T, H, hd), HF rotate_half layout; linear scaling divides positions."""
    hd = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    f = np.outer(pos / factor, inv)               # (T, hd/2)
    emb = np.concatenate([f, f], -1)[:, None, :]  # (T, 1, hd)
    x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
    rot = np.concatenate([-x2, x1], -1)
    return x * np.cos(emb) + rot * np.sin(emb)


def alibi_slopes(n):
    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return np.array(pow2(n))
    p = 2 ** math.floor(math.log2(n))
    return np.array(pow2(p) + pow2(2 * p)[0::2][:n - p])


def t5_bucket(rel, num_buckets, max_distance):
    """HF T5 _relative_position_bucket, unidirectional; rel = k - q."""
    n = -min(rel, 0)
    max_exact = num_buckets // 2
    if n < max_exact:
        return n
    large = max_exact + int(math.log(n / max_exact) / math.log(max_distance / max_exact)
                            * (num_buckets - max_exact))
    return min(large, num_buckets - 1)


def attention(q, k, v, bias):
    """q: (T, H, hd), k/v: (T, KVH, hd), bias: (H, T, T) or None; causal."""
    T, H, hd = q.shape
    rep = H // k.shape[1]
    k = np.repeat(k, rep, axis=1)
    v = np.repeat(v, rep, axis=1)
    s = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
    if bias is not None:
        s = s + bias
    s = s + np.triu(np.full((T, T), -np.inf), 1)
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    return np.einsum("hqk,khd->qhd", s, v).reshape(T, H * hd)


def forward(d, ids, pe=None):
    """All positions' logits (T, vocab), float64."""
    cfg, W = load(d)
    ids = np.asarray(ids)
    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    arch = cfg["architectures"][0]
    if arch == "GPT2LMHeadModel":
        return gpt2(cfg, W, ids, pos)
    if arch == "GPTNeoXForCausalLM":
        return neox(cfg, W, ids, pos)
    if arch == "BloomForCausalLM":
        return bloom(cfg, W, ids)
    if arch.startswith("Bert"):
        return bert(cfg, W, ids)[1]
    H = cfg["num_attention_heads"]
    KVH = cfg.get("num_key_value_heads", H)
    Dm = cfg["hidden_size"]
    hd = Dm // H
    eps = cfg["rms_norm_eps"]
    spec = cfg.get("pe", {"type": "rope", "theta": cfg.get("rope_theta", 10000.0)})
    factor = 1.0
    if pe is not None:
        theta = spec.get("theta", 10000.0)
        spec = dict(pe)
        spec.setdefault("theta", theta)
        sc = pe.get("scaling")
        if sc:
            assert sc["type"] == "linear"
            factor = sc.get("factor", 1.0)
    x = W["model.embed_tokens.weight"][ids]
    kind = spec["type"]
    if kind == "ape" and spec.get("sinusoidal"):
        i = np.arange(0, Dm, 2)
        ang = pos[:, None] / 10000.0 ** (i / Dm)
        pe_tab = np.zeros((T, Dm))
        pe_tab[:, 0::2], pe_tab[:, 1::2] = np.sin(ang), np.cos(ang)
        x = x + pe_tab
    elif kind == "ape":
        x = x + W["model.embed_positions.weight"][:T]
    bias = None
    rel = pos[None, :] - pos[:, None]  # k - q, (Tq, Tk)
    if kind == "alibi":
        bias = alibi_slopes(H)[:, None, None] * rel[None]
    elif kind == "t5":
        nb, md = spec.get("num_buckets", 32), spec.get("max_distance", 128)
        tab = W["model.rel_attn_bias.weight"]  # (buckets, H)
        bk = np.vectorize(lambda r: t5_bucket(int(r), nb, md))(rel)
        bias = np.transpose(tab[bk], (2, 0, 1))
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)

        def proj(n):
            y = h @ W[p + "self_attn.%s_proj.weight" % n].T
            b = W.get(p + "self_attn.%s_proj.bias" % n)
            return y if b is None else y + b
        q = proj("q").reshape(T, H, hd)
        k = proj("k").reshape(T, KVH, hd)
        v = proj("v").reshape(T, KVH, hd)
        if kind == "rope":
            q, k = rope(q, pos, spec["theta"], factor), rope(k, pos, spec["theta"], factor)
        a = attention(q, k, v, bias)
        x = x + a @ W[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = silu(h @ W[p + "mlp.gate_proj.weight"].T) * (h @ W[p + "mlp.up_proj.weight"].T)
        x = x + g @ W[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return x @ head.T


def gpt2(cfg, W, ids, pos):
    T, H, Dm = len(ids), cfg["n_head"], cfg["n_embd"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][:T]
    for l in range(cfg["n_layer"]):
        p = "transformer.h.%d." % l
        h = layernorm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * Dm:(i + 1) * Dm].reshape(T, H, Dm // H) for i in range(3))
        a = attention(q, k, v, None)
        x = x + a @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        h = layernorm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        f = gelu_tanh(h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + f @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    x = layernorm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return x @ W["transformer.wte.weight"].T


def gelu_erf(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def softmax_attn(q, k, v, scores_bias, causal=True):
    """q, k, v: (T, H, hd); scores_bias: (H, T, T) added after the scaling."""
    T, H, hd = q.shape
    s = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd) + scores_bias
    if causal:
        s = s + np.triu(np.full((T, T), -np.inf), 1)
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    return np.einsum("hqk,khd->qhd", s, v).reshape(T, H * hd)


def neox(cfg, W, ids, pos):
    """HF GPTNeoX: qkv.view(T, H, 3*hd) split [q | k | v] per head; rotary on
    the first int(hd * rotary_pct) dims (rotate_half within them)."""
    T, H, Dm = len(ids), cfg["num_attention_heads"], cfg["hidden_size"]
    hd = Dm // H
    rot = int(hd * cfg.get("rotary_pct", 0.25))
    base = cfg.get("rope_theta", cfg.get("rotary_emb_base", 10000))
    eps = cfg.get("layer_norm_eps", 1e-5)
    act = gelu_erf if cfg.get("hidden_act", "gelu") == "gelu" else gelu_tanh
    x = W["gpt_neox.embed_in.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = "gpt_neox.layers.%d." % l

        def dense(n, h):
            return h @ W[p + n + ".weight"].T + W[p + n + ".bias"]
        h = layernorm(x, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], eps)
        qkv = dense("attention.query_key_value", h).reshape(T, H, 3 * hd)
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q = np.concatenate([rope(q[..., :rot], pos, base), q[..., rot:]], -1)
        k = np.concatenate([rope(k[..., :rot], pos, base), k[..., rot:]], -1)
        a = dense("attention.dense", softmax_attn(q, k, v, 0.0))

        def mlp(h):
            return dense("mlp.dense_4h_to_h", act(dense("mlp.dense_h_to_4h", h)))

        def ln2(y):
            return layernorm(y, W[p + "post_attention_layernorm.weight"],
                             W[p + "post_attention_layernorm.bias"], eps)
        if cfg.get("use_parallel_residual", True):
            x = x + a + mlp(ln2(x))
        else:
            x = x + a
            x = x + mlp(ln2(x))
    x = layernorm(x, W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"],
                  eps)
    return x @ W["embed_out.weight"].T


def bloom_slopes(n):
    """HF build_alibi_tensor's slopes."""
    closest = 2 ** math.floor(math.log2(n))
    base = 2.0 ** (-(2.0 ** -(math.log2(closest) - 3)))
    slopes = [base ** p for p in range(1, closest + 1)]
    if closest != n:
        extra = 2.0 ** (-(2.0 ** -(math.log2(2 * closest) - 3)))
        rem = min(closest, n - closest)
        slopes += [extra ** p for p in range(1, 1 + 2 * rem, 2)]
    return np.array(slopes)


def bloom(cfg, W, ids):
    """HF Bloom: alibi = slope * key position (the same row shift as -slope *
    (q - k)), added to q.k / sqrt(hd); qkv.view(T, H, 3, hd)."""
    pre = "transformer." if "transformer.word_embeddings.weight" in W else ""
    T, H = len(ids), cfg["n_head"]
    Dm = cfg["hidden_size"]
    hd = Dm // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = W[pre + "word_embeddings.weight"][ids]
    x = layernorm(x, W[pre + "word_embeddings_layernorm.weight"],
                  W[pre + "word_embeddings_layernorm.bias"], eps)
    alibi = bloom_slopes(H)[:, None, None] * np.arange(T)[None, None, :]
    for l in range(cfg["n_layer"]):
        p = pre + "h.%d." % l

        def dense(n, h):
            return h @ W[p + n + ".weight"].T + W[p + n + ".bias"]

        def ln(n, y):
            return layernorm(y, W[p + n + ".weight"], W[p + n + ".bias"], eps)
        qkv = dense("self_attention.query_key_value", ln("input_layernorm", x)).reshape(T, H, 3, hd)
        a = softmax_attn(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], alibi)
        x = x + dense("self_attention.dense", a)
        f = gelu_tanh(dense("mlp.dense_h_to_4h", ln("post_attention_layernorm", x)))
        x = x + dense("mlp.dense_4h_to_h", f)
    x = layernorm(x, W[pre + "ln_f.weight"], W[pre + "ln_f.bias"], eps)
    return x @ W[pre + "word_embeddings.weight"].T


def bert(cfg, W, ids):
    """HF Bert: (last hidden state (T, d), MLM logits or None); one segment."""
    pre = "bert." if "bert.embeddings.word_embeddings.weight" in W else ""
    T, H, Dm = len(ids), cfg["num_attention_heads"], cfg["hidden_size"]
    hd = Dm // H
    eps = cfg.get("layer_norm_eps", 1e-12)
    e = pre + "embeddings."
    x = (W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][:T]
         + W[e + "token_type_embeddings.weight"][0])
    x = layernorm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)
    for l in range(cfg["num_hidden_layers"]):
        p = pre + "encoder.layer.%d." % l

        def dense(n, h):
            return h @ W[p + n + ".weight"].T + W[p + n + ".bias"]

        def ln(n, y):
            return layernorm(y, W[p + n + ".weight"], W[p + n + ".bias"], eps)
        q, k, v = (dense("attention.self." + n, x).reshape(T, H, hd)
                   for n in ("query", "key", "value"))
        a = softmax_attn(q, k, v, 0.0, causal=False)
        x = ln("attention.output.LayerNorm", dense("attention.output.dense", a) + x)
        f = dense("output.dense", gelu_erf(dense("intermediate.dense", x)))
        x = ln("output.LayerNorm", f + x)
    if "cls.predictions.transform.dense.weight" not in W:
        return x, None
    c = "cls.predictions."
    t = gelu_erf(x @ W[c + "transform.dense.weight"].T + W[c + "transform.dense.bias"])
    t = layernorm(t, W[c + "transform.LayerNorm.weight"], W[c + "transform.LayerNorm.bias"], eps)
    return x, t @ W[e + "word_embeddings.weight"].T + W[c + "bias"]


def embed(d, ids, pool):
    """BERT sentence embedding: pool "mean" or "cls" over the last hidden state."""
    cfg, W = load(d)
    x, _ = bert(cfg, W, np.asarray(ids))
    return x.mean(0) if pool == "mean" else x[0]


def greedy(d, ids, n, pe=None):
    ids = list(ids)
    out = []
    for _ in range(n):
        t = int(np.argmax(forward(d, ids, pe)[-1]))
        out.append(t)
        ids.append(t)
    return out
