-- Tokenserver user records (owned by server/tokenserver/store.py).
-- One row per uid ever issued for a (service, email). The current row is the max by
-- (generation, created_at). A new client state (key reset) gets a new row, hence a new uid
-- and empty storage, and older rows get replaced_at. Their client states are the stale list.
-- AUTOINCREMENT: a uid is never reused, not even after its row is gone, so a new user can
-- never be handed storage that belonged to someone else.
CREATE TABLE tokenserver_users (
    uid INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    email TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    client_state TEXT NOT NULL DEFAULT '',
    keys_changed_at INTEGER,
    created_at INTEGER NOT NULL,
    replaced_at INTEGER
);

-- keys_changed_at: ms, NULL until a client reported one. created_at, replaced_at: ms.
CREATE INDEX tokenserver_users_email ON tokenserver_users (service, email);
