/* The CLI's HTTP client: one reused libcurl handle, JSON in and out, fixed
 * timeouts, a cap on the response size, and the API's {"error","field"}
 * replies turned into "error: <msg> (field: <field>)" on stderr. */
#include "cli/cli.h"

#include "common/util.h"

#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 5000L
#define TOTAL_TIMEOUT_MS 60000L

typedef struct sink {
    pb_buf_t body;
    int too_big;
} sink_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sink_t *s = arg;
    size_t n = size * nmemb;
    if (pb_buf_append(&s->body, ptr, n) != 0) {
        s->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

int pb_cli_init(pb_cli_t *c, const char *url)
{
    memset(c, 0, sizeof *c);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof c->url)
        return PB_EINVAL;
    memcpy(c->url, url, n);
    c->url[n] = '\0';
    c->curl = curl_easy_init();
    return c->curl ? 0 : PB_ENOMEM;
}

void pb_cli_close(pb_cli_t *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

int pb_cli_exit_for(int rc)
{
    if (rc == 0)
        return PB_CLI_OK;
    return rc == PB_ENET ? PB_CLI_NOCONN : PB_CLI_FAIL;
}

static void say(const pb_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const pb_cli_t *c, const char *fmt, ...)
{
    if (c->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Map a transport failure to a code. A connect timeout counts as "cannot
 * connect"; a timeout after connecting does not. */
static int transport_error(pb_cli_t *c, CURLcode cc, const sink_t *s, const char *errbuf)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    curl_off_t connect_us = 0;
    curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME_T, &connect_us);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        say(c, "cannot connect to %s: %s", c->url, why);
        return PB_ENET;
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_us == 0) {
            say(c, "cannot connect to %s: %s", c->url, why);
            return PB_ENET;
        }
        say(c, "%s did not answer in time: %s", c->url, why);
        return PB_ETIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        say(c, "response from %s is larger than %u MiB", c->url, PB_CLI_MAX_RESPONSE >> 20);
        return PB_ETOOBIG;
    case CURLE_WRITE_ERROR:
        if (s->too_big) {
            say(c, "response from %s is larger than %u MiB", c->url, PB_CLI_MAX_RESPONSE >> 20);
            return PB_ETOOBIG;
        }
        break;
    default:
        break;
    }
    say(c, "request to %s failed: %s", c->url, why);
    return PB_EIO;
}

/* Turn a non-2xx reply into a message and a code. */
static int api_error(pb_cli_t *c, long status, const json_t *j, const pb_buf_t *body)
{
    const char *msg = pb_cli_jstr(j, "error", NULL);
    const char *field = pb_cli_jstr(j, "field", NULL);
    if (msg && field && *field)
        say(c, "%s (field: %s)", msg, field);
    else if (msg)
        say(c, "%s", msg);
    else {
        char snippet[200];
        pb_cli_clip(body->data ? body->data : "", 120, snippet, sizeof snippet);
        say(c, "HTTP %ld from %s%s%s", status, c->url, snippet[0] ? ": " : "", snippet);
    }
    if (status == 404)
        return PB_ENOTFOUND;
    if (status == 409)
        return PB_ESTATE;
    return PB_EPROTO;
}

/* Append one header line; the list is left intact on failure. */
static int add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *t = curl_slist_append(*list, line);
    if (t == NULL)
        return PB_ENOMEM;
    *list = t;
    return 0;
}

int pb_cli_call(pb_cli_t *c, const char *method, const char *path, const json_t *body,
                const char *idem_key, long *status, json_t **out)
{
    int rc = 0;
    char *payload = NULL;
    char *url = NULL;
    struct curl_slist *hdrs = NULL;
    json_t *j = NULL;
    sink_t s;
    char errbuf[CURL_ERROR_SIZE] = "";
    long code = 0;

    pb_buf_init(&s.body, PB_CLI_MAX_RESPONSE);
    s.too_big = 0;
    *out = NULL;
    if (status)
        *status = 0;
    if (asprintf(&url, "%s%s", c->url, path) < 0) {
        url = NULL;
        rc = PB_ENOMEM;
        goto out;
    }

    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : TOTAL_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)PB_CLI_MAX_RESPONSE);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "posbench/" PACKAGE_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif

    /* An empty Expect: skips curl's 100-continue wait; the coordinator answers. */
    rc = add_header(&hdrs, "Accept: application/json");
    if (rc == 0)
        rc = add_header(&hdrs, "Expect:");
    if (rc == 0 && idem_key) {
        char line[320];
        snprintf(line, sizeof line, "Idempotency-Key: %s", idem_key);
        rc = add_header(&hdrs, line);
    }
    if (rc == 0 && strcmp(method, "POST") == 0 && c->raw_body) {
        char line[128];
        snprintf(line, sizeof line, "Content-Type: %.100s", c->raw_type);
        rc = add_header(&hdrs, line);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->raw_body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->raw_len);
    } else if (rc == 0 && strcmp(method, "POST") == 0) {
        rc = add_header(&hdrs, "Content-Type: application/json");
        payload = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
        if (payload == NULL)
            rc = PB_ENOMEM;
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(payload ? strlen(payload) : 0));
    } else if (rc == 0 && strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (rc)
        goto out;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = transport_error(c, cc, &s, errbuf);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;

    json_error_t jerr;
    if (s.body.len > 0)
        j = json_loadb(s.body.data, s.body.len, 0, &jerr);
    if (code < 200 || code >= 300) {
        rc = api_error(c, code, j, &s.body);
        goto out;
    }
    if (j == NULL) {
        say(c, "malformed JSON from %s%s (HTTP %ld)", c->url, path, code);
        rc = PB_EPARSE;
        goto out;
    }
    *out = j;
    j = NULL;
out:
    /* The handle keeps pointers to these until the next reset. */
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    json_decref(j);
    free(payload);
    free(url);
    pb_buf_free(&s.body);
    return rc;
}

int pb_cli_get(pb_cli_t *c, const char *path, json_t **out)
{
    return pb_cli_call(c, "GET", path, NULL, NULL, NULL, out);
}

int pb_cli_query(char *path, size_t n, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (value == NULL)
        return 0;
    size_t len = strlen(path);
    int w = snprintf(path + len, n - len, "%c%s=", strchr(path, '?') ? '&' : '?', key);
    if (w < 0 || (size_t)w >= n - len)
        goto full;
    size_t at = len + (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        if (at + (plain ? 1 : 3) >= n)
            goto full;
        if (plain) {
            path[at++] = (char)*p;
        } else {
            path[at++] = '%';
            path[at++] = hex[*p >> 4];
            path[at++] = hex[*p & 15];
        }
    }
    path[at] = '\0';
    return 0;
full:
    path[len] = '\0';
    return PB_ETOOBIG;
}
