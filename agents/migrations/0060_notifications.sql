-- Watchlist alerts (docs/NOTIFICATIONS.md). Written only by the notifications agents
-- (agents/notifications); the gateway reads the Redis read models they render.

-- The reverse index title -> users: who has a title on their watchlist, in user order, so
-- the agents page through a popular title's watchers by keyset instead of loading them all.
-- An index rather than a table the sync agents keep: PostgreSQL keeps it with every merge.
CREATE INDEX sync_watchlist_watchers ON sync_watchlist (content_id, user_id) WHERE visible;

-- One row per user: the preferences applied last.
CREATE TABLE notification_preferences (
    user_id      text        PRIMARY KEY,
    services     text[]      NOT NULL,
    region       text        NOT NULL CHECK (region ~ '^[A-Z]{2}$'),
    time_zone    text        NOT NULL,
    quiet_start  time,
    quiet_end    time,
    alerts       text[]      NOT NULL,
    offer_types  text[]      NOT NULL,
    -- An older change arriving late loses to the stored one.
    changed_at   timestamptz NOT NULL,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

-- Every notification raised: the inbox's source of truth, and the "never twice" key.
CREATE TABLE notifications (
    user_id          text        NOT NULL,
    notification_id  uuid        NOT NULL,
    kind             text        NOT NULL,
    content_id       uuid        NOT NULL,
    platform         text        NOT NULL,
    -- The dedup window: days since the epoch / NOTIFY_WINDOW_DAYS; for new_season, the season.
    window_no        integer     NOT NULL,
    body             jsonb       NOT NULL,
    created_at       timestamptz NOT NULL,
    -- Not before the end of the user's quiet hours; null once published for delivery.
    deliver_at       timestamptz,
    read_at          timestamptz,
    PRIMARY KEY (user_id, notification_id),
    UNIQUE (user_id, content_id, platform, kind, window_no)
);
-- The release timer's scan: queued alerts whose quiet hours are over.
CREATE INDEX notifications_queued ON notifications (deliver_at) WHERE deliver_at IS NOT NULL;
