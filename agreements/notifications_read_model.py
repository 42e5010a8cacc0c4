"""The notifications read models in Redis, shared by the notifications agents (write) and the
gateway (read) (docs/NOTIFICATIONS.md):

- `{prefix}:notify:prefs:{user_id}`: the user's `PreferencesDocument` as JSON, rendered when a
  change is applied and, when Redis lost it, on the gateway's miss (`notifications.lookup`);
- `{prefix}:notify:inbox:{user_id}`: a sorted set of notification ids, scored by creation time
  in microseconds (the paging cursor), at most `INBOX_KEPT` kept;
- `{prefix}:notify:items:{user_id}`: a hash notification id -> the `Notification` JSON;
- `{prefix}:notify:unread:{user_id}`: the set of unread notification ids.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import redis.asyncio as aioredis

from schemas.notifications import (
    InboxEntry,
    InboxPage,
    Notification,
    PreferencesDocument,
)

INBOX_KEPT = 200
# Keyed per user; a user who hears nothing for this long reloads nothing (the inbox is
# a convenience view: PostgreSQL keeps every notification).
TTL_S = 30 * 86_400


def prefs_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:notify:prefs:{user_id}"


def _inbox(prefix: str, user_id: str) -> tuple[str, str, str]:
    base = f"{prefix}:notify"
    return f"{base}:inbox:{user_id}", f"{base}:items:{user_id}", f"{base}:unread:{user_id}"


async def write_preferences(
    redis: aioredis.Redis,
    prefix: str,
    documents: Iterable[PreferencesDocument],
    *,
    only_missing: bool = False,
) -> None:
    """`only_missing` for a refill: what it read from the table may be older than a change
    applied meanwhile, which has then written its document already; a change always writes."""
    async with redis.pipeline(transaction=False) as pipe:
        for doc in documents:
            pipe.set(prefs_key(prefix, doc.user_id), doc.model_dump_json(), nx=only_missing)
        await pipe.execute()


async def read_preferences(
    redis: aioredis.Redis, prefix: str, user_id: str
) -> tuple[PreferencesDocument | None, bool]:
    """The user's preferences and whether Redis can answer for them: False when it holds
    none and no agent found, a moment ago, that the user has set none (lost or never
    rendered: ask the agents, as for the inbox)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(prefs_key(prefix, user_id))
        pipe.exists(no_preferences_key(prefix, user_id))
        raw, none = await pipe.execute()
    if raw is None:
        return None, bool(none)
    return PreferencesDocument.model_validate_json(raw), True


