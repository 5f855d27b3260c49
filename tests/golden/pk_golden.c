/* tests/golden/pk_golden.c: entry point and I/O of the golden tool (see
 * golden.h). The ISA comes from PK_ISA (default: the best this CPU has), so
 * the same NumPy check runs against every path. */
#include "tests/golden/golden.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void pkg_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("pk_golden: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

const char *pkg_str(int argc, char **argv, const char *key, const char *def)
{
	size_t kl = strlen(key);
	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], key, kl) == 0 && argv[i][kl] == '=')
			return argv[i] + kl + 1;
	return def;
}

long pkg_int(int argc, char **argv, const char *key, long def)
{
	const char *s = pkg_str(argc, argv, key, NULL);
	if (!s)
		return def;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end)
		pkg_die("%s=%s is not an integer", key, s);
	return v;
}

double pkg_num(int argc, char **argv, const char *key, double def)
{
	const char *s = pkg_str(argc, argv, key, NULL);
	if (!s)
		return def;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end)
		pkg_die("%s=%s is not a number", key, s);
	return v;
}

static void *read_n(size_t n, size_t size)
{
	void *p = malloc(n ? n * size : 1);
	if (!p)
		pkg_die("out of memory reading %zu values", n);
	if (n && fread(p, size, n, stdin) != n)
		pkg_die("short input: wanted %zu values of %zu bytes", n, size);
	return p;
}

float *pkg_read_f32(size_t n) { return read_n(n, sizeof(float)); }
int32_t *pkg_read_i32(size_t n) { return read_n(n, sizeof(int32_t)); }

void pkg_write_f32(const float *x, size_t n)
{
	if (n && fwrite(x, sizeof *x, n, stdout) != n)
		pkg_die("write failed");
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: pk_golden OP [key=value ...] < inputs > outputs\n");
		return argc < 2 ? 2 : 0;
	}
	pk_isa_t isa = PK_ISA_AUTO;
	const char *env = getenv("PK_ISA");
	if (env && *env && pk_isa_parse(env, &isa) != PK_OK)
		pkg_die("PK_ISA=%s: expected auto, scalar, avx2 or avx512", env);
	pk_ctx_t *ctx = NULL;
	int rc = pk_ctx_create(&ctx, 1, isa);
	if (rc != PK_OK)
		pkg_die("context for %s: %s", pk_isa_name(isa), pk_strerror(rc));
	const pkg_op_t *tables[] = { pkg_pe_ops, pkg_attn_ops };
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
		for (const pkg_op_t *op = tables[t]; op->name; op++)
			if (strcmp(op->name, argv[1]) == 0) {
				rc = op->run(ctx, argc - 2, argv + 2);
				pk_ctx_destroy(ctx);
				if (fflush(stdout) != 0)
					return 2;
				return rc;
			}
	pk_ctx_destroy(ctx);
	pkg_die("unknown op %s", argv[1]);
}
