-- posbench store, migration 2 (user_version 1 -> 2): counters, so that what
-- the API serves (job objects, listings, results, leaderboard, /metrics) is
-- read from rows per job and per bucket instead of grouping a job's tasks.
-- Runs on a fresh database right after schema.sql, and in place on a v1
-- database, where the fills below compute the counters once from the tasks.
-- Never edit once shipped; later changes are migrations of their own.

-- Per-job task counts by state. The store moves them in the same savepoint
-- as every task state change (pdb__tally in db/store.c).
ALTER TABLE jobs ADD COLUMN tasks_queued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tasks_leased INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tasks_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tasks_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tasks_cancelled INTEGER NOT NULL DEFAULT 0;

UPDATE jobs SET tasks_queued = c.q, tasks_leased = c.l, tasks_done = c.d, tasks_failed = c.f,
                tasks_cancelled = c.c
FROM (SELECT job_id, sum(state = 'queued') AS q, sum(state = 'leased') AS l,
             sum(state = 'done') AS d, sum(state = 'failed') AS f,
             sum(state = 'cancelled') AS c
      FROM tasks GROUP BY job_id) AS c
WHERE c.job_id = jobs.id;

-- One row per (job, run, bucket): progress and score sums, written when the
-- job is inserted and on every recorded result. task_lo..task_hi is the id
-- range of the bucket's tasks; it bounds a filtered page of items.
CREATE TABLE buckets (
    job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    run_idx     INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    task_lo     INTEGER NOT NULL,
    task_hi     INTEGER NOT NULL,
    tasks_total INTEGER NOT NULL,
    tasks_done  INTEGER NOT NULL DEFAULT 0,
    items_total INTEGER NOT NULL,
    items_done  INTEGER NOT NULL DEFAULT 0,
    n           INTEGER NOT NULL DEFAULT 0,
    score_sum   REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, run_idx, bucket)
) WITHOUT ROWID;

INSERT INTO buckets(job_id, run_idx, bucket, task_lo, task_hi, tasks_total, tasks_done,
                    items_total, items_done, n, score_sum)
SELECT job_id, run_idx, bucket, min(id), max(id), count(*), sum(state = 'done'),
       sum(item_hi - item_lo), sum(CASE WHEN state = 'done' THEN item_hi - item_lo ELSE 0 END),
       sum(CASE WHEN state = 'done' THEN n ELSE 0 END),
       total(CASE WHEN state = 'done' THEN score_sum END)
FROM tasks GROUP BY job_id, run_idx, bucket;

-- The whole store's counts behind /metrics, one row, equal at every commit
-- to the sums over jobs. What happens once per job (insert, a state change,
-- delete) moves it by trigger, so no C path can forget it; the per-task
-- counters move on every lease and result, where a trigger would cost more
-- than the UPDATE it runs, so pdb__tally updates them with the jobs row.
CREATE TABLE stats (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    jobs_queued     INTEGER NOT NULL,
    jobs_running    INTEGER NOT NULL,
    jobs_done       INTEGER NOT NULL,
    jobs_failed     INTEGER NOT NULL,
    jobs_cancelled  INTEGER NOT NULL,
    tasks_queued    INTEGER NOT NULL,
    tasks_leased    INTEGER NOT NULL,
    tasks_done      INTEGER NOT NULL,
    tasks_failed    INTEGER NOT NULL,
    tasks_cancelled INTEGER NOT NULL,
    items_done      INTEGER NOT NULL
);

INSERT INTO stats
SELECT 1, coalesce(sum(state = 'queued'), 0), coalesce(sum(state = 'running'), 0),
       coalesce(sum(state = 'done'), 0), coalesce(sum(state = 'failed'), 0),
       coalesce(sum(state = 'cancelled'), 0), coalesce(sum(tasks_queued), 0),
       coalesce(sum(tasks_leased), 0), coalesce(sum(tasks_done), 0),
       coalesce(sum(tasks_failed), 0), coalesce(sum(tasks_cancelled), 0),
       coalesce(sum(items_done), 0)
FROM jobs;

CREATE TRIGGER jobs_stats_insert AFTER INSERT ON jobs BEGIN
    UPDATE stats SET
        jobs_queued = jobs_queued + (new.state = 'queued'),
        jobs_running = jobs_running + (new.state = 'running'),
        jobs_done = jobs_done + (new.state = 'done'),
        jobs_failed = jobs_failed + (new.state = 'failed'),
        jobs_cancelled = jobs_cancelled + (new.state = 'cancelled'),
        tasks_queued = tasks_queued + new.tasks_queued,
        tasks_leased = tasks_leased + new.tasks_leased,
        tasks_done = tasks_done + new.tasks_done,
        tasks_failed = tasks_failed + new.tasks_failed,
        tasks_cancelled = tasks_cancelled + new.tasks_cancelled,
        items_done = items_done + new.items_done
    WHERE id = 1;
END;

CREATE TRIGGER jobs_stats_state AFTER UPDATE OF state ON jobs
WHEN new.state IS NOT old.state BEGIN
    UPDATE stats SET
        jobs_queued = jobs_queued + (new.state = 'queued') - (old.state = 'queued'),
        jobs_running = jobs_running + (new.state = 'running') - (old.state = 'running'),
        jobs_done = jobs_done + (new.state = 'done') - (old.state = 'done'),
        jobs_failed = jobs_failed + (new.state = 'failed') - (old.state = 'failed'),
        jobs_cancelled = jobs_cancelled + (new.state = 'cancelled') - (old.state = 'cancelled')
    WHERE id = 1;
END;

CREATE TRIGGER jobs_stats_delete AFTER DELETE ON jobs BEGIN
    UPDATE stats SET
        jobs_queued = jobs_queued - (old.state = 'queued'),
        jobs_running = jobs_running - (old.state = 'running'),
        jobs_done = jobs_done - (old.state = 'done'),
        jobs_failed = jobs_failed - (old.state = 'failed'),
        jobs_cancelled = jobs_cancelled - (old.state = 'cancelled'),
        tasks_queued = tasks_queued - old.tasks_queued,
        tasks_leased = tasks_leased - old.tasks_leased,
        tasks_done = tasks_done - old.tasks_done,
        tasks_failed = tasks_failed - old.tasks_failed,
        tasks_cancelled = tasks_cancelled - old.tasks_cancelled,
        items_done = items_done - old.items_done
    WHERE id = 1;
END;
