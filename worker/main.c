/* posbench-worker: command line, signals and logging around the broker
 * session (worker/session.c). Exit status: 0 after SIGINT/SIGTERM, 1 when
 * the session fails, 2 for bad flags. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "worker/openai.h"
#include "worker/session.h"

#define NAME_MAX_LEN 128
#define RESPONSE_CACHE_MB 1024 /* default cap of the openai response cache */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: posbench-worker [options]\n"
            "  --connect tcp://HOST:PORT  coordinator broker endpoint (default tcp://127.0.0.1:5555)\n"
            "  --slots N                  tasks run at once, 1-%d (default 1)\n"
            "  --name NAME                worker name (default HOSTNAME-PID)\n"
            "  --device cpu|gpu           device advertised to the scheduler (default cpu)\n"
            "  --threads N                compute threads per task for backends (default 0: backend decides)\n"
            "  --heartbeat-ms MS          heartbeat interval (default 1000)\n"
            "  --resend-ms MS             resend interval for unacknowledged results (default %d)\n"
            "  --cache DIR                dataset cache (default $XDG_CACHE_HOME/posbench/datasets\n"
            "                             or /tmp/posbench-cache-UID)\n"
            "  --http URL                 coordinator's HTTP API for datasets (default: the URL\n"
            "                             the coordinator puts in each task)\n"
            "  --response-cache PATH      openai backend's response cache, an SQLite file (default\n"
            "                             $XDG_CACHE_HOME/posbench/responses.sqlite or\n"
            "                             /tmp/posbench-cache-UID/responses.sqlite)\n"
            "  --cache-max-mb N           cap on that cache, oldest answers evicted (default %d)\n"
            "  --no-cache                 no response cache: every request goes to the server\n"
            "  --log-level L              debug, info, warn or error (default info, or $PB_LOG)\n"
            "  --help                     this text\n",
            PB_SESSION_SLOTS_MAX, PB_SESSION_RESEND_MS, RESPONSE_CACHE_MB);
}

