"""Realtime delivery through PubNub, with the `pubnub` SDK, behind the `pubnub` breaker.

Order: one user's messages are published one after another, each only once the previous one
was acknowledged; different users go concurrently. When a publish fails, the user's later
messages are not tried: the batch fails as a transient error, the agent loop retries it, and
the messages already sent are skipped by their claims. So a retry never reorders a user's
messages.

At most once: a message id is claimed in Redis before its publish. A publish PubNub certainly
did not take (an error status, no connection) releases the claim so the retry sends it; one
whose fate is unknown (a timeout after sending) keeps it, and the message may be lost rather
than sent twice. Clients catch up from the read models (or PubNub's history) on a resync.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence

import httpx
import redis.asyncio as aioredis
from loguru import logger
from pubnub.enums import PNStatusCategory
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

from agents.adapters.delivery.base import DeliveryRejected, RealtimeUnavailable
from agreements.sync_realtime import claim, release
from core.config import PubNubSettings, secret_value
from core.resilience import breakers
from schemas.sync import RealtimeEvent

# A publish normally takes milliseconds; past this the message is given up (see above).
PUBLISH_TIMEOUT_S = 5
# Status codes after which the same publish may succeed later.
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class _Unknown(RealtimeUnavailable):
    """Sent, perhaps: the claim stays, so it is never sent twice."""


def _config(settings: PubNubSettings) -> PNConfiguration:
    config = PNConfiguration()
    config.publish_key = secret_value(settings.publish_key)
    config.subscribe_key = settings.subscribe_key
    # The SDK wants an id per client; one per worker process.
    config.user_id = f"mgw-sync-{socket.gethostname()}-{os.getpid()}"
    if settings.origin:
        config.origin = settings.origin
    config.ssl = settings.ssl
    config.enable_subscribe = False
    config.non_subscribe_request_timeout = PUBLISH_TIMEOUT_S
    config.connect_timeout = PUBLISH_TIMEOUT_S
    # Locked once the client is made (the SDK deprecates mutable configurations).
    config.disable_config_locking = False
    return config


class PubNubSink:
    name = "pubnub"

    def __init__(self, settings: PubNubSettings, redis: aioredis.Redis, prefix: str) -> None:
        self._pubnub = PubNubAsyncio(_config(settings))
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

    async def _deliver_user(self, events: list[RealtimeEvent]) -> int:
        sent = 0
        for event in events:
            if not await claim(self._redis, self._prefix, event.user_id, event.message_id):
                continue
            try:
                async with breakers.get("pubnub").guard(ignore=(DeliveryRejected,)):
                    await self._publish(event)
            except _Unknown:
                logger.warning(
                    "PubNub publish of message {} to {} timed out; not sent again (at most "
                    "once), the user's later messages wait for the retry",
                    event.message_id,
                    event.channel,
                )
                raise
            except BaseException:
                await release(self._redis, self._prefix, event.user_id, event.message_id)
                raise
            sent += 1
        return sent

    async def _publish(self, event: RealtimeEvent) -> None:
        body = event.message.model_dump(mode="json")
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
