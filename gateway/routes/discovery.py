"""Natural-language search: `GET /api/v1/search?q=...`, answered from the Redis result cache; a
miss is asked of the discovery agent over Kafka (`discovery.search`, request/reply) and the
answer heard on a Redis pub/sub channel named in the request (the gateway never reads
PostgreSQL or the vector store). docs/DISCOVERY.md has the whole path.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from agreements.discovery_cache import key_digest, read_results, request_results_key
from agreements.parental_controls import within_limits
from agreements.read_model import reply_channel
from core.resilience.fastredis import REDIS_ERRORS
from gateway.auth.dependencies import resolve_principal
from gateway.errors import error_response
from gateway.fast_lane import MARKER as FAST_LANE
from gateway.lookup import AGENT_FAILED_RESPONSE, request_reply
from gateway.profiles import HEADER_PARAMETER, UNKNOWN_PROFILE_RESPONSE, acting_limits
from gateway.query_params import any_case, query_error, unknown_parameters
from schemas.content import MaturityRating
from schemas.discovery import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_QUERY_LENGTH,
    RATING_MAX,
    RATING_MIN,
    SEARCHABLE_CONTENT_TYPES,
    YEAR_MAX,
    YEAR_MIN,
    SearchRequested,
    SearchResponse,
)
from topics.registry import DISCOVERY_SEARCH

router = APIRouter(prefix="/api/v1", tags=["discovery"])

CACHE_HEADER = "X-Search-Cache"
# Pages change when titles do; the agents drop them from the result cache then, but a
# shared HTTP cache (or the gateway's response cache) would keep serving them.
_NO_STORE = {"Cache-Control": "no-cache"}


class SearchTimeout(RuntimeError):
    """No discovery agent answered in time."""


# name: (OpenAPI schema, description). Lists may repeat the parameter or separate by commas;
# blank items are skipped. Genre names: letters, digits, _, -, & and spaces ("sci-fi" is
# sci_fi, "Action & Adventure" is action_and_adventure); a platform's name must hold a letter,
# a digit or + ("Disney+" is disney_plus).
_GENRE_ITEMS = r"^[A-Za-z0-9_ ,&-]*$"
_PLATFORM = r"(?: *|[A-Za-z0-9_ +-]*[A-Za-z0-9+][A-Za-z0-9_ +-]*)"
_PLATFORM_ITEMS = rf"^{_PLATFORM}(?:,{_PLATFORM})*$"
_GENRE_IDS = (
    "genre ids or names of letters, digits, _, -, & and spaces "
    "(lower-cased: Sci-Fi is sci_fi, Action & Adventure is action_and_adventure)"
)


# Comma-separated content types in any case (blank items skipped, as in the other lists).
_ONE_TYPE = any_case(SEARCHABLE_CONTENT_TYPES).removeprefix("^").removesuffix("$")
_CONTENT_TYPE = rf"^ *(?:{_ONE_TYPE})? *(?:, *(?:{_ONE_TYPE})? *)*$"

_LIST_ITEMS = {
    "content_type": "content types, any case: "
    + ", ".join(SEARCHABLE_CONTENT_TYPES)
    + " (an episode is found as its series)",
    "genres": _GENRE_IDS,
    "blocked_genres": _GENRE_IDS,
    "platforms": "platform names of letters, digits, _, -, + and spaces (Disney+ is disney_plus)",
}
_GENRES = {"type": "array", "items": {"type": "string", "pattern": _GENRE_ITEMS}}
_PLATFORMS = {"type": "array", "items": {"type": "string", "pattern": _PLATFORM_ITEMS}}
PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "q": (
        # \S: the text is trimmed, and an empty one is refused.
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_QUERY_LENGTH,
            # Python's whitespace, which the text is trimmed of, is ECMAScript's \s and more.
            "pattern": r"[^\s\x1c-\x1f\x85]",
        },
        "what to find, in plain words: 'something funny and animated like Shrek on Netflix "
        "from the 2000s'",
    ),
    "genres": (_GENRES, "only titles of one of these genres (canonical ids or names: sci-fi)"),
    "platforms": (
        _PLATFORMS,
        "only titles offered on one of these platforms (netflix, prime_video, Disney+)",
    ),
    "region": (
        {"type": "string", "pattern": "^[A-Za-z]{2}$"},
        "ISO 3166-1 alpha-2: the platforms must offer the title there",
    ),
    "year_from": (
        {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX},
        "released in or after",
    ),
    "year_to": (
        {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX},
        "released in or before",
    ),
    "rating_min": (
        {"type": "number", "minimum": RATING_MIN, "maximum": RATING_MAX},
        "average rating at least",
    ),
    "rating_max": (
        {"type": "number", "minimum": RATING_MIN, "maximum": RATING_MAX},
        "average rating at most",
    ),
    "content_rating_limit": (
        {"type": "string", "pattern": any_case(r.value for r in MaturityRating)},
        "the highest maturity rating shown, in any case: "
        + ", ".join(r.value for r in MaturityRating)
        + "; unrated titles are not shown under a limit",
    ),
    "blocked_genres": (_GENRES, "never titles of these genres"),
    "content_type": (
        {"type": "array", "items": {"type": "string", "pattern": _CONTENT_TYPE}},
        "only titles of one of these content types: "
        + ", ".join(SEARCHABLE_CONTENT_TYPES)
        + " (a series is found by its own title and by its episodes', which are shown as "
        "their series)",
    ),
    "page": ({"type": "integer", "minimum": 1, "default": 1}, "page number, from 1"),
    "page_size": (
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
        "results per page",
    ),
}
_LISTS = ("genres", "platforms", "blocked_genres", "content_type")
# SearchFilters' bound on blocked genres (every canonical genre).
MAX_BLOCKED_GENRES = 18
_INTS = ("year_from", "year_to", "page", "page_size")
_FLOATS = ("rating_min", "rating_max")
# Where a field of SearchRequested comes from, for errors that name what the client sent.
_SOURCE = {
    "query": "q",
    "filters.genres": "genres",
    "filters.platforms": "platforms",
    "filters.blocked_genres": "blocked_genres",
    "filters.region": "region",
    "filters.year_range": "year_from/year_to",
    "filters.rating_range": "rating_min/rating_max",
    "filters.content_rating_limit": "content_rating_limit",
    "filters.content_types": "content_type",
    "page": "page",
    "page_size": "page_size",
}


def _list(params: QueryParams, name: str) -> list[str]:
    return [
        part.strip() for value in params.getlist(name) for part in value.split(",") if part.strip()
    ]


def _range(low: Any, high: Any, floor: float, ceiling: float) -> list[Any] | None:
    """An open end is closed with the field's bound, so 'from 2000' excludes no later year."""
    if low is None and high is None:
        return None
    return [floor if low is None else low, ceiling if high is None else high]


