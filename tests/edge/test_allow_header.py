"""A 405 names every method the path is served with, not only those of the first route."""

from __future__ import annotations

import uuid

from core.config import Settings
from tests.auth.helpers import running_gateway


async def test_a_405_lists_every_method_of_the_path(settings: Settings) -> None:
    async with running_gateway(settings) as (_, http):
        item = await http.options(f"/api/v1/users/alice/watchlist/{uuid.uuid4()}")
        listed = await http.post("/api/v1/users/alice/watchlist")
        content = await http.get("/api/v1/content")
    assert item.status_code == 405 and item.headers["Allow"] == "DELETE, PUT"
    assert listed.status_code == 405 and listed.headers["Allow"] == "GET, HEAD"
    assert content.status_code == 405 and content.headers["Allow"] == "POST"
    assert item.json()["error"] == "method_not_allowed"
