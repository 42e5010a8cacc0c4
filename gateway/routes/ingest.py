"""Upstream producers: a platform's catalog batch in, one `content.raw` record per valid item;
and where each item went (the canonical title it resolved to), asked of an agent over Kafka."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field

from agreements.catalog_producer import MAX_BATCH_ITEMS, CatalogProducer, ItemResult, summarize
from core.observability import correlation
from gateway.auth.dependencies import require_scopes
from gateway.auth.errors import Forbidden
from gateway.auth.principal import Principal
from gateway.errors import error_response
from gateway.idempotency import operation_id
from gateway.json_body import json_body, openapi_body
from gateway.lookup import AGENT_FAILED_RESPONSE, ask_item_mapping
from gateway.openapi_security import API_KEY_ONLY
from schemas.ingestion import ItemMapping, normalize_platform
from topics.registry import CONTENT_RAW

# A platform as the producer names it ("prime", "Disney+", "HBO", "Prime Video"): read by the
# same alias rule as its items' `platform` (normalize_platform). It must hold a letter, a digit
# or "+", or it names no platform at all.
PlatformName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"[A-Za-z0-9+]", examples=["prime"])
]
router = APIRouter(prefix="/api/v1/ingest", tags=["ingestion"])


class CatalogBatch(BaseModel):
    # Items stay untyped here, objects or not, so that one bad item is reported on its own
    # (its result says why), not the whole batch.
    items: list[Any] = Field(min_length=1, description="catalog items, each a JSON object")


class BatchOutcome(BaseModel):
    topic: str
    accepted: int
    rejected: int
    # One per item, in request order: accepted with its offset, or rejected with its reasons.
    results: list[ItemResult]


async def producer_key(
    principal: Annotated[Principal, Depends(require_scopes("ingest:write"))],
) -> Principal:
    # Catalog feeds come from machine clients; a person's token is not a producer.
    if principal.kind != "api_key":
        raise Forbidden.not_owner("catalog batches are accepted from API keys only")
    return principal


@router.post(
    "/{platform}/items",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchOutcome,
    responses={
        202: {"description": "at least one item accepted; per-item results"},
        403: {"description": "not an API key with ingest:write (a person's token never is)"},
        413: {"description": f"more than {MAX_BATCH_ITEMS} items, or the body is too large"},
        415: {"description": "the body is not JSON"},
        422: {
            "description": "no item accepted (a problem whose `fields` name each item's "
            "reasons, with the batch outcome's members beside them), the body is not a batch "
            "(malformed JSON names its line and column), or the path names no platform"
        },
        503: {"description": "the broker did not acknowledge; nothing was accepted"},
    },
    openapi_extra={
        **openapi_body(CatalogBatch, f"up to {MAX_BATCH_ITEMS} catalog items of one platform"),
        "security": API_KEY_ONLY,
    },
)
async def ingest_batch(
    platform: PlatformName,
    request: Request,
    _: Annotated[Principal, Depends(producer_key)],
) -> BatchOutcome | Response:
    batch = await json_body(request, CatalogBatch)
    if len(batch.items) > MAX_BATCH_ITEMS:
        raise HTTPException(
            413,
            f"{len(batch.items)} items in one batch; send at most {MAX_BATCH_ITEMS} per request",
        )
    producer = CatalogProducer(request.app.state.publisher)
    results = await producer.send(
        batch.items,
        platform=platform,
        correlation_id=correlation.current(),
        operation=operation_id(request),
    )
    counts = summarize(results)
    outcome = BatchOutcome(
        topic=request.app.state.publisher.topic_name(CONTENT_RAW),
        accepted=counts["accepted"],
        rejected=counts["rejected"],
        results=results,
    )
    if counts["accepted"] == 0:
        # A batch with nothing accepted failed: a problem, the per-item outcome beside it.
        return error_response(
            422,
            "validation_failed",
            f"none of the {len(results)} items was accepted; `results` has each one's reasons",
            request,
            [
                {"field": f"items.{r.index}.{e.field}", "reason": e.reason}
                for r in results
                for e in r.errors
            ],
            extensions=outcome.model_dump(mode="json"),
        )
    return outcome


@router.get(
    "/{platform}/items/{item_id:path}",
    response_model=ItemMapping,
    summary="Which canonical title a platform item resolved to",
    responses={
        200: {"description": "the item's canonical id, how it matched, and warnings"},
        403: {"description": "not an API key with ingest:write (a person's token never is)"},
        404: {"description": "the item is not stored (yet: items are stored once processed)"},
        503: {"description": "no agent answered in time; retry"},
        **AGENT_FAILED_RESPONSE,
    },
)
async def item_mapping(
    platform: PlatformName,
    item_id: Annotated[str, Path(min_length=1, max_length=200)],
    request: Request,
    _: Annotated[Principal, Depends(producer_key)],
) -> Response:
    settings = request.app.state.settings
    answer = await ask_item_mapping(
        request.app.state.redis,
        request.app.state.publisher,
        settings.redis.key_prefix,
        normalize_platform(platform),
        item_id,
        settings.gateway.lookup_timeout_s,
    )
    if answer is None:
        raise HTTPException(
            404,
            f"no item {item_id!r} of platform {platform!r} is stored; an accepted item is "
            "stored once the ingestion agents processed it, so retry in a few seconds",
        )
    return Response(answer, media_type="application/json")
