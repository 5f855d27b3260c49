/* Typed JSON getters with field-naming errors, and canonical serialisation. */
#include "common/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void field_name(char *out, size_t n, const char *prefix, const char *key)
{
    if (prefix && *prefix)
        snprintf(out, n, "%s.%s", prefix, key);
    else
        snprintf(out, n, "%s", key);
}

int pb_json_as_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9.0e15) {
            *out = (int64_t)d;
            return 0;
        }
    }
    return PB_EINVAL;
}

int pb_json_int(const json_t *obj, const char *key, int64_t dflt, int64_t min, int64_t max,
                int64_t *out, const char *prefix, pb_err_t *err)
{
    char f[128];
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    field_name(f, sizeof f, prefix, key);
    int64_t x;
    if (pb_json_as_int(v, &x))
        return pb_err_set(err, PB_EINVAL, f, "%s must be an integer", f);
    if (x < min || x > max)
        return pb_err_set(err, PB_EINVAL, f, "%s must be between %lld and %lld (got %lld)", f,
                          (long long)min, (long long)max, (long long)x);
    *out = x;
    return 0;
}

int pb_json_num(const json_t *obj, const char *key, double dflt, double min, double max,
                double *out, const char *prefix, pb_err_t *err)
{
    char f[128];
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    field_name(f, sizeof f, prefix, key);
    if (!json_is_number(v))
        return pb_err_set(err, PB_EINVAL, f, "%s must be a number", f);
    double x = json_number_value(v);
    if (!(x >= min && x <= max))
        return pb_err_set(err, PB_EINVAL, f, "%s must be between %g and %g (got %g)", f, min, max,
                          x);
    *out = x;
    return 0;
}

int pb_json_bool(const json_t *obj, const char *key, int dflt, int *out, const char *prefix,
                 pb_err_t *err)
{
    char f[128];
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    field_name(f, sizeof f, prefix, key);
    if (!json_is_boolean(v))
        return pb_err_set(err, PB_EINVAL, f, "%s must be true or false", f);
    *out = json_is_true(v);
    return 0;
}

int pb_json_str(const json_t *obj, const char *key, const char *dflt, int required,
                const char **out, const char *prefix, pb_err_t *err)
{
    char f[128];
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    field_name(f, sizeof f, prefix, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return pb_err_set(err, PB_EINVAL, f, "%s is required", f);
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v))
        return pb_err_set(err, PB_EINVAL, f, "%s must be a string", f);
    *out = json_string_value(v);
    return 0;
}

int pb_json_only_keys(const json_t *obj, const char *const *allowed, const char *prefix,
                      pb_err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = 1;
        if (!ok) {
            char f[128];
            field_name(f, sizeof f, prefix, key);
            return pb_err_set(err, PB_EINVAL, f, "unknown field %s", f);
        }
    }
    return 0;
}

char *pb_json_canonical(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}
