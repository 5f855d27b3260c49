/* Writer and scanner for RESULT items text (see items.h). The scanner is a
 * small JSON reader for exactly this shape: an array of arrays of scalars;
 * strings are unescaped (including \uXXXX surrogate pairs) into a scratch
 * buffer. */
#include "common/items.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pb_json_quote(pb_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[6] = {'\\', 'u', '0', '0', 0, 0};
    int rc = pb_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes that need no escape, appended in one go */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        rc = pb_buf_append(b, s + run, i - run);
        run = i + 1;
        if (rc)
            break;
        switch (ch) {
        case '"': rc = pb_buf_append(b, "\\\"", 2); break;
        case '\\': rc = pb_buf_append(b, "\\\\", 2); break;
        case '\n': rc = pb_buf_append(b, "\\n", 2); break;
        case '\r': rc = pb_buf_append(b, "\\r", 2); break;
        case '\t': rc = pb_buf_append(b, "\\t", 2); break;
        default:
            tmp[4] = hex[ch >> 4];
            tmp[5] = hex[ch & 15];
            rc = pb_buf_append(b, tmp, 6);
        }
    }
    if (rc == 0)
        rc = pb_buf_append(b, s + run, n - run);
    return rc ? rc : pb_buf_append(b, "\"", 1);
}

int pb_items_begin(pb_buf_t *b) { return pb_buf_append(b, "[", 1); }

int pb_items_end(pb_buf_t *b) { return pb_buf_append(b, "]", 1); }

static int put_str(pb_buf_t *b, const char *s, size_t n)
{
    if (s == NULL)
        return pb_buf_append(b, ",null", 5);
    int rc = pb_buf_append(b, ",", 1);
    return rc ? rc : pb_json_quote(b, s, n);
}

int pb_items_add(pb_buf_t *b, const pb_item_rec_t *it)
{
    char num[96];
    int rc = 0;
    if (b->len > 1 && b->data[b->len - 1] != '[')
        rc = pb_buf_append(b, ",", 1);
    int n = snprintf(num, sizeof num, "[%lld", (long long)it->idx);
    if (rc == 0)
        rc = pb_buf_append(b, num, (size_t)n);
    if (rc == 0)
        rc = put_str(b, it->prompt_hash, it->prompt_hash ? strlen(it->prompt_hash) : 0);
    if (rc == 0)
        rc = put_str(b, it->prediction, it->prediction_len);
    if (rc == 0)
        rc = put_str(b, it->reference, it->reference_len);
    if (rc)
        return rc;
    /* Scores of exact-match scorers are 0 or 1: integers encode fastest. */
    if (!it->has_score || !isfinite(it->score))
        n = snprintf(num, sizeof num, ",null");
    else if (it->score == 0.0 || it->score == 1.0)
        n = snprintf(num, sizeof num, ",%d", (int)it->score);
    else
        n = snprintf(num, sizeof num, ",%.17g", it->score);
    rc = pb_buf_append(b, num, (size_t)n);
    n = snprintf(num, sizeof num, ",%lld,%lld", (long long)it->latency_us, (long long)it->tokens);
    if (rc == 0)
        rc = pb_buf_append(b, num, (size_t)n);
    if (rc == 0 && (it->meta || it->error))
        rc = put_str(b, it->meta, it->meta_len);
    if (rc == 0 && it->error)
        rc = put_str(b, it->error, it->error_len);
    return rc ? rc : pb_buf_append(b, "]", 1);
}

/* ---- scanner ---- */

typedef struct scan {
    const char *p, *end;
    pb_buf_t scratch; /* unescaped strings of the current item */
    pb_err_t *err;
    size_t item;
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int bad(scan_t *s, const char *what)
{
    char field[32];
    snprintf(field, sizeof field, "items[%zu]", s->item);
    return pb_err_set(s->err, PB_EPARSE, field, "items[%zu]: %s", s->item, what);
}

static int scratch_put(scan_t *s, const char *data, size_t n)
{
    return pb_buf_append(&s->scratch, data, n);
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int put_utf8(scan_t *s, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return scratch_put(s, u, n);
}

/* A string value or null. *off is its offset in scratch (NUL-terminated),
 * (size_t)-1 for null. */
static int scan_str(scan_t *s, size_t *off, size_t *len)
{
    skip_ws(s);
    if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
        s->p += 4;
        *off = (size_t)-1;
        *len = 0;
        return 0;
    }
    if (s->p >= s->end || *s->p != '"')
        return bad(s, "expected a string");
    s->p++;
    size_t start = s->scratch.len;
    while (1) {
        const char *q = s->p;
        while (q < s->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        if (q >= s->end)
            return bad(s, "unterminated string");
        if (scratch_put(s, s->p, (size_t)(q - s->p)))
            return PB_ENOMEM;
        s->p = q;
        if (*q == '"')
            break;
        if ((unsigned char)*q < 0x20)
            return bad(s, "control character in a string");
        if (s->end - q < 2)
            return bad(s, "unterminated escape");
        char e = q[1];
        s->p = q + 2;
        const char *lit = NULL;
        switch (e) {
        case '"': lit = "\""; break;
        case '\\': lit = "\\"; break;
        case '/': lit = "/"; break;
        case 'b': lit = "\b"; break;
        case 'f': lit = "\f"; break;
        case 'n': lit = "\n"; break;
        case 'r': lit = "\r"; break;
        case 't': lit = "\t"; break;
        case 'u': {
            unsigned cp, lo;
            if (s->end - s->p < 4 || hex4(s->p, &cp))
                return bad(s, "bad \\u escape");
            s->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return bad(s, "lone surrogate in \\u escape");
                s->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return bad(s, "lone surrogate in \\u escape");
            }
            if (put_utf8(s, cp))
                return PB_ENOMEM;
            continue;
        }
        default:
            return bad(s, "bad escape in a string");
        }
        if (scratch_put(s, lit, 1))
            return PB_ENOMEM;
    }
    s->p++; /* closing quote */
    *len = s->scratch.len - start;
    if (scratch_put(s, "", 1))
        return PB_ENOMEM;
    *off = start;
    return 0;
}

/* A number or null; *present = 0 for null. */
static int scan_num(scan_t *s, double *d, int64_t *i, int *is_int, int *present)
{
    skip_ws(s);
    if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
        s->p += 4;
        *present = 0;
        return 0;
    }
    char buf[64];
    size_t n = 0;
    int integral = 1;
    while (s->p + n < s->end && n < sizeof buf - 1) {
        char c = s->p[n];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+')
            ;
        else if (c == '.' || c == 'e' || c == 'E')
            integral = 0;
        else
            break;
        buf[n++] = c;
    }
    if (n == 0 || n == sizeof buf - 1)
        return bad(s, "expected a number");
    buf[n] = '\0';
    char *endp;
    errno = 0;
    if (integral) {
        long long v = strtoll(buf, &endp, 10);
        *i = v;
        *d = (double)v;
    } else {
        *d = strtod(buf, &endp);
        *i = (int64_t)*d;
    }
    if (*endp != '\0' || errno || !isfinite(*d))
        return bad(s, "malformed number");
    s->p += n;
    *is_int = integral;
    *present = 1;
    return 0;
}

