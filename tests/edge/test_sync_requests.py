"""What the sync routes refuse and how they write what they answer, on the gateway in this
process: client clocks too far ahead however large."""

from __future__ import annotations

import time
import uuid

import pytest

from core.config import Settings
from tests.auth.helpers import bearer, running_gateway, user_token


@pytest.mark.parametrize("ahead_us", [65_000_000, 10**400])
async def test_a_client_stamp_too_far_ahead_is_422_however_far(
    settings: Settings, ahead_us: int
) -> None:
    user = f"clock-{uuid.uuid4().hex[:8]}"
    headers = bearer(user_token(settings, subject=user, scopes=["watchlist:write"]))
    async with running_gateway(settings) as (_, http):
        # Just before the request: time passing shrinks the lead.
        stamp = {"physical_us": time.time_ns() // 1000 + ahead_us, "logical": 0}
        answer = await http.put(
            f"/api/v1/users/{user}/watchlist/{uuid.uuid4()}",
            json={"timestamp": stamp},
            headers=headers,
        )
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["fields"]
    assert error["field"] == "timestamp" and "s ahead of the server's clock" in error["reason"]
