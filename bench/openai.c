/* bench_openai: requests per second one worker's `openai` backend sustains
 * at concurrency 1, 16 and 64, and its CPU time per request, against an
 * instant-answer server (bench_instant_server, started here on a free port
 * unless --url names one). Calls the backend as the runner does, in batches
 * of four times the concurrency; CPU is this process's getrusage (the
 * server is another process). Rows: no cache; with the response cache
 * (every answer a miss, then stored); and a second pass of all hits.
 * usage: bench_openai [--url URL] [--requests N] [--conc 1,16,64] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/rng.h"
#include "common/util.h"
#include "worker/backend.h"
#include "worker/openai.h"

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           u.ru_stime.tv_usec / 1e6;
}

typedef struct row {
    double rps, cpu_us, wall_s;
    size_t errors;
    uint64_t attempts;
} row_t;

/* n requests through one backend at concurrency conc. */
static int run(const char *url, int conc, int cache, size_t n, ps_item_t *items, row_t *out)
{
    const pb_backend_ops_t *ops = pb_backend_find("openai");
    char spec[1200];
    pb_err_t err = {{0}, {0}};
    pb_backend_t *be = NULL;
    snprintf(spec, sizeof spec,
             "{\"backend\": \"openai\", \"base_url\": \"%s\", \"model\": \"m\","
             " \"max_concurrency\": %d, \"cache\": %s, \"timeout_s\": 30}",
             url, conc, cache ? "true" : "false");
    json_t *m = json_loads(spec, 0, NULL);
    if (m == NULL || ops == NULL || ops->open(m, 1, &be, &err)) {
        fprintf(stderr, "bench_openai: cannot open the backend: %s\n", err.msg);
        json_decref(m);
        return 1;
    }
    size_t batch = (size_t)conc * 4;
    pb_gen_req_t *reqs = calloc(batch, sizeof *reqs);
    memset(out, 0, sizeof *out);
    double c0 = cpu_s();
    int64_t t0 = pb_now_us();
    int rc = reqs ? 0 : 1;
    for (size_t lo = 0; rc == 0 && lo < n; lo += batch) {
        size_t k = n - lo < batch ? n - lo : batch;
        for (size_t i = 0; i < k; i++)
            reqs[i] = (pb_gen_req_t){.item = &items[lo + i], .max_tokens = 8};
        if (ops->generate(be, reqs, k, &err)) {
            fprintf(stderr, "bench_openai: %s\n", err.msg);
            rc = 1;
        }
        for (size_t i = 0; i < k; i++) {
            if (reqs[i].error && out->errors++ == 0)
                fprintf(stderr, "bench_openai: first error: %s\n", reqs[i].error);
            free(reqs[i].text);
            free(reqs[i].error);
        }
    }
    out->wall_s = (double)(pb_now_us() - t0) / 1e6;
    out->cpu_us = (cpu_s() - c0) * 1e6 / (double)n;
    out->rps = (double)n / out->wall_s;
    free(reqs);
    ops->close(be);
    json_decref(m);
    return rc;
}

static pid_t start_server(const char *argv0, int port)
{
    char path[4096], portarg[16];
    const char *slash = strrchr(argv0, '/');
    snprintf(path, sizeof path, "%.*sbench_instant_server", slash ? (int)(slash - argv0 + 1) : 0,
             argv0);
    snprintf(portarg, sizeof portarg, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execl(path, path, "--port", portarg, (char *)NULL);
        _exit(127);
    }
    usleep(200 * 1000);
    return pid;
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    char own_url[64], conc_list[128] = "1,16,64", cache_path[256];
    size_t n = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--requests") == 0)
            n = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--conc") == 0)
            snprintf(conc_list, sizeof conc_list, "%s", argv[i + 1]);
    }
    if (n == 0) {
        fprintf(stderr, "usage: bench_openai [--url URL] [--requests N] [--conc 1,16,64]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pid_t server = 0;
    if (url == NULL) {
        int port = 20000 + (int)(getpid() % 20000);
        server = start_server(argv[0], port);
        snprintf(own_url, sizeof own_url, "http://127.0.0.1:%d", port);
        url = own_url;
    }
    /* distinct prompts, so cached answers are one per request */
    ps_item_t *items = calloc(n, sizeof *items);
    for (size_t i = 0; items && i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, "%zu+%zu=", i, i * 7 % 1000);
        items[i].prompt = strdup(p);
        items[i].reference = strdup("0");
        items[i].prompt_hash = pb_hash_str(PB_HASH_INIT, p);
    }
    snprintf(cache_path, sizeof cache_path, "/tmp/bench_openai_%ld.sqlite", (long)getpid());
    printf("openai backend against %s, %zu requests per row, one client thread\n", url, n);
    printf("%-28s %11s %11s %12s %8s\n", "", "concurrency", "requests/s", "cpu us/req",
           "errors");
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(conc_list, ",", &save); tok && rc == 0;
         tok = strtok_r(NULL, ",", &save)) {
        int conc = atoi(tok);
        row_t r;
        if (conc < 1 || conc > PB_OAI_CONCURRENCY_MAX)
            continue;
        static const char *const names[] = {"no cache", "cache: all misses, stored",
                                            "cache: all hits"};
        unlink(cache_path);
        pb_oai_cache_configure(cache_path, (int64_t)1 << 30);
        for (int mode = 0; mode < 3 && rc == 0; mode++) {
            rc = run(url, conc, mode > 0, n, items, &r);
            printf("%-28s %11d %11.0f %12.1f %8zu\n", names[mode], conc, r.rps, r.cpu_us,
                   r.errors);
            fflush(stdout);
        }
        pb_oai_cache_close();
    }
    for (int k = 0; k < 3; k++) {
        char f[300];
        snprintf(f, sizeof f, "%s%s", cache_path, k == 0 ? "" : k == 1 ? "-wal" : "-shm");
        unlink(f);
    }
    for (size_t i = 0; items && i < n; i++)
        ps_item_clear(&items[i]);
    free(items);
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    curl_global_cleanup();
    return rc;
}
