/* tests/kernels/kvtest.h: helpers shared by test_kv.c and test_dsparse.c
 * (see kvtest.c). */
#ifndef PK_KVTEST_H
#define PK_KVTEST_H

#include "tests/kernels/ktest.h"

/* Element d of key/value row i of head h as f32. */
float kt_kv_get(const pk_kv_t *kv, const void *base, int h, int i, int d);
/* Row i of head h into out (head_dim). */
void kt_kv_row(const pk_kv_t *kv, const void *base, int h, int i, float *out);
/* Fails unless every label row equals the stored key's calibrated channels. */
void kt_check_labels(const pk_kv_t *kv);
/* Attention in double over the keys keep[] marks ((Tq, H, cap), NULL: all
 * visible), with pk_attention's visibility and bias rules; head_dim <= 64. */
void kt_ref_attention(const pk_attn_cfg_t *c, const float *q, int Tq,
	const int32_t *qpos, const pk_kv_t *kv, const unsigned char *keep, float *out);
/* kv initialised and filled with n random keys at positions 0..n-1. */
void kt_fill_cache(kt_rng_t *rng, pk_ctx_t *ctx, pk_kv_t *kv, int Hkv, int D, int n,
	pk_dtype_t dt);

#endif
