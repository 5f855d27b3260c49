/* CLI output helpers: aligned plain-text tables, CSV fields, number, interval
 * and time formatting, tolerant JSON reads of API replies, argument parsing
 * and reading a job spec from a file or stdin. */
#include "cli/cli.h"

#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MAX_CELL 4096 /* bytes of one cell after escaping */

int pb_cli_table_init(pb_cli_table_t *t, size_t ncols, const char *const *headers,
                      const char *align)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->align = align;
    for (size_t i = 0; i < ncols; i++) {
        int rc = pb_cli_table_add(t, headers[i]);
        if (rc) {
            pb_cli_table_free(t);
            return rc;
        }
    }
    return 0;
}

/* Copy s escaping control characters so one cell stays on one line. */
static char *escape_cell(const char *s)
{
    char *out = malloc(TABLE_MAX_CELL);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < TABLE_MAX_CELL; p++) {
        if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (*p == '\t' || *p == '\r') {
            out[o++] = ' ';
        } else if (*p < 0x20 || *p == 0x7f) {
            out[o++] = '?';
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return out;
}

int pb_cli_table_add(pb_cli_table_t *t, const char *cell)
{
    if (pb_grow(&t->cells, &t->cap, t->ncells + 1, sizeof *t->cells, 64))
        return PB_ENOMEM;
    char *copy = escape_cell(cell ? cell : "-");
    if (copy == NULL)
        return PB_ENOMEM;
    t->cells[t->ncells++] = copy;
    return 0;
}

int pb_cli_table_addf(pb_cli_table_t *t, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return pb_cli_table_add(t, buf);
}

/* Display width: UTF-8 code points, so multi-byte names keep columns aligned. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void pb_cli_table_print(const pb_cli_table_t *t, FILE *f, int indent)
{
    size_t w[64] = {0};
    size_t nc = t->ncols < 64 ? t->ncols : 64;
    for (size_t i = 0; i < t->ncells; i++) {
        size_t col = i % t->ncols;
        if (col < nc && width(t->cells[i]) > w[col])
            w[col] = width(t->cells[i]);
    }
    size_t rows = t->ncells / t->ncols;
    pb_buf_t line;
    pb_buf_init(&line, 0);
    for (size_t r = 0; r < rows; r++) {
        int rc = pb_buf_printf(&line, "%*s", indent, "");
        for (size_t col = 0; col < nc && rc == 0; col++) {
            const char *s = t->cells[r * t->ncols + col];
            int pad = (int)(w[col] - width(s));
            if (t->align && t->align[col] == 'r')
                rc = pb_buf_printf(&line, "%*s%s  ", pad, "", s);
            else
                rc = pb_buf_printf(&line, "%s%*s  ", s, pad, "");
        }
        /* Trailing padding would only make diffs and copy-paste noisy. */
        while (line.len > 0 && line.data[line.len - 1] == ' ')
            line.len--;
        if (rc == 0)
            fprintf(f, "%.*s\n", (int)line.len, line.data);
        pb_buf_reset(&line);
    }
    pb_buf_free(&line);
}

void pb_cli_table_free(pb_cli_table_t *t)
{
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

const char *pb_cli_jstr(const json_t *obj, const char *key, const char *dflt)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : dflt;
}

int64_t pb_cli_jint(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    int64_t x;
    return pb_json_as_int(v, &x) == 0 ? x : dflt;
}

double pb_cli_jnum(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

void pb_cli_fmt_acc(double v, char out[32])
{
    if (isnan(v))
        snprintf(out, 32, "-");
    else
        snprintf(out, 32, "%.3f", v);
}

void pb_cli_fmt_ci(double lo, double hi, char out[48])
{
    if (isnan(lo) || isnan(hi))
        snprintf(out, 48, "-");
    else
        snprintf(out, 48, "[%.3f, %.3f]", lo, hi);
}

void pb_cli_fmt_time(const json_t *v, char out[40])
{
    if (json_is_string(v))
        snprintf(out, 40, "%s", json_string_value(v));
    else if (json_is_number(v) && json_number_value(v) > 0)
        pb_iso8601(json_number_value(v), out);
    else
        snprintf(out, 40, "-");
}

void pb_cli_fmt_progress(int64_t done, int64_t total, char out[64])
{
    if (total <= 0)
        snprintf(out, 64, "%lld/%lld", (long long)done, (long long)total);
    else
        snprintf(out, 64, "%lld/%lld %3d%%", (long long)done, (long long)total,
                 (int)(100.0 * (double)done / (double)total));
}

/* Code points s takes once newlines are written as two characters. */
static size_t clip_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += *s == '\n' ? 2 : (((unsigned char)*s & 0xC0) != 0x80);
    return w;
}

void pb_cli_clip(const char *s, size_t max, char *out, size_t n)
{
    size_t o = 0, cps = 0;
    size_t budget = clip_width(s) <= max ? max : (max > 3 ? max - 3 : 0);
    int clipped = budget != max;

    if (n == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int lead = (*p & 0xC0) != 0x80;
        size_t need = *p == '\n' ? 2 : (size_t)lead;
        if (cps + need > budget || o + 2 + 4 >= n)
            break;
        if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (*p < 0x20 || *p == 0x7f) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)*p;
        }
        cps += need;
    }
    /* Never leave half a UTF-8 sequence behind. */
    while (o > 0 && ((unsigned char)out[o - 1] & 0x80)) {
        size_t k = o - 1;
        while (k > 0 && ((unsigned char)out[k] & 0xC0) == 0x80)
            k--;
        unsigned char lead = (unsigned char)out[k];
        size_t len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (o - k >= len)
            break;
        o = k;
    }
    if (clipped && o + 4 <= n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

char *pb_cli_fmt_json(const json_t *v, size_t max)
{
    if (v == NULL)
        return strdup("-");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
    if (s == NULL || strlen(s) <= max)
        return s;
    char *clip = malloc(4 * max + 8);
    if (clip)
        pb_cli_clip(s, max, clip, 4 * max + 8);
    free(s);
    return clip;
}

void pb_cli_csv(FILE *f, const char *s, char sep)
{
    if (s == NULL)
        s = "";
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
    } else {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    }
    fputc(sep, f);
}

void pb_cli_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
}

int pb_cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return PB_EINVAL;
    *out = v;
    return 0;
}

int pb_cli_parse_id(const char *s, int64_t *out)
{
    return pb_cli_parse_int(s, 1, INT64_MAX, out);
}

int pb_cli_read_spec(const char *path, json_t **out)
{
    int rc = PB_CLI_USAGE;
    FILE *f = NULL;
    pb_buf_t b;
    json_error_t jerr;
    int from_stdin = strcmp(path, "-") == 0;
    const char *label = from_stdin ? "<stdin>" : path;

    pb_buf_init(&b, PB_CLI_MAX_SPEC);
    *out = NULL;
    f = from_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (pb_buf_append(&b, chunk, n) != 0) {
            fprintf(stderr, "error: %s is larger than %u MiB\n", label, PB_CLI_MAX_SPEC >> 20);
            goto out;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "error: cannot read %s: %s\n", label, strerror(errno));
        goto out;
    }
    json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
    if (j == NULL) {
        fprintf(stderr, "error: %s:%d:%d: %s\n", label, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(j)) {
        fprintf(stderr, "error: %s: a job spec must be a JSON object\n", label);
        json_decref(j);
        goto out;
    }
    *out = j;
    rc = PB_CLI_OK;
out:
    if (f && !from_stdin)
        fclose(f);
    pb_buf_free(&b);
    return rc;
}
