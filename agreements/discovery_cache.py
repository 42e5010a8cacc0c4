"""Redis key names and lifetimes of the discovery caches, shared by the gateway and the agents.

Keys are "{prefix}:{kind}:{sha256}", the hash taken over canonical JSON of everything that
changes the cached value (docs/RULES.md: "{prefix}:{sha256 of the normalized input}", with the kind
added so the three caches never collide). Canonical JSON means sorted keys, no spaces, and
filters as SearchFilters serialize them (their lists deduplicated and sorted), so the same
request always hashes the same, whoever builds the key.

Result invalidation, by result set: the pages of one query (every page, every page size) cut
one ordered result, so they are dropped together, or a page computed after a change would
repeat or skip titles of a page computed before it. Whoever stores a page adds its key to its
set (`results_set_key`: the query, the filters and the user, without the page) and the set's
key to the index of every subject the page depends on (`results_index_key`): a title, or a
platform or region its filters ask for, where an offer appearing can bring in a title no page
holds yet (agents/discovery/invalidation.py names them). When a subject changes, the agent
deletes every page of every set in its index, the sets, then the index.

A page computed while one of its subjects changed must not be stored after the change dropped
the older pages: each invalidation takes a number from the results clock and marks the subject
changed at that number (`changed_key`); a search reads the clock before it starts and stores
its page only if none of its subjects was marked later (agents/discovery/cache_store).

The gateway only reads result pages (`read_results`); the discovery agent writes everything.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from core.observability.metrics import CACHE_HITS, CACHE_MISSES
from schemas.discovery import SearchFilters, SearchRequested

# docs/RULES.md's TTLs.
INTENT_TTL_S = 600
EMBEDDING_TTL_S = 3600
RESULTS_TTL_S = 1800

INTENT_KIND = "discovery:intent"
EMBEDDING_KIND = "discovery:qembed"
RESULTS_KIND = "discovery:results"
RESULTS_SET_KIND = "discovery:result-set"
RESULTS_INDEX_KIND = "discovery:result-sets-of"
RESULTS_CLOCK_KIND = "discovery:results-clock"
CHANGED_KIND = "discovery:changed"
# Labels of cache_hits_total / cache_misses_total.
INTENT_CACHE = "discovery_intent"
EMBEDDING_CACHE = "discovery_embedding"
RESULTS_CACHE = "discovery_results"
# A change mark must outlive every search that started before it (each takes well under a
# second, or is skipped as stale after a few): five minutes is ample and keeps few keys.
CHANGE_MARK_TTL_S = 300

# Part of every hashed input: bump it when a cached value's shape or meaning changes, and
# the old entries are simply never read again. 2: pages of one query cut one result, and a
# bare year in a query is read as a year.
KEY_VERSION = 2


def normalize_query(text: str) -> str:
    """'  Sci-Fi   like  AMÉLIE ' -> 'sci-fi like amélie': case folded, whitespace collapsed
    and trimmed, accents kept (NFC, so a composed and a decomposed é are the same key)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _key(prefix: str, kind: str, value: dict[str, Any]) -> str:
    digest = hashlib.sha256(_canonical_json({"v": KEY_VERSION, **value})).hexdigest()
    return f"{prefix}:{kind}:{digest}"


def intent_key(prefix: str, query: str) -> str:
    return _key(prefix, INTENT_KIND, {"q": normalize_query(query)})


def embedding_key(prefix: str, text: str, model: str) -> str:
    """The cached vector of a query under one embedding model. Embed the normalized text,
    so the vector stored under a key is the one every spelling of that key would get."""
    return _key(prefix, EMBEDDING_KIND, {"q": normalize_query(text), "model": model})


def results_key(
    prefix: str,
    query: str,
    filters: SearchFilters,
    page: int,
    page_size: int,
    user_id: str | None = None,
) -> str:
    """One page of results. Pass user_id only for a personalized search: anonymous searches
    share their cache, personalized ones do not. The region is part of the filters."""
    return _key(
        prefix,
        RESULTS_KIND,
        {**_result(query, filters, user_id), "page": page, "page_size": page_size},
    )


def _result(query: str, filters: SearchFilters, user_id: str | None) -> dict[str, Any]:
    """What decides a result, whichever page of it is asked for."""
    return {
        "q": normalize_query(query),
        # Defaults left out: SearchFilters() and SearchFilters(genres=[]) are one request.
        "filters": filters.model_dump(mode="json", exclude_defaults=True),
        "user": user_id,
    }


def request_results_key(prefix: str, request: SearchRequested) -> str:
    """The result page a search request asks for (the gateway and the agent agree on it)."""
    return results_key(
        prefix, request.query, request.filters, request.page, request.page_size, request.user_id
    )


def request_results_set_key(prefix: str, request: SearchRequested) -> str:
    """The set of the cached pages of the result a search request asks a page of."""
    return _key(prefix, RESULTS_SET_KIND, _result(request.query, request.filters, request.user_id))


def results_index_key(prefix: str, subject: str) -> str:
    """The set of the result sets with a page depending on this subject."""
    return f"{prefix}:{RESULTS_INDEX_KIND}:{subject}"


def results_clock_key(prefix: str) -> str:
    return f"{prefix}:{RESULTS_CLOCK_KIND}"


def changed_key(prefix: str, subject: str) -> str:
    """The results-clock number at which this subject last changed (see the module doc)."""
    return f"{prefix}:{CHANGED_KIND}:{subject}"


def key_digest(key: str) -> str:
    """The hash part of a cache key: the record key of a search request on its topic."""
    return key.rsplit(":", 1)[-1]


async def read_results(redis: aioredis.Redis, key: str) -> bytes | None:
    """A cached SearchResponse as JSON bytes, or None; counted as a hit or a miss."""
    body: bytes | None = await redis.get(key)
    if body is None:
        CACHE_MISSES.labels(RESULTS_CACHE).inc()
        logger.debug("discovery results cache miss {}", key)
        return None
    CACHE_HITS.labels(RESULTS_CACHE).inc()
    logger.debug("discovery results cache hit {}", key)
    return body
