-- Devices and their command queues (owned by server/accounts/devices.py, commands.py).
-- A device is bound to exactly one credential: a session token (Firefox desktop, HAWK) or an
-- OAuth refresh token (Fenix/iOS through application-services, Bearer; FxA's refreshTokenId
-- devices).  Destroying that credential (sign-out, password change, disconnect, account
-- deletion) removes the device and, through it, its queued commands.
-- oauth_refresh_tokens comes in 0005: SQLite resolves foreign keys when rows change, and
-- both migrations run before the first request.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,                     -- 32 lower-case hex
    uid TEXT NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE,
    session_token_id TEXT UNIQUE REFERENCES fxa_tokens(id) ON DELETE CASCADE,
    refresh_token_id TEXT UNIQUE REFERENCES oauth_refresh_tokens(id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT 'desktop',
    push_callback TEXT,
    push_public_key TEXT,
    push_auth_key TEXT,
    push_endpoint_expired INTEGER NOT NULL DEFAULT 0,
    available_commands TEXT NOT NULL DEFAULT '{}',  -- JSON object: command name -> string
    created_at INTEGER NOT NULL,              -- ms
    CHECK ((session_token_id IS NULL) <> (refresh_token_id IS NULL))
);
CREATE INDEX devices_uid ON devices(uid);

-- The per-device queue ("pushbox").  AUTOINCREMENT: an index is never reused, so each
-- device sees strictly increasing indexes even after old commands expire or are purged.
CREATE TABLE device_commands (
    idx INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    command TEXT NOT NULL,
    payload TEXT NOT NULL,                   -- JSON object, opaque (encrypted by the sender)
    sender TEXT,                             -- the sending device id, if it has one
    created_at INTEGER NOT NULL,             -- ms
    expires_at INTEGER NOT NULL              -- ms
);
CREATE INDEX device_commands_device ON device_commands(device_id, idx);
CREATE INDEX device_commands_expiry ON device_commands(expires_at)
