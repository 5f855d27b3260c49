/* kernels/ctx.c: the kernel context: CPU feature detection and ISA choice,
 * a small pthread pool behind pk_parallel_for, per-thread scratch, aligned
 * allocation and the error strings. */
#include "config.h"

#include "kernels/kernels_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_BLAS
#include <cblas.h>
#endif

const char *pk_strerror(int rc)
{
	switch (rc) {
	case PK_OK: return "ok";
	case PK_EINVAL: return "invalid argument";
	case PK_ENOMEM: return "out of memory";
	case PK_ENOSPC: return "KV cache full";
	case PK_ERANGE: return "index out of range";
	case PK_ENOTSUP: return "not supported by this CPU or build";
	default: return "unknown kernel error";
	}
}

pk_isa_t pk_cpu_isa(void)
{
#if PK_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("fma"))
		return PK_ISA_AVX512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return PK_ISA_AVX2;
#endif
	return PK_ISA_SCALAR;
}

const char *pk_isa_name(pk_isa_t isa)
{
	switch (isa) {
	case PK_ISA_AUTO: return "auto";
	case PK_ISA_SCALAR: return "scalar";
	case PK_ISA_AVX2: return "avx2";
	case PK_ISA_AVX512: return "avx512";
	}
	return "unknown";
}

int pk_isa_parse(const char *name, pk_isa_t *out)
{
	static const pk_isa_t all[] = { PK_ISA_AUTO, PK_ISA_SCALAR, PK_ISA_AVX2, PK_ISA_AVX512 };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (name && strcmp(name, pk_isa_name(all[i])) == 0) {
			*out = all[i];
			return PK_OK;
		}
	return PK_EINVAL;
}

const char *pk_blas_name(void)
{
#if defined(HAVE_BLAS) && defined(HAVE_OPENBLAS_GET_CONFIG)
	static char name[160];
	if (!name[0]) {
		const char *core = "";
#ifdef HAVE_OPENBLAS_GET_CORENAME
		core = openblas_get_corename();
#endif
		snprintf(name, sizeof name, "%s core=%s", openblas_get_config(), core);
	}
	return name;
#elif defined(HAVE_BLAS)
	return "cblas";
#else
	return "builtin";
#endif
}

void *pk__alloc(size_t nmemb, size_t size)
{
	if (size && nmemb > (SIZE_MAX - 63) / size)
		return NULL;
	size_t bytes = (nmemb * size + 63) & ~(size_t)63;
	void *p = NULL;
	if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
		return NULL;
	return p;
}

void pk__free(void *p) { free(p); }

/* ---- the pool --------------------------------------------------------- */
/* Workers sleep on a condition variable; a job is (fn, arg, n) and indices
 * are claimed with one atomic counter. The caller takes part as tid 0. */
struct pk_pool {
	pthread_mutex_t mu;
	pthread_cond_t wake, done;
	pthread_t *threads;
	int nworkers;     /* threads besides the caller */
	uint64_t gen;     /* bumped per job */
	int busy;         /* workers still in the current job */
	int stop;
	pk_task_fn fn;
	void *arg;
	int n;
	atomic_int next;
};

struct pk_worker_arg {
	struct pk_pool *pool;
	int tid;
};

static void pool_drain(struct pk_pool *p, int tid)
{
	for (;;) {
		int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (i >= p->n)
			break;
		p->fn(p->arg, i, tid);
	}
}

static void *pool_main(void *v)
{
	struct pk_worker_arg *wa = v;
	struct pk_pool *p = wa->pool;
	int tid = wa->tid;
	free(wa);
	uint64_t seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		pthread_mutex_unlock(&p->mu);
		pool_drain(p, tid);
		pthread_mutex_lock(&p->mu);
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void pool_destroy(struct pk_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nworkers; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}

static struct pk_pool *pool_create(int nworkers)
{
	struct pk_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->threads = calloc((size_t)nworkers, sizeof *p->threads);
	if (!p->threads) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	atomic_init(&p->next, 0);
	for (int i = 0; i < nworkers; i++) {
		struct pk_worker_arg *wa = malloc(sizeof *wa);
		if (wa) {
			wa->pool = p;
			wa->tid = i + 1;
		}
		if (!wa || pthread_create(&p->threads[i], NULL, pool_main, wa) != 0) {
			free(wa);
			pool_destroy(p);
			return NULL;
		}
		p->nworkers = i + 1;
	}
	return p;
}

void pk_parallel_for(pk_ctx_t *ctx, int n, pk_task_fn fn, void *arg)
{
	if (n <= 0)
		return;
	struct pk_pool *p = ctx->pool;
	if (!p || n == 1) {
		for (int i = 0; i < n; i++)
			fn(arg, i, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	atomic_store(&p->next, 0);
	p->busy = p->nworkers;
	p->gen++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	pool_drain(p, 0);
	pthread_mutex_lock(&p->mu);
	while (p->busy > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

/* ---- context ---------------------------------------------------------- */
int pk_ctx_create(pk_ctx_t **out, int nthreads, pk_isa_t isa)
{
	*out = NULL;
	pk_isa_t best = pk_cpu_isa();
	if (isa == PK_ISA_AUTO)
		isa = best;
	if (isa < PK_ISA_SCALAR || isa > PK_ISA_AVX512)
		return PK_EINVAL;
	if (isa > best)
		return PK_ENOTSUP;
	if (nthreads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = n > 0 ? (int)n : 1;
	}
	if (nthreads > 1024)
		return PK_EINVAL;
	pk_ctx_t *c = calloc(1, sizeof *c);
	if (!c)
		return PK_ENOMEM;
	c->nthreads = nthreads;
	c->isa = isa;
	c->use_blas = pk__blas_choose(isa);
	c->scratch = calloc((size_t)nthreads, sizeof *c->scratch);
	if (!c->scratch)
		goto fail;
	if (nthreads > 1) {
		c->pool = pool_create(nthreads - 1);
		if (!c->pool)
			goto fail;
	}
	*out = c;
	return PK_OK;
fail:
	pk_ctx_destroy(c);
	return PK_ENOMEM;
}

void pk_ctx_destroy(pk_ctx_t *ctx)
{
	if (!ctx)
		return;
	pool_destroy(ctx->pool);
	if (ctx->scratch)
		for (int i = 0; i < ctx->nthreads; i++)
			pk__free(ctx->scratch[i]);
	free(ctx->scratch);
	free(ctx);
}

pk_isa_t pk_ctx_isa(const pk_ctx_t *ctx) { return ctx->isa; }
int pk_ctx_threads(const pk_ctx_t *ctx) { return ctx->nthreads; }

int pk__scratch_reserve(pk_ctx_t *ctx, size_t bytes)
{
	if (bytes <= ctx->scratch_size)
		return PK_OK;
	if (bytes > PK_SCRATCH_MAX)
		return PK_EINVAL;
	bytes = (bytes + 63) & ~(size_t)63;
	for (int i = 0; i < ctx->nthreads; i++) {
		void *p = pk__alloc(1, bytes);
		if (!p)
			return PK_ENOMEM; /* blocks already grown stay valid */
		pk__free(ctx->scratch[i]);
		ctx->scratch[i] = p;
	}
	ctx->scratch_size = bytes;
	return PK_OK;
}
