"""Devices per user and watchlist size: the gateway answers 409 from the read model, and the
sync agent (real PostgreSQL, Redis and broker) drops what raced past the gateway's check."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from agents.framework.context import AgentContext, ContextHolder
from agents.sync.clock import to_physical_us
from agents.sync.handlers import device_handler, merge_watchlist
from agreements.sync_read_model import read_document
from core.config import Settings
from gateway.device_ownership import mark
from schemas.envelope import Envelope, wrap
from schemas.sync import HLC, DeviceInfo, DeviceRegistered, SyncView, WatchlistUpdate
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.helpers import catalog_title, catalog_titles

MAX_DEVICES, MAX_TITLES = 3, 3
DEVICE_BODY = {"device_type": "phone", "platform": "ios", "app_version": "1", "device_name": "p"}


@pytest.fixture
def bounded(settings: Settings) -> Settings:
    sync = settings.sync.model_copy(
        update={"max_devices_per_user": MAX_DEVICES, "max_watchlist_size": MAX_TITLES}
    )
    return settings.model_copy(update={"sync": sync})


@pytest.fixture
async def ctx(bounded: Settings, topics_created: None) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(bounded, source="test")
    yield (await holder.get()).for_agent("sync-test")
    await holder.close()


@pytest.fixture
def user() -> str:
    return f"bounds-{uuid.uuid4().hex[:10]}"


def refusals(bound: str, where: str) -> float:
    labels = {"bound": bound, "where": where}
    return REGISTRY.get_sample_value("mgw_bound_refusals_total", labels) or 0.0


def now_stamp() -> HLC:
    return HLC(physical_us=to_physical_us(datetime.now(UTC)), logical=0)


def env(payload: Any, user: str) -> Envelope[Any]:
    return wrap(payload, key=user, source="test", correlation_id=f"corr-{user}")


def registration(user: str, device_id: str) -> Envelope[Any]:
    info = DeviceInfo.model_validate({"device_id": device_id, **DEVICE_BODY})
    return env(DeviceRegistered(user_id=user, device=info, timestamp=now_stamp()), user)


def add(user: str, title: uuid.UUID) -> Envelope[Any]:
    update = WatchlistUpdate(
        user_id=user,
        operation="add",
        content_id=title,
        unique_tag=uuid.uuid4(),
        timestamp=now_stamp(),
    )
    return env(update, user)


async def document(ctx: AgentContext, view: SyncView, user: str) -> dict[str, Any]:
    raw = await read_document(ctx.redis, ctx.prefix, view, user)
    assert raw is not None
    return orjson.loads(raw)


async def test_a_device_past_the_limit_is_refused_409_and_by_the_agent(
    ctx: AgentContext, bounded: Settings, user: str
) -> None:
    merge = device_handler()
    await merge(ctx, [registration(user, f"phone-{i}") for i in range(MAX_DEVICES)])
    headers = bearer(user_token(bounded, subject=user, scopes=["devices:write"]))
    before = refusals("devices_per_user", "gateway")
    async with running_gateway(bounded) as (_, http):
        refused = await http.put(
            f"/api/v1/users/{user}/devices/phone-new", json=DEVICE_BODY, headers=headers
        )
        again = await http.put(
            f"/api/v1/users/{user}/devices/phone-0", json=DEVICE_BODY, headers=headers
        )
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "device_limit_reached"
    assert body["fields"] == [
        {"field": "device_id", "reason": f"a new device past the limit of {MAX_DEVICES}"}
    ]
    # Re-registering a device already registered is an update, never refused.
    assert again.status_code == 202, again.text
    assert refusals("devices_per_user", "gateway") == before + 1

    # Two registrations that both passed the gateway's check (a race): the agent keeps the cap.
    raced = refusals("devices_per_user", "agent")
    await merge(ctx, [registration(user, "tv-a"), registration(user, "tv-b")])
    listed = await document(ctx, SyncView.devices, user)
    assert sorted(d["device_id"] for d in listed["devices"]) == ["phone-0", "phone-1", "phone-2"]
    assert refusals("devices_per_user", "agent") == raced + 2
    # A gateway marks a registration in the device register as it accepts it; the agent's
    # refusal unmarks it, so the device counts for nothing and acts as nothing.
    raced_again = [registration(user, "tv-c")]
    await mark(ctx.redis, ctx.prefix, user, "tv-c", raced_again[0].payload.timestamp, True)
    await merge(ctx, raced_again)
    async with running_gateway(bounded) as (_, http):
        acting = await http.post(
            f"/api/v1/users/{user}/devices/tv-c/heartbeat", json={}, headers=headers
        )
    assert acting.status_code == 403 and acting.json()["error"] == "unknown_device"


async def test_a_title_past_the_watchlist_size_is_refused_409_and_by_the_agent(
    ctx: AgentContext, bounded: Settings, user: str
) -> None:
    titles = await catalog_titles(bounded, MAX_TITLES)
    await merge_watchlist(ctx, [add(user, t) for t in titles])
    headers = bearer(user_token(bounded, subject=user, scopes=["watchlist:write"]))
    before = refusals("watchlist_size", "gateway")
    new = await catalog_title(bounded)
    async with running_gateway(bounded) as (_, http):
        refused = await http.put(f"/api/v1/users/{user}/watchlist/{new}", headers=headers)
        again = await http.put(f"/api/v1/users/{user}/watchlist/{titles[0]}", headers=headers)
        removed = await http.delete(f"/api/v1/users/{user}/watchlist/{titles[1]}", headers=headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "watchlist_full"
    assert refused.json()["fields"][0]["field"] == "content_id"
    assert again.status_code == 202 and removed.status_code == 202
    assert refusals("watchlist_size", "gateway") == before + 1

    # Adds that raced past the gateway: the agent refuses the new title, keeps a re-add.
    raced = refusals("watchlist_size", "agent")
    extra = await catalog_title(bounded)
    await merge_watchlist(ctx, [add(user, extra), add(user, titles[2])])
    listed = await document(ctx, SyncView.watchlist, user)
    assert {uuid.UUID(i["content_id"]) for i in listed["items"]} == set(titles)
    assert refusals("watchlist_size", "agent") == raced + 1
    # A removal frees a place.
    remove = WatchlistUpdate(
        user_id=user, operation="remove", content_id=titles[1], timestamp=now_stamp()
    )
    await merge_watchlist(ctx, [env(remove, user), add(user, extra)])
    listed = await document(ctx, SyncView.watchlist, user)
    assert {uuid.UUID(i["content_id"]) for i in listed["items"]} == {titles[0], titles[2], extra}


async def test_a_user_without_a_document_is_let_through(bounded: Settings, user: str) -> None:
    # No document in Redis: the gateway does not wait on a lookup; the agent decides.
    headers = bearer(user_token(bounded, subject=user, scopes=["watchlist:write"]))
    title = await catalog_title(bounded)
    async with running_gateway(bounded) as (_, http):
        answer = await http.put(f"/api/v1/users/{user}/watchlist/{title}", headers=headers)
    assert answer.status_code == 202


async def test_a_burst_of_registrations_is_counted_before_the_agent_applies_it(
    bounded: Settings, user: str
) -> None:
    # No agent runs: the gateway's own marks in the device register are what it counts.
    headers = bearer(user_token(bounded, subject=user, scopes=["devices:write"]))
    async with running_gateway(bounded) as (_, http):
        answers = [
            await http.put(
                f"/api/v1/users/{user}/devices/phone-{i}", json=DEVICE_BODY, headers=headers
            )
            for i in range(MAX_DEVICES + 1)
        ]
    assert [a.status_code for a in answers] == [202] * MAX_DEVICES + [409]
    assert answers[-1].json()["error"] == "device_limit_reached"
