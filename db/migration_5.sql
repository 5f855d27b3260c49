-- posbench store, migration 5 (user_version 4 -> 5): provenance, series and
-- regressions (issue 7, reference/infra.md A.2). Every task result records
-- the testbed it ran on and the context it ran in (model path and content
-- hashes, PE override, versions, commit); every done job becomes points on
-- series; detection turns points into regression records and webhook
-- deliveries. Never edit once shipped.

-- A worker's hardware as it reported it (CPU model and flags, GPU, threads),
-- stored once per distinct description (hash of its canonical JSON).
CREATE TABLE testbeds (
    id         INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,
    name       TEXT NOT NULL,
    info       TEXT NOT NULL,
    first_seen REAL NOT NULL
);
CREATE UNIQUE INDEX testbeds_hash ON testbeds(hash);

-- What a result was produced with besides the hardware (Conbench "context").
CREATE TABLE contexts (
    id   INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    info TEXT NOT NULL
);
CREATE UNIQUE INDEX contexts_hash ON contexts(hash);

ALTER TABLE tasks ADD COLUMN testbed_id INTEGER;
ALTER TABLE tasks ADD COLUMN context_id INTEGER;

-- 0: done, not yet turned into points; 1: ingested; -1: done before this
-- migration, to be ingested as history without raising alerts.
ALTER TABLE jobs ADD COLUMN ingested INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET ingested = -1 WHERE state = 'done';
CREATE INDEX jobs_ingest ON jobs(id) WHERE state = 'done' AND ingested <> 1;

-- Alerts per schedule: a webhook URL and detection settings (JSON).
ALTER TABLE schedules ADD COLUMN webhook TEXT;
ALTER TABLE schedules ADD COLUMN detect TEXT;

-- One (schedule or model, suite, task, params, bucket, metric, testbed).
-- testbed_id 0: the run's tasks ran on several testbeds.
CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    key_hash    TEXT NOT NULL,
    schedule_id INTEGER REFERENCES schedules(id) ON DELETE SET NULL,
    model       TEXT NOT NULL,
    suite       TEXT NOT NULL,
    task        TEXT NOT NULL,
    params      TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    metric      TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    unit        TEXT,
    testbed_id  INTEGER NOT NULL,
    updated_at  REAL NOT NULL,
    scanned_at  REAL
);
CREATE UNIQUE INDEX series_key ON series(key_hash);
CREATE INDEX series_schedule ON series(schedule_id);
CREATE INDEX series_model ON series(model, suite);

-- One value of a series from one run of a done job. lower/upper: its error
-- bar; baseline and limit_lo/limit_hi: what the stage-1 gate compared it
-- with (null when there was no history).
CREATE TABLE points (
    series_id  INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    job_id     INTEGER NOT NULL,
    run_idx    INTEGER NOT NULL,
    t          REAL NOT NULL,
    value      REAL NOT NULL,
    n          REAL NOT NULL,
    lower      REAL,
    upper      REAL,
    baseline   REAL,
    limit_lo   REAL,
    limit_hi   REAL,
    context_id INTEGER,
    PRIMARY KEY (series_id, job_id, run_idx)
) WITHOUT ROWID;

CREATE TABLE regressions (
    id               INTEGER PRIMARY KEY,
    series_id        INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    state            TEXT NOT NULL DEFAULT 'detected'
                     CHECK (state = 'detected' OR state = 'acknowledged' OR state = 'fixed'
                            OR state = 'ignored'),
    detector         TEXT NOT NULL,
    detector_version INTEGER NOT NULL,
    job_before       INTEGER,
    job_after        INTEGER NOT NULL,
    value_before     REAL,
    value_after      REAL,
    change           REAL,
    p_value          REAL,
    ci_lo            REAL,
    ci_hi            REAL,
    changes          TEXT,
    note             TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
);
-- One record per (series, first run after the change): a later detector
-- that finds the same change updates it.
CREATE UNIQUE INDEX regressions_key ON regressions(series_id, job_after);
CREATE INDEX regressions_state ON regressions(state);

-- Webhook deliveries: one per (schedule, job or scan) that raised
-- regressions, retried with back-off until delivered or out of attempts.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    schedule_id  INTEGER NOT NULL,
    job_id       INTEGER,
    url          TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state = 'pending' OR state = 'delivered' OR state = 'failed'),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      REAL NOT NULL,
    last_status  INTEGER,
    last_error   TEXT,
    created_at   REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX deliveries_due ON deliveries(next_at) WHERE state = 'pending';
CREATE INDEX deliveries_schedule ON deliveries(schedule_id);
