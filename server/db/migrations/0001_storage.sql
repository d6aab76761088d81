-- Sync 1.5 storage tables (owned by server/storage/store.py and batch.py).
-- All times are integer milliseconds, multiples of 10 (storage doc §0).

-- Collection names, shared by all users; ids are never reused or deleted.
CREATE TABLE storage_collections (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- Per-user collection timestamps. collection_id 0 is the hidden tombstone that keeps the
-- storage timestamp moving when a whole collection is deleted (doc §5.5).
CREATE TABLE storage_user_collections (
    uid           INTEGER NOT NULL,
    collection_id INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    PRIMARY KEY (uid, collection_id)
) WITHOUT ROWID;

-- One row per BSO. A rowid table (payloads can be MBs); small columns come first so
-- reading expiry or sizes never walks a payload's overflow pages.
CREATE TABLE storage_bso (
    uid           INTEGER NOT NULL,
    collection_id INTEGER NOT NULL,
    id            TEXT    NOT NULL,
    modified      INTEGER NOT NULL,
    expiry        INTEGER NOT NULL,
    sortindex     INTEGER,
    payload_size  INTEGER NOT NULL,
    payload       TEXT    NOT NULL,
    PRIMARY KEY (uid, collection_id, id)
);

-- newer=/older=/sort=newest|oldest and offsets walk this index in order; it also covers
-- id-only listings and the per-collection counts/usage (expiry, payload_size included).
CREATE INDEX storage_bso_modified
    ON storage_bso (uid, collection_id, modified, id, expiry, payload_size);

-- sort=index with a limit reads the top of this index instead of sorting the collection.
CREATE INDEX storage_bso_sortindex ON storage_bso (uid, collection_id, sortindex, id);

-- The purge deletes expired rows oldest first.
CREATE INDEX storage_bso_expiry ON storage_bso (expiry);

-- Stored payload bytes per user (expired-but-unpurged rows included). store.py adjusts
-- it on every BSO insert/update/delete in the same transaction, so the quota check is one
-- primary-key read. (No triggers: the migration runner splits statements on ';'.)
CREATE TABLE storage_usage (
    uid   INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL
);

-- Open batch uploads (doc §6.3). id is random per user; created starts the 2 h lifetime;
-- bytes is the staged payload total (counted against the quota).
CREATE TABLE storage_batches (
    uid           INTEGER NOT NULL,
    id            INTEGER NOT NULL,
    collection_id INTEGER NOT NULL,
    created       INTEGER NOT NULL,
    bytes         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (uid, id)
) WITHOUT ROWID;

CREATE INDEX storage_batches_created ON storage_batches (created);

-- Staged items; NULL means "not sent" so a commit keeps the stored value.
CREATE TABLE storage_batch_items (
    uid          INTEGER NOT NULL,
    batch_id     INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    sortindex    INTEGER,
    ttl          INTEGER,
    payload_size INTEGER,
    payload      TEXT,
    PRIMARY KEY (uid, batch_id, id),
    FOREIGN KEY (uid, batch_id) REFERENCES storage_batches (uid, id) ON DELETE CASCADE
)