static int expect(scan_t *s, char c, const char *what)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != c)
        return bad(s, what);
    s->p++;
    return 0;
}

/* One item array into rec (strings in scratch). */
static int scan_item(scan_t *s, pb_item_rec_t *rec)
{
    size_t off[5], len[5];
    int rc, is_int, present;
    double d;
    int64_t v;
    memset(rec, 0, sizeof *rec);
    pb_buf_reset(&s->scratch);
    if ((rc = expect(s, '[', "item is not an array")))
        return rc;
    if ((rc = scan_num(s, &d, &rec->idx, &is_int, &present)))
        return rc;
    if (!present || !is_int)
        return bad(s, "idx is not an integer");
    const int str_pos[3] = {0, 1, 2}; /* hash, prediction, reference */
    for (int k = 0; k < 3; k++) {
        if ((rc = expect(s, ',', "item has too few fields")) || (rc = scan_str(s, &off[str_pos[k]], &len[str_pos[k]])))
            return rc;
    }
    if ((rc = expect(s, ',', "item has too few fields")) ||
        (rc = scan_num(s, &rec->score, &v, &is_int, &rec->has_score)))
        return rc;
    if ((rc = expect(s, ',', "item has too few fields")) ||
        (rc = scan_num(s, &d, &rec->latency_us, &is_int, &rec->has_latency)))
        return rc;
    if ((rc = expect(s, ',', "item has too few fields")) ||
        (rc = scan_num(s, &d, &rec->tokens, &is_int, &rec->has_tokens)))
        return rc;
    off[3] = off[4] = (size_t)-1;
    len[3] = len[4] = 0;
    for (int k = 3; k < 5; k++) {
        skip_ws(s);
        if (s->p < s->end && *s->p == ']')
            break;
        if ((rc = expect(s, ',', "expected ',' or ']'")) || (rc = scan_str(s, &off[k], &len[k])))
            return rc;
    }
    if ((rc = expect(s, ']', "item has too many fields")))
        return rc;
    const char **dst[5] = {&rec->prompt_hash, &rec->prediction, &rec->reference, &rec->meta, &rec->error};
    size_t *dlen[5] = {NULL, &rec->prediction_len, &rec->reference_len, &rec->meta_len, &rec->error_len};
    for (int k = 0; k < 5; k++) {
        *dst[k] = off[k] == (size_t)-1 ? NULL : s->scratch.data + off[k];
        if (dlen[k])
            *dlen[k] = len[k];
    }
    return 0;
}

int pb_items_scan(const char *text, size_t len, pb_items_fn fn, void *ctx, pb_err_t *err)
{
    scan_t s = {.p = text, .end = text + len, .err = err};
    pb_buf_init(&s.scratch, 0);
    int rc = expect(&s, '[', "items is not an array");
    if (rc)
        goto out;
    skip_ws(&s);
    if (s.p < s.end && *s.p == ']') {
        s.p++;
    } else {
        for (;; s.item++) {
            pb_item_rec_t rec;
            if ((rc = scan_item(&s, &rec)) || (rc = fn(ctx, s.item, &rec)))
                goto out;
            skip_ws(&s);
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                continue;
            }
            if ((rc = expect(&s, ']', "expected ',' or ']' after an item")))
                goto out;
            break;
        }
    }
    skip_ws(&s);
    if (s.p != s.end)
        rc = pb_err_set(err, PB_EPARSE, "items", "trailing bytes after the items array");
out:
    pb_buf_free(&s.scratch);
    return rc;
}
