"""What the sync routes refuse and how they write what they answer, on the gateway in this
process: client clocks too far ahead however large, resume ids Redis cannot take, and times in
the one form the stream uses."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from core.config import Settings
from tests.auth.helpers import bearer, register_devices, running_gateway, user_token
from tests.helpers import catalog_title

# Each number of a Redis stream id is an unsigned 64-bit integer.
MAX_ID_PART = 2**64 - 1
PAST_REDIS = [f"e0:1-{'9' * 20}", f"e0:{MAX_ID_PART + 1}-0", f"e0:1-{MAX_ID_PART + 1}"]
ZERO = timedelta(0)


@pytest.mark.parametrize("ahead_us", [65_000_000, 10**400])
async def test_a_client_stamp_too_far_ahead_is_422_however_far(
    settings: Settings, ahead_us: int
) -> None:
    user = f"clock-{uuid.uuid4().hex[:8]}"
    headers = bearer(user_token(settings, subject=user, scopes=["watchlist:write"]))
    title = await catalog_title(settings)
    async with running_gateway(settings) as (_, http):
        # Just before the request: time passing shrinks the lead.
        stamp = {"physical_us": time.time_ns() // 1000 + ahead_us, "logical": 0}
        answer = await http.put(
            f"/api/v1/users/{user}/watchlist/{title}",
            json={"timestamp": stamp},
            headers=headers,
        )
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["fields"]
    assert error["field"] == "timestamp" and "s ahead of the server's clock" in error["reason"]


@pytest.mark.parametrize("event_id", PAST_REDIS)
async def test_a_resume_id_past_what_redis_takes_is_422_naming_the_field(
    settings: Settings, event_id: str
) -> None:
    user = f"rt-{uuid.uuid4().hex[:8]}"
    headers = bearer(user_token(settings, subject=user, scopes=["watchlist:read"]))
    url, channels = f"/api/v1/users/{user}/stream", {"channels": "sync"}
    async with running_gateway(settings) as (_, http):
        by_header = await http.get(
            url, params=channels, headers={**headers, "Last-Event-ID": event_id}
        )
        by_query = await http.get(
            url, params={**channels, "last_event_id": event_id}, headers=headers
        )
    for answer, field in ((by_header, "header.Last-Event-ID"), (by_query, "query.last_event_id")):
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["fields"]
        assert error["field"] == field and "at most 18446744073709551615" in error["reason"]


async def test_the_document_states_the_bounds_of_a_resume_id(settings: Settings) -> None:
    async with running_gateway(settings) as (_, http):
        document = (await http.get("/openapi.json")).json()
    parameters = document["paths"]["/api/v1/users/{user_id}/stream"]["get"]["parameters"]
    patterns = {
        p["name"]: re.compile(p["schema"]["pattern"])
        for p in parameters
        if p["name"] in ("Last-Event-ID", "last_event_id")
    }
    assert set(patterns) == {"Last-Event-ID", "last_event_id"}
    for pattern in patterns.values():
        assert pattern.search(f"e0:{MAX_ID_PART}-{MAX_ID_PART}")
        assert pattern.search("3fa2b1c0:1796558347950-0")
        for refused in PAST_REDIS:
            assert not pattern.search(refused), refused


async def _phone_commands_tv(settings: Settings, command: dict[str, object]) -> httpx.Response:
    user = f"cmd-{uuid.uuid4().hex[:8]}"
    headers = {
        **bearer(user_token(settings, subject=user, scopes=["devices:command"])),
        "X-Device-ID": "phone-1",
    }
    async with running_gateway(settings) as (_, http):
        await register_devices(http, settings, user, "phone-1", "tv-1")
        return await http.post(
            f"/api/v1/users/{user}/devices/tv-1/commands",
            json={"command": command},
            headers=headers,
        )


async def test_a_commands_expiry_is_written_in_the_form_of_the_stream(settings: Settings) -> None:
    answer = await _phone_commands_tv(settings, {"type": "play"})
    assert answer.status_code == 202, answer.text
    expires_at = answer.json()["expires_at"]
    # The form of the message on the stream (pydantic's JSON of an aware UTC datetime).
    assert expires_at.endswith("Z") and datetime.fromisoformat(expires_at).utcoffset() == ZERO


@pytest.mark.parametrize(
    ("command", "field", "reason"),
    [
        ({"type": "seek", "position_seconds": -5}, "position_seconds", "is negative"),
        ({"type": "volume_set", "level": 1.5}, "level", "is outside 0-1"),
        (
            {"type": "load_content", "content_id": str(uuid.uuid4()), "start_position": -1},
            "start_position",
            "is negative",
        ),
        (
            {"type": "cast_to", "target_device_id": "tv-1", "content_id": str(uuid.uuid4())},
            "target_device_id",
            "is the device receiving the command",
        ),
    ],
)
async def test_a_command_parameter_out_of_range_is_422_naming_it(
    settings: Settings, command: dict[str, object], field: str, reason: str
) -> None:
    answer = await _phone_commands_tv(settings, command)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["fields"]
    assert error["field"] == f"command.{field}" and reason in error["reason"], error
