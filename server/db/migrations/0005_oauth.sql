-- OAuth codes, tokens, account authorizations (owned by server/oauth/).
CREATE TABLE IF NOT EXISTS _placeholder_oauth (x INTEGER)
