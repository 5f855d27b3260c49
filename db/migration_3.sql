-- posbench store, migration 3 (user_version 2 -> 3): per-group score sums,
-- the results' breakdown of a run by item meta (suites/suite.h "breakdown").
-- A v2 database has no groups recorded, so there is nothing to fill.
-- Never edit once shipped; later changes are migrations of their own.

-- One row per (job, run, breakdown key, group value, bucket): how many items
-- of the bucket's recorded results fell in the group and their score sum.
-- pdb_task_record adds to it in the savepoint that records the items, so
-- only a result that was actually accepted counts. key is the suite's
-- breakdown entry ("da,db"), value the item's values joined the same way
-- ("3,5"). The primary key serves the results query (job, run, key) and
-- the cascade from jobs.
CREATE TABLE breakdowns (
    job_id    INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    run_idx   INTEGER NOT NULL,
    bucket    INTEGER NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    n         INTEGER NOT NULL DEFAULT 0,
    score_sum REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, run_idx, key, value, bucket)
) WITHOUT ROWID;
