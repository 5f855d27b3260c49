/* posbench-serve: an OpenAI-compatible HTTP server over one native
 * checkpoint (engine/), on the coordinator's HTTP layer (coordinator/http.h).
 * This file reads the flags, loads checkpoint, tokenizer and model (with a
 * PE override from --rope-scaling / --rope-theta / --pe), picks the chat
 * template and runs the libuv loop until SIGINT or SIGTERM. */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "serve/serve.h"

typedef struct opts {
    char host[256];
    int port;
    const char *model, *name, *rope_scaling, *pe, *chat;
    double rope_theta;
    int threads, max_batch, max_queue, ctx;
    size_t max_body;
    pe_pool_t pool;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: posbench-serve --model DIR [options]\n"
        "  --listen HOST:PORT     listen address (default 127.0.0.1:8000; port 0: any free)\n"
        "  --model DIR            checkpoint directory (config.json, safetensors, tokenizer)\n"
        "  --name NAME            model id served and expected in requests (default: DIR's name)\n"
        "  --rope-scaling T:F[:N] RoPE scaling override: T one of linear, ntk, dynamic, yarn,\n"
        "                         none; F the factor; N the original context (yarn,\n"
        "                         dynamic; default the checkpoint's max_position_embeddings)\n"
        "  --rope-theta X         RoPE base override\n"
        "  --pe JSON              any PE override the engine accepts, e.g. '{\"type\":\"alibi\"}'\n"
        "  --threads N            kernel threads (default: online CPUs)\n"
        "  --max-batch N          requests one model-thread pass takes (default 8)\n"
        "  --max-queue N          requests waiting before 503 (default 256)\n"
        "  --ctx N                tokens per sequence, prompt + answer (default: the model's)\n"
        "  --pool mean|cls|last   embedding pooling (default mean)\n"
        "  --chat-template auto|plain|chatml|llama3  (default auto: from tokenizer_config.json)\n"
        "  --max-body BYTES       request body cap, 413 beyond (default 8 MiB)\n"
        "  --help\n");
}

static int int_arg(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->host, "127.0.0.1");
    o->port = 8000;
    o->max_batch = 8;
    o->max_queue = 256;
    o->max_body = 8u << 20;
    o->chat = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, mb = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "posbench-serve: %s needs a value (--help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--listen"))
            bad = pb_parse_hostport(v, o->host, sizeof o->host, &o->port) != 0;
        else if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--name"))
            o->name = v;
        else if (!strcmp(a, "--rope-scaling"))
            o->rope_scaling = v;
        else if (!strcmp(a, "--rope-theta"))
            bad = (o->rope_theta = strtod(v, NULL)) <= 1.0;
        else if (!strcmp(a, "--pe"))
            o->pe = v;
        else if (!strcmp(a, "--threads"))
            bad = int_arg(v, 0, 4096, &o->threads);
        else if (!strcmp(a, "--max-batch"))
            bad = int_arg(v, 1, 256, &o->max_batch);
        else if (!strcmp(a, "--max-queue"))
            bad = int_arg(v, 1, 1 << 20, &o->max_queue);
        else if (!strcmp(a, "--ctx"))
            bad = int_arg(v, 2, 1 << 20, &o->ctx);
        else if (!strcmp(a, "--max-body"))
            bad = int_arg(v, 1024, 1 << 30, &mb), o->max_body = (size_t)mb;
        else if (!strcmp(a, "--chat-template"))
            bad = strcmp(v, "auto") && strcmp(v, "plain") && strcmp(v, "chatml") &&
                  strcmp(v, "llama3"),
            o->chat = v;
        else if (!strcmp(a, "--pool")) {
            o->pool = !strcmp(v, "cls") ? PE_POOL_CLS : !strcmp(v, "last") ? PE_POOL_LAST
                                                                             : PE_POOL_MEAN;
            bad = strcmp(v, "cls") && strcmp(v, "last") && strcmp(v, "mean");
        } else {
            fprintf(stderr, "posbench-serve: unknown option %s (--help)\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "posbench-serve: bad value for %s: %s\n", a, v);
            return 2;
        }
    }
    if (o->model == NULL) {
        fprintf(stderr, "posbench-serve: --model DIR is required (--help)\n");
        return 2;
    }
    if (o->pe && (o->rope_scaling || o->rope_theta > 0)) {
        fprintf(stderr, "posbench-serve: --pe replaces --rope-scaling and --rope-theta; "
                        "give one or the other\n");
        return 2;
    }
    return 0;
}

