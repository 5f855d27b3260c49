/* tests/kernels/main.c: the kernels layer's unit runner (make check). Every
 * optimized path this CPU can run is checked against the scalar reference.
 * With arguments, runs only the named groups: run_kernels pe attn. */
#include "tests/kernels/ktest.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*run)(void);
} groups[] = {
	{"ops", pk_test_ops}, {"pe", pk_test_pe}, {"attn", pk_test_attn},
	{"kv", pk_test_kv},   {"ds", pk_test_ds},     {"sim", pk_test_sim},
	{"matvec", pk_test_matvec},
};

int main(int argc, char **argv)
{
	int failed = 0, ran = 0;
	pk_isa_t isas[3];
	int n = kt_isas(isas);
	fprintf(stderr, "kernels: CPU runs %s (checked against scalar: %d path%s)\n",
		pk_isa_name(pk_cpu_isa()), n - 1, n == 2 ? "" : "s");
	for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
		int want = argc < 2;
		for (int a = 1; a < argc; a++)
			if (strcmp(argv[a], groups[i].name) == 0)
				want = 1;
		if (!want)
			continue;
		ran++;
		int f = groups[i].run();
		if (f)
			fprintf(stderr, "kernels group %s: %d failed\n", groups[i].name, f);
		failed += f;
	}
	if (ran == 0) {
		fprintf(stderr, "no kernels group matched\n");
		return 2;
	}
	return failed ? 1 : 0;
}
