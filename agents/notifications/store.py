"""The notifications slice's tables (migration 0060): preferences, the notifications raised
(the inbox's truth and the "never twice" key), and the watchers of a title through the
reverse index on sync_watchlist."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

import asyncpg

from agents.framework import outbox
from agents.notifications import rules
from agreements.notifications_read_model import RawEntry, score_at
from core.publisher import headers_for
from schemas.content import AvailabilityType
from schemas.notifications import (
    Notification,
    NotificationPreferences,
    PreferencesChanged,
    PreferencesDocument,
    QuietHours,
)
from topics.registry import TopicSpec

_UPSERT = """
INSERT INTO notification_preferences
    (user_id, services, region, time_zone, quiet_start, quiet_end, alerts, offer_types,
     changed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (user_id) DO UPDATE SET
    services = EXCLUDED.services, region = EXCLUDED.region, time_zone = EXCLUDED.time_zone,
    quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end,
    alerts = EXCLUDED.alerts, offer_types = EXCLUDED.offer_types,
    changed_at = EXCLUDED.changed_at
-- A change made before the stored one arrived late: the stored one stands.
WHERE notification_preferences.changed_at <= EXCLUDED.changed_at
"""
_COLUMNS = "user_id, services, region, time_zone, quiet_start, quiet_end, alerts, offer_types"


async def apply_preferences(conn: asyncpg.Connection, change: PreferencesChanged) -> None:
    p = change.preferences
    quiet = p.quiet_hours
    await conn.execute(
        _UPSERT,
        change.user_id,
        list(p.services),
        p.region,
        p.time_zone,
        quiet.start_time if quiet else None,
        quiet.end_time if quiet else None,
        [a.value for a in p.alerts],
        [t.value for t in p.offer_types],
        change.changed_at,
    )


def _preferences(row: asyncpg.Record) -> NotificationPreferences:
    quiet = None
    if row["quiet_start"] is not None:
        quiet = QuietHours(
            start=row["quiet_start"].strftime("%H:%M"), end=row["quiet_end"].strftime("%H:%M")
        )
    return NotificationPreferences(
        services=list(row["services"]),
        region=row["region"],
        time_zone=row["time_zone"],
        quiet_hours=quiet,
        alerts=list(row["alerts"]),
        offer_types=list(row["offer_types"]),
    )


async def documents(
    db: asyncpg.Pool | asyncpg.Connection,
    user_ids: Collection[str] | None = None,
    after: str = "",
    limit: int = 1000,
) -> list[PreferencesDocument]:
    """The stored preferences of these users (None: of every user, a page after `after`)."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS}, changed_at FROM notification_preferences "
        "WHERE ($1::text[] IS NULL OR user_id = ANY($1::text[])) AND user_id > $2 "
        "ORDER BY user_id LIMIT $3",
        None if user_ids is None else list(user_ids),
        after,
        limit,
    )
    return [
        PreferencesDocument(
            user_id=r["user_id"], preferences=_preferences(r), changed_at=r["changed_at"]
        )
        for r in rows
    ]


_CANDIDATES = """
SELECT w.user_id, p.time_zone, p.quiet_start, p.quiet_end,
       -- The alert's offer types the user wants, in the alert's order (rules.for_user).
       ARRAY(SELECT t FROM unnest($6::text[]) WITH ORDINALITY AS a(t, i)
             WHERE t = ANY(p.offer_types) ORDER BY i) AS wanted,
       -- A burst's measure: alerts raised for them within the window, counted up to $9.
       (SELECT count(*) FROM (SELECT 1 FROM notifications n
                              WHERE n.user_id = w.user_id AND n.created_at > $8 LIMIT $9) r)
           AS recent
FROM sync_watchlist w JOIN notification_preferences p USING (user_id)
WHERE w.content_id = $1 AND w.visible AND w.user_id > $2
  AND p.region = $3 AND $4 = ANY(p.services) AND $5 = ANY(p.alerts)
  AND p.offer_types && $6::text[]
ORDER BY w.user_id LIMIT $7
"""


