-- Sync 1.5 storage tables (owned by server/storage/store.py).
CREATE TABLE IF NOT EXISTS _placeholder_storage (x INTEGER)
