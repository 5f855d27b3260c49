/* Checkpoints in the Hugging Face layout (issue 6): a directory with
 * config.json, model.safetensors or sharded model-0000x-of-0000y.safetensors
 * plus model.safetensors.index.json, and a tokenizer. Tensors are
 * memory-mapped, never copied; a tensor's bytes stay valid until
 * pe_ckpt_close. Every size in a header is checked against the file before
 * anything is read: a malformed checkpoint is PB_EPARSE (or PB_ENOTFOUND
 * for a missing file or tensor) with err naming the file and tensor. */
#ifndef PE_CHECKPOINT_H
#define PE_CHECKPOINT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"

#define PE_MAX_DIMS 8

typedef enum { PE_F32, PE_F16, PE_BF16, PE_I32, PE_I64, PE_U8, PE_I8, PE_F64, PE_BOOL } pe_dtype_t;

typedef struct pe_tensor {
    const char *name;
    pe_dtype_t dtype;
    int ndim;
    int64_t shape[PE_MAX_DIMS];
    int64_t numel;     /* product of shape (1 for a scalar) */
    const void *data;  /* into the mapping; aligned as the file has it */
    size_t nbytes;     /* numel * element size, checked against the file */
} pe_tensor_t;

typedef struct pe_ckpt pe_ckpt_t;

/* Open a checkpoint directory: parse config.json, map every safetensors
 * file (single or sharded through the index) and index their tensors. */
int pe_ckpt_open(const char *dir, pe_ckpt_t **out, pb_err_t *err);
void pe_ckpt_close(pe_ckpt_t *c);

/* config.json (borrowed), the directory path (borrowed). */
const json_t *pe_ckpt_config(const pe_ckpt_t *c);
const char *pe_ckpt_dir(const pe_ckpt_t *c);

/* A tensor by name, or NULL. */
const pe_tensor_t *pe_ckpt_tensor(const pe_ckpt_t *c, const char *name);
/* A tensor by name that must exist with this dtype set (mask of 1u << dtype)
 * and shape (ndim dims; a -1 dim matches any size): PB_ENOTFOUND or
 * PB_EPARSE naming file and tensor otherwise. */
int pe_ckpt_expect(const pe_ckpt_t *c, const char *name, unsigned dtypes, int ndim,
                   const int64_t *shape, const pe_tensor_t **out, pb_err_t *err);

/* Number of tensors and the i-th (in name order), for listing and tests. */
size_t pe_ckpt_count(const pe_ckpt_t *c);
const pe_tensor_t *pe_ckpt_at(const pe_ckpt_t *c, size_t i);

/* Parse one safetensors file image (the whole file, len bytes) into tensors
 * pointing into it: the loader's core, exposed for the tests and the fuzzer.
 * *out is malloc'd (names too: free with pe_st_free). file names it in
 * errors. */
int pe_st_parse(const void *data, size_t len, const char *file, pe_tensor_t **out, size_t *n,
                pb_err_t *err);
void pe_st_free(pe_tensor_t *t, size_t n);

/* Element size of a dtype in bytes; name as safetensors spells it ("BF16"). */
size_t pe_dtype_size(pe_dtype_t d);
const char *pe_dtype_name(pe_dtype_t d);

#endif
