"""Sync reads: a user's watchlist, progress or devices from the Redis read model, and on a miss
from the sync agent over Kafka (`sync.lookup`), as content reads do (gateway/lookup.py).

A missing document means "not loaded" (Redis lost it, it expired, or the user is new), never
"empty": the agent writes an empty document for a user without data. So the gateway asks the
agent rather than answer an empty list while the read model is being rebuilt.
"""

from __future__ import annotations

from fastapi import Request, Response

from contracts.sync_read_model import read_document
from gateway.lookup import LookupTimeout, new_reply_channel, request_reply
from schemas.sync import SyncLookupRequested, SyncView
from topics.registry import SYNC_LOOKUP

# Per-user state changes any second: never kept by a browser or a shared cache.
NO_STORE = {"Cache-Control": "no-store"}


async def read_view(request: Request, view: SyncView, user_id: str) -> bytes:
    """The user's document of `view` (JSON bytes)."""
    app = request.app
    settings = app.state.settings
    redis, prefix = app.state.redis, settings.redis.key_prefix
    document = await read_document(redis, prefix, view, user_id)
    if document is not None:
        return document
    if not settings.gateway.lookup_on_miss:
        raise LookupTimeout(f"the {view.value} of {user_id} is not in the read model")
    return await ask_sync_agent(request, view, user_id, settings.gateway.lookup_timeout_s)


async def ask_sync_agent(request: Request, view: SyncView, user_id: str, timeout_s: float) -> bytes:
    app = request.app
    prefix = app.state.settings.redis.key_prefix
    return await request_reply(
        app.state.redis,
        app.state.publisher,
        SYNC_LOOKUP,
        SyncLookupRequested(user_id=user_id, view=view, reply_channel=new_reply_channel(prefix)),
        key=user_id,
        timeout_s=timeout_s,
        unanswered=LookupTimeout(
            f"no sync agent answered for the {view.value} of {user_id} in {timeout_s:g} s"
        ),
    )


def json_document(body: bytes) -> Response:
    """A user's document (JSON bytes) as the answer, never stored by a cache."""
    return Response(body, media_type="application/json", headers=NO_STORE)
