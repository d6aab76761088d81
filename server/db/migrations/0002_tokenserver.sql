-- Tokenserver user records (owned by server/tokenserver/store.py).
CREATE TABLE IF NOT EXISTS _placeholder_tokenserver (x INTEGER)
