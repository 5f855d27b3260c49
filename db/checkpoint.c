/* Background WAL checkpoints: a thread with its own connection copies the
 * WAL into the database file every half second (PASSIVE: it never blocks
 * the writer), so the coordinator's loop thread stops paying for the copy
 * and the fsync inside its commits. Only a checkpoint runs here: the loop
 * thread stays the one writer of data. */
#include "db/store_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"

#define CKPT_INTERVAL_MS 500

struct pdb_ckpt {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int quit;
};

static void *ckpt_main(void *arg)
{
    pdb_ckpt_t *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CKPT_INTERVAL_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
        if (c->quit)
            break;
        pthread_mutex_unlock(&c->mu);
        int src = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (src != SQLITE_OK && src != SQLITE_BUSY && src != SQLITE_LOCKED)
            pb_warn("background checkpoint: %s", sqlite3_errmsg(c->db));
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int pdb__ckpt_start(const char *path, pdb_ckpt_t **out)
{
    *out = NULL;
    pdb_ckpt_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return PB_ENOMEM;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return PB_EDB;
    }
    sqlite3_busy_timeout(c->db, 1000);
    /* A connection learns the database is in WAL mode from its first read;
     * until then a checkpoint is a silent no-op. */
    if (sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return PB_EDB;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cond);
        sqlite3_close(c->db);
        free(c);
        return PB_ENOMEM;
    }
    *out = c;
    return 0;
}

void pdb__ckpt_stop(pdb_ckpt_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    sqlite3_close(c->db);
    free(c);
}
