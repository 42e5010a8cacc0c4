"""Bad records on content.raw: dead-lettered with the reason, and the batch's good items land.

Runs the agent runtime's batch step for process-batch against the real broker and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.framework.runtime import Record, process_batch
from agents.ingestion.handlers import AGENTS
from schemas.envelope import encode, wrap
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.helpers import read_topic

PROCESS_BATCH = next(spec for spec in AGENTS if spec.name == "process-batch")


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield await holder.get()
    await holder.close()


def record(offset: int, value: bytes, correlation_id: str) -> Record:
    return Record(
        topic="content.raw",
        partition=0,
        offset=offset,
        key=b"k",
        value=value,
        headers=[("correlation_id", correlation_id.encode())],
    )


async def test_bad_catalog_records_are_dead_lettered_and_the_good_one_is_stored(
    ctx: AgentContext, isolated: Isolated
) -> None:
    item_id = uuid.uuid4().hex[:8]
    good = RawCatalogItem.model_validate(
        {
            "platform": "netflix",
            "platform_item_id": item_id,
            "title": "Dead Letter Survivor",
            "content_type": "movie",
            "year": 2020,
            "source_updated_at": datetime.now(UTC).isoformat(),
        }
    )
    valid = encode(wrap(CatalogItemReceived(item=good), key=good.record_key, source="test"))
    # Well-formed JSON envelope whose item has no title and an unknown content type.
    broken = orjson.loads(valid)
    broken["payload"]["item"].pop("title")
    broken["payload"]["item"]["content_type"] = "hologram"
    records = [
        record(1, b"{not json", "garbage-1"),
        record(2, orjson.dumps(broken), "invalid-1"),
        record(3, valid, "good-1"),
    ]
    await process_batch(PROCESS_BATCH, ctx, ctx.publisher, records)

    assert await ctx.pool.fetchval(
        "SELECT count(*) FROM entity_mappings WHERE platform_item_id = $1", item_id
    )
    dlq = f"{isolated.settings.kafka.topic_prefix}.content.raw.dlq"
    letters = {
        dict(r.headers)["correlation_id"]: dict(r.headers)
        for r in await read_topic(isolated.settings.kafka.bootstrap, dlq)
    }
    assert set(letters) == {b"garbage-1", b"invalid-1"}
    assert letters[b"garbage-1"]["dlq.reason"] == b"undecodable"
    invalid = letters[b"invalid-1"]
    assert invalid["dlq.reason"] == b"invalid"
    assert b"payload.item.title" in invalid["dlq.error"]
    assert b"payload.item.content_type" in invalid["dlq.error"]
    assert invalid["dlq.original_offset"] == b"2"
    assert invalid["dlq.agent"] == b"process-batch"