/* Whole-string integer in [lo, hi]; 0 or -1. */
static int parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "posbench-worker: %s must be an integer between %ld and %ld (got '%s')\n",
                flag, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_level(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    enum { OPT_CONNECT = 1, OPT_SLOTS, OPT_NAME, OPT_DEVICE, OPT_THREADS, OPT_HB, OPT_RESEND,
           OPT_LOG, OPT_HELP, OPT_CACHE, OPT_HTTP, OPT_RCACHE, OPT_RCACHE_MB, OPT_NO_CACHE };
    static const struct option opts[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"name", required_argument, NULL, OPT_NAME},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"heartbeat-ms", required_argument, NULL, OPT_HB},
        {"resend-ms", required_argument, NULL, OPT_RESEND},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"cache", required_argument, NULL, OPT_CACHE},
        {"http", required_argument, NULL, OPT_HTTP},
        {"response-cache", required_argument, NULL, OPT_RCACHE},
        {"cache-max-mb", required_argument, NULL, OPT_RCACHE_MB},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    pb_session_cfg_t cfg = {
        .endpoint = "tcp://127.0.0.1:5555",
        .name = NULL,
        .device = "cpu",
        .slots = 1,
        .threads = 0,
        .heartbeat_ms = 1000,
        .resend_ms = PB_SESSION_RESEND_MS,
    };
    char default_name[HOST_NAME_MAX + 32];
    int level = -1, c;
    const char *rcache = NULL;
    int rcache_mb = RESPONSE_CACHE_MB, no_cache = 0;
    char rcache_default[4096];

    pb_log_init_env("worker");
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case OPT_CONNECT:
            cfg.endpoint = optarg;
            break;
        case OPT_SLOTS:
            bad = parse_int("--slots", optarg, 1, PB_SESSION_SLOTS_MAX, &cfg.slots);
            break;
        case OPT_NAME:
            cfg.name = optarg;
            break;
        case OPT_DEVICE:
            cfg.device = optarg;
            break;
        case OPT_THREADS:
            bad = parse_int("--threads", optarg, 0, 4096, &cfg.threads);
            break;
        case OPT_HB:
            bad = parse_int("--heartbeat-ms", optarg, 10, 600000, &cfg.heartbeat_ms);
            break;
        case OPT_RESEND:
            bad = parse_int("--resend-ms", optarg, 10, 3600000, &cfg.resend_ms);
            break;
        case OPT_LOG:
            level = parse_level(optarg);
            if (level < 0) {
                fprintf(stderr, "posbench-worker: --log-level must be debug, info, warn or "
                                "error (got '%s')\n", optarg);
                bad = 1;
            }
            break;
        case OPT_CACHE:
            cfg.cache_dir = optarg;
            break;
        case OPT_HTTP:
            cfg.http_url = optarg;
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                fprintf(stderr, "posbench-worker: --http must look like http://HOST:PORT "
                                "(got '%s')\n", optarg);
                bad = 1;
            }
            break;
        case OPT_RCACHE:
            rcache = optarg;
            if (*optarg == '\0' || strlen(optarg) >= sizeof rcache_default) {
                fprintf(stderr, "posbench-worker: --response-cache needs a path\n");
                bad = 1;
            }
            break;
        case OPT_RCACHE_MB:
            bad = parse_int("--cache-max-mb", optarg, 1, 1 << 20, &rcache_mb);
            break;
        case OPT_NO_CACHE:
            no_cache = 1;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            if (optopt)
                fprintf(stderr, "posbench-worker: option %s needs a value\n",
                        argv[optind - 1]);
            else
                fprintf(stderr, "posbench-worker: unknown option %s\n", argv[optind - 1]);
            bad = 1;
            break;
        }
        if (bad) {
            fprintf(stderr, "try 'posbench-worker --help'\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "posbench-worker: unexpected argument '%s'\ntry 'posbench-worker --help'\n",
                argv[optind]);
        return 2;
    }
    if (strncmp(cfg.endpoint, "tcp://", 6) != 0 && strncmp(cfg.endpoint, "ipc://", 6) != 0) {
        fprintf(stderr, "posbench-worker: --connect must look like tcp://HOST:PORT (got '%s')\n",
                cfg.endpoint);
        return 2;
    }
    if (strcmp(cfg.device, "cpu") != 0 && strcmp(cfg.device, "gpu") != 0) {
        fprintf(stderr, "posbench-worker: --device must be cpu or gpu (got '%s')\n", cfg.device);
        return 2;
    }
    if (cfg.name && (cfg.name[0] == '\0' || strlen(cfg.name) > NAME_MAX_LEN)) {
        fprintf(stderr, "posbench-worker: --name must be 1-%d characters\n", NAME_MAX_LEN);
        return 2;
    }
    if (cfg.name == NULL) {
        char host[HOST_NAME_MAX + 1] = "worker";
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        snprintf(default_name, sizeof default_name, "%s-%ld", host, (long)getpid());
        cfg.name = default_name;
    }
    if (level >= 0)
        pb_log_set_level(level);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the poll must wake up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* before any thread exists: runner threads fetch datasets with libcurl */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        pb_error("cannot initialise libcurl");
        return 1;
    }
    if (rcache == NULL) {
        pb_oai_cache_default_path(rcache_default, sizeof rcache_default);
        rcache = rcache_default;
    }
    /* Opened by the first openai task only; before the runner threads exist. */
    if (pb_oai_cache_configure(no_cache ? NULL : rcache, (int64_t)rcache_mb << 20)) {
        pb_error("out of memory");
        return 1;
    }
    pb_session_t *s = NULL;
    int rc = pb_session_new(&cfg, &s);
    if (rc) {
        pb_error("cannot start the worker: %s", pb_strerror(rc));
        return 1;
    }
    rc = pb_session_run(s, &stop_flag);
    pb_session_free(s);
    pb_oai_cache_close();
    curl_global_cleanup();
    if (rc) {
        pb_error("worker stopped: %s", pb_strerror(rc));
        return 1;
    }
    pb_info("worker %s stopped", cfg.name);
    return 0;
}
