/* tests/golden/golden_pe.c: pk_golden's positional-encoding ops, driven by
 * test_golden_pe.py:
 *   rope      T H D [layout rot_dims base scaling factor L seq_len beta_fast
 *             beta_slow ext_factor attn_factor truncate power cache shift]
 *             in: x (T,H,D) f32, pos (T) i32; out: x rotated (then shifted)
 *   alibi     n                 out: slopes (n)
 *   t5_bucket n bidirectional num_buckets max_distance
 *             in: rel (n) i32;  out: bucket (n) as f32
 *   ape_sin   T dim [base]      in: pos (T) i32; out: table (T, dim) */
#include "tests/golden/golden.h"

#include <stdlib.h>
#include <string.h>

static int op_rope(pk_ctx_t *ctx, int argc, char **argv)
{
	int T = (int)pkg_int(argc, argv, "T", 1), H = (int)pkg_int(argc, argv, "H", 1);
	int D = (int)pkg_int(argc, argv, "D", 64);
	pk_rope_cfg_t c;
	pk_rope_cfg_default(&c, D);
	const char *lay = pkg_str(argc, argv, "layout", "neox");
	if (strcmp(lay, "norm") == 0)
		c.layout = PK_ROPE_NORM;
	else if (strcmp(lay, "neox") != 0)
		pkg_die("layout=%s: expected norm or neox", lay);
	static const char *const names[] = { "none", "linear", "ntk", "dynamic", "yarn", "truncate" };
	const char *sc = pkg_str(argc, argv, "scaling", "none");
	int found = 0;
	for (int i = 0; i < 6; i++)
		if (strcmp(sc, names[i]) == 0) {
			c.scaling = (pk_rope_scaling_t)i;
			found = 1;
		}
	if (!found)
		pkg_die("scaling=%s: unknown", sc);
	c.rot_dims = (int)pkg_int(argc, argv, "rot_dims", 0);
	c.base = pkg_num(argc, argv, "base", c.base);
	c.factor = pkg_num(argc, argv, "factor", c.factor);
	c.orig_max_pos = (int)pkg_int(argc, argv, "L", 0);
	c.seq_len = (int)pkg_int(argc, argv, "seq_len", 0);
	c.beta_fast = pkg_num(argc, argv, "beta_fast", c.beta_fast);
	c.beta_slow = pkg_num(argc, argv, "beta_slow", c.beta_slow);
	c.ext_factor = pkg_num(argc, argv, "ext_factor", c.ext_factor);
	c.attn_factor = pkg_num(argc, argv, "attn_factor", c.attn_factor);
	c.truncate = pkg_num(argc, argv, "truncate", 0);
	c.power = pkg_num(argc, argv, "power", 0);
	int cache = (int)pkg_int(argc, argv, "cache", 0);
	long shift = pkg_int(argc, argv, "shift", 0);
	if (T < 0 || H < 0 || D <= 0)
		pkg_die("bad shape T=%d H=%d D=%d", T, H, D);
	pk_rope_t r;
	int rc = pk_rope_init(&r, &c, cache);
	if (rc != PK_OK)
		pkg_die("pk_rope_init: %s", pk_strerror(rc));
	size_t n = (size_t)T * H * D;
	float *x = pkg_read_f32(n);
	int32_t *pos = pkg_read_i32((size_t)T);
	pk_rope_apply(ctx, &r, x, T, H, (size_t)H * D, pos);
	if (shift)
		pk_rope_shift(ctx, &r, x, T, H, (size_t)H * D, (int32_t)shift);
	pkg_write_f32(x, n);
	free(x);
	free(pos);
	pk_rope_free(&r);
	return 0;
}

static int op_alibi(pk_ctx_t *ctx, int argc, char **argv)
{
	int n = (int)pkg_int(argc, argv, "n", 8);
	if (n <= 0 || n > 1 << 16)
		pkg_die("n=%d out of range", n);
	float *s = malloc(sizeof *s * (size_t)n);
	if (!s)
		pkg_die("out of memory");
	int rc = pk_alibi_slopes(s, n);
	if (rc != PK_OK)
		pkg_die("pk_alibi_slopes: %s", pk_strerror(rc));
	pkg_write_f32(s, (size_t)n);
	free(s);
	return 0;
}

static int op_t5_bucket(pk_ctx_t *ctx, int argc, char **argv)
{
	long n = pkg_int(argc, argv, "n", 0);
	int bidir = (int)pkg_int(argc, argv, "bidirectional", 1);
	int nb = (int)pkg_int(argc, argv, "num_buckets", 32);
	int md = (int)pkg_int(argc, argv, "max_distance", 128);
	if (n < 0)
		pkg_die("n=%ld", n);
	int32_t *rel = pkg_read_i32((size_t)n);
	float *out = malloc(sizeof *out * (size_t)(n ? n : 1));
	if (!out)
		pkg_die("out of memory");
	for (long i = 0; i < n; i++) {
		int b = pk_t5_bucket(rel[i], bidir, nb, md);
		if (b < 0)
			pkg_die("pk_t5_bucket: %s", pk_strerror(b));
		out[i] = (float)b;
	}
	pkg_write_f32(out, (size_t)n);
	free(rel);
	free(out);
	return 0;
}

static int op_ape_sin(pk_ctx_t *ctx, int argc, char **argv)
{
	int T = (int)pkg_int(argc, argv, "T", 1), dim = (int)pkg_int(argc, argv, "dim", 64);
	double base = pkg_num(argc, argv, "base", 10000.0);
	if (T < 0 || dim <= 0)
		pkg_die("bad shape T=%d dim=%d", T, dim);
	int32_t *pos = pkg_read_i32((size_t)T);
	float *out = malloc(sizeof *out * ((size_t)T * dim + 1));
	if (!out)
		pkg_die("out of memory");
	int rc = pk_ape_sinusoidal(out, pos, T, dim, base);
	if (rc != PK_OK)
		pkg_die("pk_ape_sinusoidal: %s", pk_strerror(rc));
	pkg_write_f32(out, (size_t)T * dim);
	free(pos);
	free(out);
	return 0;
}

const pkg_op_t pkg_pe_ops[] = {
	{ "rope", op_rope },
	{ "alibi", op_alibi },
	{ "t5_bucket", op_t5_bucket },
	{ "ape_sin", op_ape_sin },
	{ NULL, NULL },
};