/* The PE override the flags ask for (NULL: none) into *out. */
static int build_pe(const opts_t *o, const pe_ckpt_t *ck, json_t **out, pb_err_t *err)
{
    *out = NULL;
    if (o->pe) {
        json_error_t je;
        if ((*out = json_loads(o->pe, 0, &je)) == NULL)
            return pb_err_set(err, PB_EINVAL, "pe", "--pe is not JSON: %s", je.text);
    } else if (o->rope_scaling || o->rope_theta > 0) {
        *out = json_pack("{s:s}", "type", "rope");
        if (*out && o->rope_theta > 0)
            json_object_set_new(*out, "theta", json_real(o->rope_theta));
    }
    if (*out && o->rope_scaling) {
        char type[32];
        double factor = 1;
        int orig = 0, n = 0;
        if (sscanf(o->rope_scaling, "%31[a-z]:%lf%n:%d", type, &factor, &n, &orig) < 2)
            return pb_err_set(err, PB_EINVAL, "rope-scaling",
                              "--rope-scaling wants TYPE:FACTOR[:ORIGINAL_CONTEXT], e.g. yarn:4");
        const json_t *cfg = pe_ckpt_config(ck);
        if (orig <= 0) /* HF names it two ways */
            orig = (int)json_integer_value(json_object_get(cfg, "max_position_embeddings"));
        if (orig <= 0)
            orig = (int)json_integer_value(json_object_get(cfg, "n_positions"));
        json_t *s = json_pack("{s:s, s:f}", "type", type, "factor", factor);
        if (s && (!strcmp(type, "yarn") || !strcmp(type, "dynamic")) && orig > 0)
            json_object_set_new(s, "original_max_position", json_integer(orig));
        json_object_set_new(*out, "scaling", s);
    }
    if (*out == NULL)
        return (o->pe || o->rope_scaling || o->rope_theta > 0) ? PB_ENOMEM : 0;
    return pe_pe_validate(*out, err);
}

/* tokenizer_config.json's chat_template (a string, or the "default" of a
 * list of named templates), or --chat-template. */
static void pick_chat(pv_server_t *srv, const char *dir, const char *flag)
{
    char path[4096];
    json_t *cfg = NULL;
    const char *t = NULL;
    if (!strcmp(flag, "auto")) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        cfg = json_load_file(path, 0, NULL);
        const json_t *ct = json_object_get(cfg, "chat_template"), *e;
        size_t i;
        if (json_is_string(ct))
            t = json_string_value(ct);
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && !strcmp(name, "default"))
                t = json_string_value(json_object_get(e, "template"));
        }
        srv->chat = pv_chat_detect(t);
    } else {
        srv->chat = !strcmp(flag, "chatml") ? PV_CHAT_CHATML
                    : !strcmp(flag, "llama3") ? PV_CHAT_LLAMA3 : PV_CHAT_PLAIN;
    }
    srv->chat_eot = srv->chat == PV_CHAT_PLAIN ? -1 : pe_tok_id(srv->tok, pv_chat_eot(srv->chat));
    srv->chat_bos = srv->chat == PV_CHAT_LLAMA3;
    pb_info("chat template: %s%s", pv_chat_name(srv->chat),
            t && srv->chat == PV_CHAT_PLAIN ? " (the checkpoint's template is not a known form)" : "");
    json_decref(cfg);
}

