"""The engine benchmark's checkpoint: a ~100M-parameter Llama-style model
with random weights (d_model 768, 12 layers, 12 heads with 4 KV heads,
SwiGLU d_ff 2048, vocab 16000, untied head), written as f32 safetensors by
the engine tests' own writer (tests/engine/make_ckpt.py). Usage:
make_engine_ckpt.py OUTDIR; then bench_engine --ckpt OUTDIR."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "engine"))
from make_ckpt import write_safetensors  # noqa: E402

D, LAYERS, HEADS, KV, FF, VOCAB, MAXPOS = 768, 12, 12, 4, 2048, 16000, 2048


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    hd = D // HEADS

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    t = {"model.embed_tokens.weight": w(VOCAB, D), "model.norm.weight": np.ones(D, np.float32),
         "lm_head.weight": w(VOCAB, D)}
    for i in range(LAYERS):
        p = "model.layers.%d." % i
        t.update({p + "input_layernorm.weight": np.ones(D, np.float32),
                  p + "post_attention_layernorm.weight": np.ones(D, np.float32),
                  p + "self_attn.q_proj.weight": w(HEADS * hd, D),
                  p + "self_attn.k_proj.weight": w(KV * hd, D),
                  p + "self_attn.v_proj.weight": w(KV * hd, D),
                  p + "self_attn.o_proj.weight": w(D, HEADS * hd),
                  p + "mlp.gate_proj.weight": w(FF, D),
                  p + "mlp.up_proj.weight": w(FF, D),
                  p + "mlp.down_proj.weight": w(D, FF)})
    write_safetensors(os.path.join(out, "model.safetensors"), t)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"architectures": ["LlamaForCausalLM"], "vocab_size": VOCAB,
                   "hidden_size": D, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
                   "num_key_value_heads": KV, "intermediate_size": FF,
                   "max_position_embeddings": MAXPOS, "rms_norm_eps": 1e-5,
                   "rope_theta": 10000.0, "tie_word_embeddings": False}, f)
    print("%s: %.1fM parameters" % (out, sum(a.size for a in t.values()) / 1e6))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_engine_ckpt.py OUTDIR")
    main(sys.argv[1])
