/* posbench-serve's model work (serve.h), on the model thread: tokenizing a
 * request, generation through pe_generate_batch for all the prompts of a
 * pass together (the decoding, stop ids and seeds of the worker's native
 * backend's pe_generate, so greedy answers agree), stop strings and
 * streamed deltas from the engine's per-token callback,
 * per-token log-probabilities by a scoring pass (echo + logprobs), and
 * pooled embeddings. Answers are OpenAI's JSON shapes, built here. */
#include "serve/serve.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

#define SCORE_CHUNK 32         /* rows of logits held at once when scoring */
#define DEFAULT_MAX_TOKENS 16  /* /v1/completions without max_tokens (OpenAI's) */

static int status_of(int rc)
{
    if (rc == PB_ENOMEM)
        return 503;
    if (rc == PB_EINVAL || rc == PB_ETOOBIG || rc == PB_EUNSUPPORTED || rc == PB_EPARSE)
        return 400;
    return 500;
}

/* ---- tokenizing ---- */

int pv__prepare(pv_job_t *job)
{
    pv_server_t *srv = job->srv;
    int add_special = job->kind == PV_JOB_CHAT ? !srv->chat_bos : 1;
    const char *param = job->kind == PV_JOB_CHAT ? "messages"
                        : job->kind == PV_JOB_EMBED ? "input" : "prompt";
    char msg[200];
    for (size_t i = 0; i < job->n_prompts; i++) {
        pv_prompt_t *pr = &job->prompts[i];
        if (pr->text) {
            int rc = pe_tok_encode(srv->tok, pr->text, pr->len, add_special, &pr->ids, &pr->n_ids);
            if (rc) {
                snprintf(msg, sizeof msg, "cannot tokenize %s %zu: %s", param, i, pb_strerror(rc));
                pv__fail(job, status_of(rc), msg, param);
                return rc;
            }
        }
        for (size_t k = 0; k < pr->n_ids; k++)
            if (pr->ids[k] < 0 || pr->ids[k] >= srv->dims.vocab) {
                snprintf(msg, sizeof msg, "%s %zu: token id %d is outside the vocabulary (%d)",
                         param, i, (int)pr->ids[k], srv->dims.vocab);
                pv__fail(job, 400, msg, param);
                return PB_EINVAL;
            }
        if (job->kind == PV_JOB_EMBED)
            continue;
        int32_t start = pe_tok_bos(srv->tok) >= 0 ? pe_tok_bos(srv->tok) : pe_tok_eos(srv->tok);
        if (pr->n_ids == 0 && start >= 0) { /* an empty prompt starts from BOS (or EOS) */
            free(pr->ids);
            if ((pr->ids = malloc(sizeof *pr->ids)) == NULL) {
                pv__fail(job, 503, "out of memory", NULL);
                return PB_ENOMEM;
            }
            pr->ids[0] = start;
            pr->n_ids = 1;
        }
        if (pr->n_ids == 0 || pr->n_ids >= (size_t)srv->ctx) {
            snprintf(msg, sizeof msg,
                     pr->n_ids ? "%s %zu is %zu tokens; the context holds %d with room to answer"
                               : "%s %zu is empty and the tokenizer has no BOS or EOS",
                     param, i, pr->n_ids, srv->ctx);
            pv__finish(job, 400, pv_error_json(400, msg, param,
                                               pr->n_ids ? "context_length_exceeded" : NULL));
            return PB_ETOOBIG;
        }
    }
    return 0;
}

/* ---- generation ---- */

typedef struct gen {
    pv_job_t *job;
    size_t index;
    int32_t *ids;   /* generated so far (the callback's view) */
    size_t n, cap;
    char *text;     /* their decoding */
    size_t len;
    size_t emitted; /* bytes of text already streamed */
    size_t cut;     /* where a stop string starts, when hit */
    int hit, failed;
} gen_t;

