/* `posbench up`: a local cluster in the foreground. Starts the coordinator
 * and N workers as children, waits for /healthz, optionally runs one job,
 * and stops everything together on Ctrl-C / SIGTERM or when a child dies.
 * Signals are blocked and taken with sigtimedwait so no handler races. */
#include "cli/cli.h"

#include "common/util.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEALTH_TIMEOUT_MS 15000
#define STOP_GRACE_MS 5000
#define MAX_WORKERS 256

typedef struct child {
    pid_t pid; /* 0 once reaped */
    char name[64];
} child_t;

typedef struct up {
    child_t kids[MAX_WORKERS + 1];
    size_t n;
    sigset_t mask;   /* SIGINT, SIGTERM, SIGCHLD: blocked, taken synchronously */
    sigset_t old;    /* the mask children get back */
    int stopping;    /* exits are expected from here on */
    int stop;        /* SIGINT or SIGTERM arrived */
    int died;        /* a child exited on its own */
} up_t;

#define MAX_SUBMIT 16

typedef struct up_opts {
    int workers, slots, once;
    const char *listen, *broker, *db, *web;
    const char *submit[MAX_SUBMIT];
    int n_submit;
} up_opts_t;

static void on_sigchld(int sig) { (void)sig; }

/* Where posbench-coordinator/-worker live: next to this executable, else
 * the configured bindir, else whatever PATH finds. */
static void find_binary(const char *name, char *out, size_t n)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        snprintf(out, n, "%s/%s", dirname(self), name);
        if (access(out, X_OK) == 0)
            return;
    }
#ifdef PB_BINDIR
    snprintf(out, n, "%s/%s", PB_BINDIR, name);
    if (access(out, X_OK) == 0)
        return;
#endif
    snprintf(out, n, "%s", name);
}

static void describe_exit(const child_t *k, int status, const char *how)
{
    if (WIFEXITED(status))
        fprintf(stderr, "%s: %s (pid %d) exited with status %d\n", how, k->name, (int)k->pid,
                WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "%s: %s (pid %d) was killed by signal %d (%s)\n", how, k->name,
                (int)k->pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
}

/* Collect every exited child; an exit before we asked is reported. */
static void reap(up_t *u)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < u->n; i++) {
            if (u->kids[i].pid != pid)
                continue;
            if (!u->stopping && !u->stop) {
                describe_exit(&u->kids[i], status, "error");
                u->died = 1;
            }
            u->kids[i].pid = 0;
        }
    }
}

static void take_signal(up_t *u, int sig)
{
    if (sig == SIGINT || sig == SIGTERM)
        u->stop = 1;
}

/* Wait up to ms for a signal. Pending stop signals are taken before children
 * are reaped, so a Ctrl-C that also hit the children is not mistaken for a
 * crash. Returns 0 to go on, PB_CLI_FAIL once stopping or a child died. */
static int up_poll(up_t *u, int ms)
{
    int64_t deadline = pb_now_ms() + ms;
    for (;;) {
        static const struct timespec zero = {0, 0};
        int sig;
        while ((sig = sigtimedwait(&u->mask, NULL, &zero)) > 0)
            take_signal(u, sig);
        reap(u);
        if (u->stop || u->died)
            return PB_CLI_FAIL;
        int64_t left = deadline - pb_now_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
        sig = sigtimedwait(&u->mask, NULL, &ts);
        if (sig > 0)
            take_signal(u, sig);
    }
}

static int up_sleep(void *arg, int ms) { return up_poll(arg, ms); }