def parse_search(params: QueryParams, channel: str) -> SearchRequested:
    """The request the query string asks for; 422 naming each bad parameter and why."""
    errors = unknown_parameters(params, PARAMETERS)
    errors.extend(
        query_error(name, "given more than once")
        for name in dict.fromkeys(params.keys())
        if name in PARAMETERS and name not in _LISTS and len(params.getlist(name)) > 1
    )
    values: dict[str, Any] = {}
    for name in _INTS + _FLOATS:
        raw = params.get(name)
        if raw is None:
            continue
        try:
            values[name] = int(raw) if name in _INTS else float(raw)
        except ValueError:
            kind = "an integer" if name in _INTS else "a number"
            errors.append(query_error(name, f"{raw[:50]!r} is not {kind}"))
    for name in _LISTS:
        # re.search, as JSON Schema applies a pattern.
        pattern = PARAMETERS[name][0]["items"]["pattern"]
        errors.extend(
            query_error(
                name, f"{value[:50]!r} is not a comma-separated list of {_LIST_ITEMS[name]}"
            )
            for value in params.getlist(name)
            if re.search(pattern, value) is None
        )
    if "q" not in params:
        errors.append(query_error("q", "the search text is required", "missing"))
    if errors:
        raise RequestValidationError(errors)
    filters: dict[str, Any] = {name: _list(params, name) for name in _LISTS}
    filters["content_types"] = filters.pop("content_type")
    for name in ("region", "content_rating_limit"):
        # Sent empty is refused like any bad value, not taken as absent.
        if name in params:
            filters[name] = params[name]
    filters["year_range"] = _range(
        values.get("year_from"), values.get("year_to"), YEAR_MIN, YEAR_MAX
    )
    filters["rating_range"] = _range(
        values.get("rating_min"), values.get("rating_max"), RATING_MIN, RATING_MAX
    )
    data: dict[str, Any] = {"query": params["q"], "filters": filters, "reply_channel": channel}
    for name in ("page", "page_size"):
        if name in values:
            data[name] = values[name]
    try:
        return SearchRequested.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [_named(err) for err in exc.errors(include_url=False)]
        ) from None


