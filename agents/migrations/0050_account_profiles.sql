-- The profiles of an account (adults, kids) and their parental limits. Written only by the
-- accounts agents (agents/accounts) from accounts.profiles events; the gateway reads the Redis
-- read model they render ({prefix}:profiles:{user_id}), never this table.
CREATE TABLE account_profiles (
    user_id               text        NOT NULL,
    profile_id            text        NOT NULL CHECK (profile_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                  text        NOT NULL DEFAULT '',
    kind                  text        NOT NULL CHECK (kind IN ('adult', 'kids')),
    content_rating_limit  text,
    blocked_genres        text[]      NOT NULL DEFAULT '{}',
    -- The changed_at of the event applied last: an older event arriving late is ignored.
    changed_at            timestamptz NOT NULL,
    -- Removals are kept as tombstones so a late, older event cannot bring a profile back.
    removed               boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, profile_id),
    CHECK (kind = 'adult' OR content_rating_limit IS NOT NULL)
);

