"""Validation is the single gate: property-based, over records generated from the schemas with
extreme values (tests/gate_strategies.py).

- Every catalog item the gate accepts goes through normalize, resolve, merge, the JSON round
  trips of every later stage, PostgreSQL, enrichment (the real model and vector store) and the
  Redis read model without an error: no dead letter, no quarantined row.
- Every item it refuses is refused naming the field, by the producer (the gateway's per-item
  result) and by the raw topic's decoder (a dead letter with the reason); the decoder never
  raises.
- Over HTTP, no generated input makes the gateway answer 5xx; a refused one is a 422 naming
  the field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.adapters.embeddings.base import content_text
from agents.adapters.vectors.payload import content_payload
from agents.enrichment.handlers import sweep_due
from agents.enrichment.quality import quality_score
from agents.framework.context import AgentContext, ContextHolder
from agents.framework.runtime import Record, decode_batch, process_batch
from agents.ingestion.handlers import AGENTS as INGESTION_AGENTS
from agents.ingestion.merge import merge_into
from agents.ingestion.normalize import normalize_item
from agents.ingestion.resolution import KnownTitleIndex, assign
from agents.readmodel import store as read_model
from agreements.catalog_producer import FieldProblem, validate_items
from agreements.genres import map_genres
from core.config import Settings
from core.publisher import RawRecord
from gateway.auth.key_store import KeyStore
from schemas.content import CanonicalContent
from schemas.envelope import encode, wrap
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.conftest import Isolated
from tests.gate_strategies import canonical_records, catalog_items

PROCESS_BATCH = next(spec for spec in INGESTION_AGENTS if spec.name == "process-batch")
ITEM_FIELDS = set(RawCatalogItem.model_fields) | {"overview"}


def hostile_json(value: Any) -> bytes:
    """JSON as a careless producer writes it: big integers kept, NaN and Infinity as bare
    words, lone surrogates escaped (the stdlib writes all of these)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def envelope_bytes(item: Any) -> bytes:
    return hostile_json(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "content.raw",
            "version": 1,
            "source": "gate-test",
            "time": datetime.now(UTC).isoformat(),
            "key": "k",
            "payload": {"item": item},
        }
    )


def assert_names_fields(problems: Iterable[FieldProblem], item: Any) -> None:
    for problem in problems:
        assert problem.reason, problem
        head = problem.field.split(".")[0]
        assert head in ITEM_FIELDS or head == "(item)", problem


def through_the_pure_pipeline(item: RawCatalogItem) -> CanonicalContent:
    """What process-batch and every later stage do with an accepted item, without I/O."""
    normalized = normalize_item(item)
    index = KnownTitleIndex()
    cid = assign(normalized, index).canonical_id
    assert cid is not None
    doc = merge_into(None, normalized, cid, map_genres(normalized.platform, normalized.raw_genres))
    # A second platform's listing of it: the unions merge builds must stay within bounds too.
    again = normalize_item(item.model_copy(update={"platform": "zz_second"}))
    doc = merge_into(doc, again, cid, map_genres(again.platform, again.raw_genres))
    # Stored as JSONB, read back by enrichment and ingestion (pydantic JSON), by the read model
    # (orjson), embedded and sent to the vector store.
    text = doc.model_dump_json()
    assert "\\u0000" not in text
    assert CanonicalContent.model_validate_json(text) == doc
    orjson.loads(orjson.dumps(orjson.loads(text)))
    content_text(doc)
    orjson.dumps(content_payload(doc))
    quality_score(doc, has_embedding=True)
    return doc


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog_items())
def test_the_gate_accepts_only_what_every_stage_can_take_and_names_what_it_refuses(
    data: dict[str, Any],
) -> None:
    valid, rejected = validate_items([data])
    if rejected:
        assert not valid
        assert rejected[0].errors
        assert_names_fields(rejected[0].errors, data)
    else:
        [checked] = valid
        through_the_pure_pipeline(checked.item)
        for warning in checked.warnings:
            assert warning.kind and warning.field and warning.message
    # The raw topic's decoder, on the same item as a producer would write it: a dead letter
    # naming the field, or an envelope every stage can take. It never raises.
    try:
        raw = envelope_bytes(data)
    except (TypeError, ValueError):
        return  # not even writable as JSON
    decoded = decode_batch([Record("content.raw", 0, 0, b"k", raw, [])], PROCESS_BATCH.topic)
    if decoded.bad:
        [letter] = decoded.bad
        assert letter.reason in ("invalid", "undecodable") and letter.error
        if letter.reason == "invalid":
            assert "payload.item" in letter.error or "event" in letter.error, letter.error
    else:
        [(_, envelope)] = decoded.good
        through_the_pure_pipeline(envelope.payload.item)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(canonical_records())
