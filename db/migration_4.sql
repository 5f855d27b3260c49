-- posbench store, migration 4 (user_version 3 -> 4): user datasets.
-- The content lives in a file named by its SHA-256 under the datasets
-- directory next to the database; this table is the record of it.
-- Never edit once shipped; later changes are migrations of their own.

-- One row per stored dataset. The file is renamed into place (fsync'd)
-- before the row is inserted, so a row always has its file; a file without
-- a row (a crash in between) is rewritten by the next upload of the same
-- content. buckets is a JSON array of [bucket, lines] pairs, ascending.
CREATE TABLE datasets (
    hash       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    suite      TEXT NOT NULL,
    bytes      INTEGER NOT NULL,
    lines      INTEGER NOT NULL,
    buckets    TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;

-- A run that reads a dataset names it by hash; NULL for generator runs.
ALTER TABLE runs ADD COLUMN dataset TEXT;
