"""Names of the gateway's cached responses, shared with the readmodel agents that invalidate
them when a title changes (agents/readmodel/store.py `invalidate_content`; agents never import
the gateway). No I/O."""

from __future__ import annotations

CACHE_LABEL = "response"


def index_key(prefix: str, content_id: str) -> str:
    return f"{prefix}:respcache:content:{content_id.lower()}"


def generation_key(prefix: str, content_id: str) -> str:
    return f"{prefix}:respcache:contentgen:{content_id.lower()}"


def invalidation_channel(prefix: str) -> str:
    """Pub/Sub channel naming each invalidated title, for the gateways' in-process tier."""
    return f"{prefix}:respcache:invalidated"
