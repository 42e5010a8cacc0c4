-- API keys of machine clients. Only sha256(secret) is kept; the key itself is shown once.
-- The gateway never reads this table: `mgw keys` mirrors live rows into Redis, which it reads.
CREATE TABLE api_keys (
    key_id      text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    hash        text        NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    scopes      text[]      NOT NULL DEFAULT '{}',
    tier        text        NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'enterprise')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE INDEX api_keys_live_idx ON api_keys (created_at) WHERE revoked_at IS NULL;