static int decode(const pv_server_t *srv, const int32_t *ids, size_t n, int skip, char **text,
                  size_t *len)
{
    *text = NULL;
    *len = 0;
    if (n == 0)
        return (*text = calloc(1, 1)) ? 0 : PB_ENOMEM;
    return pe_tok_decode(srv->tok, ids, n, skip, text, len);
}

/* Earliest stop string in text[0, len): *cut and 1, else 0. */
static int find_stop(const pv_params_t *p, const char *text, size_t len, size_t *cut)
{
    int hit = 0;
    for (size_t k = 0; k < p->n_stop; k++) {
        const char *s = pv_find(text, len, p->stop[k], strlen(p->stop[k]));
        if (s && (!hit || (size_t)(s - text) < *cut)) {
            *cut = (size_t)(s - text);
            hit = 1;
        }
    }
    return hit;
}

/* One stream chunk with delta raw[0, n) (cleaned to UTF-8); finish NULL
 * while running. role: the chat's first chunk. */
static int emit(pv_job_t *job, size_t index, const char *raw, size_t n, const char *finish,
                int role)
{
    pb_buf_t t, ev;
    pb_buf_init(&t, 0);
    pb_buf_init(&ev, 0);
    int rc = pb_utf8_clean(raw, n, &t);
    json_t *o = NULL, *choice = NULL;
    if (rc == 0 && job->kind == PV_JOB_CHAT) {
        json_t *delta = finish ? json_object() : json_pack("{s:s#}", "content", t.data ? t.data : "", t.len);
        if (delta && role)
            json_object_set_new(delta, "role", json_string("assistant"));
        choice = json_pack("{s:I, s:o, s:n, s:s?}", "index", (json_int_t)index, "delta", delta,
                           "logprobs", "finish_reason", finish);
    } else if (rc == 0) {
        choice = json_pack("{s:I, s:s#, s:n, s:s?}", "index", (json_int_t)index, "text",
                           t.data ? t.data : "", t.len, "logprobs", "finish_reason", finish);
    }
    o = choice ? json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", job->id, "object",
                           job->kind == PV_JOB_CHAT ? "chat.completion.chunk" : "text_completion",
                           "created", (json_int_t)job->created, "model", job->srv->name,
                           "choices", choice)
               : NULL;
    rc = rc ? rc : o ? pv_sse_event(&ev, o) : PB_ENOMEM;
    rc = rc ? rc : pv__post(job, ev.data, ev.len);
    json_decref(o);
    pb_buf_free(&t);
    pb_buf_free(&ev);
    return rc;
}

static int on_token(void *arg, int32_t id)
{
    gen_t *g = arg;
    pv_job_t *job = g->job;
    const pv_params_t *p = &job->p;
    if (pv__cancelled(job))
        return 1;
    if (pb_grow(&g->ids, &g->cap, g->n + 1, sizeof *g->ids, 64)) {
        g->failed = 1;
        return 1;
    }
    g->ids[g->n++] = id;
    if (!p->stream && p->n_stop == 0)
        return 0;
    free(g->text);
    if (decode(job->srv, g->ids, g->n, 1, &g->text, &g->len)) {
        g->failed = 1;
        return 1;
    }
    g->hit = find_stop(p, g->text, g->len, &g->cut);
    if (!p->stream)
        return g->hit;
    /* hold back what may still become a stop string or a character */
    size_t hold = p->stop_len_max ? p->stop_len_max - 1 : 0;
    size_t safe = g->hit ? g->cut : g->len > hold ? g->len - hold : 0;
    if (safe > g->emitted) {
        safe = g->emitted + pb_utf8_ready(g->text + g->emitted, safe - g->emitted);
        if (safe > g->emitted && emit(job, g->index, g->text + g->emitted, safe - g->emitted,
                                      NULL, 0)) {
            g->failed = 1;
            return 1;
        }
        g->emitted = safe;
    }
    return g->hit;
}

/* Log-probability of ids[i] after ids[<i] for i in [max(from, 1), n), and
 * the topn best alternatives (tid, tlp: n * topn). */
