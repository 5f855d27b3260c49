/* tests/golden/golden_attn.c: pk_golden's attention op. `attention` reads
 * q (Tq,H,D), k (Tk,Hkv,D), v (Tk,Hkv,D) as f32, qpos (Tq) and kpos (Tk)
 * as int32, then ALiBi slopes (H) when bias=alibi, the T5 table (nb,H)
 * when bias=t5, sink logits (H) when sinks=1; it fills a cache of the
 * given dtype and writes out (Tq,H,D). */
#include "tests/golden/golden.h"

#include <stdlib.h>
#include <string.h>

/* Params: Tq Tk H Hkv D causal window n_sink scale bias=none|alibi|t5
 * nb maxd bidir (t5) dtype=f32|bf16 sinks=0|1. */
static int op_attention(pk_ctx_t *ctx, int argc, char **argv)
{
	int Tq = (int)pkg_int(argc, argv, "Tq", 1), Tk = (int)pkg_int(argc, argv, "Tk", 1);
	int H = (int)pkg_int(argc, argv, "H", 1), Hkv = (int)pkg_int(argc, argv, "Hkv", 1);
	int D = (int)pkg_int(argc, argv, "D", 1);
	const char *bias = pkg_str(argc, argv, "bias", "none");
	const char *dtype = pkg_str(argc, argv, "dtype", "f32");
	if (Tq < 1 || Tk < 1 || H < 1 || Hkv < 1 || D < 1)
		pkg_die("attention: Tq, Tk, H, Hkv, D must be positive");
	pk_attn_cfg_t cfg = {
		.n_heads = H, .n_kv_heads = Hkv, .head_dim = D,
		.scale = (float)pkg_num(argc, argv, "scale", 0),
		.causal = (int)pkg_int(argc, argv, "causal", 1),
		.window = (int)pkg_int(argc, argv, "window", 0),
		.n_sink_tokens = (int)pkg_int(argc, argv, "n_sink", 0),
	};
	pk_dtype_t dt;
	if (strcmp(dtype, "f32") == 0)
		dt = PK_F32;
	else if (strcmp(dtype, "bf16") == 0)
		dt = PK_BF16;
	else
		pkg_die("attention: dtype=%s (f32 or bf16)", dtype);
	size_t nq = (size_t)Tq * H * D, nk = (size_t)Tk * Hkv * D;
	float *q = pkg_read_f32(nq), *k = pkg_read_f32(nk), *v = pkg_read_f32(nk);
	int32_t *qpos = pkg_read_i32((size_t)Tq), *kpos = pkg_read_i32((size_t)Tk);
	float *extra = NULL, *sinks = NULL;
	if (strcmp(bias, "alibi") == 0) {
		cfg.bias.kind = PK_BIAS_ALIBI;
		extra = pkg_read_f32((size_t)H);
		cfg.bias.alibi_slopes = extra;
	} else if (strcmp(bias, "t5") == 0) {
		cfg.bias.kind = PK_BIAS_T5;
		cfg.bias.t5_num_buckets = (int)pkg_int(argc, argv, "nb", 32);
		cfg.bias.t5_max_distance = (int)pkg_int(argc, argv, "maxd", 128);
		cfg.bias.t5_bidirectional = (int)pkg_int(argc, argv, "bidir", 0);
		if (cfg.bias.t5_num_buckets < 1)
			pkg_die("attention: nb must be positive");
		extra = pkg_read_f32((size_t)cfg.bias.t5_num_buckets * H);
		cfg.bias.t5_table = extra;
	} else if (strcmp(bias, "none") != 0) {
		pkg_die("attention: bias=%s (none, alibi or t5)", bias);
	}
	if (pkg_int(argc, argv, "sinks", 0)) {
		sinks = pkg_read_f32((size_t)H);
		cfg.sink_logits = sinks;
	}
	pk_kv_t kv;
	int rc = pk_kv_init(&kv, Hkv, D, Tk, dt);
	if (rc == PK_OK)
		rc = pk_kv_append(ctx, &kv, k, v, Tk, (size_t)Hkv * D, kpos);
	float *out = malloc(nq * sizeof *out);
	if (!out)
		pkg_die("out of memory");
	if (rc == PK_OK)
		rc = pk_attention(ctx, &cfg, q, Tq, (size_t)H * D, qpos, &kv, out, (size_t)H * D);
	if (rc != PK_OK)
		pkg_die("attention: %s", pk_strerror(rc));
	pkg_write_f32(out, nq);
	pk_kv_free(&kv);
	free(q);
	free(k);
	free(v);
	free(qpos);
	free(kpos);
	free(extra);
	free(sinks);
	free(out);
	return 0;
}

const pkg_op_t pkg_attn_ops[] = {
	{ "attention", op_attention },
	{ NULL, NULL },
};
