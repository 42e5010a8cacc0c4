"""Content writes: a trusted canonical record in, a content.submitted event out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from core.publisher import Publisher
from gateway.auth.dependencies import require_scopes
from schemas.content import CanonicalContent, ContentSubmitted
from topics.registry import CONTENT_SUBMITTED

router = APIRouter(prefix="/api/v1/content", tags=["content"])


class Accepted(BaseModel):
    """The broker has the event: where it is, and its id for tracing."""

    event_id: str
    topic: str
    partition: int
    offset: int


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={
        401: {"description": "no valid credential"},
        403: {"description": "missing scope content:write"},
        422: {"description": "invalid fields"},
        503: {"description": "broker down"},
    },
    # An API key of an ingestion producer, or a user token, holding content:write.
    dependencies=[Depends(require_scopes("content:write"))],
)
async def ingest_content(content: CanonicalContent, request: Request) -> Accepted:
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        CONTENT_SUBMITTED, ContentSubmitted(content=content), key=str(content.canonical_id)
    )
    return Accepted(**published.__dict__)
