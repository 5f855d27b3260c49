/* posbench-coordinator: one libuv loop serving the HTTP API and web/, the
 * ZeroMQ broker for workers, the scheduler and schedules, over the SQLite
 * store. Flags as ARCHITECTURE.md section 6. */
#include "config.h"

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "coordinator/coord.h"
#include "coordinator/cron.h"
#include "coordinator/detect.h"
#include "coordinator/webhook.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: posbench-coordinator [options]\n"
            "\n"
            "Runs the posbench coordinator: HTTP API + dashboard, ZeroMQ broker for workers,\n"
            "scheduler and schedules, over a SQLite database.\n"
            "\n"
            "  --listen HOST:PORT   HTTP API and dashboard (default 127.0.0.1:8080; port 0 = any)\n"
            "  --broker ENDPOINT    ZeroMQ endpoint workers connect to (default tcp://127.0.0.1:5555)\n"
            "  --db PATH            SQLite database (default ./posbench.db)\n"
            "  --web DIR            static dashboard files (default: the installed web/)\n"
            "  --chartjs FILE       Chart.js served at /vendor/chart.js (default: configure's,\n"
            "                       %s)\n"
            "  --heartbeat-ms N     heartbeat interval (default 1000; a worker is dead after 5)\n"
            "  --max-body BYTES     request body limit (default 8388608)\n"
            "  --max-dataset BYTES  dataset upload limit (default 268435456 = 256 MiB)\n"
            "  --scan-cron EXPR     when the nightly change-point pass runs over series with\n"
            "                       new points (default \"30 4 * * *\"; \"never\" to disable)\n"
            "  --webhook-attempts N tries per webhook delivery before it is marked failed\n"
            "                       (default 8)\n"
            "  --webhook-backoff S  first retry delay in seconds, doubled per try up to 300\n"
            "                       (default 5)\n"
            "  --log-level L        debug, info, warn or error (default info; or PB_LOG)\n"
            "  --version            print the version\n"
            "  -h, --help           this help\n",
            PB_CHARTJS[0] ? PB_CHARTJS : "none");
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* web/ next to the binary, in the source tree it was built from, or installed. */
static void find_web_root(char *out, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char index[PATH_MAX + 16];
            snprintf(out, n, "%.4000s/web", exe);
            snprintf(index, sizeof index, "%s/index.html", out);
            if (access(index, R_OK) == 0)
                return;
        }
    }
    snprintf(out, n, "%s/web", PB_SRCDIR);
    if (is_dir(out))
        return;
    snprintf(out, n, "%s/web", PB_DATADIR);
}