async def candidates(
    conn: asyncpg.Connection,
    alert: rules.Alert,
    after: str,
    limit: int,
    since: datetime,
    burst: int,
) -> list[rules.Candidate]:
    """A page of the title's watchers, after `after` in user order, who want this alert as
    `rules.for_user` decides it (region, service, alert kind, offer types: here in SQL, so the
    users who do not are never sent back), with their quiet hours and burst count. The index
    (content_id, user_id) gives them in order, so the page is a keyset: the next one starts
    after its last user."""
    rows = await conn.fetch(
        _CANDIDATES,
        alert.content_id,
        after,
        alert.region,
        alert.platform,
        alert.kind.value,
        [t.value for t in alert.offer_types],
        limit,
        since,
        burst,
    )
    return [
        rules.Candidate(
            user_id=r["user_id"],
            offer_types=tuple(AvailabilityType(t) for t in r["wanted"]),
            time_zone=r["time_zone"],
            quiet_hours=None
            if r["quiet_start"] is None
            else QuietHours(
                start=r["quiet_start"].strftime("%H:%M"), end=r["quiet_end"].strftime("%H:%M")
            ),
            recent=int(r["recent"]),
        )
        for r in rows
    ]


# One statement per page: store the notifications (never twice: the unique key), and stage in
# the outbox the event of each one stored that is due now, in the same transaction.
_STORE_AND_STAGE = """
WITH page AS (
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], $5::bytea[],
                         $6::uuid[]) AS x(user_id, notification_id, body, deliver_at,
                                          envelope, event_id)
), stored AS (
    INSERT INTO notifications (user_id, notification_id, kind, content_id, platform,
                               window_no, body, created_at, deliver_at)
    SELECT user_id, notification_id, $7, $8, $9, $10, body::jsonb, $11, deliver_at FROM page
    ON CONFLICT DO NOTHING
    RETURNING user_id, notification_id, deliver_at
), staged AS (
    INSERT INTO outbox (topic, key, envelope, event_id, event_type, version, correlation_id)
    SELECT $12, page.user_id, page.envelope, page.event_id, $13, $14, $15
    FROM stored JOIN page USING (user_id, notification_id)
    WHERE stored.deliver_at IS NULL
    RETURNING id, event_id
)
SELECT (SELECT count(*) FROM stored) AS stored, s.id, s.event_id
FROM (SELECT 1) one LEFT JOIN staged s ON true
"""


async def store_and_stage(
    conn: asyncpg.Connection,
    alert: rules.Alert,
    window: int,
    now: datetime,
    planned: list[rules.Planned],
    topic: TopicSpec,
    correlation_id: str | None,
) -> tuple[int, list[tuple[outbox.Staged, rules.Planned]]]:
    """Store a page's notifications and stage the events (`Planned.envelope`, of `topic`) of
    those stored and due now (call inside a transaction; `outbox.flush` them once committed):
    how many were stored, and what to flush with what it was planned from. One already stored
    (a redelivery, or the same alert within the window) is neither stored nor staged again."""
    if not planned:
        return 0, []
    payload = topic.payload
    if payload is None:
        raise ValueError(f"{topic.name} carries no events")
    rows = await conn.fetch(
        _STORE_AND_STAGE,
        [p.user_id for p in planned],
        [p.notification_id for p in planned],
        [p.body for p in planned],
        [p.deliver_at for p in planned],
        [p.envelope for p in planned],
        [p.event_id for p in planned],
        alert.kind.value,
        alert.content_id,
        alert.platform,
        window,
        now,
        topic.name,
        payload.event_type,
        payload.version,
        correlation_id,
    )
    by_event = {p.event_id: p for p in planned}
    staged = []
    for r in rows:
        if r["id"] is None:
            continue
        p = by_event[r["event_id"]]
        staged.append(
            (
                outbox.Staged(
                    r["id"],
                    topic,
                    p.user_id.encode(),
                    p.envelope,
                    headers_for(p.event_id, payload.event_type, payload.version, correlation_id),
                    str(p.event_id),
                ),
                p,
            )
        )
    return int(rows[0]["stored"]) if rows else 0, staged


async def episode_of(
    conn: asyncpg.Connection, content_id: uuid.UUID
) -> tuple[uuid.UUID, int | None] | None:
    """(series, season number) when the title is an episode (migration 0040), else None."""
    row = await conn.fetchrow(
        "SELECT series_id, season_number FROM episodes WHERE canonical_id = $1", content_id
    )
    return None if row is None else (row["series_id"], row["season_number"])


