"""Golden checks of pk_attention: NumPy computes attention from the formula
(softmax(scale * q k^T + bias) v over the visible keys, GQA by repeating KV
heads, ALiBi -slope*distance, T5 bias through HF's relative_position_bucket,
sliding window with sinks, learned sink logits in the denominator) in
float64, with bf16 caches rounded to nearest even first."""

import math

import numpy as np
import pytest


def bf16_round(x):
    """float32 -> bf16 (round to nearest even) -> float32; no NaNs here."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def t5_bucket(split, rel, bidirectional, num_buckets, max_distance):
    """HF T5Attention._relative_position_bucket in float64, rel = key - query;
    split: the conftest `t5_split` fixture (the sign/magnitude half)."""
    ret, n, nb, max_exact = split(rel, bidirectional, num_buckets)
    x = np.log(np.maximum(n, 1) / max_exact) / math.log(max_distance / max_exact) * (nb - max_exact)
    big = n >= max_exact
    # the C side rounds in float32: keep away from integer ties (log 1 = 0
    # and the saturating end are exact either way)
    frac = np.abs(x - np.round(x))[(n > max_exact) & (x < nb - max_exact - 1e-6)]
    assert frac.size == 0 or frac.min() > 1e-4, "T5 bucket tie: pick other sizes"
    large = np.minimum(max_exact + x.astype(np.int64), nb - 1)
    return ret + np.where(big, large, n)


def attention_ref(q, k, v, qpos, kpos, causal, window, n_sink, scale, bias=None,
                  slopes=None, t5=None, t5_buckets=None, sinks=None):
    """t5_buckets: (Tq, Tk) bucket of each query/key pair, indexes t5's rows."""
    Tq, H, D = q.shape
    Tk, Hkv, _ = k.shape
    G = H // Hkv
    kk = np.repeat(k.astype(np.float64), G, axis=1)  # head h reads KV head h // G
    vv = np.repeat(v.astype(np.float64), G, axis=1)
    if scale == 0:
        scale = 1.0 / math.sqrt(D)
    s = np.einsum("thd,khd->htk", q.astype(np.float64), kk) * scale
    dist = qpos[:, None].astype(np.int64) - kpos[None, :].astype(np.int64)  # (Tq, Tk)
    vis = np.ones((Tq, Tk), dtype=bool)
    if causal:
        vis &= dist >= 0
    if window > 0:
        windowed = (np.arange(Tk) >= n_sink)[None, :]
        vis &= ~(windowed & (np.abs(dist) >= window))
    if bias == "alibi":
        s -= slopes.astype(np.float64)[:, None, None] * (dist if causal else np.abs(dist))[None]
    elif bias == "t5":
        s += np.moveaxis(t5.astype(np.float64)[t5_buckets], -1, 0)  # (H, Tq, Tk)
    s = np.where(vis[None], s, -np.inf)
    m = s.max(axis=2)
    if sinks is not None:
        m = np.maximum(m, sinks.astype(np.float64)[:, None])
    any_vis = vis.any(axis=1)[None, :]
    m = np.where(any_vis, m, 0.0)
    p = np.exp(s - m[:, :, None])
    den = p.sum(axis=2)
    if sinks is not None:
        den = den + np.exp(sinks.astype(np.float64)[:, None] - m)
    o = np.einsum("htk,khd->thd", p, vv) / np.where(any_vis, den, 1.0).T[:, :, None]
    return np.where(any_vis.T[:, :, None], o, 0.0)


CASES = [
    # Tq, Tk, H, Hkv, D, causal, window, n_sink, scale, bias, bidir, dtype, sinks, stride
    dict(Tq=37, Tk=37, H=4, Hkv=4, D=64, causal=1),
    dict(Tq=20, Tk=70, H=8, Hkv=2, D=80, causal=1, bias="alibi", dtype="bf16"),
    dict(Tq=15, Tk=40, H=4, Hkv=1, D=32, causal=0, bias="t5", bidir=1, stride=7),
    dict(Tq=1, Tk=300, H=4, Hkv=2, D=128, causal=1, bias="t5", bidir=0),
    dict(Tq=30, Tk=90, H=8, Hkv=2, D=64, causal=1, window=16, n_sink=2, sinks=1,
         dtype="bf16"),
    dict(Tq=25, Tk=25, H=6, Hkv=3, D=48, causal=0, window=6, bias="alibi", scale=0.3),
    dict(Tq=1, Tk=600, H=8, Hkv=2, D=128, causal=1, window=100, n_sink=4, sinks=1,
         dtype="bf16", bias="alibi"),
    dict(Tq=9, Tk=5, H=2, Hkv=1, D=16, causal=1, sinks=1),  # early rows see no key
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_attention(golden, t5_split, case):
    c = dict(window=0, n_sink=0, scale=0.0, bias="none", bidir=0, dtype="f32", sinks=0,
             stride=1)
    c.update(case)
    rng = np.random.default_rng(c["Tq"] * 1000 + c["Tk"])
    Tq, Tk, H, Hkv, D = c["Tq"], c["Tk"], c["H"], c["Hkv"], c["D"]
    q = rng.uniform(-1, 1, (Tq, H, D)).astype(np.float32)
    k = rng.uniform(-1, 1, (Tk, Hkv, D)).astype(np.float32)
    v = rng.uniform(-1, 1, (Tk, Hkv, D)).astype(np.float32)
    kpos = (np.arange(Tk) * c["stride"]).astype(np.int32)
    qpos = ((Tk - Tq + np.arange(Tq)) * c["stride"]).astype(np.int32)
    inputs = [q, k, v, qpos, kpos]
    slopes = t5 = buckets = sinks = None
    nb, maxd = 32, 90  # no float ties in the buckets met here (see t5_bucket)
    if c["bias"] == "alibi":
        slopes = (2.0 ** (-8.0 * np.arange(1, H + 1) / H)).astype(np.float32)
        inputs.append(slopes)
    elif c["bias"] == "t5":
        t5 = rng.uniform(-2, 2, (nb, H)).astype(np.float32)
        inputs.append(t5)
        buckets = t5_bucket(t5_split, kpos[None, :] - qpos[:, None], c["bidir"], nb, maxd)
    if c["sinks"]:
        sinks = rng.uniform(-1, 3, H).astype(np.float32)
        inputs.append(sinks)
    kr, vr = (bf16_round(k), bf16_round(v)) if c["dtype"] == "bf16" else (k, v)
    want = attention_ref(q, kr, vr, qpos, kpos, c["causal"], c["window"], c["n_sink"],
                         c["scale"], c["bias"], slopes, t5, buckets, sinks)
    got = golden("attention", inputs, Tq=Tq, Tk=Tk, H=H, Hkv=Hkv, D=D, causal=c["causal"],
                 window=c["window"], n_sink=c["n_sink"], scale=c["scale"], bias=c["bias"],
                 nb=nb, maxd=maxd, bidir=c["bidir"], dtype=c["dtype"], sinks=c["sinks"])
    np.testing.assert_allclose(got.reshape(Tq, H, D), want, rtol=1e-4, atol=1e-5)
    if Tq == 9:  # rows 0..3 sit before every key
        assert not got.reshape(Tq, H, D)[:4].any()
