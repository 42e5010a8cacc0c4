"""What a user tells their recommendations: a rating of a title (a ContentRated on
sona.ratings) and "not interested" (a ContentDismissed on sona.dismissals). The SONA training
agents fold both into the user's taste; a dismissed title never comes back (docs/SONA.md).

Both need `recommendations:write` and act on the caller's own user id (admins: any user's),
as the sync routes do (gateway/routes/user_routes.py). A client that queued the feedback while
offline may say when it was given; otherwise it is now. The title must be one the catalog has,
asked as a watchlist add asks (find_content: the read model, the catalog agent on a miss): 404
`not_found` on `path.content_id` otherwise, so a made-up id never enters the user's taste.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from core.publisher import Publisher
from gateway.accepted import Accepted, accepted
from gateway.auth.dependencies import own_user
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body, optional_body
from gateway.lookup import AGENT_FAILED_RESPONSE
from gateway.request_parameters import (
    CONTENT_ID,
    USER_ID,
    invalid,
)
from gateway.routes.content_read import UNKNOWN_TITLE_RESPONSE, find_content, unknown_title
from gateway.routes.user_routes import (
    documented,
    responses_with_rules,
)
from schemas.envelope import Payload
from schemas.sona import ContentDismissed, ContentRated
from schemas.storable import Instant
from schemas.sync import MAX_CLOCK_AHEAD_S
from topics.registry import SONA_DISMISSALS, SONA_RATINGS, TopicSpec

router = APIRouter(prefix="/api/v1/users/{user_id}", tags=["recommendations"])

SCOPE = "recommendations:write"
# Refused beyond what a JSON Schema can state (tests/edge/fuzz_rules.py knows the words).
GIVEN_AT_RULE = (
    f"a `given_at` more than {MAX_CLOCK_AHEAD_S} s ahead of the server's clock (fix the "
    "device's clock)"
)


_WITH_RULES = responses_with_rules(GIVEN_AT_RULE)
FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_WITH_RULES,
    **UNKNOWN_TITLE_RESPONSE,
    503: {
        "description": f"{_WITH_RULES[503]['description']}; or the title is not in the read "
        "model and no catalog agent answered whether it exists: retry"
    },
    **AGENT_FAILED_RESPONSE,
}


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5, description="1 to 5 stars; the latest rating counts")
    given_at: Instant | None = Field(
        default=None, description="when the user rated (queued offline); default now"
    )


class DismissalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_at: Instant | None = Field(
        default=None, description="when the user dismissed it (queued offline); default now"
    )


def _given_at(value: datetime | None) -> datetime:
    """When the feedback was given: the client's time (naive means UTC), never far ahead."""
    now = datetime.now(UTC)
    if value is None:
        return now
    at = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    ahead_s = (at - now).total_seconds()
    if ahead_s > MAX_CLOCK_AHEAD_S:
        raise invalid(
            ("body", "given_at"),
            f"is {ahead_s:.1f} s ahead of the server's clock (at most {MAX_CLOCK_AHEAD_S} s "
            "tolerated); fix the device's clock",
            value.isoformat(),
        )
    return at


async def _publish(request: Request, topic: TopicSpec, event: Payload, user_id: str) -> Response:
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(topic, event, key=user_id, event_id=operation_id(request))
    return accepted(published)


@router.put(
    "/ratings/{content_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Rate a title (1-5 stars) for one's own recommendations",
    responses=FEEDBACK_RESPONSES,
    openapi_extra=documented(
        USER_ID,
        CONTENT_ID,
        write=True,
        extra=openapi_body(RatingBody, "the rating; a later rating of the title replaces it"),
    ),
)
async def rate(request: Request) -> Response:
    _, user_id = await own_user(request, SCOPE)
    content_id = CONTENT_ID.read(request)
    body = await json_body(request, RatingBody)
    if await find_content(request, content_id) is None:
        return unknown_title(request, content_id)
    event = ContentRated(
        user_id=user_id,
        content_id=content_id,
        rating=body.rating,
        timestamp=_given_at(body.given_at),
    )
    return await _publish(request, SONA_RATINGS, event, user_id)


@router.post(
    "/dismissals/{content_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Not interested: the title is never recommended to this user again",
    responses=FEEDBACK_RESPONSES,
    openapi_extra=documented(
        USER_ID,
        CONTENT_ID,
        write=True,
        extra=openapi_body(DismissalBody, "when it was dismissed (optional)", required=False),
    ),
)
async def dismiss(request: Request) -> Response:
    _, user_id = await own_user(request, SCOPE)
    content_id = CONTENT_ID.read(request)
    body = await optional_body(request, DismissalBody)
    if await find_content(request, content_id) is None:
        return unknown_title(request, content_id)
    event = ContentDismissed(
        user_id=user_id, content_id=content_id, timestamp=_given_at(body.given_at)
    )
    return await _publish(request, SONA_DISMISSALS, event, user_id)