static int parse_args(int argc, char **argv, pb_coord_config_t *cfg)
{
    enum { O_LISTEN = 1000, O_BROKER, O_DB, O_WEB, O_HB, O_MAXBODY, O_LOG, O_VERSION,
           O_MAXDATASET, O_CHARTJS, O_SCANCRON, O_HOOKTRIES, O_HOOKBACKOFF };
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN}, {"broker", required_argument, 0, O_BROKER},
        {"db", required_argument, 0, O_DB},         {"web", required_argument, 0, O_WEB},
        {"heartbeat-ms", required_argument, 0, O_HB}, {"max-body", required_argument, 0, O_MAXBODY},
        {"log-level", required_argument, 0, O_LOG}, {"version", no_argument, 0, O_VERSION},
        {"max-dataset", required_argument, 0, O_MAXDATASET},
        {"chartjs", required_argument, 0, O_CHARTJS},
        {"scan-cron", required_argument, 0, O_SCANCRON},
        {"webhook-attempts", required_argument, 0, O_HOOKTRIES},
        {"webhook-backoff", required_argument, 0, O_HOOKBACKOFF},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    const char *listen = "127.0.0.1:8080";
    snprintf(cfg->broker, sizeof cfg->broker, "tcp://127.0.0.1:5555");
    snprintf(cfg->db_path, sizeof cfg->db_path, "./posbench.db");
    snprintf(cfg->chartjs, sizeof cfg->chartjs, "%s", PB_CHARTJS);
    cfg->heartbeat_ms = 1000;
    snprintf(cfg->scan_cron, sizeof cfg->scan_cron, "30 4 * * *");
    cfg->webhook_attempts = 8;
    cfg->webhook_backoff_s = 5;
    cfg->http_limits.max_body_bytes = 8u << 20;
    cfg->http_limits.max_header_bytes = 16u << 10;
    cfg->http_limits.idle_timeout_ms = 30000;
    cfg->http_limits.max_connections = 1024;
    cfg->http_limits.upload_prefix = "/api/v1/datasets";
    cfg->http_limits.max_upload_bytes = (size_t)256 << 20;
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_LISTEN:
            listen = optarg;
            break;
        case O_BROKER:
            snprintf(cfg->broker, sizeof cfg->broker, "%s", optarg);
            break;
        case O_DB:
            snprintf(cfg->db_path, sizeof cfg->db_path, "%s", optarg);
            break;
        case O_WEB:
            snprintf(cfg->web_root, sizeof cfg->web_root, "%s", optarg);
            break;
        case O_CHARTJS:
            snprintf(cfg->chartjs, sizeof cfg->chartjs, "%s", optarg);
            break;
        case O_HB:
            cfg->heartbeat_ms = (int)strtol(optarg, &end, 10);
            if (*end || cfg->heartbeat_ms < 10 || cfg->heartbeat_ms > 60000) {
                fprintf(stderr, "posbench-coordinator: --heartbeat-ms must be 10..60000\n");
                return 2;
            }
            break;
        case O_MAXBODY: {
            long long v = strtoll(optarg, &end, 10);
            if (*end || v < 1024 || v > (1LL << 32)) {
                fprintf(stderr, "posbench-coordinator: --max-body must be 1024..4294967296\n");
                return 2;
            }
            cfg->http_limits.max_body_bytes = (size_t)v;
            break;
        }
        case O_MAXDATASET: {
            long long v = strtoll(optarg, &end, 10);
            if (*end || v < 1024 || v > (1LL << 32)) {
                fprintf(stderr, "posbench-coordinator: --max-dataset must be 1024..4294967296\n");
                return 2;
            }
            cfg->http_limits.max_upload_bytes = (size_t)v;
            break;
        }
        case O_SCANCRON: {
            pb_cron_t cr;
            pb_err_t e = {0};
            if (strcmp(optarg, "never") == 0) {
                cfg->scan_cron[0] = '\0';
                break;
            }
            if (strlen(optarg) >= sizeof cfg->scan_cron || pb_cron_parse(optarg, &cr, &e)) {
                fprintf(stderr, "posbench-coordinator: --scan-cron: %s\n",
                        e.msg[0] ? e.msg : "too long");
                return 2;
            }
            snprintf(cfg->scan_cron, sizeof cfg->scan_cron, "%s", optarg);
            break;
        }
        case O_HOOKTRIES:
            cfg->webhook_attempts = (int)strtol(optarg, &end, 10);
            if (*end || cfg->webhook_attempts < 1 || cfg->webhook_attempts > 100) {
                fprintf(stderr, "posbench-coordinator: --webhook-attempts must be 1..100\n");
                return 2;
            }
            break;
        case O_HOOKBACKOFF:
            cfg->webhook_backoff_s = strtod(optarg, &end);
            if (*end || !(cfg->webhook_backoff_s >= 0.01 && cfg->webhook_backoff_s <= 300)) {
                fprintf(stderr, "posbench-coordinator: --webhook-backoff must be 0.01..300\n");
                return 2;
            }
            break;
        case O_LOG:
            if (strcmp(optarg, "debug") == 0)
                pb_log_set_level(PB_LOG_DEBUG);
            else if (strcmp(optarg, "info") == 0)
                pb_log_set_level(PB_LOG_INFO);
            else if (strcmp(optarg, "warn") == 0)
                pb_log_set_level(PB_LOG_WARN);
            else if (strcmp(optarg, "error") == 0)
                pb_log_set_level(PB_LOG_ERROR);
            else {
                fprintf(stderr, "posbench-coordinator: unknown log level %s\n", optarg);
                return 2;
            }
            break;
        case O_VERSION:
            printf("posbench-coordinator %s\n", PACKAGE_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "posbench-coordinator: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (pb_parse_hostport(listen, cfg->listen_host, sizeof cfg->listen_host, &cfg->listen_port)) {
        fprintf(stderr, "posbench-coordinator: --listen wants HOST:PORT, got %s\n", listen);
        return 2;
    }
    if (strncmp(cfg->broker, "tcp://", 6) != 0 && strncmp(cfg->broker, "ipc://", 6) != 0) {
        fprintf(stderr, "posbench-coordinator: --broker wants tcp://HOST:PORT or ipc://PATH\n");
        return 2;
    }
    if (cfg->web_root[0] == '\0')
        find_web_root(cfg->web_root, sizeof cfg->web_root);
    /* Not fatal: only the dashboard's charts need it. */
    if (cfg->chartjs[0] == '\0' || access(cfg->chartjs, R_OK) != 0)
        pb_warn("Chart.js not found at '%s': /vendor/chart.js answers 404 and the dashboard "
                "draws no charts (install libjs-chart.js or pass --chartjs FILE)",
                cfg->chartjs);
    return 0;
}

/* Series per tick of the nightly change-point pass (about 0.1 s). */
#define PB_SCAN_SLICE 250