async def title_of(conn: asyncpg.Connection, content_id: uuid.UUID) -> rules.TitleFacts:
    """The title's name and what parental controls judge it by (rating, genres)."""
    row = await conn.fetchrow(
        "SELECT title, doc->>'maturity_rating' AS rating, doc->'genres' AS genres "
        "FROM content WHERE canonical_id = $1",
        content_id,
    )
    if row is None:
        return rules.TitleFacts("", None, [])
    return rules.title_facts(row["title"], row["rating"], row["genres"])


async def release_due(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> list[tuple[str, Notification]]:
    """Queued notifications whose quiet hours are over, taken for delivery (deliver_at
    cleared); SKIP LOCKED lets two workers share the work."""
    rows = await conn.fetch(
        "UPDATE notifications n SET deliver_at = NULL FROM ("
        "  SELECT user_id, notification_id FROM notifications "
        "  WHERE deliver_at IS NOT NULL AND deliver_at <= $1 "
        "  ORDER BY deliver_at LIMIT $2 FOR UPDATE SKIP LOCKED) due "
        "WHERE n.user_id = due.user_id AND n.notification_id = due.notification_id "
        "RETURNING n.user_id, n.body, n.created_at",
        now,
        limit,
    )
    ordered = sorted(rows, key=lambda r: (r["user_id"], r["created_at"]))
    return [(r["user_id"], Notification.model_validate(r["body"])) for r in ordered]


async def inbox_entries(
    db: asyncpg.Pool | asyncpg.Connection, user_ids: Collection[str], limit: int
) -> list[RawEntry]:
    """Each user's newest `limit` delivered notifications, oldest first, with whether read:
    the JSON as stored (no model built: a page refills thousands of users)."""
    rows = await db.fetch(
        "SELECT user_id, notification_id, created_at, body::text AS body, read FROM ("
        "  SELECT user_id, notification_id, body, read_at IS NOT NULL AS read, created_at,"
        "    row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC) AS rn"
        "  FROM notifications WHERE user_id = ANY($1::text[]) AND deliver_at IS NULL) t "
        "WHERE rn <= $2 ORDER BY user_id, created_at",
        list(user_ids),
        limit,
    )
    return [
        (r["user_id"], str(r["notification_id"]), score_at(r["created_at"]), r["body"], r["read"])
        for r in rows
    ]


async def delivered_of(
    db: asyncpg.Pool | asyncpg.Connection, planned: list[rules.Planned]
) -> list[RawEntry]:
    """Those of a page's notifications stored before (a redelivered cause) and delivered:
    their inbox entries as stored."""
    rows = await db.fetch(
        "SELECT n.user_id, n.notification_id, n.created_at, n.body::text AS body,"
        "  n.read_at IS NOT NULL AS read"
        " FROM notifications n JOIN unnest($1::text[], $2::uuid[]) AS p(user_id, notification_id)"
        "  USING (user_id, notification_id) WHERE n.deliver_at IS NULL",
        [p.user_id for p in planned],
        [p.notification_id for p in planned],
    )
    return [
        (r["user_id"], str(r["notification_id"]), score_at(r["created_at"]), r["body"], r["read"])
        for r in rows
    ]


async def mark_read(
    conn: asyncpg.Connection, user_id: str, notification_id: uuid.UUID, at: datetime
) -> bool:
    done = await conn.fetchval(
        "UPDATE notifications SET read_at = coalesce(read_at, $3) "
        "WHERE user_id = $1 AND notification_id = $2 RETURNING true",
        user_id,
        notification_id,
        at,
    )
    return bool(done)


async def oldest_due(db: asyncpg.Pool | asyncpg.Connection, now: datetime) -> datetime | None:
    """The earliest deliver_at of the held notifications already due (the partial index
    notifications_queued answers it from its first entry)."""
    found: datetime | None = await db.fetchval(
        "SELECT min(deliver_at) FROM notifications "
        "WHERE deliver_at IS NOT NULL AND deliver_at <= $1",
        now,
    )
    return found