static int spawn(up_t *u, const char *name, char *const argv[])
{
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "error: cannot start %s: %s\n", name, strerror(errno));
        return PB_EIO;
    }
    if (pid == 0) {
        /* Die with `up` even if it is SIGKILLed; closes the fork race too. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &u->old, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "error: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    child_t *k = &u->kids[u->n++];
    k->pid = pid;
    snprintf(k->name, sizeof k->name, "%s", name);
    return 0;
}

static int alive(const up_t *u)
{
    int n = 0;
    for (size_t i = 0; i < u->n; i++)
        n += u->kids[i].pid != 0;
    return n;
}

/* SIGTERM everyone, wait up to 5 s, then SIGKILL whoever is left. */
static void stop_all(up_t *u)
{
    u->stopping = 1;
    for (size_t i = 0; i < u->n; i++)
        if (u->kids[i].pid)
            kill(u->kids[i].pid, SIGTERM);
    int64_t deadline = pb_now_ms() + STOP_GRACE_MS;
    while (alive(u) && pb_now_ms() < deadline) {
        int64_t left = deadline - pb_now_ms();
        struct timespec ts = {0, (long)(left < 100 ? left : 100) * 1000000L};
        sigtimedwait(&u->mask, NULL, &ts);
        reap(u);
    }
    for (size_t i = 0; i < u->n; i++) {
        if (u->kids[i].pid == 0)
            continue;
        fprintf(stderr, "%s (pid %d) did not stop in %d s; killing it\n", u->kids[i].name,
                (int)u->kids[i].pid, STOP_GRACE_MS / 1000);
        kill(u->kids[i].pid, SIGKILL);
        waitpid(u->kids[i].pid, NULL, 0);
        u->kids[i].pid = 0;
    }
}

/* Poll /healthz until it answers, a child dies, or 15 s pass. */
static int wait_healthy(up_t *u, pb_cli_t *c)
{
    int64_t deadline = pb_now_ms() + HEALTH_TIMEOUT_MS;
    c->quiet = 1;
    c->timeout_ms = 2000;
    int rc = PB_CLI_FAIL;
    while (pb_now_ms() < deadline) {
        json_t *r = NULL;
        if (pb_cli_get(c, "/healthz", &r) == 0) {
            json_decref(r);
            rc = PB_CLI_OK;
            break;
        }
        if (up_poll(u, 100))
            break;
    }
    c->quiet = 0;
    c->timeout_ms = 0;
    if (rc && !u->stop && !u->died)
        fprintf(stderr, "error: the coordinator did not answer %s/healthz within %d s\n", c->url,
                HEALTH_TIMEOUT_MS / 1000);
    return rc;
}

/* Submit every job, follow each with progress, then show the leaderboard
 * of each suite they ran. */
static int run_jobs(up_t *u, pb_cli_t *c, const json_t *specs)
{
    int64_t ids[MAX_SUBMIT];
    size_t i, k, j;
    const json_t *spec, *run;
    int rc = PB_CLI_OK;
    json_array_foreach(specs, i, spec) {
        rc = pb_cli_submit_spec(c, spec, NULL, &ids[i]);
        if (rc)
            return rc;
        printf("submitted job %lld\n", (long long)ids[i]);
    }
    fflush(stdout);
    for (i = 0; i < json_array_size(specs); i++) {
        int wrc = pb_cli_wait_job(c, ids[i], up_sleep, u);
        if (u->stop || u->died)
            return wrc;
        if (wrc && rc == PB_CLI_OK)
            rc = wrc;
    }
    json_t *suites = json_array();
    json_array_foreach(specs, i, spec) {
        json_array_foreach(json_object_get(spec, "runs"), k, run) {
            const char *suite = pb_cli_jstr(run, "suite", NULL);
            int seen = suite == NULL;
            for (j = 0; j < json_array_size(suites) && !seen; j++)
                seen = strcmp(json_string_value(json_array_get(suites, j)), suite) == 0;
            if (!seen)
                json_array_append_new(suites, json_string(suite));
        }
    }
    for (j = 0; j < json_array_size(suites); j++) {
        const char *suite = json_string_value(json_array_get(suites, j));
        printf("\nleaderboard: %s\n", suite);
        int lrc = pb_cli_print_leaderboard(c, suite, NULL, 0);
        if (lrc && rc == PB_CLI_OK)
            rc = lrc;
    }
    json_decref(suites);
    fflush(stdout);
    return rc;
}

static int parse_options(int argc, char **argv, up_opts_t *o)
{
    static const struct option opts[] = {
        {"workers", required_argument, NULL, 'w'}, {"listen", required_argument, NULL, 'l'},
        {"broker", required_argument, NULL, 'b'},  {"db", required_argument, NULL, 'd'},
        {"slots", required_argument, NULL, 's'},   {"web", required_argument, NULL, 'W'},
        {"submit", required_argument, NULL, 'S'},  {"once", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int ch;
    int64_t x;
    *o = (up_opts_t){.workers = 1, .slots = 1, .listen = "127.0.0.1:8080",
                     .broker = "tcp://127.0.0.1:5555", .db = "./posbench.db"};
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'w':
            if (pb_cli_parse_int(optarg, 0, MAX_WORKERS, &x))
                return pb_cli_usage_error("up", "--workers must be 0..%d", MAX_WORKERS);
            o->workers = (int)x;
            break;
        case 's':
            if (pb_cli_parse_int(optarg, 1, 1024, &x))
                return pb_cli_usage_error("up", "--slots must be 1..1024");
            o->slots = (int)x;
            break;
        case 'l': o->listen = optarg; break;
        case 'b': o->broker = optarg; break;
        case 'd': o->db = optarg; break;
        case 'W': o->web = optarg; break;
        case 'S':
            if (o->n_submit == MAX_SUBMIT)
                return pb_cli_usage_error("up", "at most %d --submit files", MAX_SUBMIT);
            o->submit[o->n_submit++] = optarg;
            break;
        case 'o': o->once = 1; break;
        case 'h': pb_cli_usage("up", stdout); return -1;
        default: return pb_cli_bad_option("up");
        }
    }
    if (optind != argc)
        return pb_cli_usage_error("up", "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* A wildcard bind address is reached through loopback. */
static const char *reachable(const char *host)
{
    if (*host == '\0' || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
        strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0)
        return "127.0.0.1";
    return host;
}

/* Start the coordinator, wait for it, start the workers, run the job, then
 * wait for a stop. Returns an exit status; the caller stops the children. */
static int up_run(up_t *u, pb_cli_t *c, const up_opts_t *o, const char *connect,
                  const json_t *specs)
{
    char coord[PATH_MAX], worker[PATH_MAX];
    find_binary("posbench-coordinator", coord, sizeof coord);
    find_binary("posbench-worker", worker, sizeof worker);

    char *cargv[] = {coord, "--listen", (char *)o->listen, "--broker", (char *)o->broker,
                     "--db", (char *)o->db, o->web ? "--web" : NULL, (char *)o->web, NULL};
    if (spawn(u, "posbench-coordinator", cargv) || wait_healthy(u, c))
        return PB_CLI_FAIL;
    for (int i = 1; i <= o->workers; i++) {
        char name[32], slots[16], label[64];
        snprintf(name, sizeof name, "local-%d", i);
        snprintf(slots, sizeof slots, "%d", o->slots);
        snprintf(label, sizeof label, "posbench-worker %s", name);
        char *wargv[] = {worker, "--connect", (char *)connect, "--slots", slots,
                         "--name", name, NULL};
        if (spawn(u, label, wargv))
            return PB_CLI_FAIL;
    }
    printf("posbench is up: dashboard %s/\n", c->url);
    printf("API: %s/api/v1/ (%d worker%s, broker %s)\n", c->url, o->workers,
           o->workers == 1 ? "" : "s", connect);
    fflush(stdout);

    int rc = json_array_size(specs) ? run_jobs(u, c, specs) : PB_CLI_OK;
    if (o->once) {
        up_poll(u, 0); /* pick up a death the job's failure may hide */
        if (json_array_size(specs) && !u->stop && !u->died)
            printf("\ndashboard: %s/ (stopping now because of --once; `posbench up --db %s`\n"
                   "serves these results again)\n", c->url, o->db);
        return rc;
    }
    if (!u->stop && !u->died) {
        if (json_array_size(specs))
            printf("\ndashboard: %s/\n", c->url);
        fflush(stdout);
        fprintf(stderr, "running; Ctrl-C stops the cluster\n");
    }
    while (up_poll(u, 1000) == 0)
        ;
    return rc;
}

int pb_cli_cmd_up(pb_cli_t *c, int argc, char **argv)
{
    up_opts_t o;
    up_t *u = NULL;
    json_t *specs = json_array();
    char host[256], bhost[256], url[300], connect[300];
    int port, bport, rc = parse_options(argc, argv, &o);

    if (rc)
        return rc < 0 ? PB_CLI_OK : rc;
    if (pb_parse_hostport(o.listen, host, sizeof host, &port) || port == 0)
        return pb_cli_usage_error("up", "--listen must be HOST:PORT");
    if (strncmp(o.broker, "tcp://", 6) != 0 ||
        pb_parse_hostport(o.broker + 6, bhost, sizeof bhost, &bport) || bport == 0)
        return pb_cli_usage_error("up", "--broker must be tcp://HOST:PORT");
    for (int i = 0; i < o.n_submit; i++) {
        json_t *spec = NULL;
        rc = pb_cli_read_spec(o.submit[i], &spec);
        if (rc)
            goto out;
        json_array_append_new(specs, spec);
    }
    snprintf(url, sizeof url, "http://%s:%d", reachable(host), port);
    snprintf(connect, sizeof connect, "tcp://%s:%d", reachable(bhost), bport);
    pb_cli_close(c);
    u = calloc(1, sizeof *u);
    if (u == NULL || pb_cli_init(c, url)) {
        fprintf(stderr, "error: cannot set up a client for %s\n", url);
        rc = PB_CLI_FAIL;
        goto out;
    }

    /* Children stay in our process group, so a terminal's Ctrl-C reaches
     * them too; we still SIGTERM them for the non-terminal case. */
    sigemptyset(&u->mask);
    sigaddset(&u->mask, SIGINT);
    sigaddset(&u->mask, SIGTERM);
    sigaddset(&u->mask, SIGCHLD);
    struct sigaction sa = {.sa_handler = on_sigchld};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigprocmask(SIG_BLOCK, &u->mask, &u->old);

    rc = up_run(u, c, &o, connect, specs);
    /* A death is a failure; a stop signal, even while starting, is not. */
    if (u->died)
        rc = PB_CLI_FAIL;
    else if (u->stop)
        rc = PB_CLI_OK;
    if (alive(u))
        fprintf(stderr, "stopping %d process%s\n", alive(u), alive(u) == 1 ? "" : "es");
    stop_all(u);
    /* The mask stays: a second Ctrl-C still pending must not kill us now. */
out:
    free(u);
    json_decref(specs);
    return rc;
}
