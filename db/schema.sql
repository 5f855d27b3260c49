-- posbench store, schema version 1 (PRAGMA user_version = 1). The build embeds
-- this file in db/store.c as migration 1; later changes are new migrations
-- appended there, never edits here. Timestamps are REAL seconds since the
-- epoch; JSON columns hold compact JSON text. State checks are written as OR
-- chains: SQLite 3.40 evaluates a CHECK with IN (...) through a temporary
-- table built on every UPDATE, which made each lease several times slower.

-- A model is stored once per distinct spec (canonical JSON, sorted keys).
CREATE TABLE models (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    backend   TEXT NOT NULL,
    spec      TEXT NOT NULL,
    spec_hash TEXT NOT NULL
);
CREATE UNIQUE INDEX models_spec_hash ON models(spec_hash);
CREATE INDEX models_name ON models(name);

CREATE TABLE schedules (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    cron          TEXT NOT NULL,
    template      TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at    REAL NOT NULL,
    last_fired_at REAL,
    next_fire_at  REAL,
    last_job_id   INTEGER REFERENCES jobs(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX schedules_name ON schedules(name);
-- The schedule timer's query: enabled = 1 AND next_fire_at <= now.
CREATE INDEX schedules_due ON schedules(enabled, next_fire_at);

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    model_id        INTEGER NOT NULL REFERENCES models(id),
    spec            TEXT NOT NULL,
    seed            INTEGER NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    device          TEXT NOT NULL DEFAULT 'any',
    max_attempts    INTEGER NOT NULL,
    timeout_s       INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state = 'queued' OR state = 'running' OR state = 'done'
                           OR state = 'failed' OR state = 'cancelled'),
    idempotency_key TEXT,
    schedule_id     INTEGER REFERENCES schedules(id) ON DELETE SET NULL,
    items_total     INTEGER NOT NULL DEFAULT 0,
    items_done      INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL
);
-- Job listing by state (newest first: the rowid rides along in the index);
-- also the leaderboard's "state = 'done'" filter.
CREATE INDEX jobs_state ON jobs(state);
-- NULL keys are distinct, so jobs without a key never collide.
CREATE UNIQUE INDEX jobs_idempotency ON jobs(idempotency_key);
CREATE INDEX jobs_schedule ON jobs(schedule_id);

-- One suite run of a job; its tasks cover (bucket x item range).
CREATE TABLE runs (
    job_id  INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    suite   TEXT NOT NULL,
    task    TEXT NOT NULL,
    params  TEXT NOT NULL,
    samples INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
-- Leaderboard lookups by suite (and task).
CREATE INDEX runs_suite_task ON runs(suite, task);

CREATE TABLE tasks (
    id             INTEGER PRIMARY KEY,
    job_id         INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    run_idx        INTEGER NOT NULL,
    bucket         INTEGER NOT NULL,
    item_lo        INTEGER NOT NULL,
    item_hi        INTEGER NOT NULL CHECK (item_hi > item_lo),
    state          TEXT NOT NULL DEFAULT 'queued'
                   CHECK (state = 'queued' OR state = 'leased' OR state = 'done'
                          OR state = 'failed' OR state = 'cancelled'),
    attempt        INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL,
    worker         TEXT,
    lease_deadline REAL,
    error          TEXT,
    n              INTEGER NOT NULL DEFAULT 0,
    score_sum      REAL NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL,
    leased_at      REAL,
    done_at        REAL,
    FOREIGN KEY (job_id, run_idx) REFERENCES runs(job_id, idx)
);
-- The scheduler's queries (queued tasks, leased tasks, open tasks of a job).
CREATE INDEX tasks_state_job ON tasks(state, job_id);
-- Per-run, per-bucket progress and sums of one job, in group order.
CREATE INDEX tasks_job ON tasks(job_id, run_idx, bucket);

-- One row per scored sample. The primary key is the only index: it pages a
-- job's items by (task_id, idx) and refuses a second copy of an item. No
-- foreign keys: items are written only by pdb_task_record right after its
-- guarded UPDATE of the task, which already proves the parent exists; a
-- foreign key would add a lookup in tasks to every one of the hottest inserts.
CREATE TABLE items (
    job_id      INTEGER NOT NULL,
    task_id     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    run_idx     INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    prompt_hash TEXT,
    prediction  TEXT,
    reference   TEXT,
    score       REAL,
    latency_us  INTEGER,
    tokens      INTEGER,
    meta        TEXT,
    error       TEXT,
    PRIMARY KEY (job_id, task_id, idx)
) WITHOUT ROWID;

CREATE TABLE workers (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    capabilities TEXT NOT NULL DEFAULT '{}',
    state        TEXT NOT NULL,
    connected_at REAL NOT NULL,
    last_seen    REAL NOT NULL,
    tasks_done   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX workers_name ON workers(name);