static int score(pv_server_t *srv, const int32_t *ids, size_t n, size_t from, int topn,
                 double *lp, int32_t *tid, double *tlp, pb_err_t *err)
{
    const int V = srv->dims.vocab;
    size_t first = from ? from : 1;
    pe_state_t *st = NULL;
    float *logits = NULL;
    if (n < 2 || first >= n)
        return 0;
    int rc = pe_state_create(srv->model, (int)n, 0, &st, err);
    if (rc)
        goto out;
    if ((logits = malloc((size_t)SCORE_CHUNK * V * sizeof *logits)) == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    if ((rc = pe_model_forward(srv->model, st, ids, first - 1, NULL, 0, err)))
        goto out;
    for (size_t o = first - 1; o < n - 1; o += SCORE_CHUNK) {
        size_t T = n - 1 - o < SCORE_CHUNK ? n - 1 - o : SCORE_CHUNK;
        if ((rc = pe_model_forward(srv->model, st, ids + o, T, logits, 1, err)))
            goto out;
        for (size_t r = 0; r < T; r++) {
            const float *lg = logits + r * (size_t)V;
            size_t pos = o + r + 1;
            float mx = lg[0];
            for (int j = 1; j < V; j++)
                mx = lg[j] > mx ? lg[j] : mx;
            double z = 0;
            for (int j = 0; j < V; j++)
                z += exp((double)lg[j] - mx);
            double lz = log(z);
            lp[pos] = (double)lg[ids[pos]] - mx - lz;
            for (int k = 0; k < topn; k++) { /* selection: topn is small */
                int best = -1;
                for (int j = 0; j < V; j++) {
                    int taken = 0;
                    for (int q = 0; q < k && !taken; q++)
                        taken = tid[pos * topn + q] == j;
                    if (!taken && (best < 0 || lg[j] > lg[best]))
                        best = j;
                }
                tid[pos * topn + k] = best;
                tlp[pos * topn + k] = (double)lg[best] - mx - lz;
            }
        }
    }
out:
    pe_state_free(st);
    free(logits);
    return rc;
}

/* A token's display text, malloc'd into *out. */
static int token_text(const pv_server_t *srv, int32_t id, int skip, pb_buf_t *out)
{
    char *t = NULL;
    size_t len = 0;
    int rc = pe_tok_decode(srv->tok, &id, 1, skip, &t, &len);
    rc = rc ? rc : pv_token_str(t, len, out);
    free(t);
    return rc ? rc : pb_buf_cstr(out);
}

/* Characters (code points) that bytes s[0, n) complete; *owed carries the
 * continuation bytes a character begun earlier still needs. A character
 * counts once its last byte is there, as vLLM's incremental detokenizer
 * holds a partial one back; a stray or cut-short byte counts as the one
 * U+FFFD it becomes. */
static size_t utf8_done(const char *s, size_t n, int *owed)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if ((b & 0xC0) == 0x80) { /* continuation */
            c += *owed == 0 || --*owed == 0;
            continue;
        }
        c += *owed > 0; /* a character cut short */
        *owed = b >= 0xC2 && b <= 0xDF ? 1 : b >= 0xE0 && b <= 0xEF ? 2
                : b >= 0xF0 && b <= 0xF4 ? 3 : 0;
        c += *owed == 0;
    }
    return c;
}

/* OpenAI's logprobs object for ids[from, n): the legacy completions shape
 * (tokens, token_logprobs, top_logprobs, text_offset: character offsets
 * into the returned text, as OpenAI and vLLM count) or chat's
 * {"content": [...]}. */
