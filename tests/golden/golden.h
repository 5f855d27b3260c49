/* tests/golden/golden.h: the pk_golden tool that the NumPy golden tests
 * drive: `pk_golden OP key=value ...` reads the op's inputs from stdin as
 * raw little-endian arrays (float32 / int32, in the order the op documents)
 * and writes its outputs to stdout as raw float32. Exit 0 on success, 2 with
 * a message on stderr on bad arguments. */
#ifndef PK_GOLDEN_H
#define PK_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

typedef struct {
	const char *name;
	/* argc/argv hold only the key=value arguments; returns the exit code */
	int (*run)(pk_ctx_t *ctx, int argc, char **argv);
} pkg_op_t;

extern const pkg_op_t pkg_pe_ops[];   /* golden_pe.c, ends with {NULL} */
extern const pkg_op_t pkg_attn_ops[]; /* golden_attn.c, ends with {NULL} */

/* Argument lookups: key=value; a missing key gives def; exits 2 on a
 * malformed number. */
long pkg_int(int argc, char **argv, const char *key, long def);
double pkg_num(int argc, char **argv, const char *key, double def);
const char *pkg_str(int argc, char **argv, const char *key, const char *def);
/* Read exactly n values from stdin (exit 2 on short input); malloc'd. */
float *pkg_read_f32(size_t n);
int32_t *pkg_read_i32(size_t n);
void pkg_write_f32(const float *x, size_t n);
/* Print the message and exit 2. */
_Noreturn void pkg_die(const char *fmt, ...);

#endif
