"""Content reads, served from the Redis read model (the gateway never reads Postgres);
a miss is asked of the catalog agent (gateway/lookup.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ConfigDict, Field

from agreements.parental_controls import rated_as_series, title_refusal
from agreements.read_model import document_key
from gateway.errors import error_response
from gateway.fast_lane import MARKER as FAST_LANE
from gateway.lookup import AGENT_FAILED_RESPONSE, ask_agent
from gateway.profiles import HEADER_PARAMETER, RESTRICTED_RESPONSE, acting_limits, restricted
from gateway.request_parameters import TypedParameter
from schemas.accounts import ProfileLimits
from schemas.content import CanonicalContent

router = APIRouter(prefix="/api/v1/content", tags=["content"])

CONTENT_ID = TypedParameter("content_id", uuid.UUID)
# What FastAPI documents for a route that declares parameters; this one reads its own.
VALIDATION_ERROR = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}


class ContentDocument(CanonicalContent):
    """What GET /api/v1/content/{id} answers: the read model's document of a title
    (agents/readmodel/store.py `to_document`), the canonical record and what the catalog adds.
    Declared for the OpenAPI document only: the route hands Redis's bytes through unparsed."""

    # Open, as a client should read it: a field added to the record is no breaking change.
    model_config = ConfigDict(extra="allow")

    data_quality_score: float | None = Field(
        default=None, ge=0, le=1, description="set once the title was enriched"
    )
    enriched_at: datetime | None = Field(
        default=None, description="when the enrichment agent last scored and embedded it"
    )
    stored_at: datetime = Field(description="when PostgreSQL last changed this title's row")


async def documents_refused(
    request: Request, limits: ProfileLimits, documents: dict[uuid.UUID, bytes | None]
) -> dict[uuid.UUID, str]:
    """Why a profile under `limits` may not see each of these titles (their read-model
    documents, None where the read model has none); the titles it may see are not in the
    answer. An episode without a rating of its own is judged by its series, whose documents
    are read in one MGET. A title the read model does not hold is refused: its rating is
    unknown, as an unrated title's is. Parsed only for a limited profile: others pass the
    documents unread."""
    titles = {cid: orjson.loads(doc) for cid, doc in documents.items() if doc is not None}
    parents = {cid: p for cid, t in titles.items() if (p := rated_as_series(t)) is not None}
    series: dict[str, Any] = {}
    if parents:
        wanted = sorted(set(parents.values()))
        prefix = request.app.state.settings.redis.key_prefix
        found = await request.app.state.redis.mget([document_key(prefix, s) for s in wanted])
        series = {s: orjson.loads(doc) for s, doc in zip(wanted, found, strict=True) if doc}
    out = {}
    for content_id in documents:
        title = titles.get(content_id)
        if title is None:
            out[content_id] = UNKNOWN_RATING
            continue
        parent = parents.get(content_id)
        reason = title_refusal(title, limits, series.get(parent) if parent else None)
        if reason is not None:
            out[content_id] = reason
    return out


async def refusals(
    request: Request, limits: ProfileLimits, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """`documents_refused` of these titles, their documents read in one MGET (the lists are
    the account's, and a title the catalog dropped stays on them: it is refused)."""
    ids = list(dict.fromkeys(content_ids))
    if not ids:
        return {}
    prefix = request.app.state.settings.redis.key_prefix
    found = await request.app.state.redis.mget([document_key(prefix, i) for i in ids])
    return await documents_refused(request, limits, dict(zip(ids, found, strict=True)))


class Listed(Protocol):
    @property
    def content_id(self) -> uuid.UUID: ...


ListedT = TypeVar("ListedT", bound=Listed)


async def readable(
    request: Request, limits: ProfileLimits, items: Sequence[ListedT]
) -> list[ListedT]:
    """The items of one of the account's lists (watchlist, continue watching) that a profile
    under `limits` may read, in their order: the list is the account's, so a kids profile sees
    on it only what it may read."""
    refused = await refusals(request, limits, [i.content_id for i in items])
    return [i for i in items if i.content_id not in refused]


UNKNOWN_RATING = "not in the catalog's read model, so its rating is unknown"


async def find_content(request: Request, content_id: uuid.UUID) -> bytes | None:
    """The title's read-model document, asked of the catalog agent on a miss; None when the
    catalog has no such title. One Redis GET when the read model has it. Raises LookupTimeout
    or AgentFailed (gateway/errors.py: 503, 502) when the miss could not be settled. Used by
    every route that must know a title exists (this one, a watchlist add)."""
    settings = request.app.state.settings
    redis, prefix = request.app.state.redis, settings.redis.key_prefix
    document = await redis.get(document_key(prefix, content_id))
    if document is None and settings.gateway.lookup_on_miss:
        # The read model may lag (a rebuild, a late event, a Redis that lost its keys):
        # PostgreSQL has the last word.
        document = await ask_agent(
            redis,
            request.app.state.publisher,
            prefix,
            content_id,
            settings.gateway.lookup_timeout_s,
        )
    return document


UNKNOWN_TITLE = "no title with this id in the catalog"
UNKNOWN_TITLE_RESPONSE = {
    404: {
        "description": f"`not_found`: {UNKNOWN_TITLE} (`fields` names `path.content_id`); an "
        "id made up or mistyped is refused rather than kept for good"
    }
}


def unknown_title(request: Request, content_id: uuid.UUID) -> Response:
    """The 404 of a write naming a title the catalog does not have (find_content found none)."""
    return error_response(
        404,
        "not_found",
        f"no title with id {content_id} in the catalog",
        request,
        fields=[{"field": "path.content_id", "reason": UNKNOWN_TITLE}],
    )


@router.get(
    "/{content_id}",
    responses={
        200: {
            "model": ContentDocument,
            "description": "the title's canonical record, availability and quality score",
        },
        **RESTRICTED_RESPONSE,
        404: {"description": "no such title"},
        503: {"description": "not in the read model and no agent answered; retry"},
        **AGENT_FAILED_RESPONSE,
        422: VALIDATION_ERROR,
    },
    openapi_extra={"parameters": [CONTENT_ID.openapi(), HEADER_PARAMETER], FAST_LANE: True},
)
async def get_content(request: Request) -> Response:
    content_id: uuid.UUID = CONTENT_ID.read(request)
    document = await find_content(request, content_id)
    if document is None:
        raise HTTPException(404, f"no content with id {content_id}")
    limits = await acting_limits(request)
    if limits is not None:
        reason = (await documents_refused(request, limits, {content_id: document})).get(content_id)
        if reason is not None:
            raise restricted(reason)
    # Already JSON in Redis: hand the bytes through rather than parse and re-encode them.
    return Response(document, media_type="application/json")
