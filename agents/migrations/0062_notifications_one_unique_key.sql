-- Watchlist alerts at scale (docs/NOTIFICATIONS.md, "Scale"): one unique key on notifications,
-- not two. A notification's id is uuid5 of (user, title, platform, kind, window)
-- (agents/notifications/rules.py), the only way a row is written, so the primary key
-- (user_id, notification_id) already allows one row per (user, title, platform, kind,
-- window): the second key held the same rule in a wider index, written with every row of a
-- fan-out (a title's 100,000 watchers: 100,000 more entries in a larger B-tree, and their
-- WAL). Replaying a cause still finds its rows by the primary key (ON CONFLICT DO NOTHING),
-- and a page's resend finds its rows by user range within the primary key.
ALTER TABLE notifications
    DROP CONSTRAINT IF EXISTS notifications_user_id_content_id_platform_kind_window_no_key;