static json_t *logprobs_json(pv_job_t *job, const int32_t *ids, size_t n, size_t from,
                             const double *lp, const int32_t *tid, const double *tlp)
{
    pv_server_t *srv = job->srv;
    int topn = job->p.logprobs, chat = job->kind == PV_JOB_CHAT;
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    json_t *content = json_array();
    size_t off = 0;
    int owed = 0;
    pb_buf_t b;
    int ok = toks && lps && tops && offs && content;
    pb_buf_init(&b, 0);
    for (size_t i = from; ok && i < n; i++) {
        pb_buf_reset(&b);
        ok = token_text(srv, ids[i], 0, &b) == 0;
        json_t *top = chat ? json_array() : json_object();
        for (int k = 0; ok && top && i > 0 && k < topn; k++) {
            pb_buf_t tb;
            pb_buf_init(&tb, 0);
            ok = token_text(srv, tid[i * topn + k], 0, &tb) == 0;
            if (ok && chat)
                json_array_append_new(top, json_pack("{s:s, s:f}", "token", tb.data, "logprob",
                                                     tlp[i * topn + k]));
            else if (ok)
                json_object_set_new(top, tb.data, json_real(tlp[i * topn + k]));
            pb_buf_free(&tb);
        }
        ok = ok && top;
        if (ok && chat) {
            json_array_append_new(content, json_pack("{s:s, s:f, s:o}", "token", b.data,
                                                     "logprob", lp[i], "top_logprobs", top));
            continue;
        }
        if (!ok) {
            json_decref(top);
            break;
        }
        json_array_append_new(toks, json_string(b.data));
        json_array_append_new(lps, i > 0 ? json_real(lp[i]) : json_null());
        json_array_append_new(tops, i > 0 ? top : json_null());
        if (i == 0)
            json_decref(top);
        json_array_append_new(offs, json_integer((json_int_t)off));
        char *t = NULL;
        size_t len = 0;
        if (pe_tok_decode(srv->tok, &ids[i], 1, 1, &t, &len) == 0)
            off += utf8_done(t, len, &owed);
        free(t);
    }
    pb_buf_free(&b);
    json_t *o = !ok ? NULL
                : chat ? json_pack("{s:O}", "content", content)
                       : json_pack("{s:O, s:O, s:O, s:O}", "tokens", toks, "token_logprobs", lps,
                                   "top_logprobs", tops, "text_offset", offs);
    json_decref(toks);
    json_decref(lps);
    json_decref(tops);
    json_decref(offs);
    json_decref(content);
    return o;
}

/* One sequence: a prompt of a generation request. */
typedef struct seq {
    gen_t g;           /* g.job, g.index: whose prompt */
    pe_gen_params_t gp;
    int32_t stops[2];
    int max;           /* the answer's budget */
    int rc;
    pb_err_t err;
    json_t *choice;    /* the non-streamed answer's choice */
    pe_gen_seq_t gs;   /* the engine's view once admitted: out, n_out, why */
    pe_state_t *st;
    int admitted, ended;
} seq_t;

/* Before generation: the budget, the stop ids, a stream's opening chunks. */
static int seq_begin(seq_t *s)
{
    pv_job_t *job = s->g.job;
    pv_server_t *srv = job->srv;
    size_t index = s->g.index, n_stops = 0;
    const pv_prompt_t *pr = &job->prompts[index];
    const pv_params_t *p = &job->p;
    int max = p->max_tokens >= 0 ? p->max_tokens
              : job->kind == PV_JOB_CHAT ? srv->ctx : DEFAULT_MAX_TOKENS;
    if ((size_t)max > (size_t)srv->ctx - pr->n_ids)
        max = srv->ctx - (int)pr->n_ids; /* the context bounds the answer */
    if (pe_tok_eos(srv->tok) >= 0)
        s->stops[n_stops++] = pe_tok_eos(srv->tok);
    if (job->kind == PV_JOB_CHAT && srv->chat_eot >= 0)
        s->stops[n_stops++] = srv->chat_eot;
    s->max = max;
    s->gp = (pe_gen_params_t){
        .max_tokens = max, .temperature = p->temperature, .top_p = p->top_p,
        .top_k = p->top_k, .seed = p->seed + index, .stop_ids = s->stops, .n_stop = n_stops,
        .on_token = on_token, .arg = &s->g,
    };
    int rc = 0;
    if (p->stream && job->kind == PV_JOB_CHAT)
        rc = emit(job, index, "", 0, NULL, 1);
    if (rc == 0 && p->stream && p->echo)
        rc = emit(job, index, pr->text ? pr->text : "", pr->text ? pr->len : 0, NULL, 0);
    return rc;
}

