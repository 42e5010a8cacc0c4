"""Content writes: a canonical title in, a content.ingested event out."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from core.publisher import Publisher
from schemas.content import CanonicalContent, ContentIngested
from topics.catalog import CONTENT_INGESTED

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
    responses={422: {"description": "invalid fields"}, 503: {"description": "broker down"}},
)
async def ingest_content(content: CanonicalContent, request: Request) -> Accepted:
    publisher: Publisher = request.app.state.publisher
    published = await publisher.publish(
        CONTENT_INGESTED, ContentIngested(content=content), key=str(content.canonical_id)
    )
    return Accepted(**published.__dict__)
