/* JSON helpers over jansson for validating user input: typed getters that
 * name the offending field in pb_err_t, and canonical serialisation (sorted
 * keys, compact) used for hashing. */
#ifndef PB_JSON_H
#define PB_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "common/pb.h"

/* Each getter reads obj[key]. Absent (or null) -> *out = dflt and 0.
 * Wrong type or out of [min, max] -> PB_EINVAL with err->field = prefix+key. */
int pb_json_int(const json_t *obj, const char *key, int64_t dflt, int64_t min, int64_t max,
                int64_t *out, const char *prefix, pb_err_t *err);
int pb_json_num(const json_t *obj, const char *key, double dflt, double min, double max,
                double *out, const char *prefix, pb_err_t *err);
int pb_json_bool(const json_t *obj, const char *key, int dflt, int *out, const char *prefix,
                 pb_err_t *err);
/* String: *out borrowed from obj (or dflt). required=1 makes absence an error. */
int pb_json_str(const json_t *obj, const char *key, const char *dflt, int required,
                const char **out, const char *prefix, pb_err_t *err);
/* Reject keys of obj not in the NULL-terminated allowed list. */
int pb_json_only_keys(const json_t *obj, const char *const *allowed, const char *prefix,
                      pb_err_t *err);

/* Canonical text (sorted keys, compact); malloc'd, NULL on failure. */
char *pb_json_canonical(const json_t *v);
/* Integer out of a JSON number (integer or integral real); PB_EINVAL otherwise. */
int pb_json_as_int(const json_t *v, int64_t *out);

#endif