/* After generation: a stream's last chunks, or the choice (with the echoed
 * prompt and the scored logprobs when asked). */
static int seq_end(seq_t *s)
{
    pv_job_t *job = s->g.job;
    pv_server_t *srv = job->srv;
    size_t index = s->g.index;
    const pv_prompt_t *pr = &job->prompts[index];
    const pv_params_t *p = &job->p;
    pb_err_t *err = &s->err;
    int32_t *all = NULL, *tid = NULL;
    double *lp = NULL, *tlp = NULL;
    char *text = NULL;
    size_t len = 0;
    pb_buf_t clean;
    pb_buf_init(&clean, 0);
    int rc = decode(srv, s->gs.out, s->gs.n_out, 1, &text, &len);
    if (rc)
        goto out;
    int hit = find_stop(p, text, len, &len);
    const char *finish = hit || s->gs.why == PE_STOP_ID ? "stop" : "length";
    job->prompt_tokens += (int64_t)pr->n_ids;
    job->completion_tokens += (int64_t)s->gs.n_out;
    if (p->stream) {
        rc = len > s->g.emitted ? emit(job, index, text + s->g.emitted, len - s->g.emitted, NULL, 0)
                                : 0;
        rc = rc ? rc : emit(job, index, "", 0, finish, 0);
        goto out;
    }
    /* the answer text: the prompt first when echoed */
    if (p->echo && pr->text)
        rc = pb_buf_append(&clean, pr->text, pr->len);
    if (rc == 0 && p->echo && !pr->text) {
        char *pt = NULL;
        size_t pl = 0;
        rc = decode(srv, pr->ids, pr->n_ids, 1, &pt, &pl);
        rc = rc ? rc : pb_utf8_clean(pt, pl, &clean);
        free(pt);
    }
    rc = rc ? rc : pb_utf8_clean(text, len, &clean);
    json_t *lpj = NULL;
    if (rc == 0 && p->logprobs >= 0) {
        size_t n = pr->n_ids + s->gs.n_out, topn = (size_t)p->logprobs;
        all = malloc(n * sizeof *all);
        lp = calloc(n, sizeof *lp);
        tid = malloc((n * topn + 1) * sizeof *tid);
        tlp = malloc((n * topn + 1) * sizeof *tlp);
        if (!all || !lp || !tid || !tlp) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            goto out;
        }
        memcpy(all, pr->ids, pr->n_ids * sizeof *all);
        if (s->gs.n_out)
            memcpy(all + pr->n_ids, s->gs.out, s->gs.n_out * sizeof *all);
        size_t from = p->echo && job->kind != PV_JOB_CHAT ? 0 : pr->n_ids;
        if ((rc = score(srv, all, n, from, (int)topn, lp, tid, tlp, err)))
            goto out;
        if ((lpj = logprobs_json(job, all, n, from, lp, tid, tlp)) == NULL) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            goto out;
        }
    }
    if (rc == 0 && job->kind == PV_JOB_CHAT)
        s->choice = json_pack("{s:I, s:{s:s, s:s#}, s:o*, s:s}", "index", (json_int_t)index,
                              "message", "role", "assistant", "content",
                              clean.data ? clean.data : "", clean.len, "logprobs",
                              lpj ? lpj : json_null(), "finish_reason", finish);
    else if (rc == 0)
        s->choice = json_pack("{s:I, s:s#, s:o*, s:s}", "index", (json_int_t)index, "text",
                              clean.data ? clean.data : "", clean.len, "logprobs",
                              lpj ? lpj : json_null(), "finish_reason", finish);
    if (rc == 0 && s->choice == NULL)
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
out:
    free(text);
    free(all);
    free(lp);
    free(tid);
    free(tlp);
    pb_buf_free(&clean);
    return rc;
}