def test_canonical_records_that_validate_survive_every_stage(data: dict[str, Any]) -> None:
    from pydantic import ValidationError

    try:
        doc = CanonicalContent.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            assert err["loc"] and err["msg"], err
        return
    text = doc.model_dump_json()
    assert "\\u0000" not in text
    assert CanonicalContent.model_validate_json(text) == doc
    orjson.dumps(orjson.loads(text))
    content_text(doc)
    orjson.dumps(content_payload(doc))


# --- the real stores -----------------------------------------------------------------------


class RecordingSink:
    """The worker's publisher, noting every dead letter it is asked to send."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.letters: list[RawRecord] = []

    def topic_name(self, spec: Any) -> str:
        return str(self.inner.topic_name(spec))

    async def send_raw(self, records: Iterable[RawRecord]) -> Any:
        batch = list(records)
        self.letters += batch
        return await self.inner.send_raw(batch)


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="gate-test")
    yield await holder.get()
    await holder.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(catalog_items(), min_size=1, max_size=8))
async def test_accepted_items_are_stored_enriched_and_served_without_an_error(
    ctx: AgentContext, batch: list[dict[str, Any]]
) -> None:
    valid, _ = validate_items(batch)
    if not valid:
        return
    records = []
    for offset, checked in enumerate(valid):
        # A platform item id of this example's own: examples share the database.
        item = checked.item.model_copy(
            update={"platform_item_id": f"{uuid.uuid4().hex[:8]}-{checked.item.platform_item_id}"}
        )
        envelope = wrap(CatalogItemReceived(item=item), key=item.record_key, source="gate-test")
        records.append(Record("content.raw", 0, offset, b"k", encode(envelope), []))
    sink = RecordingSink(ctx.publisher)
    await process_batch(PROCESS_BATCH, ctx, sink, records)
    assert sink.letters == [], [dict(r[3]).get("dlq.error") for r in sink.letters]
    await sweep_due(ctx.for_agent("enrich-sweep"))
    assert await ctx.pool.fetchval("SELECT count(*) FROM quarantine") == 0
    assert (
        await ctx.pool.fetchval(
            "SELECT count(*) FROM content WHERE enriched_version IS DISTINCT FROM updated_at"
        )
        == 0
    )
    ids = [r["canonical_id"] for r in await ctx.pool.fetch("SELECT canonical_id FROM content")]
    written = await read_model.refresh(ctx.pool, ctx.redis, ctx.prefix, ids)
    assert len(written) == len(ids)


# --- over HTTP -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def producer_key(settings: Settings) -> str:
    async with KeyStore.open(settings) as store:
        _, key = await store.create("gate-producer", ["ingest:write"], "enterprise")
    return key


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    items=st.lists(catalog_items(), min_size=1, max_size=4),
    records=st.lists(canonical_records(), min_size=1, max_size=2),
)
async def test_no_generated_input_makes_the_gateway_fail_and_refusals_name_the_field(
    settings: Settings,
    producer_key: str,
    items: list[dict[str, Any]],
    records: list[dict[str, Any]],
) -> None:
    token = user_token(settings)
    async with running_gateway(settings) as (_, http):
        resp = await http.post(
            "/api/v1/ingest/netflix/items",
            content=hostile_json({"items": items}),
            headers={"X-API-Key": producer_key, "content-type": "application/json"},
        )
        assert resp.status_code < 500, resp.text
        if resp.status_code in (202, 422) and "results" in resp.json():
            for result in resp.json()["results"]:
                if result["status"] == "rejected":
                    assert all(e["field"] and e["reason"] for e in result["errors"]), result
                else:
                    assert result["offset"] is not None
        else:
            assert resp.status_code in (400, 413, 415, 422), resp.text
        for record in records:
            resp = await http.post(
                "/api/v1/content",
                content=hostile_json(record),
                headers={**bearer(token), "content-type": "application/json"},
            )
            assert resp.status_code < 500, resp.text
            assert resp.status_code in (202, 400, 413, 422), resp.text
            if resp.status_code == 422:
                assert "field" in resp.text, resp.text
