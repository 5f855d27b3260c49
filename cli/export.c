/* `posbench export`: a static snapshot of the leaderboard and model pages.
 * Fetches every API document those pages read, then writes the web files,
 * Chart.js, a static.js that puts web/common.js in snapshot mode, and the
 * documents under data/ (the file names pb.staticPath() maps to). Nothing
 * is written until every fetch succeeded; each file goes through a rename. */
#include "cli/cli.h"

#include "common/util.h"

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT_MAX_JOBS 100000    /* distinct jobs the leaderboard may name */
#define EXPORT_MAX_DEPTH 4        /* folder depth copied from the web root */
#define EXPORT_MAX_FILE (64u << 20) /* bytes of one copied file */

/* What a static host needs: page assets only (no local.mk, no backups). */
static const char *const web_exts[] = {".html", ".js", ".css", ".svg", ".png", ".jpg",
                                       ".ico", ".json", ".txt", ".map", ".woff2"};

typedef struct export_opts {
    const char *out, *web, *chartjs;
    char web_buf[PATH_MAX];
} export_opts_t;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("export: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int has_index(const char *dir)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/index.html", dir);
    return access(p, R_OK) == 0;
}

/* The coordinator's lookup (coordinator/main.c): web/ next to the binary,
 * in the source tree it was built from, else the installed pkgdatadir/web. */
static void find_web_root(char *out, size_t n)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        snprintf(out, n, "%.4000s/web", dirname(self));
        if (has_index(out))
            return;
    }
    snprintf(out, n, "%s/web", PB_SRCDIR);
    if (has_index(out))
        return;
    snprintf(out, n, "%s/web", PB_DATADIR);
}

/* mkdir -p; PB_EIO with errno set on failure. */
static int mkdirs(const char *path)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p) {
        errno = ENAMETOOLONG;
        return PB_EIO;
    }
    memcpy(p, path, n + 1);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return PB_EIO;
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return PB_EIO;
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return PB_EIO;
    }
    return 0;
}

/* Write data to out/rel through out/rel.tmp and a rename, so a host serving
 * the folder meanwhile never sees half a file. */
static int write_file(const char *out, const char *rel, const void *data, size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], dir[PATH_MAX];
    FILE *f = NULL;
    int rc = PB_EIO;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", out, rel) >= sizeof path) {
        fprintf(stderr, "error: path too long: %s/%s\n", out, rel);
        return PB_EINVAL;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(dir, sizeof dir, "%s", path);
    if (mkdirs(dirname(dir)) != 0) {
        fprintf(stderr, "error: cannot create the folder of %s: %s\n", path, strerror(errno));
        return PB_EIO;
    }
    f = fopen(tmp, "wb");
    if (f == NULL || (len && fwrite(data, 1, len, f) != len))
        goto out;
    int closed = fclose(f);
    f = NULL;
    if (closed != 0 || rename(tmp, path) != 0)
        goto out;
    rc = 0;
out:
    if (rc) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        unlink(tmp);
    }
    return rc;
}

static int write_json(const char *out, const char *rel, const json_t *doc)
{
    /* Reals with 17 digits: the snapshot reads back as exactly what the API sent. */
    char *text = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (text == NULL) {
        fprintf(stderr, "error: out of memory serialising %s\n", rel);
        return PB_ENOMEM;
    }
    int rc = write_file(out, rel, text, strlen(text));
    free(text);
    return rc;
}