static json_t *usage_json(const pv_job_t *job)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)job->prompt_tokens,
                     "completion_tokens", (json_int_t)job->completion_tokens, "total_tokens",
                     (json_int_t)(job->prompt_tokens + job->completion_tokens));
}

/* A job's answer from its sequences s[0, n_prompts): the first error, the
 * stream's end, or the choices in prompt order (taken from s). */
static void job_finish(pv_job_t *job, seq_t *s)
{
    const pv_params_t *p = &job->p;
    const pb_err_t *err = NULL;
    json_t *choices = json_array(), *o = NULL;
    int rc = choices ? 0 : PB_ENOMEM;
    for (size_t i = 0; rc == 0 && i < job->n_prompts; i++)
        if ((rc = s[i].rc))
            err = &s[i].err;
    if (rc == PB_ECANCELLED) { /* the client left, or the server stops */
        json_decref(choices);
        pv__finish(job, 503, pv_error_json(503, "cancelled", NULL, NULL));
        return;
    }
    if (rc) {
        const char *msg = err && err->msg[0] ? err->msg : pb_strerror(rc);
        char *e = pv_error_json(status_of(rc), msg, NULL, NULL);
        if (job->posted && e) { /* the stream has begun: end it with the error */
            pb_buf_t ev;
            pb_buf_init(&ev, 0);
            if (pb_buf_printf(&ev, "data: %s\n\n" PV_SSE_DONE, e) == 0)
                pv__post(job, ev.data, ev.len);
            pb_buf_free(&ev);
        }
        json_decref(choices);
        pv__finish(job, status_of(rc), e);
        return;
    }
    if (p->stream) {
        pb_buf_t ev;
        pb_buf_init(&ev, 0);
        json_t *u = p->include_usage
                        ? json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", job->id, "object",
                                    job->kind == PV_JOB_CHAT ? "chat.completion.chunk"
                                                             : "text_completion",
                                    "created", (json_int_t)job->created, "model", job->srv->name,
                                    "choices", "usage", usage_json(job))
                        : NULL;
        if (u)
            pv_sse_event(&ev, u);
        pb_buf_puts(&ev, PV_SSE_DONE);
        pv__post(job, ev.data, ev.len);
        pb_buf_free(&ev);
        json_decref(u);
        json_decref(choices);
        pv__finish(job, 200, NULL);
        return;
    }
    for (size_t i = 0; i < job->n_prompts; i++) {
        json_array_append_new(choices, s[i].choice);
        s[i].choice = NULL;
    }
    o = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", job->id, "object",
                  job->kind == PV_JOB_CHAT ? "chat.completion" : "text_completion", "created",
                  (json_int_t)job->created, "model", job->srv->name, "choices", choices, "usage",
                  usage_json(job));
    char *str = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
                  : NULL;
    json_decref(o);
    if (str == NULL)
        pv__fail(job, 503, "out of memory", NULL);
    else
        pv__finish(job, 200, str);
}

/* ---- requests in flight (continuous batching) ---- */

/* A generation request in flight: its sequences, the next to admit, and
 * how many have not ended. */
typedef struct run {
    struct run *next;
    pv_job_t *job;
    seq_t *s;         /* (n): the job's prompts */
    size_t n, admit, left;
} run_t;

/* The model thread's generation state: one engine batch that sequences
 * join and leave between steps, and the requests they belong to. */
struct pv_gen {
    pe_gen_batch_t *b;
    run_t *runs;      /* in arrival order */
    size_t waiting;   /* sequences of runs not admitted yet */
};

int pv__gen_open(pv_server_t *srv)
{
    pb_err_t err = {{0}, {0}};
    if ((srv->gen = calloc(1, sizeof *srv->gen)) == NULL)
        return PB_ENOMEM;
    return pe_gen_batch_create(srv->model, &srv->gen->b, &err);
}

