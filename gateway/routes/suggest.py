"""Search-as-you-type: `GET /api/v1/search/suggest?q=`, up to 10 titles and people whose names
start like the text typed, typos tolerated as the search tolerates them (docs/DISCOVERY.md).

Answered from the gateway's own copy of the index the discovery agents publish in Redis
(agreements/suggest_index.py): no round trip to an agent, no PostgreSQL. The copy is checked
against the published fingerprint at most once per CHECK_INTERVAL_S and replaced, built off
the event loop, when the catalog changed; requests meanwhile use the previous one.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from agreements.parental_controls import refusal
from agreements.suggest_index import (
    MAX_SUGGESTIONS,
    Entry,
    SuggestIndex,
    index_key,
    index_version_key,
)
from core.resilience.fastredis import REDIS_ERRORS
from gateway.errors import error_response
from gateway.profiles import HEADER_PARAMETER, UNKNOWN_PROFILE_RESPONSE, acting_limits
from gateway.query_params import query_error, unknown_parameters
from schemas.accounts import ProfileLimits
from schemas.discovery import MAX_SUGGEST_QUERY_LENGTH, Suggestion, SuggestResponse

router = APIRouter(prefix="/api/v1", tags=["discovery"])

CHECK_INTERVAL_S = 1.0
# A limited profile's suggestions are filtered from this many times the usual list.
RESTRICTED_DEPTH = 5
PARAMETERS = {
    "q": (
        {"type": "string", "minLength": 1, "maxLength": MAX_SUGGEST_QUERY_LENGTH},
        "what the user has typed so far: 'star wa', 'spielb', 'godfahter'",
    )
}


class SuggestHolder:
    """The gateway process's copy of the published index."""

    def __init__(self) -> None:
        self.index: SuggestIndex | None = None
        self.version: bytes | None = None
        self.checked_at = float("-inf")
        self.refreshing: asyncio.Task[None] | None = None

    async def current(self, redis: object, prefix: str) -> SuggestIndex | None:
        now = time.monotonic()
        if now - self.checked_at >= CHECK_INTERVAL_S and (
            self.refreshing is None or self.refreshing.done()
        ):
            self.checked_at = now
            self.refreshing = asyncio.create_task(self._refresh(redis, prefix))
        if self.index is None and self.refreshing is not None:
            await asyncio.shield(self.refreshing)  # the first copy: nothing to answer before it
        return self.index

    async def _refresh(self, redis: object, prefix: str) -> None:
        version = await redis.get(index_version_key(prefix))  # type: ignore[attr-defined]
        if version is None or version == self.version:
            return
        data = await redis.get(index_key(prefix))  # type: ignore[attr-defined]
        if data is None:
            return
        # Building the lookup structures of 100,000 titles takes a second of CPU: off the loop.
        self.index = await asyncio.to_thread(SuggestIndex.decode, data)
        self.version = version


def suggestions_for(index: SuggestIndex, query: str, limits: ProfileLimits | None) -> list[Entry]:
    """What the box shows: under a profile's limits, titles beyond them are left out, from a
    deeper list so the box still fills; people are names, not titles, and stay."""
    if limits is None:
        return index.suggest(query)
    return [
        e
        for e in index.suggest(query, MAX_SUGGESTIONS * RESTRICTED_DEPTH)
        if e.kind != "title" or refusal(e.maturity_rating, e.genres, limits) is None
    ][:MAX_SUGGESTIONS]


def _holder(request: Request) -> SuggestHolder:
    state = request.app.state
    holder = getattr(state, "suggest_index", None)
    if holder is None:
        holder = state.suggest_index = SuggestHolder()
    return holder


@router.get(
    "/search/suggest",
    response_model=SuggestResponse,
    summary="Suggest titles and people as the user types",
    responses={
        200: {
            "description": "up to 10 titles and people, those starting with the text first, "
            "then those with fewer typos, then fewer words, then the most popular; none until "
            "the discovery agents have published their first index"
        },
        422: {"description": "`q` missing, empty or too long, or an unknown parameter"},
        **UNKNOWN_PROFILE_RESPONSE,
        503: {"description": "Redis is unavailable; retry"},
    },
    openapi_extra={
        "parameters": [
            HEADER_PARAMETER,
            *(
                {
                    "name": name,
                    "in": "query",
                    "required": True,
                    "schema": schema,
                    "description": text,
                }
                for name, (schema, text) in PARAMETERS.items()
            ),
        ]
    },
)
async def suggest(request: Request) -> Response:
    params = request.query_params
    errors = unknown_parameters(params, PARAMETERS)
    query = params.get("q")
    if query is None:
        errors.append(query_error("q", "the text typed is required", "missing"))
    elif not 1 <= len(query) <= MAX_SUGGEST_QUERY_LENGTH or len(params.getlist("q")) > 1:
        errors.append(query_error("q", f"one text of 1 to {MAX_SUGGEST_QUERY_LENGTH} characters"))
    if errors:
        raise RequestValidationError(errors)
    assert query is not None
    prefix = request.app.state.settings.redis.key_prefix
    try:
        index = await _holder(request).current(request.app.state.redis, prefix)
        limits = await acting_limits(request)
    except REDIS_ERRORS as exc:
        return error_response(
            503,
            "cache_unavailable",
            f"the suggestion index is unreachable ({type(exc).__name__}); retry shortly",
            request,
            headers={"Retry-After": "1"},
        )
    found = suggestions_for(index, query, limits) if index is not None else []
    body = SuggestResponse(
        query=query,
        suggestions=[
            Suggestion(
                kind=e.kind,  # type: ignore[arg-type]
                text=e.text,
                canonical_id=e.canonical_id,  # type: ignore[arg-type]
                release_year=e.release_year,
                titles=e.titles,
            )
            for e in found
        ],
    )
    return Response(
        body.__pydantic_serializer__.to_json(body),
        media_type="application/json",
        headers={"Cache-Control": "no-cache"},
    )
