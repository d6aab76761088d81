-- OAuth codes, refresh/access tokens and per-service authorizations (owned by server/oauth/).
-- Codes and tokens are stored only as hex SHA-256 hashes; only the client holds the value.
-- keys_jwe is stored as the client sent it: it is encrypted to the requesting app's key.
-- Every row hangs off accounts(uid) ON DELETE CASCADE, so deleting an account removes it all;
-- rows minted from a session hang off fxa_tokens(id) and die with that session.

CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,              -- hex sha256 of the 32 code bytes
    client_id TEXT NOT NULL,
    uid TEXT NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE,
    session_id TEXT NOT NULL REFERENCES fxa_tokens(id) ON DELETE CASCADE,  -- the authorizing session
    scope TEXT NOT NULL,                     -- granted, space-separated
    service TEXT NOT NULL DEFAULT '',        -- the page's service= (sync, ...), '' if none
    offline INTEGER NOT NULL,                -- access_type=offline: the exchange mints a refresh token
    code_challenge TEXT,                     -- PKCE S256 challenge (all known clients are public)
    keys_jwe TEXT,                           -- opaque, returned verbatim by the exchange
    auth_at INTEGER NOT NULL,                -- s, when the session authenticated
    created_at INTEGER NOT NULL,             -- ms
    expires_at INTEGER NOT NULL              -- ms
);
CREATE INDEX oauth_codes_session ON oauth_codes(session_id);
CREATE INDEX oauth_codes_uid ON oauth_codes(uid);
CREATE INDEX oauth_codes_expiry ON oauth_codes(expires_at);

-- Codes already exchanged, kept a little while so a replay revokes what the code minted
-- (RFC 6749 §4.1.2).  Token ids are plain values: the tokens may already be gone.
CREATE TABLE oauth_used_codes (
    code_hash TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE,
    refresh_id TEXT,
    access_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL              -- ms; forgotten afterwards
);
CREATE INDEX oauth_used_codes_uid ON oauth_used_codes(uid);
CREATE INDEX oauth_used_codes_expiry ON oauth_used_codes(expires_at);

CREATE TABLE oauth_refresh_tokens (
    id TEXT PRIMARY KEY,                     -- hex sha256 of the token bytes = refreshTokenId
    client_id TEXT NOT NULL,
    uid TEXT NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    service TEXT NOT NULL DEFAULT '',
    auth_at INTEGER NOT NULL,                -- s
    created_at INTEGER NOT NULL,             -- ms
    last_used_at INTEGER NOT NULL            -- ms
);
CREATE INDEX oauth_refresh_tokens_uid ON oauth_refresh_tokens(uid, client_id);

CREATE TABLE oauth_access_tokens (
    id TEXT PRIMARY KEY,                     -- hex sha256 of the token string (a JWT)
    client_id TEXT NOT NULL,
    uid TEXT NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    refresh_id TEXT REFERENCES oauth_refresh_tokens(id) ON DELETE CASCADE,
    session_id TEXT REFERENCES fxa_tokens(id) ON DELETE CASCADE,  -- fxa-credentials grants
    auth_at INTEGER NOT NULL,                -- s
    created_at INTEGER NOT NULL,             -- ms
    expires_at INTEGER NOT NULL              -- ms
);
CREATE INDEX oauth_access_tokens_uid ON oauth_access_tokens(uid, client_id);
CREATE INDEX oauth_access_tokens_refresh ON oauth_access_tokens(refresh_id);
CREATE INDEX oauth_access_tokens_session ON oauth_access_tokens(session_id);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens(expires_at);

-- Mozilla's accountAuthorizations (ADR 0051): one row per (uid, scope, service, clientId)
-- for the configured browser services, written at the authorization grant.
CREATE TABLE oauth_authorizations (
    uid TEXT NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    service TEXT NOT NULL,
    client_id TEXT NOT NULL,
    first_authorized_at INTEGER NOT NULL,    -- ms, set once
    last_authorized_at INTEGER NOT NULL,     -- ms, bumped by each interactive grant
    PRIMARY KEY (uid, scope, service, client_id)
) WITHOUT ROWID;

-- What keeps an authorization alive: the pending code, the refresh token it became, or (for
-- Firefox desktop, which lives on its session) the authorizing session.  Exactly one token
-- per row; the token's FK cascade removes the row, and the trigger below removes the
-- authorization once its last backer is gone (ADR 0051 "pre-authorization state").
CREATE TABLE oauth_authorization_backers (
    uid TEXT NOT NULL,
    scope TEXT NOT NULL,
    service TEXT NOT NULL,
    client_id TEXT NOT NULL,
    session_id TEXT REFERENCES fxa_tokens(id) ON DELETE CASCADE,
    code_hash TEXT REFERENCES oauth_codes(code_hash) ON DELETE CASCADE,
    refresh_id TEXT REFERENCES oauth_refresh_tokens(id) ON DELETE CASCADE,
    FOREIGN KEY (uid, scope, service, client_id)
        REFERENCES oauth_authorizations(uid, scope, service, client_id) ON DELETE CASCADE,
    CHECK ((session_id IS NOT NULL) + (code_hash IS NOT NULL) + (refresh_id IS NOT NULL) = 1)
);
CREATE INDEX oauth_authorization_backers_key
    ON oauth_authorization_backers(uid, scope, service, client_id);
CREATE UNIQUE INDEX oauth_authorization_backers_session
    ON oauth_authorization_backers(session_id, uid, scope, service, client_id)
    WHERE session_id IS NOT NULL;
CREATE UNIQUE INDEX oauth_authorization_backers_code
    ON oauth_authorization_backers(code_hash, uid, scope, service, client_id)
    WHERE code_hash IS NOT NULL;
CREATE UNIQUE INDEX oauth_authorization_backers_refresh
    ON oauth_authorization_backers(refresh_id, uid, scope, service, client_id)
    WHERE refresh_id IS NOT NULL;

CREATE TRIGGER oauth_authorization_unbacked AFTER DELETE ON oauth_authorization_backers
BEGIN
    DELETE FROM oauth_authorizations
    WHERE uid = OLD.uid AND scope = OLD.scope AND service = OLD.service
      AND client_id = OLD.client_id
      AND NOT EXISTS (
          SELECT 1 FROM oauth_authorization_backers b
          WHERE b.uid = OLD.uid AND b.scope = OLD.scope AND b.service = OLD.service
            AND b.client_id = OLD.client_id);
END;
