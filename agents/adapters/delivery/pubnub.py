"""Realtime delivery through PubNub, with the `pubnub` SDK, behind the `pubnub` breaker.

Order: one user's messages are published one after another, each only once the previous one
was acknowledged; different users go concurrently. When a publish fails, the user's later
messages are not tried: the batch fails as a transient error, the agent loop retries it, and
the messages already sent are skipped by their claims. So a retry never reorders a user's
messages.

At most once: a user's message ids are claimed in Redis, in one transaction, before the first
publish. A publish PubNub certainly did not take (an error status, no connection) releases its
claim and the claims of the user's later messages (not tried), so the retry sends them; one
whose fate is unknown (a timeout after sending) keeps its own, and that message may be lost
rather than sent twice. Clients catch up from the read models (or PubNub's history) on a
resync. Claiming them together matters when two senders hold the same messages (the command
router sends a command and its result itself, the delivery agent gets the staged copies): the
first takes both, so the other never publishes the result while the command is on its way.

Parental limits: a user's channel is heard by every device of the account, whatever profile it
acts as, so an alert some profile of the account may not see goes out as a
`notification_ping` without its title (agreements/notification_controls.pubnub_message). The
account's profiles are read from their Redis read model as the user's messages are sent, once
per user and batch, and only when an alert is among them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import httpx
import redis.asyncio as aioredis
from loguru import logger
from pubnub.enums import PNStatusCategory
from pubnub.pubnub_asyncio import PubNubAsyncio
from pydantic import ValidationError

from agents.adapters.delivery.base import DeliveryRejected, RealtimeUnavailable
from agreements.notification_controls import names_titles, pubnub_message
from agreements.profiles_read_model import read_profiles
from agreements.pubnub_access import pubnub_config
from agreements.sync_realtime import CLAIM_TTL_S, claim_key
from core.config import PubNubSettings
from core.resilience import breakers
from schemas.accounts import Profile
from schemas.sync import RealtimeEvent

# A publish normally takes milliseconds; past REQUEST_TIMEOUT_S (agreements/pubnub_access.py)
# the message is given up (see above).
# Status codes after which the same publish may succeed later.
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _ids(events: list[RealtimeEvent]) -> list[uuid.UUID]:
    return [event.message_id for event in events]


class _Unknown(RealtimeUnavailable):
    """Sent, perhaps: the claim stays, so it is never sent twice."""


class PubNubSink:
    name = "pubnub"

    def __init__(self, settings: PubNubSettings, redis: aioredis.Redis, prefix: str) -> None:
        # With the secret key: publishes are signed, which Access Manager lets through.
        self._pubnub = PubNubAsyncio(pubnub_config(settings, "sync"))
        self._redis = redis
        self._prefix = prefix

    async def deliver(self, events: Sequence[RealtimeEvent]) -> int:
        by_user: dict[str, list[RealtimeEvent]] = {}
        for event in events:
            by_user.setdefault(event.user_id, []).append(event)
        outcomes = await asyncio.gather(
            *(self._deliver_user(user_events) for user_events in by_user.values()),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            # Deterministic refusals first: the loop isolates them; otherwise wait and retry.
            rejected = [f for f in failures if isinstance(f, DeliveryRejected)]
            raise (rejected or failures)[0]
        return sum(o for o in outcomes if isinstance(o, int))

    async def _profiles(self, user_id: str, events: list[RealtimeEvent]) -> list[Profile] | None:
        """The account's profiles when an alert is among its messages (else none are needed);
        None when the read model holds one this code cannot read (then every alert pings)."""
        if not any(names_titles(e.message) for e in events):
            return []
        try:
            return await read_profiles(self._redis, self._prefix, user_id)
        except ValidationError as exc:
            logger.error("profiles of {} unreadable, alerts go out as pings: {}", user_id, exc)
            return None

    async def _deliver_user(self, events: list[RealtimeEvent]) -> int:
        user_id = events[0].user_id
        # Read before claiming: a Redis failure here leaves nothing claimed for the retry.
        profiles = await self._profiles(user_id, events)
        claims = await claim_all(self._redis, self._prefix, user_id, [e.message_id for e in events])
        mine = [event for event, claimed in zip(events, claims, strict=True) if claimed]
        for n, event in enumerate(mine):
            try:
                async with breakers.get("pubnub").guard(ignore=(DeliveryRejected,)):
                    await self._publish(event, profiles)
            except _Unknown:
                logger.warning(
                    "PubNub publish of message {} to {} timed out; not sent again (at most "
                    "once), the user's later messages wait for the retry",
                    event.message_id,
                    event.channel,
                )
                await release(self._redis, self._prefix, user_id, _ids(mine[n + 1 :]))
                raise
            except BaseException:
                await release(self._redis, self._prefix, user_id, _ids(mine[n:]))
                raise
        return len(mine)

    async def _publish(self, event: RealtimeEvent, profiles: list[Profile] | None) -> None:
        body = pubnub_message(event.message, profiles).model_dump(mode="json")
        envelope = await self._pubnub.publish().channel(event.channel).message(body).future()
        if not envelope.is_error():
            return
        status = envelope.status
        code = getattr(status, "status_code", None)
        error = getattr(getattr(status, "error_data", None), "exception", None)
        detail = f"PubNub refused message {event.message_id} to {event.channel}: {error}"
        if code is not None and code not in _RETRYABLE_STATUS:
            raise DeliveryRejected(f"{detail} (HTTP {code})")
        if code is not None or isinstance(error, httpx.ConnectError):
            raise RealtimeUnavailable(detail)
        if status.category is PNStatusCategory.PNCancelledCategory:
            raise asyncio.CancelledError
        raise _Unknown(detail)

    async def close(self) -> None:
        await self._pubnub.stop()


async def claim_all(
    redis: aioredis.Redis, prefix: str, user_id: str, message_ids: list[uuid.UUID]
) -> list[bool]:
    """Claim several messages of one user in one transaction (MULTI; one slot, the user's hash
    tag): per message, True if this call claimed it. Two senders of the same messages (the
    command router and the delivery agent) cannot split them: the first takes every one it
    asks for that was free, so a command's result is never sent by the one while the other is
    still sending the command."""
    if not message_ids:
        return []
    async with redis.pipeline(transaction=True) as pipe:
        for message_id in message_ids:
            pipe.set(claim_key(prefix, user_id, message_id), b"1", nx=True, ex=CLAIM_TTL_S)
        results = await pipe.execute()
    return [bool(r) for r in results]


async def release(
    redis: aioredis.Redis, prefix: str, user_id: str, message_ids: list[uuid.UUID]
) -> None:
    """Undo claims whose delivery certainly failed (or was never tried), so a retry sends them."""
    if message_ids:
        await redis.delete(*(claim_key(prefix, user_id, m) for m in message_ids))