static void run_free(run_t *r)
{
    for (size_t i = 0; r && i < r->n; i++) { /* the job may be gone */
        free(r->s[i].g.ids);
        free(r->s[i].g.text);
        free(r->s[i].gs.out);
        pe_state_free(r->s[i].st);
        json_decref(r->s[i].choice);
    }
    if (r)
        free(r->s);
    free(r);
}

void pv__gen_close(pv_server_t *srv)
{
    if (srv->gen == NULL)
        return;
    pe_gen_batch_free(srv->gen->b);
    while (srv->gen->runs) { /* only after a failed start: no answers owed */
        run_t *r = srv->gen->runs;
        srv->gen->runs = r->next;
        run_free(r);
    }
    free(srv->gen);
    srv->gen = NULL;
}

size_t pv__gen_load(const pv_server_t *srv)
{
    return pe_gen_batch_running(srv->gen->b) + srv->gen->waiting;
}

size_t pv__gen_runs(const pv_server_t *srv)
{
    size_t n = 0;
    for (const run_t *r = srv->gen->runs; r; r = r->next)
        n++;
    return n;
}

/* A sequence that needs no generation (or failed to begin) ends at once. */
static int seq_needs_gen(const seq_t *s) { return s->rc == 0 && s->max > 0; }

void pv__gen_start(pv_job_t *job)
{
    pv_gen_t *gen = job->srv->gen;
    run_t *r = calloc(1, sizeof *r);
    seq_t *s = r ? calloc(job->n_prompts ? job->n_prompts : 1, sizeof *s) : NULL;
    if (s == NULL) {
        free(r);
        pv__fail(job, 503, "out of memory", NULL);
        return;
    }
    r->job = job;
    r->s = s;
    r->n = r->left = job->n_prompts;
    for (size_t i = 0; i < job->n_prompts; i++) {
        s[i].g = (gen_t){.job = job, .index = i};
        s[i].rc = seq_begin(&s[i]);
        gen->waiting += seq_needs_gen(&s[i]);
    }
    run_t **tail = &gen->runs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
}

/* Admit waiting sequences, oldest request first, while the batch has
 * fewer than --max-batch. */
static void gen_fill(pv_server_t *srv)
{
    pv_gen_t *gen = srv->gen;
    for (run_t *r = gen->runs; r && gen->waiting; r = r->next) {
        for (; r->admit < r->n; r->admit++) {
            seq_t *q = &r->s[r->admit];
            if (!seq_needs_gen(q))
                continue;
            if (pe_gen_batch_running(gen->b) >= (size_t)srv->max_batch)
                return;
            const pv_prompt_t *pr = &r->job->prompts[q->g.index];
            gen->waiting--;
            q->gs = (pe_gen_seq_t){.prompt = pr->ids, .n = pr->n_ids, .p = &q->gp};
            q->rc = pe_state_create(srv->model, (int)pr->n_ids + q->max, 0, &q->st, &q->err);
            q->gs.st = q->st;
            q->rc = q->rc ? q->rc : pe_gen_batch_add(gen->b, &q->gs, &q->err);
            q->admitted = q->rc == 0;
        }
    }
}

/* End what has stopped: a sequence's answer part once the engine is done
 * with it, a request's answer once all its sequences have ended. */
static void gen_sweep(pv_server_t *srv)
{
    pv_gen_t *gen = srv->gen;
    for (run_t **pr = &gen->runs; *pr;) {
        run_t *r = *pr;
        for (size_t i = 0; i < r->n; i++) {
            seq_t *q = &r->s[i];
            if (q->ended || (seq_needs_gen(q) && !(q->admitted && q->gs.done)))
                continue;
            if (q->admitted) {
                pe_state_free(q->st);
                q->st = NULL;
                if (q->g.failed)
                    q->rc = pv__cancelled(r->job) ? PB_ECANCELLED
                            : pb_err_set(&q->err, PB_ENOMEM, "", "out of memory");
            }
            if (q->rc == 0)
                q->rc = seq_end(q);
            q->ended = 1;
            r->left--;
        }
        if (r->left > 0) {
            pr = &r->next;
            continue;
        }
        *pr = r->next;
        job_finish(r->job, r->s);
        run_free(r);
    }
}

