"""Availability that reaches its topic before the catalog item, through the real workers.

availability-sync (group availability) and process-batch (group ingestion) run as separate
processes, as operators deploy them: the update is parked, handed back when the item is mapped,
and applied, with nothing lost and the correlation id of the update kept.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.publisher import Publisher
from schemas.ingestion import AvailabilityReceived, CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.helpers import read_topic, wait_for
from topics.registry import AVAILABILITY_RAW, CONTENT_RAW

pytestmark = pytest.mark.slow


async def test_availability_before_its_item_is_applied_once_the_item_arrives(
    spawn, isolated: Isolated
) -> None:
    pool, settings = isolated.pool, isolated.settings
    spawn("worker", "availability", extra_env=isolated.env)
    spawn("worker", "ingestion", extra_env=isolated.env)
    item_id = uuid.uuid4().hex[:10]
    now = datetime.now(UTC)
    publisher = Publisher(settings.kafka, source="test")
    try:
        update = AvailabilityReceived(
            platform="hulu",
            platform_item_id=item_id,
            source_updated_at=now,
            availability=[{"availability_type": "subscription", "regions": ["US"]}],
        )
        await publisher.send_envelopes(
            [(AVAILABILITY_RAW, publisher.build_envelope(update, update.record_key, "early-1"))]
        )

        async def parked() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM pending_availability WHERE platform_item_id = $1",
                    item_id,
                )
            )

        await wait_for(parked, timeout=30)

        # The catalog item is older than the update and still offers the title in GB too.
        item = RawCatalogItem.model_validate(
            {
                "platform": "hulu",
                "platform_item_id": item_id,
                "title": f"Early Offers {item_id}",
                "content_type": "movie",
                "year": 2011,
                "availability": [{"availability_type": "subscription", "regions": ["US", "GB"]}],
                "source_updated_at": (now - timedelta(hours=1)).isoformat(),
            }
        )
        await publisher.send_envelopes(
            [
                (
                    CONTENT_RAW,
                    publisher.build_envelope(CatalogItemReceived(item=item), item.record_key),
                )
            ]
        )
    finally:
        await publisher.stop()

    async def offers() -> dict[str, datetime | None] | None:
        rows = await pool.fetch(
            "SELECT a.region, a.expires_at FROM platform_availability a "
            "JOIN entity_mappings m ON m.canonical_id = a.canonical_id "
            "WHERE m.platform_item_id = $1",
            item_id,
        )
        current = {r["region"]: r["expires_at"] for r in rows}
        # Applied once GB, which only the older catalog item offered, has expired.
        return current if current.get("GB") is not None else None

    applied = await wait_for(offers, timeout=30)
    assert applied["US"] is None
    assert not await parked()
    changed = await read_topic(
        settings.kafka.bootstrap, f"{settings.kafka.topic_prefix}.content.availability_changed"
    )
    assert any(dict(r.headers).get("correlation_id") == b"early-1" for r in changed)
