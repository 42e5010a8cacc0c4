"""Migration 0063 puts stored notification services in the catalog's platform ids, as the API
now reads them (schemas/ingestion.py normalize_platform): run on rows written the old way, in
this test's own database (the migration already ran there, on no rows)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

from schemas.ingestion import normalize_platform
from tests.conftest import Isolated

MIGRATION = (
    resources.files("agents.migrations") / "0063_notification_services_aliases.sql"
).read_text(encoding="utf-8")
STORED = ["max", "prime", "netflix", "apple-tv", "disney_plus", "hbo"]


async def test_stored_services_become_the_ids_the_api_would_keep(isolated: Isolated) -> None:
    async with isolated.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO notification_preferences (user_id, services, region, time_zone, "
            "alerts, offer_types, changed_at) VALUES ('old', $1, 'US', 'UTC', "
            "'{arrived}', '{subscription}', $2)",
            STORED,
            datetime.now(UTC),
        )
        await conn.execute(MIGRATION)
        services = await conn.fetchval(
            "SELECT services FROM notification_preferences WHERE user_id = 'old'"
        )
        # The same as the API's rule gives today, and applying it again changes nothing.
        assert services == sorted({normalize_platform(s) for s in STORED})
        assert services == ["apple_tv_plus", "disney_plus", "hbo_max", "netflix", "prime_video"]
        await conn.execute(MIGRATION)
        assert (
            await conn.fetchval(
                "SELECT services FROM notification_preferences WHERE user_id = 'old'"
            )
            == services
        )