void pv__gen_step(pv_server_t *srv)
{
    pv_gen_t *gen = srv->gen;
    pb_err_t err = {{0}, {0}};
    gen_fill(srv);
    size_t n = pe_gen_batch_running(gen->b), reqs = 0;
    for (const run_t *r = gen->runs; r; r = r->next) { /* requests in this step */
        int in = 0;
        for (size_t i = 0; i < r->n && !in; i++)
            in = r->s[i].admitted && !r->s[i].gs.done;
        reqs += (size_t)in;
    }
    int rc = pe_gen_batch_step(gen->b, &err);
    if (n) {
        pthread_mutex_lock(&srv->mx);
        srv->m.gen_calls++;
        srv->m.gen_seqs += n;
        if (n > srv->m.gen_seq_max)
            srv->m.gen_seq_max = n;
        if (reqs > srv->m.gen_req_max)
            srv->m.gen_req_max = reqs;
        pthread_mutex_unlock(&srv->mx);
    }
    if (rc) /* the engine ended every running sequence */
        for (run_t *r = gen->runs; r; r = r->next)
            for (size_t i = 0; i < r->n; i++)
                if (r->s[i].admitted && !r->s[i].ended) {
                    r->s[i].rc = rc;
                    r->s[i].err = err;
                }
    gen_sweep(srv);
}

/* ---- embeddings ---- */

void pv__run_embed(pv_job_t *job)
{
    pv_server_t *srv = job->srv;
    pb_err_t err = {{0}, {0}};
    size_t d = (size_t)srv->dims.d_model, longest = 1;
    pe_state_t *st = NULL;
    float *v = malloc(d * sizeof *v);
    json_t *data = json_array(), *o = NULL;
    int rc = v && data ? 0 : pb_err_set(&err, PB_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < job->n_prompts; i++)
        if (job->prompts[i].n_ids > longest)
            longest = job->prompts[i].n_ids;
    if (longest > (size_t)srv->ctx)
        longest = (size_t)srv->ctx;
    rc = rc ? rc : pe_state_create(srv->model, (int)longest, 0, &st, &err);
    for (size_t i = 0; rc == 0 && i < job->n_prompts; i++) {
        const pv_prompt_t *pr = &job->prompts[i];
        /* a text longer than the context is embedded by its head, as the
         * native backend does; an empty one is the zero vector */
        size_t use = pr->n_ids < longest ? pr->n_ids : longest;
        memset(v, 0, d * sizeof *v);
        if (use && (rc = pe_embed(srv->model, st, pr->ids, use, srv->pool, v, &err)))
            break;
        json_t *e = json_array();
        for (size_t k = 0; e && k < d; k++)
            json_array_append_new(e, json_real(v[k]));
        if (e == NULL || json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object",
                                                               "embedding", "index",
                                                               (json_int_t)i, "embedding", e)))
            rc = pb_err_set(&err, PB_ENOMEM, "", "out of memory");
        job->prompt_tokens += (int64_t)use;
    }
    if (rc == 0)
        o = json_pack("{s:s, s:O, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model",
                      srv->name, "usage", "prompt_tokens", (json_int_t)job->prompt_tokens,
                      "total_tokens", (json_int_t)job->prompt_tokens);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))
                : NULL;
    if (rc)
        pv__fail(job, status_of(rc), err.msg[0] ? err.msg : pb_strerror(rc), "input");
    else if (s == NULL)
        pv__fail(job, 503, "out of memory", NULL);
    else
        pv__finish(job, 200, s);
    if (rc && s)
        free(s);
    json_decref(o);
    json_decref(data);
    pe_state_free(st);
    free(v);
}
