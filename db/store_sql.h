/* Every SQL statement the store runs, in one table: pdb_open prepares them
 * all once (persistent), the functions in store*.c bind, step and reset them.
 * Private to db/. Parameters are always bound, never spliced into the text. */
#ifndef PDB_STORE_SQL_H
#define PDB_STORE_SQL_H

/* Job columns shared by pdb_job_get and pdb_jobs_list (see job_object in
 * store_jobs.c); the task counters come last, in PDB_TS_* order. */
#define PDB_JOB_COLS                                                                  \
    "j.id, j.name, j.state, j.created_at, j.started_at, j.finished_at, j.priority, "  \
    "j.seed, m.spec, j.items_total, j.items_done, j.error, j.schedule_id, "           \
    "j.tasks_queued, j.tasks_leased, j.tasks_done, j.tasks_failed, j.tasks_cancelled"
#define PDB_JOB_COL_TASKS 13
#define PDB_JOB_FROM " FROM jobs j JOIN models m ON m.id = j.model_id "
#define PDB_SCHED_COLS                                                                \
    "id, name, cron, template, enabled, created_at, last_fired_at, next_fire_at, " \
    "last_job_id, webhook, detect"

#define PDB_STMTS(X)                                                                          \
    /* transactions: pdb_begin/commit/rollback, and the savepoint around every write */      \
    X(BEGIN, "BEGIN IMMEDIATE")                                                               \
    X(COMMIT, "COMMIT")                                                                       \
    X(ROLLBACK, "ROLLBACK")                                                                   \
    X(SP_BEGIN, "SAVEPOINT pdb_sp")                                                           \
    X(SP_RELEASE, "RELEASE pdb_sp")                                                           \
    X(SP_ROLLBACK, "ROLLBACK TO pdb_sp")                                                      \
    /* jobs */                                                                                \
    X(MODEL_INSERT, "INSERT INTO models(name, backend, spec, spec_hash) VALUES (?1, ?2, ?3, ?4) " \
                    "ON CONFLICT(spec_hash) DO NOTHING")                                      \
    X(MODEL_FIND, "SELECT id, spec FROM models WHERE spec_hash = ?1")                         \
    X(JOB_BY_IDEM, "SELECT id FROM jobs WHERE idempotency_key = ?1")                          \
    X(JOB_INSERT, "INSERT INTO jobs(name, model_id, spec, seed, priority, device, max_attempts, " \
                  "timeout_s, idempotency_key, schedule_id, items_total, created_at, state, "     \
                  "tasks_queued) "                                                                \
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'queued', ?13)")    \
    X(RUN_INSERT, "INSERT INTO runs(job_id, idx, suite, task, params, samples, version, "     \
                  "dataset) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")                         \
    X(TASK_INSERT, "INSERT INTO tasks(job_id, run_idx, bucket, item_lo, item_hi, max_attempts, " \
                   "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                          \
    /* once per job, over the tasks just inserted (the tasks_job index, in order) */       \
    X(BUCKETS_INIT, "INSERT INTO buckets(job_id, run_idx, bucket, task_lo, task_hi, "         \
                    "tasks_total, items_total) SELECT job_id, run_idx, bucket, min(id), "     \
                    "max(id), count(*), sum(item_hi - item_lo) FROM tasks WHERE job_id = ?1 " \
                    "GROUP BY run_idx, bucket")                                               \
    X(JOB_GET, "SELECT " PDB_JOB_COLS ", j.spec" PDB_JOB_FROM "WHERE j.id = ?1")              \
    /* ?2..?6 add to the task counters (PDB_TS_* order), ?7 to items_done */                 \
    X(JOB_TALLY, "UPDATE jobs SET tasks_queued = tasks_queued + ?2, "                         \
                 "tasks_leased = tasks_leased + ?3, tasks_done = tasks_done + ?4, "           \
                 "tasks_failed = tasks_failed + ?5, tasks_cancelled = tasks_cancelled + ?6, " \
                 "items_done = items_done + ?7 WHERE id = ?1")                                \
    /* the same deltas for the whole store (the stats row; job states move by trigger) */    \
    X(STATS_TALLY, "UPDATE stats SET tasks_queued = tasks_queued + ?2, "                      \
                   "tasks_leased = tasks_leased + ?3, tasks_done = tasks_done + ?4, "         \
                   "tasks_failed = tasks_failed + ?5, "                                       \
                   "tasks_cancelled = tasks_cancelled + ?6, items_done = items_done + ?7 "   \
                   "WHERE id = ?1")                                                           \
    X(JOB_LIST_ALL, "SELECT " PDB_JOB_COLS PDB_JOB_FROM "WHERE j.id < ?1 "                    \
                    "ORDER BY j.id DESC LIMIT ?2")                                            \
    X(JOB_LIST_STATE, "SELECT " PDB_JOB_COLS PDB_JOB_FROM "WHERE j.state = ?3 AND j.id < ?1 " \
                      "ORDER BY j.id DESC LIMIT ?2")                                          \
    /* a schedule's jobs, newest first, through the jobs_schedule index */                  \
    X(JOB_LIST_SCHED, "SELECT " PDB_JOB_COLS PDB_JOB_FROM "WHERE j.schedule_id = ?3 "         \
                      "AND j.id < ?1 ORDER BY j.id DESC LIMIT ?2")                            \
    X(JOB_RUNS, "SELECT idx, suite, task, params, samples, version FROM runs "                \
                "WHERE job_id = ?1 ORDER BY idx")                                             \
    /* per (run, bucket): tasks, done tasks, items, done items, n, score_sum */              \
    X(JOB_BUCKETS, "SELECT run_idx, bucket, tasks_total, tasks_done, items_total, "          \
                   "items_done, n, score_sum FROM buckets WHERE job_id = ?1 "                 \
                   "ORDER BY run_idx, bucket")                                                \
    X(JOB_BREAKDOWNS, "SELECT run_idx, key, value, bucket, n, score_sum FROM breakdowns "    \
                      "WHERE job_id = ?1 ORDER BY run_idx, key, bucket, value")               \
    /* one run's reserved rows (per-item metric sums, length unit) */                       \
    X(RUN_RESERVED, "SELECT run_idx, key, value, bucket, n, score_sum FROM breakdowns "      \
                    "WHERE job_id = ?1 AND run_idx = ?2 AND key IN ('@metric', '@unit') "    \
                    "ORDER BY key, bucket, value")                                           \
    X(JOB_FAILED_TASKS, "SELECT id, bucket, attempt, error FROM tasks "                       \
                        "WHERE state = 'failed' AND job_id = ?1 ORDER BY id LIMIT 100")       \
    X(JOB_STATE, "SELECT state FROM jobs WHERE id = ?1")                                      \
    X(JOB_LEASED_TASKS, "SELECT id, attempt, worker FROM tasks "                              \
                        "WHERE state = 'leased' AND job_id = ?1 ORDER BY id")                 \
    X(JOB_CANCEL_TASKS, "UPDATE tasks SET state = 'cancelled', lease_deadline = NULL "        \
                        "WHERE state IN ('queued', 'leased') AND job_id = ?1")                \
    X(JOB_CANCEL_QUEUED, "UPDATE tasks SET state = 'cancelled' "                              \
                         "WHERE state = 'queued' AND job_id = ?1")                            \
    /* ?2 = new state (done, failed, cancelled); only a live job ends */                      \
    X(JOB_FINISH, "UPDATE jobs SET state = ?2, finished_at = ?3, error = ?4 "                 \
                  "WHERE id = ?1 AND state IN ('queued', 'running')")                         \
    /* items: buckets with stored items matching the filter give the task id range      \
     * and the total */                                                                     \
    X(ITEMS_SPAN, "SELECT min(task_lo), max(task_hi), total(items_done) FROM buckets "        \
                  "WHERE job_id = ?1 AND items_done > 0 AND (?2 < 0 OR run_idx = ?2) "        \
                  "AND (?3 IS NULL OR bucket = ?3)")                                          \
    X(ITEMS_PAGE, "SELECT task_id, run_idx, bucket, idx, prompt_hash, prediction, reference, " \
                  "score, latency_us, tokens, meta, error FROM items "                       \
                  "WHERE job_id = ?1 AND task_id BETWEEN ?2 AND ?3 "                          \
                  "AND (task_id > ?2 OR idx > ?4) AND (?5 < 0 OR run_idx = ?5) "              \
                  "AND (?6 IS NULL OR bucket = ?6) ORDER BY task_id, idx LIMIT ?7")           \
    /* what regenerating one stored item needs: its run's generator inputs */              \
    X(ITEM_SOURCE, "SELECT i.run_idx, i.bucket, i.prompt_hash, r.suite, r.task, r.params, "   \
                   "r.version, r.dataset, j.seed FROM items i "                               \
                   "JOIN runs r ON r.job_id = i.job_id AND r.idx = i.run_idx "                \
                   "JOIN jobs j ON j.id = i.job_id "                                          \
                   "WHERE i.job_id = ?1 AND i.task_id = ?2 AND i.idx = ?3")                   \
    /* leaderboard: the latest done run per (suite, task, model name) */                     \
    X(LB_RUNS, "SELECT suite, task, model, backend, job_id, idx, finished_at, params FROM ("  \
               "SELECT r.suite, r.task, m.name AS model, m.backend, j.id AS job_id, r.idx, "  \
               "j.finished_at, r.params, row_number() OVER (PARTITION BY r.suite, r.task, "   \
               "m.name ORDER BY j.id DESC, r.idx DESC) AS rn FROM runs r "                    \
               "JOIN jobs j ON j.id = r.job_id JOIN models m ON m.id = j.model_id "           \
               "WHERE j.state = 'done' AND (?1 IS NULL OR r.suite = ?1)) "                    \
               "WHERE rn = 1 ORDER BY suite, task, model")                                    \
    X(RUN_BUCKETS, "SELECT bucket, n, score_sum FROM buckets "                                \
                   "WHERE job_id = ?1 AND run_idx = ?2 ORDER BY bucket")                      \
    /* tasks */                                                                               \
    X(TASKS_QUEUED_ALL, "SELECT t.id, t.job_id, j.priority, j.device, m.backend, "            \
                        "t.item_hi - t.item_lo, j.timeout_s FROM tasks t "                    \
                        "JOIN jobs j ON j.id = t.job_id "                                     \
                        "JOIN models m ON m.id = j.model_id WHERE t.state = 'queued' "        \
                        "AND j.state IN ('queued', 'running') ORDER BY t.id")                 \
    X(TASKS_QUEUED_JOB, "SELECT t.id, t.job_id, j.priority, j.device, m.backend, "            \
                        "t.item_hi - t.item_lo, j.timeout_s FROM tasks t "                    \
                        "JOIN jobs j ON j.id = t.job_id "                                     \
                        "JOIN models m ON m.id = j.model_id WHERE t.state = 'queued' "        \
                        "AND t.job_id = ?1 AND j.state IN ('queued', 'running') ORDER BY t.id") \
    /* No RETURNING: SQLite buffers RETURNING rows in a temporary table opened  \
     * on every run, dearer than the SELECT by rowid that follows the UPDATE. */ \
    X(TASK_LEASE, "UPDATE tasks SET state = 'leased', attempt = attempt + 1, worker = ?2, "   \
                  "lease_deadline = ?3, leased_at = ?4 WHERE id = ?1 AND state = 'queued'")   \
    X(TASK_LEASE_ROW, "SELECT t.job_id, t.run_idx, t.bucket, t.item_lo, t.item_hi, "          \
                      "t.attempt, j.state FROM tasks t JOIN jobs j ON j.id = t.job_id "       \
                      "WHERE t.id = ?1")                                                      \
    /* what every task of one run shares; cached per (job, run) by pdb_task_lease */          \
    X(LEASE_TEMPLATE, "SELECT r.suite, r.task, r.params, r.version, j.seed, j.timeout_s, "    \
                      "m.spec, r.dataset FROM runs r JOIN jobs j ON j.id = r.job_id "         \
                      "JOIN models m ON m.id = j.model_id WHERE r.job_id = ?1 AND r.idx = ?2") \
    X(JOB_START, "UPDATE jobs SET state = 'running', started_at = ?2 "                        \
                 "WHERE id = ?1 AND state = 'queued'")                                        \
    X(TASK_RENEW, "UPDATE tasks SET lease_deadline = ?3 "                                     \
                  "WHERE id = ?1 AND attempt = ?2 AND state = 'leased'")                      \
    /* the exactly-once gate: only the current lease of a leased task passes */              \
    X(TASK_RECORD, "UPDATE tasks SET state = 'done', n = ?3, score_sum = ?4, done_at = ?5, "  \
                   "lease_deadline = NULL WHERE id = ?1 AND attempt = ?2 AND state = 'leased'") \
    X(TASK_ROW, "SELECT job_id, run_idx, bucket, item_lo, item_hi FROM tasks WHERE id = ?1")  \
    X(TASK_SET_AGG, "UPDATE tasks SET n = ?2, score_sum = ?3 WHERE id = ?1")                  \
    X(ITEM_INSERT, "INSERT INTO items(job_id, task_id, idx, run_idx, bucket, prompt_hash, "   \
                   "prediction, reference, score, latency_us, tokens, meta, error) "          \
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")         \
    X(BUCKET_ADD_DONE, "UPDATE buckets SET tasks_done = tasks_done + 1, "                     \
                       "items_done = items_done + ?4, n = n + ?5, score_sum = score_sum + ?6 " \
                       "WHERE job_id = ?1 AND run_idx = ?2 AND bucket = ?3")                  \
    /* a recorded result's breakdown groups: ?1 job, ?2 run, ?3 bucket, ?4 key, ?5 value */  \
    X(BREAKDOWN_ADD, "INSERT INTO breakdowns(job_id, run_idx, bucket, key, value, n, "        \
                     "score_sum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "                        \
                     "ON CONFLICT(job_id, run_idx, key, value, bucket) DO UPDATE "            \
                     "SET n = n + excluded.n, score_sum = score_sum + excluded.score_sum")    \
    X(WORKER_ADD_DONE, "UPDATE workers SET tasks_done = tasks_done + 1 "                      \
                       "WHERE name = (SELECT worker FROM tasks WHERE id = ?1)")               \
    X(JOB_OPEN_TASKS, "SELECT tasks_queued + tasks_leased FROM jobs WHERE id = ?1")           \
    X(TASK_RELEASE_INFO, "SELECT t.job_id, t.max_attempts, j.state FROM tasks t "             \
                         "JOIN jobs j ON j.id = t.job_id "                                    \
                         "WHERE t.id = ?1 AND t.attempt = ?2 AND t.state = 'leased'")         \
    /* ?2 = queued (worker cleared), failed or cancelled; ?3 = last error */                 \
    X(TASK_UNLEASE, "UPDATE tasks SET state = ?2, error = ?3, lease_deadline = NULL, "        \
                    "worker = CASE WHEN ?2 = 'queued' THEN NULL ELSE worker END WHERE id = ?1") \
    X(TASKS_EXPIRED, "SELECT id, attempt, worker FROM tasks "                                 \
                     "WHERE state = 'leased' AND lease_deadline < ?1 ORDER BY id")            \
    /* recovery moves the counters first, from the leases it is about to drop */           \
    X(JOBS_RECOVER, "UPDATE jobs SET tasks_queued = tasks_queued + c.k, "                     \
                    "tasks_leased = tasks_leased - c.k FROM (SELECT job_id, count(*) AS k "   \
                    "FROM tasks WHERE state = 'leased' GROUP BY job_id) AS c "                \
                    "WHERE jobs.id = c.job_id")                                               \
    X(TASKS_RECOVER, "UPDATE tasks SET state = 'queued', worker = NULL, lease_deadline = NULL " \
                     "WHERE state = 'leased'")                                                \
    /* workers: a worker coming back from "gone" starts a new connection */                  \
    X(WORKER_UPSERT, "INSERT INTO workers(name, capabilities, state, connected_at, last_seen) " \
                     "VALUES (?1, coalesce(?2, '{}'), ?3, ?4, ?4) ON CONFLICT(name) DO UPDATE " \
                     "SET capabilities = coalesce(?2, capabilities), "                        \
                     "connected_at = CASE WHEN state = 'gone' THEN excluded.connected_at "    \
                     "ELSE connected_at END, state = excluded.state, last_seen = excluded.last_seen") \
    X(WORKERS_LIST, "SELECT name, state, capabilities, connected_at, last_seen, tasks_done "  \
                    "FROM workers ORDER BY name")                                             \
    X(WORKERS_LEASES, "SELECT worker, id FROM tasks WHERE state = 'leased' ORDER BY id")      \
    X(WORKERS_RESET, "UPDATE workers SET state = 'gone' WHERE state <> 'gone'")               \
    /* schedules */                                                                           \
    X(SCHED_INSERT, "INSERT INTO schedules(name, cron, template, enabled, created_at, "       \
                    "next_fire_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                          \
    X(SCHED_LIST, "SELECT " PDB_SCHED_COLS " FROM schedules ORDER BY id")                     \
    X(SCHED_GET, "SELECT " PDB_SCHED_COLS " FROM schedules WHERE id = ?1")                    \
    X(SCHED_ENABLE, "UPDATE schedules SET enabled = ?2, next_fire_at = ?3 WHERE id = ?1")     \
    X(SCHED_UPDATE, "UPDATE schedules SET cron = coalesce(?2, cron), "                         \
                    "template = coalesce(?3, template), webhook = CASE WHEN ?4 THEN ?5 "        \
                    "ELSE webhook END, detect = coalesce(?6, detect), next_fire_at = CASE "      \
                    "WHEN ?2 IS NULL THEN next_fire_at ELSE ?7 END WHERE id = ?1")              \
    X(TESTBED_FIND, "SELECT id FROM testbeds WHERE hash = ?1")                                  \
    X(TESTBED_INSERT, "INSERT INTO testbeds(hash, name, info, first_seen) "                     \
                      "VALUES (?1, ?2, ?3, ?4)")                                               \
    X(CONTEXT_FIND, "SELECT id FROM contexts WHERE hash = ?1")                                  \
    X(CONTEXT_INSERT, "INSERT INTO contexts(hash, info) VALUES (?1, ?2)")                       \
    X(TASK_SET_PROV, "UPDATE tasks SET testbed_id = ?2, context_id = ?3 WHERE id = ?1")         \
    X(SCHED_DUE, "SELECT id, name, cron, template, next_fire_at FROM schedules "              \
                 "WHERE enabled = 1 AND next_fire_at <= ?1 ORDER BY next_fire_at, id")        \
    X(SCHED_FIRED, "UPDATE schedules SET last_fired_at = ?2, last_job_id = ?3, "              \
                   "next_fire_at = ?4 WHERE id = ?1")                                         \
    /* metrics */                                                                             \
    X(STATS, "SELECT jobs_queued, jobs_running, jobs_done, jobs_failed, jobs_cancelled, "     \
             "tasks_queued, tasks_leased, tasks_done, tasks_failed, tasks_cancelled, "       \
             "items_done FROM stats WHERE id = 1")

#endif