static void on_tick(uv_timer_t *t)
{
    pb_coord_t *c = t->data;
    pb_broker_tick(c);
    pb_api_fire_schedules(c);
    /* Results first: a few jobs per tick keeps the loop responsive. */
    if (!c->in_txn)
        pb_detect_ingest(c, 4);
    if (c->next_scan_at > 0 && pb_wall_time() >= c->next_scan_at) {
        pb_cron_t cr;
        c->scan_running = 1;
        c->next_scan_at = pb_cron_parse(c->cfg.scan_cron, &cr, NULL) == 0
                              ? pb_cron_next(&cr, pb_wall_time())
                              : 0;
    }
    if (c->scan_running && !c->in_txn) {
        json_t *sum = NULL;
        if (pb_detect_scan(c, 0, PB_SCAN_SLICE, &sum) != 0 ||
            json_integer_value(json_object_get(sum, "series_scanned")) < PB_SCAN_SLICE)
            c->scan_running = 0;
        json_decref(sum);
    }
    pb_webhook_tick(c);
    double now = pb_wall_time();
    if (now - c->rate_window_start >= 5.0) {
        c->results_per_s = (double)(c->results_total - c->rate_window_results) /
                           (now - c->rate_window_start);
        c->rate_window_start = now;
        c->rate_window_results = c->results_total;
    }
}

static void on_close_noop(uv_handle_t *h) { (void)h; }

static void on_signal(uv_signal_t *s, int signum)
{
    pb_coord_t *c = s->data;
    pb_info("signal %d: shutting down", signum);
    pb_http_stop(c->http);
    c->http = NULL;
    pb_broker_stop(c);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, on_close_noop);
    uv_close((uv_handle_t *)&c->sigint, on_close_noop);
    uv_close((uv_handle_t *)&c->sigterm, on_close_noop);
}

int main(int argc, char **argv)
{
    pb_log_init_env("coordinator");
    signal(SIGPIPE, SIG_IGN);
    pb_coord_t c;
    memset(&c, 0, sizeof c);
    int rc = parse_args(argc, argv, &c.cfg);
    if (rc)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        pb_error("cannot initialise libcurl (webhooks)");
        return 1;
    }
    c.loop = uv_default_loop();
    if (c.cfg.scan_cron[0]) {
        pb_cron_t cr;
        if (pb_cron_parse(c.cfg.scan_cron, &cr, NULL) == 0)
            c.next_scan_at = pb_cron_next(&cr, pb_wall_time());
    }
    c.started_at = c.rate_window_start = pb_wall_time();
    pb_err_t err = {0};
    rc = pdb_open(c.cfg.db_path, &c.db, &err);
    if (rc) {
        pb_error("cannot open database %s: %s", c.cfg.db_path, err.msg[0] ? err.msg : pb_strerror(rc));
        return 1;
    }
    int recovered = 0;
    if (pdb_recover(c.db, &recovered) == 0 && recovered)
        pb_info("re-queued %d task(s) leased before the restart", recovered);
    pdb_workers_reset(c.db);
    if (pb_sched_new(&c.sched) || pb_broker_load_queue(&c, 0)) {
        pb_error("cannot load the run queue");
        return 1;
    }
    if (pb_broker_start(&c)) {
        pb_error("cannot start the broker on %s", c.cfg.broker);
        return 1;
    }
    rc = pb_http_start(c.loop, c.cfg.listen_host, c.cfg.listen_port, &c.cfg.http_limits,
                       pb_api_handle, &c, &c.http);
    if (rc) {
        pb_error("cannot listen on %s:%d: %s", c.cfg.listen_host, c.cfg.listen_port,
                 rc < -16 ? uv_strerror(rc) : pb_strerror(rc));
        return 1;
    }
    uv_timer_init(c.loop, &c.tick);
    c.tick.data = &c;
    uv_timer_start(&c.tick, on_tick, (uint64_t)c.cfg.heartbeat_ms, (uint64_t)c.cfg.heartbeat_ms);
    uv_signal_init(c.loop, &c.sigint);
    uv_signal_init(c.loop, &c.sigterm);
    c.sigint.data = c.sigterm.data = &c;
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    /* Tests and scripts read this line to learn the ports. */
    pb_info("listening on http://%s:%d/ broker %s db %s web %s queue %zu", c.cfg.listen_host,
            pb_http_port(c.http), c.cfg.broker, c.cfg.db_path, c.cfg.web_root,
            pb_sched_depth(c.sched));
    printf("posbench-coordinator listening on http://%s:%d/ broker %s\n", c.cfg.listen_host,
           pb_http_port(c.http), c.cfg.broker);
    fflush(stdout);
    uv_run(c.loop, UV_RUN_DEFAULT);
    pdb_close(c.db);
    pb_sched_free(c.sched);
    uv_loop_close(c.loop);
    curl_global_cleanup();
    pb_info("stopped");
    return 0;
}