typedef struct app {
    pv_server_t srv;
    uv_signal_t sigint, sigterm;
} app_t;

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *a = s->data;
    pb_info("signal %d: shutting down", signum);
    pb_http_stop(a->srv.http);
    a->srv.http = NULL;
    pv_batch_stop(&a->srv);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

int main(int argc, char **argv)
{
    static app_t app;
    pv_server_t *srv = &app.srv;
    opts_t o;
    pb_err_t err = {{0}, {0}};
    json_t *pe = NULL;
    char dirbuf[4096];
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    pb_log_init_env("serve");
    signal(SIGPIPE, SIG_IGN);
    int64_t t0 = pb_now_us();
    rc = pe_ckpt_open(o.model, &srv->ck, &err);
    rc = rc ? rc : pe_tok_open_dir(o.model, &srv->tok, &err);
    rc = rc ? rc : build_pe(&o, srv->ck, &pe, &err);
    rc = rc ? rc : pe_model_open(srv->ck, pe, o.threads, &srv->model, &err);
    if (rc) {
        fprintf(stderr, "posbench-serve: %s: %s\n", o.model, err.msg[0] ? err.msg : pb_strerror(rc));
        rc = 1;
        goto out;
    }
    pe_model_dims(srv->model, &srv->dims);
    snprintf(dirbuf, sizeof dirbuf, "%s", o.model);
    while (strlen(dirbuf) > 1 && dirbuf[strlen(dirbuf) - 1] == '/')
        dirbuf[strlen(dirbuf) - 1] = '\0';
    srv->name = o.name ? o.name : basename(dirbuf);
    srv->ctx = o.ctx ? o.ctx : srv->dims.max_pos > 0 ? srv->dims.max_pos : 4096;
    srv->pool = o.pool;
    srv->max_batch = o.max_batch;
    srv->max_queue = o.max_queue;
    srv->started = (int64_t)time(NULL);
    pick_chat(srv, o.model, o.chat);
    pb_info("model %s loaded in %.1f ms (%d layers, d_model %d, vocab %d, context %d)", o.model,
            (double)(pb_now_us() - t0) / 1e3, srv->dims.n_layers, srv->dims.d_model,
            srv->dims.vocab, srv->ctx);

    srv->loop = uv_default_loop();
    pthread_mutex_init(&srv->mx, NULL);
    pthread_cond_init(&srv->cv, NULL);
    uv_async_init(srv->loop, &srv->wake, pv__on_wake);
    srv->wake.data = srv;
    pb_http_limits_t lim = {.max_body_bytes = o.max_body, .error_body = pv_http_error_body,
                            .idle_timeout_ms = 60000};
    rc = pb_http_start(srv->loop, o.host, o.port, &lim, pv_api_handle, srv, &srv->http);
    if (rc == 0 && (rc = pv_batch_start(srv)) != 0)
        pb_http_stop(srv->http);
    if (rc) {
        fprintf(stderr, "posbench-serve: cannot listen on %s:%d: %s\n", o.host, o.port,
                pb_strerror(rc));
        uv_close((uv_handle_t *)&srv->wake, NULL);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        rc = 1;
        goto out;
    }
    uv_signal_init(srv->loop, &app.sigint);
    uv_signal_init(srv->loop, &app.sigterm);
    app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    /* Tests and scripts read this line to learn the port. */
    printf("posbench-serve listening on http://%s:%d/ model %s\n", o.host,
           pb_http_port(srv->http), srv->name);
    fflush(stdout);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    pv_batch_join(srv);
    uv_loop_close(srv->loop);
    pthread_mutex_destroy(&srv->mx);
    pthread_cond_destroy(&srv->cv);
    pb_info("stopped");
    rc = 0;
out:
    json_decref(pe);
    pe_model_close(srv->model);
    pe_tok_free(srv->tok);
    pe_ckpt_close(srv->ck);
    return rc;
}
