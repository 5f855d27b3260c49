/* The worker's testbed: what hardware and build its results were measured
 * on (CPU model and SIMD flags, GPU model, compute threads, kernel ISA and
 * BLAS), sent in HELLO and with every result so that a series never
 * compares numbers from different machines. */
#ifndef PB_TESTBED_H
#define PB_TESTBED_H

#include <jansson.h>

/* {"cpu_model", "cpu_flags", "gpu_model"?, "threads", "isa", "blas",
 * "arch"}: threads is the compute threads a task gets (threads, or the
 * online CPUs when 0). New reference; NULL when out of memory. */
json_t *pb_testbed(int threads);

#endif
