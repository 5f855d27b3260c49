/* Webhook delivery (webhook.h). The POST runs off the loop so a slow
 * receiver never stalls results; the store is written only in the
 * after-work callback, on the loop. */
#include "config.h"

#include "coordinator/webhook.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rng.h"
#include "common/util.h"
#include "common/version.h"
#include "db/store.h"

typedef struct hook {
    uv_work_t w;
    pb_coord_t *c;
    int64_t id;
    int attempts; /* made before this one */
    char *url, *body;
    long status;
    char error[256];
} hook_t;

double pb_webhook_backoff(double base, int attempts, double u)
{
    double d = base * pow(2.0, attempts > 1 ? attempts - 1 : 0);
    if (d > PB_WEBHOOK_BACKOFF_MAX)
        d = PB_WEBHOOK_BACKOFF_MAX;
    return d * (0.8 + 0.4 * u);
}

/* The receiver's answer is not needed; read and drop at most 64 KiB. */
static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    size_t *seen = ud;
    (void)p;
    *seen += size * n;
    return *seen > 65536 ? 0 : size * n;
}

static void hook_post(uv_work_t *w)
{
    hook_t *h = w->data;
    CURL *e = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char idh[64];
    size_t seen = 0;
    if (e == NULL) {
        snprintf(h->error, sizeof h->error, "cannot create a curl handle");
        return;
    }
    snprintf(idh, sizeof idh, "X-Posbench-Delivery: %lld", (long long)h->id);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, idh);
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "posbench/" PACKAGE_VERSION);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)PB_WEBHOOK_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &seen);
    CURLcode cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->status);
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && h->status >= 200))
        snprintf(h->error, sizeof h->error, "%s", curl_easy_strerror(cc));
    else if (h->status < 200 || h->status > 299)
        snprintf(h->error, sizeof h->error, "receiver answered HTTP %ld", h->status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(e);
}

static void hook_done(uv_work_t *w, int status)
{
    hook_t *h = w->data;
    pb_coord_t *c = h->c;
    double now = pb_wall_time();
    const char *state = "delivered";
    double next = now;
    if (status != 0 && h->error[0] == '\0')
        snprintf(h->error, sizeof h->error, "delivery was cancelled");
    if (h->error[0]) {
        int made = h->attempts + 1;
        c->webhooks_failed_attempts++;
        if (made >= c->cfg.webhook_attempts) {
            state = "failed";
            pb_error("webhook delivery %lld to %s failed for good after %d attempts: %s",
                     (long long)h->id, h->url, made, h->error);
        } else {
            state = "pending";
            pb_rng_t r;
            pb_rng_seed(&r, (uint64_t)h->id, (uint64_t)made);
            next = now + pb_webhook_backoff(c->cfg.webhook_backoff_s, made, pb_rng_double(&r));
            pb_warn("webhook delivery %lld to %s: %s; retry %d in %.1f s", (long long)h->id,
                    h->url, h->error, made + 1, next - now);
        }
    } else {
        c->webhooks_delivered++;
        pb_info("webhook delivery %lld delivered to %s (HTTP %ld)", (long long)h->id, h->url,
                h->status);
    }
    if (pdb_delivery_attempted(c->db, h->id, state, (int)h->status, h->error[0] ? h->error : NULL,
                               next, now) != 0)
        pb_error("webhook delivery %lld: cannot record the attempt: %s", (long long)h->id,
                 pdb_errmsg(c->db));
    c->webhooks_inflight--;
    free(h->url);
    free(h->body);
    free(h);
}

void pb_webhook_tick(pb_coord_t *c)
{
    json_t *due = NULL;
    if (c->webhooks_inflight > 0 || pdb_deliveries_due(c->db, pb_wall_time(), PB_WEBHOOK_BATCH,
                                                       &due) != 0)
        return;
    size_t i;
    json_t *d;
    json_array_foreach(due, i, d)
    {
        hook_t *h = calloc(1, sizeof *h);
        if (h == NULL)
            break;
        h->c = c;
        h->id = json_integer_value(json_object_get(d, "id"));
        h->attempts = (int)json_integer_value(json_object_get(d, "attempts"));
        h->url = strdup(json_string_value(json_object_get(d, "url")));
        h->body = strdup(json_string_value(json_object_get(d, "body")));
        h->w.data = h;
        if (h->url == NULL || h->body == NULL ||
            uv_queue_work(c->loop, &h->w, hook_post, hook_done) != 0) {
            free(h->url);
            free(h->body);
            free(h);
            break;
        }
        c->webhooks_inflight++;
    }
    json_decref(due);
}
