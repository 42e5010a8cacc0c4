"""The notifications slice's tables (migration 0060): preferences, the notifications raised
(the inbox's truth and the "never twice" key), and the watchers of a title through the
reverse index on sync_watchlist."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

import asyncpg

from agents.notifications import rules
from agreements.notifications_read_model import RawEntry, score_at
from schemas.content import AvailabilityType
from schemas.notifications import (
    Notification,
    NotificationPreferences,
    PreferencesChanged,
    PreferencesDocument,
    QuietHours,
)

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
           AS recent,
       -- Whether they have a delivered notification: if not, their inbox will be the new one
       -- alone, nothing to refill it from. Asked here, with the page read ahead, rather than
       -- in the store's RETURNING, one index probe a row on the fan-out's critical path. A
       -- scalar subquery with LIMIT, not EXISTS: the planner may answer an EXISTS by hashing
       -- every delivered notification, a scan of the table a page that grows with it.
       (SELECT true FROM notifications d
        WHERE d.user_id = w.user_id AND d.deliver_at IS NULL LIMIT 1) IS NOT NULL AS delivered
FROM sync_watchlist w JOIN notification_preferences p USING (user_id)
-- The keyset bound on both sides of the join (the planner does not carry an inequality across
-- it): a merge join, which it may choose once `notifications` is analyzed mid-fan-out, then
-- starts reading the preferences at the page rather than at the first user, each page
-- reading more (0.35 s a page halfway through a million users, rather than 0.06 s).
WHERE w.content_id = $1 AND w.visible AND w.user_id > $2 AND p.user_id > $2
  AND p.region = $3 AND $4 = ANY(p.services) AND $5 = ANY(p.alerts)
  AND p.offer_types && $6::text[]
ORDER BY w.user_id LIMIT $7
"""


async def candidates(
    conn: asyncpg.Pool | asyncpg.Connection,
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
            delivered=r["delivered"],
        )
        for r in rows
    ]


# One statement per page: store the notifications, never twice (the primary key: the id is
# uuid5 of user, title, platform, kind and window). No outbox row per notification: what a
# page stored that is due now is sent after the commit, and a cause redelivered after a crash
# in between sends again the pages marked unsent (`mark_unsent`).
_STORE = """
INSERT INTO notifications (user_id, notification_id, kind, content_id, platform,
                           window_no, body, created_at, deliver_at)
SELECT user_id, notification_id, $5, $6, $7, $8, body::jsonb, $9, deliver_at
FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[])
    AS x(user_id, notification_id, body, deliver_at)
ON CONFLICT DO NOTHING
RETURNING notification_id, deliver_at IS NULL AS due
"""


async def store_page(
    conn: asyncpg.Connection,
    alert: rules.Alert,
    window: int,
    now: datetime,
    planned: list[rules.Planned],
) -> tuple[int, list[rules.Planned]]:
    """Store a page's notifications: how many were stored, and those of them due now (to
    send once committed). One already stored (a redelivery, or the same alert within the
    window) is not stored again."""
    if not planned:
        return 0, []
    rows = await conn.fetch(
        _STORE,
        [p.user_id for p in planned],
        [p.notification_id for p in planned],
        [p.body for p in planned],
        [p.deliver_at for p in planned],
        alert.kind.value,
        alert.content_id,
        alert.platform,
        window,
        now,
    )
    by_id = {p.notification_id: p for p in planned}
    return len(rows), [by_id[note_id] for note_id, due in rows if due]


async def episode_of(
    conn: asyncpg.Connection, content_id: uuid.UUID
) -> tuple[uuid.UUID, int | None] | None:
    """(series, season number) when the title is an episode (migration 0040), else None."""
    row = await conn.fetchrow(
        "SELECT series_id, season_number FROM episodes WHERE canonical_id = $1", content_id
    )
    return None if row is None else (row["series_id"], row["season_number"])


async def title_of(
    conn: asyncpg.Pool | asyncpg.Connection, content_id: uuid.UUID
) -> rules.TitleFacts:
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


async def mark_unsent(
    conn: asyncpg.Connection,
    cause_id: uuid.UUID,
    alert: rules.Alert,
    window: int,
    now: datetime,
    users: list[str],
) -> int:
    """Record, in the page's transaction, that its notifications due now (of these users,
    created `now`) are not sent yet; `sent` deletes the mark."""
    marked: int = await conn.fetchval(
        "INSERT INTO notification_pages_unsent (cause_id, content_id, platform, kind,"
        " window_no, created_at, first_user, last_user)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        cause_id,
        alert.content_id,
        alert.platform,
        alert.kind.value,
        window,
        now,
        min(users),
        max(users),
    )
    return marked


async def sent(db: asyncpg.Pool | asyncpg.Connection, page: int) -> None:
    await db.execute("DELETE FROM notification_pages_unsent WHERE id = $1", page)


class UnsentPage(NamedTuple):
    id: int
    # When the page was raised (its rows' created_at): before any of its sends.
    stored_at: datetime
    entries: list[RawEntry]


async def unsent_of(db: asyncpg.Pool | asyncpg.Connection, cause_id: uuid.UUID) -> list[UnsentPage]:
    """The pages an earlier try of this cause stored and may not have sent (it was killed
    between), each with its delivered notifications' inbox entries as stored."""
    pages = await db.fetch(
        "SELECT * FROM notification_pages_unsent WHERE cause_id = $1 ORDER BY id", cause_id
    )
    out = []
    for page in pages:
        rows = await db.fetch(
            "SELECT user_id, notification_id, created_at, body::text AS body,"
            "  read_at IS NOT NULL AS read FROM notifications"
            " WHERE user_id BETWEEN $1 AND $2 AND content_id = $3 AND platform = $4"
            "  AND kind = $5 AND window_no = $6 AND created_at = $7 AND deliver_at IS NULL"
            " ORDER BY user_id",
            page["first_user"],
            page["last_user"],
            page["content_id"],
            page["platform"],
            page["kind"],
            page["window_no"],
            page["created_at"],
        )
        entries = [
            (
                r["user_id"],
                str(r["notification_id"]),
                score_at(r["created_at"]),
                r["body"],
                r["read"],
            )
            for r in rows
        ]
        out.append(UnsentPage(page["id"], page["created_at"], entries))
    return out


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


async def oldest_unsent(db: asyncpg.Pool | asyncpg.Connection) -> datetime | None:
    """When the oldest page still marked unsent was stored (the marks are a handful of rows:
    those in flight, and those of causes that failed after their commit)."""
    found: datetime | None = await db.fetchval(
        "SELECT min(created_at) FROM notification_pages_unsent"
    )
    return found
