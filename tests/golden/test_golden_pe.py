"""Golden checks of the positional encodings (kernels/rope.c, kernels/pe.c)
against NumPy written from the papers' reference code, not from the C: RoPE
in both layouts with every scaling (float64 angles), ALiBi slopes (Press et
al. get_slopes), T5 buckets (HF's float32 formula) and the sinusoidal table.
Each check runs on every ISA this CPU has (the `golden` fixture)."""

import math

import numpy as np
import pytest


# ---- RoPE reference ---------------------------------------------------------

def inv_freq(rot, base=10000.0, scaling="none", factor=1.0, L=0, seq_len=0,
             beta_fast=32.0, beta_slow=1.0, ext_factor=1.0, attn_factor=1.0,
             truncate=0.0, power=0.0):
    """(inverse frequency per pair, mscale), float64."""
    dim = rot
    idx = np.arange(0, dim, 2, dtype=np.float64)

    def freqs(b):
        return 1.0 / (b ** (idx / dim))

    s = factor
    if scaling == "none":
        return freqs(base), 1.0
    if scaling == "linear":  # position interpolation: m -> m/s
        return freqs(base) / s, 1.0
    if scaling == "ntk":  # LlamaNTKScaledRotaryEmbedding
        return freqs(base * s ** (dim / (dim - 2))), 1.0
    if scaling == "dynamic":  # HF DynamicNTKScalingRotaryEmbedding
        b = base
        if seq_len > L:
            b = base * ((s * seq_len / L) - (s - 1)) ** (dim / (dim - 2))
        return freqs(b), 1.0
    if scaling == "yarn":  # jquesnelle/yarn LlamaYaRNScaledRotaryEmbedding
        def corr_dim(n_rot):
            return (dim * math.log(L / (n_rot * 2 * math.pi))) / (2 * math.log(base))
        low = max(math.floor(corr_dim(beta_fast)), 0)
        high = min(math.ceil(corr_dim(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
        mask = (1 - ramp) * ext_factor
        extrap = freqs(base)
        interp = extrap / s
        f = interp * (1 - mask) + extrap * mask
        m = (0.1 * math.log(s) + 1.0 if s > 1 else 1.0) * attn_factor
        return f, m
    if scaling == "truncate":  # abacusai/Long-Context interpolate.py
        f = freqs(base)
        if s > 1:
            f = f / s
        if power > 0:
            f = f * (1.0 - np.arange(len(f)) / len(f)) ** power
        if truncate > 0:
            cutoff = 2 * math.pi / truncate
            ft = np.where(f < cutoff, 2 * math.pi / (truncate * 16), f)
            f = np.where(f < cutoff / 8, 0.0, ft)
        return f, 1.0
    raise ValueError(scaling)


def rope_ref(x, pos, layout, rot, **kw):
    """x: (T, H, D) float32 -> float64 rotated."""
    f, m = inv_freq(rot, **kw)
    ang = pos.astype(np.float64)[:, None] * f[None, :]  # (T, rot/2)
    cos = (np.cos(ang) * m)[:, None, :]
    sin = (np.sin(ang) * m)[:, None, :]
    y = x.astype(np.float64).copy()
    if layout == "norm":  # adjacent pairs as complex numbers (Meta llama)
        z = y[..., 0:rot:2] + 1j * y[..., 1:rot:2]
        z = z * (cos + 1j * sin)
        y[..., 0:rot:2] = z.real
        y[..., 1:rot:2] = z.imag
    else:  # HF rotate_half with cat(freqs, freqs)
        h = rot // 2
        xr = y[..., :rot]
        rotated = np.concatenate([-xr[..., h:], xr[..., :h]], axis=-1)
        c2 = np.concatenate([cos, cos], axis=-1)
        s2 = np.concatenate([sin, sin], axis=-1)
        y[..., :rot] = xr * c2 + rotated * s2
    return y


SCALINGS = [
    dict(scaling="none"),
    dict(scaling="linear", factor=4.0),
    dict(scaling="ntk", factor=8.0),
    dict(scaling="dynamic", factor=2.0, L=4096, seq_len=10000),
    dict(scaling="dynamic", factor=2.0, L=4096, seq_len=3000),
    dict(scaling="yarn", factor=16.0, L=4096),
    dict(scaling="yarn", factor=4.0, L=2048, beta_fast=16.0, beta_slow=2.0,
         ext_factor=0.7, attn_factor=0.9),
    dict(scaling="truncate", factor=4.0, truncate=4096.0),
    dict(scaling="truncate", factor=1.0, truncate=2048.0, power=1.5),
    dict(scaling="none", base=500000.0),
]

SHAPES = [  # (T, H, D, rot)
    (7, 3, 128, 128),
    (5, 1, 72, 44),
    (9, 5, 64, 32),
    (3, 2, 6, 6),
]


@pytest.mark.parametrize("layout", ["norm", "neox"])
@pytest.mark.parametrize("sc", range(len(SCALINGS)))
@pytest.mark.parametrize("shape", SHAPES)
def test_rope(golden, layout, sc, shape):
    T, H, D, rot = shape
    kw = SCALINGS[sc]
    rng = np.random.default_rng(100 * sc + D + T)
    x = rng.uniform(-2, 2, size=(T, H, D)).astype(np.float32)
    pos = rng.integers(0, 60000, size=T).astype(np.int32)
    pos[0] = 0
    want = rope_ref(x, pos, layout, rot, **kw)
    params = dict(T=T, H=H, D=D, layout=layout, rot_dims=rot, **kw)
    for cache in (0, 64):
        got = golden("rope", [x, pos], cache=cache, **params).reshape(T, H, D)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
        # dims past rot_dims pass through bit for bit
        assert np.array_equal(got[..., rot:], x[..., rot:])


@pytest.mark.parametrize("layout", ["norm", "neox"])
def test_rope_shift(golden, layout):
    T, H, D = 6, 4, 64
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(T, H, D)).astype(np.float32)
    pos = rng.integers(100, 5000, size=T).astype(np.int32)
    kw = dict(scaling="yarn", factor=8.0, L=4096)
    got = golden("rope", [x, pos], T=T, H=H, D=D, layout=layout, shift=-77, **kw)
    want = rope_ref(x, pos - 77, layout, D, **kw)  # mscale once
    np.testing.assert_allclose(got.reshape(T, H, D), want, rtol=1e-5, atol=2e-5)


# ---- ALiBi ------------------------------------------------------------------

def alibi_ref(n):
    """Press et al. get_slopes (attention_with_linear_biases)."""
    def pow2(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return pow2(n)
    c = 2 ** math.floor(math.log2(n))
    return pow2(c) + alibi_ref(2 * c)[0::2][: n - c]


def test_alibi(golden):
    for n in list(range(1, 41)) + [48, 64, 80, 96, 100]:
        got = golden("alibi", [], n=n)
        np.testing.assert_allclose(got, np.array(alibi_ref(n)), rtol=1e-6, atol=0)
    got = golden("alibi", [], n=12)
    want = [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625,
            0.707107, 0.353553, 0.176777, 0.0883883]
    np.testing.assert_allclose(got, want, rtol=2e-6)
    assert np.array_equal(golden("alibi", [], n=8), 2.0 ** -np.arange(1, 9))


# ---- T5 buckets -------------------------------------------------------------

def t5_ref(split, rel, bidirectional, num_buckets, max_distance):
    """HF _relative_position_bucket with torch's float32 arithmetic; split: the
    conftest `t5_split` fixture (the sign/magnitude half)."""
    ret, n, nb, max_exact = split(rel, bidirectional, num_buckets)
    is_small = n < max_exact
    with np.errstate(divide="ignore"):
        v = (np.log(n.astype(np.float32) / np.float32(max_exact))
             / np.float32(math.log(max_distance / max_exact))
             * np.float32(nb - max_exact))
    large = max_exact + np.where(is_small, 0, v).astype(np.int64)
    large = np.minimum(large, nb - 1)
    return ret + np.where(is_small, n, large)


@pytest.mark.parametrize("bidirectional", [1, 0])
@pytest.mark.parametrize("nb,md", [(32, 128), (64, 256), (16, 64), (32, 512)])
def test_t5_bucket(golden, t5_split, bidirectional, nb, md):
    rel = np.arange(-3000, 3001, dtype=np.int32)
    got = golden("t5_bucket", [rel], n=rel.size, bidirectional=bidirectional,
                 num_buckets=nb, max_distance=md)
    want = t5_ref(t5_split, rel, bidirectional, nb, md)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"rel {rel[bad[:5]]}: got {got[bad[:5]]}, want {want[bad[:5]]}"


def test_t5_published(golden):
    rel = np.array([-200, -64, -16, -8, -1, 0, 1, 8, 16, 64, 127, 500], dtype=np.int32)
    got = golden("t5_bucket", [rel], n=rel.size, bidirectional=1)
    assert got.tolist() == [15, 14, 10, 8, 1, 0, 17, 24, 26, 30, 31, 31]
    rel = np.array([-200, -64, -16, -8, -7, -1, 0, 5, 900], dtype=np.int32)
    got = golden("t5_bucket", [rel], n=rel.size, bidirectional=0)
    assert got.tolist() == [31, 26, 16, 8, 7, 1, 0, 0, 0]


# ---- sinusoidal APE ---------------------------------------------------------

@pytest.mark.parametrize("dim", [2, 38, 512])
def test_ape_sin(golden, dim):
    pos = np.array([0, 1, 2, 17, 511, 4095, 60000], dtype=np.int32)
    got = golden("ape_sin", [pos], T=pos.size, dim=dim).reshape(pos.size, dim)
    # Annotated Transformer: div_term = exp(arange(0, d, 2) * -ln(10000) / d)
    div = np.exp(np.arange(0, dim, 2, dtype=np.float64) * -(math.log(10000.0) / dim))
    want = np.zeros((pos.size, dim))
    want[:, 0::2] = np.sin(pos[:, None] * div)
    want[:, 1::2] = np.cos(pos[:, None] * div)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-7)
