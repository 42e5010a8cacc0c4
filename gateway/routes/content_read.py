"""Content reads, served from the Redis read model (the gateway never reads Postgres)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request, Response

from core.read_model import read_document

router = APIRouter(prefix="/api/v1/content", tags=["content"])


@router.get(
    "/{content_id}",
    responses={
        200: {"description": "the title's canonical record, availability and quality score"},
        404: {"description": "no such title"},
    },
)
async def get_content(content_id: uuid.UUID, request: Request) -> Response:
    settings = request.app.state.settings
    document = await read_document(request.app.state.redis, settings.redis.key_prefix, content_id)
    if document is None:
        raise HTTPException(404, f"no content with id {content_id}")
    # Already JSON in Redis: hand the bytes through rather than parse and re-encode them.
    return Response(document, media_type="application/json")
