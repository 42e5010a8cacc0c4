"""Personalized recommendations: `GET /api/v1/recommendations`, for the calling user, answered
from the Redis recommendation cache; a miss is asked of the SONA agent over Kafka
(`sona.recommendations`, request/reply) and heard on a Redis pub/sub channel named in the
request. The gateway never reads PostgreSQL or the vector store (docs/SONA.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from agreements.read_model import reply_channel
from agreements.sona_cache import read_recommendations
from core.resilience.fastredis import REDIS_ERRORS
from gateway.auth.dependencies import require
from gateway.auth.errors import Forbidden
from gateway.errors import error_response
from gateway.fast_lane import MARKER as FAST_LANE
from gateway.lookup import AGENT_FAILED_RESPONSE, request_reply
from gateway.openapi_security import USER_TOKEN
from gateway.profiles import HEADER_PARAMETER, acting_limits
from gateway.query_params import query_error, unknown_parameters
from schemas.sona import MAX_RECOMMENDATIONS, RecommendationsRequested, RecommendationsResponse
from schemas.storable import is_date_time
from schemas.sync import DeviceType
from schemas.time_zone import TIME_ZONE_PATTERN, UNKNOWN_ZONE_RULE, zone_of
from topics.registry import SONA_RECOMMENDATIONS

router = APIRouter(prefix="/api/v1", tags=["recommendations"])

SCOPE = "recommendations:read"
CACHE_HEADER = "X-Recommendations-Cache"
_NO_STORE = {"Cache-Control": "private, no-cache"}

PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "device": (
        {"type": "string", "enum": [d.value for d in DeviceType]},
        "the device asking: a TV prefers titles of 30 min or more, a phone or tablet 60 or less",
    ),
    "mood": (
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"},
        "how the user feels: scared, happy, curious...",
    ),
    "region": (
        {"type": "string", "pattern": "^[A-Za-z]{2}$"},
        "ISO 3166-1 alpha-2: only titles offered there",
    ),
    "at": (
        {"type": "string", "format": "date-time"},
        "the client's local time with its UTC offset (the time-of-day bucket); default now",
    ),
    "tz": (
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": TIME_ZONE_PATTERN},
        "the device's zone, an IANA name (Europe/Paris) or an offset (+01:00): `at` (or now) "
        "is read on that clock; without it, `at`'s own offset, else UTC",
    ),
    "limit": (
        {"type": "integer", "minimum": 1, "maximum": MAX_RECOMMENDATIONS},
        f"at most this many (default {MAX_RECOMMENDATIONS})",
    ),
}
# Where a field of RecommendationsRequested comes from, for errors that name the parameter.
_SOURCE = {
    "device_type": "device",
    "mood": "mood",
    "region": "region",
    "at": "at",
    "limit": "limit",
}


_INSTANT = TypeAdapter(AwareDatetime)


class RecommendationsTimeout(RuntimeError):
    """No SONA agent answered in time."""


def parse_request(request: Request, user_id: str, channel: str) -> RecommendationsRequested:
    params = request.query_params
    errors = unknown_parameters(params, PARAMETERS)
    at = params.get("at")
    if at is not None and not is_date_time(at):
        errors.append(
            query_error(
                "at",
                "an RFC 3339 date-time with its offset: 2026-12-01T20:00:00+01:00",
                "datetime_parsing",
            )
        )
    zone = None
    if "tz" in params:
        try:
            zone = zone_of(params["tz"])
        except ValueError as exc:
            errors.append(query_error("tz", str(exc), "value_error"))
    if errors:
        raise RequestValidationError(errors)
    moment: str | datetime = at if at is not None else datetime.now(UTC)
    if zone is not None:
        moment = _INSTANT.validate_python(moment).astimezone(zone)
    data: dict[str, Any] = {"user_id": user_id, "reply_channel": channel, "at": moment}
    # A parameter sent empty is checked like any value (and refused), not taken as absent.
    for param, field in (("device", "device_type"), ("mood", "mood"), ("region", "region")):
        if param in params:
            data[field] = params[param]
    if "limit" in params:
        data["limit"] = params["limit"]
    try:
        return RecommendationsRequested.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**err, "loc": ("query", _SOURCE.get(str(err["loc"][0]), str(err["loc"][0])))}
                for err in exc.errors(include_url=False)
            ]
        ) from None


async def ask_sona(request: Request, wanted: RecommendationsRequested, timeout_s: float) -> bytes:
    return await request_reply(
        request.app.state.redis,
        request.app.state.publisher,
        SONA_RECOMMENDATIONS,
        wanted,
        key=wanted.user_id,
        timeout_s=timeout_s,
        unanswered=RecommendationsTimeout(f"no SONA agent answered within {timeout_s:g} s"),
        breaker="sona",
        skip_empty=True,
    )


def _answer(body: bytes, cache: str) -> Response:
    return Response(body, media_type="application/json", headers={CACHE_HEADER: cache, **_NO_STORE})


@router.get(
    "/recommendations",
    response_model=RecommendationsResponse,
    summary="Personalized recommendations for the calling user",
    responses={
        200: {
            "description": f"at most {MAX_RECOMMENDATIONS} titles, best first, each with its "
            f"reasons; header {CACHE_HEADER} says whether the cache answered (hit) or the "
            "SONA agent (miss)"
        },
        401: {"description": "no or a bad credential"},
        403: {
            "description": f"the token lacks `{SCOPE}`, or it is an API key (no user); or "
            "`unknown_profile`: the profile named is not the account's"
        },
        422: {
            "description": "a bad parameter: each one named, with the reason; also refused: "
            + UNKNOWN_ZONE_RULE.replace("`time_zone`", "`tz`")
        },
        503: {"description": "Redis or the SONA agents are unavailable; retry"},
        504: {"description": "no SONA agent answered in time; retry"},
        **AGENT_FAILED_RESPONSE,
    },
    openapi_extra={
        "parameters": [
            HEADER_PARAMETER,
            *(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": schema,
                    "description": d,
                }
                for name, (schema, d) in PARAMETERS.items()
            ),
        ],
        "security": USER_TOKEN,
        FAST_LANE: True,
    },
)
async def recommendations(request: Request) -> Response:
    principal = await require(request, SCOPE)
    if principal.kind != "user":
        raise Forbidden.not_owner("recommendations are a user's own; use the user's token")
    settings = request.app.state.settings
    prefix = settings.redis.key_prefix
    wanted = parse_request(request, principal.subject, reply_channel(prefix, uuid.uuid4()))
    limits = await acting_limits(request)
    if limits is not None:
        # Parental controls: the SONA agent leaves out what the profile may not see, and the
        # answer is cached under these limits.
        wanted = wanted.model_copy(update={"limits": limits})
    try:
        body = await read_recommendations(request.app.state.redis, prefix, wanted)
        if body is not None:
            return _answer(body, "hit")
        body = await ask_sona(request, wanted, settings.sona.reply_timeout_s)
    except RecommendationsTimeout as exc:
        return error_response(
            504,
            "recommendations_timeout",
            f"{exc}; retry shortly",
            request,
            headers={"Retry-After": "1"},
        )
    except REDIS_ERRORS as exc:
        return error_response(
            503,
            "cache_unavailable",
            f"the recommendation cache is unreachable ({type(exc).__name__}); retry shortly",
            request,
            headers={"Retry-After": "1"},
        )
    return _answer(body, "miss")
