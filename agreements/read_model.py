"""Names of the Redis read models, shared by the agents that write them and the gateway that
serves them (the gateway never reads Postgres). No I/O: each side reads or writes with its
client."""

from __future__ import annotations

import uuid

STATE_READY = "ready"
STATE_REBUILDING = "rebuilding"
# How long a title an agent found missing is answered 404 without asking again.
ABSENT_TTL_S = 60


def document_key(prefix: str, canonical_id: uuid.UUID | str) -> str:
    return f"{prefix}:content:{canonical_id}"


def series_key(prefix: str, series_id: uuid.UUID | str) -> str:
    """A series' seasons, episode counts and platforms (agents/readmodel/series.py)."""
    return f"{prefix}:series:{series_id}"


def state_key(prefix: str) -> str:
    return f"{prefix}:readmodel:state"


def absent_key(prefix: str, canonical_id: uuid.UUID | str) -> str:
    return f"{prefix}:content-absent:{canonical_id}"


def reply_channel(prefix: str, request_id: uuid.UUID | str) -> str:
    return f"{prefix}:reply:{request_id}"
