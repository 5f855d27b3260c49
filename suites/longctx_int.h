/* Private to the longctx suite: what longctx.c (params, single needles,
 * sizing, scoring) shares with longctx_niah.c (RULER's multi-needle tasks),
 * longctx_words.c (cwe, fwe) and longctx_altqa.c: the parsed params, the
 * task ids, the haystack helpers and the renderers. Renderers work to a
 * budget in characters; longctx.c turns a bucket in tokens into one. */
#ifndef PS_LONGCTX_INT_H
#define PS_LONGCTX_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "common/util.h"

#define LC_MIN_LEN 512       /* the fixed template text takes up to ~400 chars */
#define LC_MAX_LEN (1 << 20) /* largest bucket, in length units */
#define LC_MAX_LENGTHS 32
#define LC_MAX_DEPTHS 40     /* RULER's depth grid */
/* The largest character budget: a bucket of LC_MAX_LEN tokens at up to 8
 * characters per token. */
#define LC_CHAR_MAX ((int64_t)8 * LC_MAX_LEN)
#define LC_TEXT_MAX ((size_t)LC_CHAR_MAX + 4096)
#define LC_REF_MAX 4096      /* string_match_all reads at most this much reference */

/* Task ids: the index in longctx.c's task table; the multi-needle tasks and
 * variable tracking (rendered by longctx_niah.c) come last, from TK_MK1 on. */
enum { TK_PASSKEY, TK_NIAH1, TK_NIAH2, TK_NIAH3, TK_KV, TK_MK1, TK_MK2, TK_MK3, TK_MV, TK_MQ,
       TK_VT, TK_CWE, TK_FWE, TK_AQA };

/* Parsed, validated params; also the run state. */
typedef struct lc_params {
    int task;
    int n_lengths;
    int64_t lengths[LC_MAX_LENGTHS]; /* ascending, distinct */
    int depths;
    double threshold;
} lc_params_t;

/* round(total * d / (n - 1)) in integers: where depth d of n falls. */
int64_t ps__lc_at_depth(int64_t total, int d, int n);
/* A random version-4 UUID, lowercase, NUL-terminated. */
void ps__lc_uuid4(pb_rng_t *rng, char out[37]);
/* A random "{adj}-{noun}" needle key (24 x 24 pairs) into out[0, n). */
void ps__lc_word_key(pb_rng_t *rng, char *out, size_t n);
/* A haystack of sentences joined by " " into hay, at most budget chars;
 * (*ends)[i] is where sentence i ends (malloc'd, *n_ends entries). prose:
 * generated prose topped up with short sentences, else RULER's repeated
 * filler. Returns 0 or PB_E*. */
int ps__lc_haystack(pb_rng_t *rng, int prose, int64_t budget, pb_buf_t *hay, size_t **ends,
                    size_t *n_ends);

/* One item of a task of longctx_niah.c (p->task >= TK_MK1) at depth d of
 * the bucket into pr (prompt) and ref (the answers, one per line). *n_keys
 * is the number of needle lines of a needle haystack (niah_multikey_2/3),
 * the number of variables for variable_tracking, else of needles. */
int ps__lc_render_multi(const lc_params_t *p, int64_t bucket, int d, pb_rng_t *rng,
                        pb_buf_t *pr, pb_buf_t *ref, int *n_keys);

/* common_words (RULER cwe) and frequent_words (fwe), longctx_words.c: the
 * prompt within chars characters for a bucket of that many length units
 * (RULER's repeat counts and vocabulary size follow the bucket), the
 * answers one per line into ref. PB_EINVAL when the template does not fit. */
int ps__lc_render_cwe(int64_t bucket, int64_t chars, pb_rng_t *rng, pb_buf_t *pr, pb_buf_t *ref);
int ps__lc_render_fwe(int64_t bucket, int64_t chars, pb_rng_t *rng, pb_buf_t *pr, pb_buf_t *ref);
/* cwe's vocabulary: word i of the built-in list of common English words
 * (NULL past its end), and the generated word for code (8 letters, four
 * consonant-vowel syllables, distinct for distinct codes below
 * PS_LC_GEN_WORDS) that extends it for long lists. */
#define PS_LC_GEN_WORDS 24010000u /* 70^4 */
const char *ps__lc_cwe_word(size_t i);
void ps__lc_gen_word(uint32_t code, char out[9]);

/* altered_numeric_qa, longctx_altqa.c: a gazetteer of made-up places and
 * their numeric facts within chars characters, the asked fact's number
 * altered (AltQA) everywhere it appears and its sentences at depth d.
 * ref gets the altered number (and its comma-grouped form when it has
 * one); original gets the number before alteration. */
int ps__lc_render_altqa(const lc_params_t *p, int64_t chars, int d, pb_rng_t *rng, pb_buf_t *pr,
                        pb_buf_t *ref, char original[24]);

#endif