/* Copy one file (size-capped) to out/rel. */
static int copy_file(const char *src, const char *out, const char *rel)
{
    FILE *f = fopen(src, "rb");
    char *data = NULL;
    int rc = PB_EIO;
    if (f == NULL) {
        fprintf(stderr, "error: cannot read %s: %s\n", src, strerror(errno));
        return PB_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > EXPORT_MAX_FILE) {
        fprintf(stderr, "error: %s: not a regular file under 64 MiB\n", src);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    data = malloc(n ? n : 1);
    if (data == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    if (fread(data, 1, n, f) != n) {
        fprintf(stderr, "error: cannot read %s: %s\n", src, strerror(errno));
        goto out;
    }
    rc = write_file(out, rel, data, n);
out:
    free(data);
    fclose(f);
    return rc;
}

static int web_file_wanted(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (name[0] == '.' || dot == NULL || strcmp(name, "static.js") == 0)
        return 0; /* static.js is ours to write */
    for (size_t i = 0; i < PB_ARRAY_LEN(web_exts); i++)
        if (strcasecmp(dot, web_exts[i]) == 0)
            return 1;
    return 0;
}

/* Copy the page assets of web/<rel> (rel "" = the root) into out/<rel>. */
static int copy_web(const char *web, const char *rel, const char *out, int depth, int *count)
{
    char dir[PATH_MAX], src[PATH_MAX], sub[PATH_MAX];
    int rc = 0;
    snprintf(dir, sizeof dir, "%s%s%s", web, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "error: cannot read the web folder %s: %s\n", dir, strerror(errno));
        return PB_EIO;
    }
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(src, sizeof src, "%s/%s", dir, e->d_name) >= sizeof src ||
            (size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
                sizeof sub)
            continue;
        struct stat st;
        if (stat(src, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < EXPORT_MAX_DEPTH && strcmp(sub, "data") != 0)
                rc = copy_web(web, sub, out, depth + 1, count);
        } else if (S_ISREG(st.st_mode) && web_file_wanted(e->d_name)) {
            rc = copy_file(src, out, sub);
            *count += rc == 0;
        }
    }
    closedir(d);
    return rc;
}

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct job ids the leaderboard names, ascending. */
static int leaderboard_jobs(const json_t *lb, int64_t **ids, size_t *n)
{
    const json_t *entries = json_object_get(lb, "entries");
    size_t cnt = json_array_size(entries), k = 0, i;
    const json_t *e;
    *ids = NULL;
    *n = 0;
    if (!json_is_array(entries)) {
        fprintf(stderr, "error: the leaderboard has no \"entries\" list\n");
        return PB_EPROTO;
    }
    if (cnt > EXPORT_MAX_JOBS) {
        fprintf(stderr, "error: the leaderboard names over %d runs\n", EXPORT_MAX_JOBS);
        return PB_ETOOBIG;
    }
    int64_t *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (v == NULL)
        return PB_ENOMEM;
    json_array_foreach(entries, i, e)
    {
        int64_t id = pb_cli_jint(e, "job_id", 0);
        if (id > 0)
            v[k++] = id;
    }
    qsort(v, k, sizeof *v, id_cmp);
    size_t u = 0;
    for (size_t j = 0; j < k; j++)
        if (u == 0 || v[u - 1] != v[j])
            v[u++] = v[j];
    *ids = v;
    *n = u;
    return 0;
}

static int parse_opts(pb_cli_t *c, int argc, char **argv, export_opts_t *o)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},  {"web", required_argument, NULL, 'w'},
        {"chartjs", required_argument, NULL, 'c'}, {"url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': o->out = optarg; break;
        case 'w': o->web = optarg; break;
        case 'c': o->chartjs = optarg; break;
        case 'u':
            pb_cli_close(c); /* replaces the global --url */
            if (pb_cli_init(c, optarg) != 0)
                return pb_cli_usage_error("export", "bad coordinator URL '%s'", optarg);
            break;
        case 'h': pb_cli_usage("export", stdout); return -1;
        default: return pb_cli_bad_option("export");
        }
    }
    if (optind != argc)
        return pb_cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (o->out == NULL || *o->out == '\0')
        return pb_cli_usage_error("export", "--out DIR is required");
    if (o->web == NULL) {
        find_web_root(o->web_buf, sizeof o->web_buf);
        o->web = o->web_buf;
    }
    if (!has_index(o->web))
        return pb_cli_usage_error("export", "no dashboard in %s (no index.html): pass --web DIR",
                                  o->web);
    if (o->chartjs == NULL)
        o->chartjs = PB_CHARTJS;
    return 0;
}

