-- FxA accounts and their tokens (owned by server/accounts/).
-- kB is never stored: only wrapWrapKb, which needs the password-derived key to open.
CREATE TABLE accounts (
    uid TEXT PRIMARY KEY,                    -- 32 lower-case hex
    email TEXT NOT NULL,                     -- as the user typed it (the onepw salt)
    normalized_email TEXT NOT NULL UNIQUE,   -- lower-cased, for lookups
    auth_salt BLOB NOT NULL,
    verify_hash BLOB NOT NULL,
    wrap_wrap_kb BLOB NOT NULL,
    ka BLOB NOT NULL,
    verifier_version INTEGER NOT NULL DEFAULT 1,
    key_stretch_version INTEGER NOT NULL DEFAULT 1,
    client_salt TEXT,                        -- key-stretch v2 only
    verify_hash_v2 BLOB,
    wrap_wrap_kb_v2 BLOB,
    verifier_set_at INTEGER NOT NULL,        -- ms
    keys_changed_at INTEGER NOT NULL,        -- ms, only ever goes up
    created_at INTEGER NOT NULL,             -- ms
    locale TEXT NOT NULL DEFAULT '',
    display_name TEXT,
    profile_changed_at INTEGER NOT NULL DEFAULT 0,
    disabled_at INTEGER
);

-- Every FxA token kind in one table; the client holds the token, we hold what it derives to.
CREATE TABLE fxa_tokens (
    id TEXT PRIMARY KEY,                     -- hex(HKDF(token)[0:32])
    kind TEXT NOT NULL,                      -- sessionToken, keyFetchToken, ...
    uid TEXT NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE,
    hawk_key BLOB NOT NULL,
    data BLOB,                               -- kind-specific (key bundle for keyFetchToken)
    session_id TEXT,                         -- the session a derived token belongs to
    verified INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    last_access INTEGER NOT NULL,
    expires_at INTEGER,                      -- ms; NULL = until destroyed
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX fxa_tokens_uid ON fxa_tokens(uid, kind);
CREATE INDEX fxa_tokens_expiry ON fxa_tokens(expires_at) WHERE expires_at IS NOT NULL