# Add a notification once: a redelivered one (already in the hash) changes nothing, so a
# notification read in between does not come back unread. The "no inbox" mark goes: it was
# true before this notification, and an inbox lost after it must be refilled, not answered
# empty. KEYS: inbox, items, unread, the mark. ARGV: id, score, json, kept, ttl.
_ADD = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('DEL', KEYS[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(ARGV[4]) then
  local old = redis.call('ZRANGE', KEYS[1], 0, n - tonumber(ARGV[4]) - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - tonumber(ARGV[4]) - 1)
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('SREM', KEYS[3], unpack(old))
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 1
"""


def score_of(notification: Notification) -> int:
    return int(notification.created_at.timestamp() * 1_000_000)


async def missing_inboxes(
    redis: aioredis.Redis, prefix: str, user_ids: Collection[str]
) -> set[str]:
    """Those of these users Redis holds no inbox for (new, expired, or lost)."""
    users = list(user_ids)
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in users:
            pipe.exists(_inbox(prefix, user_id)[0])
        found = await pipe.execute()
    return {u for u, n in zip(users, found, strict=True) if not n}


async def add_many(
    redis: aioredis.Redis, prefix: str, entries: Iterable[tuple[str, Notification, bool]]
) -> None:
    """Add (user, notification, read) entries in order, in one round trip; each is added once
    (`_ADD`), and one marked read is taken out of the unread set."""
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, notification, read in entries:
            keys = _inbox(prefix, user_id)
            pipe.eval(
                _ADD,
                4,
                *keys,
                no_inbox_key(prefix, user_id),
                str(notification.notification_id),
                score_of(notification),
                notification.model_dump_json(),
                INBOX_KEPT,
                TTL_S,
            )
            if read:
                pipe.srem(keys[2], str(notification.notification_id))
        await pipe.execute()


async def mark_read(redis: aioredis.Redis, prefix: str, user_id: str, notification_id: str) -> None:
    await redis.srem(_inbox(prefix, user_id)[2], notification_id)


async def read_inbox(
    redis: aioredis.Redis, prefix: str, user_id: str, limit: int, before: int | None
) -> InboxPage:
    """Newest first, `limit` entries scored below `before` (None: from the newest)."""
    inbox, items, unread = _inbox(prefix, user_id)
    top = f"({before}" if before is not None else "+inf"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrevrangebyscore(inbox, top, "-inf", start=0, num=limit + 1, withscores=True)
        pipe.scard(unread)
        ranked, unread_count = await pipe.execute()
    page = ranked[:limit]
    ids = [member for member, _ in page]
    bodies = await redis.hmget(items, ids) if ids else []
    flags = await redis.smismember(unread, ids) if ids else []
    entries = [
        InboxEntry(**Notification.model_validate_json(body).model_dump(), read=not flag)
        for body, flag in zip(bodies, flags, strict=True)
        if body is not None
    ]
    cursor = str(int(page[-1][1])) if len(ranked) > limit else None
    return InboxPage(user_id=user_id, unread=unread_count, items=entries, next_cursor=cursor)


async def read_inbox_allowed(
    redis: aioredis.Redis,
    prefix: str,
    user_id: str,
    limit: int,
    before: int | None,
    allowed: Callable[[Notification], bool],
) -> InboxPage:
    """As read_inbox, of only the notifications `allowed` passes (a profile's parental
    controls): the inbox holds at most INBOX_KEPT, so it is read whole and filtered before it
    is paged. Pages, cursors and the unread count are then those of the allowed entries."""
    inbox, items, unread = _inbox(prefix, user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrevrangebyscore(inbox, "+inf", "-inf", withscores=True)
        pipe.hgetall(items)
        pipe.smembers(unread)
        ranked, bodies, unread_ids = await pipe.execute()
    shown: list[tuple[InboxEntry, int]] = []
    unread_count = 0
    for member, score in ranked:
        body = bodies.get(member)
        if body is None:
            continue
        note = Notification.model_validate_json(body)
        if not allowed(note):
            continue
        flag = member in unread_ids
        unread_count += flag
        if before is None or score < before:
            shown.append((InboxEntry(**note.model_dump(), read=not flag), int(score)))
    page = shown[:limit]
    cursor = str(page[-1][1]) if len(shown) > limit else None
    return InboxPage(
        user_id=user_id, unread=unread_count, items=[e for e, _ in page], next_cursor=cursor
    )


# "This user has no delivered notification", remembered briefly after an agent looked: a user
# never notified has no inbox in Redis either, and without it every GET of theirs would ask
# the agents again. Short, so an inbox lost right after still comes back within a minute
# (an inbox written meanwhile is read first: the mark only answers for a missing one).
NO_INBOX_TTL_S = 60


def no_inbox_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:notify:none:{user_id}"


async def inbox_known(redis: aioredis.Redis, prefix: str, user_id: str) -> bool:
    """Whether Redis can answer for this user's inbox: it holds it, or an agent found the
    user has none a moment ago. False: not loaded (lost, expired), ask the agents."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(_inbox(prefix, user_id)[0])
        pipe.exists(no_inbox_key(prefix, user_id))
        held, none = await pipe.execute()
    return bool(held or none)


async def remember_no_inbox(redis: aioredis.Redis, prefix: str, user_ids: Iterable[str]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.set(no_inbox_key(prefix, user_id), b"1", ex=NO_INBOX_TTL_S)
        await pipe.execute()


def no_preferences_key(prefix: str, user_id: str) -> str:
    """The same brief mark as `no_inbox_key`, for a user who has set no preferences."""
    return f"{prefix}:notify:noprefs:{user_id}"


async def remember_no_preferences(
    redis: aioredis.Redis, prefix: str, user_ids: Iterable[str]
) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.set(no_preferences_key(prefix, user_id), b"1", ex=NO_INBOX_TTL_S)
        await pipe.execute()
