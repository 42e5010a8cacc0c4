"""Content writes: a trusted canonical record in, a content.submitted event out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from core.publisher import Publisher
from gateway.accepted import Accepted, accepted
from gateway.auth.dependencies import require
from gateway.fast_lane import MARKER as FAST_LANE
from gateway.idempotency import PARAMETER as IDEMPOTENCY_PARAMETER
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.openapi_security import ANY_CREDENTIAL
from schemas.content import CanonicalContent, ContentSubmitted
from topics.registry import CONTENT_SUBMITTED

router = APIRouter(prefix="/api/v1/content", tags=["content"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={
        401: {"description": "no valid credential"},
        403: {"description": "missing scope content:write"},
        415: {"description": "the body is not JSON"},
        422: {
            "description": "invalid fields, or malformed JSON (with its line and column); also "
            "refused: an availability whose `available_until` is before its `available_from`"
        },
        503: {
            "description": "not accepted (`broker_unavailable`, `dependency_unavailable`), or "
            "the outcome is unknown (`outcome_unknown`: retry with the same Idempotency-Key)"
        },
    },
    openapi_extra={
        **openapi_body(
            CanonicalContent,
            "a canonical record; when its updated_at is newer than the stored title's, the "
            "fields it fills win and those it leaves empty keep their value; the offers and "
            "platform ids of platforms that feed the title stay theirs (docs/INGESTION.md)",
        ),
        "parameters": [IDEMPOTENCY_PARAMETER],
        # An ingestion producer's API key or a user token, either holding content:write.
        "security": ANY_CREDENTIAL,
        FAST_LANE: True,
    },
)
async def ingest_content(request: Request) -> Response:
    # An API key of an ingestion producer, or a user token, holding content:write.
    await require(request, "content:write")
    content = await json_body(request, CanonicalContent)
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        CONTENT_SUBMITTED,
        ContentSubmitted(content=content),
        key=str(content.canonical_id),
        event_id=operation_id(request),
    )
    return accepted(published)
