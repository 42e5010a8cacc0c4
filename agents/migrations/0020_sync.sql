-- Cross-device sync (docs/SYNC.md): the durable per-user state the sync agents merge into.
-- Redis holds what devices read, rebuilt from these tables on a miss. Every row is written by
-- a CRDT merge (agents/sync), so applying an operation twice changes nothing.

-- Read-model versions, bumped in the transaction that changes a view: a slower writer of an
-- older document (a lookup racing a merge) can never overwrite a newer one in Redis.
CREATE TABLE sync_users (
    user_id           text   PRIMARY KEY,
    watchlist_version bigint NOT NULL DEFAULT 0,
    progress_version  bigint NOT NULL DEFAULT 0,
    devices_version   bigint NOT NULL DEFAULT 0
);

-- One OR-Set per (user, title): live add tags, tombstones and the latest clear, as JSON
-- (agents/sync/records.py). The columns beside it serve the list without decoding it.
CREATE TABLE sync_watchlist (
    user_id        text        NOT NULL,
    content_id     uuid        NOT NULL,
    state          jsonb       NOT NULL,
    visible        boolean     NOT NULL,
    -- The newest live add, which orders the list; null while the title is not on it.
    added_physical bigint,
    added_logical  integer,
    added_device   text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, content_id)
);
CREATE INDEX sync_watchlist_visible ON sync_watchlist (user_id) WHERE visible;

-- The last-writer-wins register of each (user, title).
CREATE TABLE sync_progress (
    user_id          text             NOT NULL,
    content_id       uuid             NOT NULL,
    position_seconds double precision NOT NULL,
    duration_seconds double precision NOT NULL,
    state            text             NOT NULL,
    hlc_physical     bigint           NOT NULL,
    hlc_logical      integer          NOT NULL,
    device_id        text             NOT NULL,
    complete         boolean          NOT NULL,
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, content_id)
);
CREATE INDEX sync_progress_open
    ON sync_progress (user_id, hlc_physical DESC, hlc_logical DESC) WHERE NOT complete;

-- A device of a user. Registration and removal are one last-writer-wins register (membership
-- stamp + removed); a removal is kept as a tombstone so a late registration cannot revive it.
CREATE TABLE sync_devices (
    user_id              text        NOT NULL,
    device_id            text        NOT NULL,
    info                 jsonb,      -- null once removed
    membership_physical  bigint      NOT NULL,
    membership_logical   integer     NOT NULL,
    removed              boolean     NOT NULL,
    last_seen            timestamptz NOT NULL,
    -- What the devices channel last said (presence sweep, agents/sync/presence.py).
    announced_online     boolean     NOT NULL DEFAULT false,
    now_playing          jsonb,
    now_playing_physical bigint,
    now_playing_logical  integer,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device_id)
);
CREATE INDEX sync_devices_announced ON sync_devices (last_seen) WHERE announced_online;

-- Every remote command once decided: the router's outcome, and what keeps a redelivered
-- command from being decided (and delivered) again.
CREATE TABLE sync_commands (
    command_id       uuid        PRIMARY KEY,
    user_id          text        NOT NULL,
    source_device_id text        NOT NULL,
    target_device_id text        NOT NULL,
    command          jsonb       NOT NULL,
    issued_at        timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    status           text        NOT NULL,
    error            text,
    message          text        NOT NULL,
    decided_at       timestamptz NOT NULL
);
CREATE INDEX sync_commands_decided ON sync_commands (decided_at);