def _named(err: Mapping[str, Any]) -> dict[str, Any]:
    path = ".".join(str(p) for p in err["loc"])
    # "filters.genres.0" -> "genres": the client sent a parameter, not a path in a model.
    source = next(
        (name for field, name in _SOURCE.items() if path == field or path.startswith(field + ".")),
        path,
    )
    return {**err, "loc": ("query", source)}


async def ask_discovery(
    request: Request, wanted: SearchRequested, key: str, timeout_s: float
) -> bytes:
    """Publish the search for the discovery agent and wait for its answer."""
    return await request_reply(
        request.app.state.redis,
        request.app.state.publisher,
        DISCOVERY_SEARCH,
        wanted,
        key=key_digest(key),
        timeout_s=timeout_s,
        unanswered=SearchTimeout(f"no discovery agent answered within {timeout_s:g} s"),
        breaker="discovery",
        skip_empty=True,
    )


def _answer(body: bytes, cache: str) -> Response:
    # Already JSON: handed through rather than parsed and encoded again.
    return Response(body, media_type="application/json", headers={CACHE_HEADER: cache, **_NO_STORE})


@router.get(
    "/search",
    response_model=SearchResponse,
    summary="Search the catalog in natural language",
    responses={
        200: {
            "description": f"one page of results, best first; header {CACHE_HEADER} says "
            "whether the result cache answered (hit) or the discovery agent (miss)"
        },
        422: {
            "description": "a bad parameter: each one named, with the reason; also refused: "
            "`rating_min` above `rating_max`, `year_from` after `year_to`, more than "
            f"{MAX_BLOCKED_GENRES} `blocked_genres` with the acting profile's own"
        },
        **UNKNOWN_PROFILE_RESPONSE,
        503: {"description": "Redis or the discovery agents are unavailable; retry"},
        504: {"description": "no discovery agent answered in time; retry"},
        **AGENT_FAILED_RESPONSE,
    },
    openapi_extra={
        "parameters": [
            HEADER_PARAMETER,
            *(
                {
                    "name": name,
                    "in": "query",
                    "required": name == "q",
                    "schema": schema,
                    "description": description,
                    **({"style": "form", "explode": True} if name in _LISTS else {}),
                }
                for name, (schema, description) in PARAMETERS.items()
            ),
        ],
        FAST_LANE: True,
    },
)
async def search(request: Request) -> Response:
    settings = request.app.state.settings
    prefix = settings.redis.key_prefix
    wanted = parse_search(request.query_params, reply_channel(prefix, uuid.uuid4()))
    # Parental controls: the acting profile's limits join the filters, so the agent applies
    # them and the page is cached under them (a kids profile never reads an adult's page).
    limits = await acting_limits(request)
    if limits is not None:
        filters = within_limits(wanted.filters, limits)
        if len(filters.blocked_genres) > MAX_BLOCKED_GENRES:
            raise RequestValidationError(
                [
                    query_error(
                        "blocked_genres",
                        f"this profile blocks {len(limits.blocked_genres)} genres already: at "
                        f"most {MAX_BLOCKED_GENRES} in all",
                    )
                ]
            )
        wanted = wanted.model_copy(update={"filters": filters})
    # Known already (the rate limiter resolved it); a signed-in caller's LLM readings are
    # bounded by its tier, an anonymous one's by the global budget (docs/DISCOVERY.md).
    if await resolve_principal(request) is not None:
        wanted = wanted.model_copy(update={"anonymous": False})
    key = request_results_key(prefix, wanted)
    try:
        body = await read_results(request.app.state.redis, key)
        if body is not None:
            return _answer(body, "hit")
        body = await ask_discovery(request, wanted, key, settings.discovery.reply_timeout_s)
    except SearchTimeout as exc:
        return error_response(
            504, "search_timeout", f"{exc}; retry shortly", request, headers={"Retry-After": "1"}
        )
    except REDIS_ERRORS as exc:
        return error_response(
            503,
            "cache_unavailable",
            f"the search cache is unreachable ({type(exc).__name__}); retry shortly",
            request,
            headers={"Retry-After": "1"},
        )
    return _answer(body, "miss")