/* The snapshot marker web/common.js looks for, and where it came from. */
static int write_static_js(const char *out, const char *url)
{
    char when[32], *text = NULL;
    pb_iso8601((double)time(NULL), when);
    json_t *src = json_pack("{ssss}", "url", url, "exported_at", when);
    char *meta = src ? json_dumps(src, JSON_COMPACT) : NULL;
    json_decref(src);
    if (meta == NULL || asprintf(&text,
                                 "// posbench static snapshot (posbench export): the pages read\n"
                                 "// data/*.json instead of the live API.\n"
                                 "window.PB_STATIC = true;\nwindow.PB_SNAPSHOT = %s;\n",
                                 meta) < 0) {
        free(meta);
        return PB_ENOMEM;
    }
    int rc = write_file(out, "static.js", text, strlen(text));
    free(meta);
    free(text);
    return rc;
}

int pb_cli_cmd_export(pb_cli_t *c, int argc, char **argv)
{
    export_opts_t o;
    json_t *lb = NULL, *suites = NULL, **results = NULL;
    int64_t *ids = NULL;
    size_t n_ids = 0;
    int rc, status = PB_CLI_FAIL, copied = 0;

    memset(&o, 0, sizeof o);
    rc = parse_opts(c, argc, argv, &o);
    if (rc)
        return rc < 0 ? PB_CLI_OK : rc;

    /* 1. Everything from the coordinator first: a failed fetch leaves DIR as it was. */
    progress("fetching the leaderboard from %s", c->url);
    if ((rc = pb_cli_get(c, "/api/v1/leaderboard", &lb)) != 0 ||
        (rc = pb_cli_get(c, "/api/v1/suites", &suites)) != 0) {
        if (rc == PB_ENET)
            fprintf(stderr, "error: cannot reach the coordinator at %s (pass --url URL)\n",
                    c->url);
        status = pb_cli_exit_for(rc);
        goto out;
    }
    if ((rc = leaderboard_jobs(lb, &ids, &n_ids)) != 0)
        goto out;
    progress("%zu leaderboard entries from %zu job(s)",
             json_array_size(json_object_get(lb, "entries")), n_ids);
    results = calloc(n_ids ? n_ids : 1, sizeof *results);
    if (results == NULL)
        goto out;
    for (size_t i = 0; i < n_ids; i++) {
        char path[96];
        snprintf(path, sizeof path, "/api/v1/jobs/%lld/results", (long long)ids[i]);
        if ((rc = pb_cli_get(c, path, &results[i])) != 0) {
            status = pb_cli_exit_for(rc);
            goto out;
        }
        progress("job %lld results (%zu/%zu)", (long long)ids[i], i + 1, n_ids);
    }

    /* 2. The folder: refuse early and clearly when it cannot be written. */
    if (mkdirs(o.out) != 0 || access(o.out, W_OK) != 0) {
        fprintf(stderr, "error: cannot write to %s: %s\n", o.out, strerror(errno));
        goto out;
    }
    if (copy_web(o.web, "", o.out, 0, &copied) != 0)
        goto out;
    progress("copied %d web file(s) from %s", copied, o.web);
    if (o.chartjs[0] && access(o.chartjs, R_OK) == 0) {
        if (copy_file(o.chartjs, o.out, "vendor/chart.js") != 0)
            goto out;
        progress("copied Chart.js from %s", o.chartjs);
    } else {
        fprintf(stderr, "warning: Chart.js not found at '%s': the snapshot's charts will not "
                        "render (install libjs-chart.js or pass --chartjs FILE)\n",
                o.chartjs);
    }
    if (write_static_js(o.out, c->url) || write_json(o.out, "data/leaderboard.json", lb) ||
        write_json(o.out, "data/suites.json", suites))
        goto out;
    for (size_t i = 0; i < n_ids; i++) {
        char rel[96];
        snprintf(rel, sizeof rel, "data/jobs/%lld/results.json", (long long)ids[i]);
        if (write_json(o.out, rel, results[i]))
            goto out;
    }
    progress("wrote %s (%zu job file(s)); serve it with any static HTTP server and open "
             "leaderboard.html",
             o.out, n_ids);
    status = PB_CLI_OK;
out:
    for (size_t i = 0; results && i < n_ids; i++)
        json_decref(results[i]);
    free(results);
    free(ids);
    json_decref(suites);
    json_decref(lb);
    return status;
}
