/* Newest-checkpoint resolution (latest.h). */
#include "coordinator/latest.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Trailing decimal number of a name, or -1. */
static long long trailing_step(const char *name)
{
    size_t len = strlen(name), i = len;
    while (i > 0 && isdigit((unsigned char)name[i - 1]))
        i--;
    if (i == len || len - i > 18)
        return -1;
    long long v = 0;
    for (; i < len; i++)
        v = v * 10 + (name[i] - '0');
    return v;
}

int pb_latest_checkpoint(const char *dir, char *out, size_t n, pb_err_t *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return pb_err_set(err, PB_EINVAL, "model.latest_in", "cannot read directory %s: %s",
                          dir, strerror(errno));
    struct dirent *e;
    char best[NAME_MAX + 1] = "", path[PATH_MAX];
    long long best_step = -2;
    double best_mtime = 0;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' ||
            (size_t)snprintf(path, sizeof path, "%s/%s/config.json", dir, e->d_name) >=
                sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        long long step = trailing_step(e->d_name);
        double mt = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
        if (step > best_step || (step == best_step && mt > best_mtime) ||
            (step == best_step && mt == best_mtime && strcmp(e->d_name, best) > 0)) {
            best_step = step;
            best_mtime = mt;
            snprintf(best, sizeof best, "%s", e->d_name);
        }
    }
    closedir(d);
    if (best[0] == '\0')
        return pb_err_set(err, PB_EINVAL, "model.latest_in",
                          "no checkpoint (a subdirectory with a config.json) in %s", dir);
    if ((size_t)snprintf(out, n, "%s/%s", dir, best) >= n)
        return pb_err_set(err, PB_ETOOBIG, "model.latest_in", "checkpoint path too long");
    return 0;
}

int pb_latest_resolve(const json_t *spec, int check_only, json_t **out, pb_err_t *err)
{
    const json_t *model = json_object_get(spec, "model");
    const json_t *li = json_object_get(model, "latest_in");
    *out = NULL;
    if (li == NULL) {
        *out = json_incref((json_t *)spec);
        return 0;
    }
    const char *dir = json_string_value(li);
    struct stat st;
    if (dir == NULL || dir[0] != '/' || strlen(dir) > 3000)
        return pb_err_set(err, PB_EINVAL, "model.latest_in",
                          "model.latest_in must be an absolute directory path");
    if (json_object_get(model, "path"))
        return pb_err_set(err, PB_EINVAL, "model.latest_in",
                          "give model.path or model.latest_in, not both");
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pb_err_set(err, PB_EINVAL, "model.latest_in", "%s is not a directory", dir);
    char path[PATH_MAX];
    int rc = pb_latest_checkpoint(dir, path, sizeof path, err);
    if (rc && check_only) {
        snprintf(path, sizeof path, "%s", dir);
        rc = 0;
    }
    if (rc)
        return rc;
    json_t *copy = json_deep_copy(spec);
    json_t *m = json_object_get(copy, "model");
    if (copy == NULL || json_object_set_new(m, "path", json_string(path))) {
        json_decref(copy);
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    }
    *out = copy;
    return 0;
}
