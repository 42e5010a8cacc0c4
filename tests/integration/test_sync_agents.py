"""The sync handlers against the real PostgreSQL, Redis and broker (no Faust): merges, read
models, realtime events, the command router (every outcome, an injected clock) and presence."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.framework.runtime import Record, process_batch
from agents.sync.clock import to_physical_us
from agents.sync.handlers import (
    AGENTS,
    answer_lookups,
    command_router,
    device_handler,
    merge_progress,
    merge_watchlist,
    presence_sweep,
)
from agreements.device_register import COMPLETE, membership, register_key
from agreements.read_model import reply_channel
from agreements.sync_read_model import read_document
from core.config import Settings
from gateway.device_ownership import mark
from schemas.envelope import Envelope, decode, encode, wrap
from schemas.sync import (
    HLC,
    CommandResult,
    DeviceHeartbeat,
    DeviceInfo,
    DeviceRegistered,
    DeviceRemoved,
    ProgressUpdate,
    RealtimeEvent,
    RemoteCommandIssued,
    SyncLookupRequested,
    SyncView,
    WatchlistUpdate,
)
from tests.helpers import in_catalog, read_topic

T0 = datetime.now(UTC).replace(microsecond=0)
WATCHLIST_AGENT = next(spec for spec in AGENTS if spec.name == "sync-watchlist")
MOVIE, SHOW = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
async def ctx(settings: Settings, topics_created: None) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(settings, source="test")
    yield (await holder.get()).for_agent("sync-test")
    await holder.close()


@pytest.fixture(autouse=True)
async def catalog(settings: Settings) -> None:
    """MOVIE and SHOW are titles of the catalog: the merge dead-letters adds of others."""
    await in_catalog(settings, [MOVIE, SHOW])


@pytest.fixture
def user() -> str:
    return f"sync-{uuid.uuid4().hex[:10]}"


def stamp(seconds: float, logical: int = 0) -> HLC:
    return HLC(physical_us=to_physical_us(T0 + timedelta(seconds=seconds)), logical=logical)


def env(payload: Any, user: str) -> Envelope[Any]:
    return wrap(payload, key=user, source="test", correlation_id=f"corr-{user}")


async def realtime(ctx: AgentContext, user: str) -> list[RealtimeEvent]:
    topic = f"{ctx.settings.kafka.topic_prefix}.sync.realtime"
    records = await read_topic(ctx.settings.kafka.bootstrap, topic, settle_s=0.3)
    ours = [decode(r.value, RealtimeEvent) for r in records if r.key == user.encode()]
    return [e.payload for e in ours]


async def document(ctx: AgentContext, view: SyncView, user: str) -> dict[str, Any]:
    raw = await read_document(ctx.redis, ctx.prefix, view, user)
    assert raw is not None, f"no {view.value} document for {user}"
    return orjson.loads(raw)


def info(device_id: str, **caps: Any) -> DeviceInfo:
    return DeviceInfo.model_validate(
        {
            "device_id": device_id,
            "device_type": "tv" if device_id.startswith("tv") else "phone",
            "platform": "tizen" if device_id.startswith("tv") else "ios",
            "capabilities": caps,
            "app_version": "1.0",
            "device_name": device_id,
        }
    )


# --- watchlist -----------------------------------------------------------------------------------


async def test_a_watchlist_edited_on_two_offline_devices_converges_when_merged(
    ctx: AgentContext, user: str
) -> None:
    tags = [uuid.uuid4() for _ in range(3)]

    def add(cid: uuid.UUID, tag: uuid.UUID, at: float, device: str) -> Envelope[Any]:
        return env(
            WatchlistUpdate(
                user_id=user,
                operation="add",
                content_id=cid,
                unique_tag=tag,
                timestamp=stamp(at),
                device_id=device,
            ),
            user,
        )

    def remove(cid: uuid.UUID, seen: list[uuid.UUID], at: float, device: str) -> Envelope[Any]:
        return env(
            WatchlistUpdate(
                user_id=user,
                operation="remove",
                content_id=cid,
                removed_tags=seen,
                timestamp=stamp(at),
                device_id=device,
            ),
            user,
        )

    phone = [add(MOVIE, tags[0], 1, "phone-1"), remove(MOVIE, [tags[0]], 5, "phone-1")]
    tv = [add(MOVIE, tags[1], 3, "tv-1"), add(SHOW, tags[2], 4, "tv-1")]
    # The TV syncs first, then the phone, then the phone's queue is sent again (a retry).
    await merge_watchlist(ctx, tv)
    await merge_watchlist(ctx, phone)
    await merge_watchlist(ctx, phone)

    doc = await document(ctx, SyncView.watchlist, user)
    # The phone removed the tag it had seen; the TV's concurrent add of MOVIE survives.
    assert [i["content_id"] for i in doc["items"]] == [str(SHOW), str(MOVIE)]
    # One version per batch that changed the list; the repeated batch changed nothing.
    assert doc["items"][1]["tags"] == [str(tags[1])] and doc["version"] == 2
    events = await realtime(ctx, user)
    # Four operations changed the list; the repeated ones announced nothing.
    assert [e.message.kind for e in events] == ["watchlist"] * 4
    assert [e.message.in_watchlist for e in events] == [True, True, True, True]
    rows = await ctx.pool.fetch(
        "SELECT content_id, visible FROM sync_watchlist WHERE user_id = $1", user
    )
    assert {r["content_id"]: r["visible"] for r in rows} == {MOVIE: True, SHOW: True}


async def test_a_remove_that_finds_nothing_raises_no_version_and_announces_nothing(
    ctx: AgentContext, user: str
) -> None:
    def update(operation: str, cid: uuid.UUID, at: float, **tags: Any) -> Envelope[Any]:
        payload = WatchlistUpdate(
            user_id=user, operation=operation, content_id=cid, timestamp=stamp(at), **tags
        )
        return env(payload, user)

    await merge_watchlist(ctx, [update("add", SHOW, 1, unique_tag=uuid.uuid4())])
    await merge_watchlist(ctx, [update("remove", MOVIE, 2)])
    await merge_watchlist(ctx, [update("remove", MOVIE, 3, removed_tags=[uuid.uuid4()])])

    doc = await document(ctx, SyncView.watchlist, user)
    assert (doc["version"], [i["content_id"] for i in doc["items"]]) == (1, [str(SHOW)])
    assert [(e.message.operation, e.message.content_id) for e in await realtime(ctx, user)] == [
        ("add", SHOW)
    ]


# --- progress ------------------------------------------------------------------------------------


def report(user: str, cid: uuid.UUID, pos: float, at: float, device: str) -> Envelope[Any]:
    update = ProgressUpdate(
        user_id=user,
        content_id=cid,
        position_seconds=pos,
        duration_seconds=100,
        state="paused",
        timestamp=stamp(at),
        device_id=device,
    )
    return env(update, user)


async def test_continue_watching_keeps_the_newest_position_and_drops_completed_titles(
    ctx: AgentContext, user: str
) -> None:
    await merge_progress(ctx, [report(user, MOVIE, 40, 10, "tv-1")])
    # Stale (older stamp) from the phone, arriving late: ignored, not announced.
    await merge_progress(ctx, [report(user, MOVIE, 5, 2, "phone-1")])
    await merge_progress(ctx, [report(user, SHOW, 95, 11, "tv-1")])
    doc = await document(ctx, SyncView.progress, user)
    assert [(i["content_id"], i["position_seconds"]) for i in doc["items"]] == [(str(MOVIE), 40)]
    events = await realtime(ctx, user)
    assert [(e.message.kind, e.message.position_seconds) for e in events] == [
        ("progress", 40),
        ("progress", 95),
    ]


# --- devices and presence ------------------------------------------------------------------------


async def register(ctx: AgentContext, user: str, device: DeviceInfo, at: float) -> None:
    await device_handler(lambda: T0 + timedelta(seconds=at))(
        ctx, [env(DeviceRegistered(user_id=user, device=device, timestamp=stamp(at)), user)]
    )


async def test_devices_register_go_offline_after_60_s_and_are_removed(
    ctx: AgentContext, user: str
) -> None:
    await register(ctx, user, info("tv-1", remote_controllable=True), 0)
    await register(ctx, user, info("phone-1"), 0)
    heartbeat = DeviceHeartbeat(user_id=user, device_id="tv-1", timestamp=stamp(30))
    await device_handler(lambda: T0 + timedelta(seconds=30))(ctx, [env(heartbeat, user)])
    doc = await document(ctx, SyncView.devices, user)
    assert [d["device_id"] for d in doc["devices"]] == ["phone-1", "tv-1"]

    # At 70 s the phone (seen at 0 s) is silent for longer than 60 s; the TV (30 s) is not.
    assert await presence_sweep(lambda: T0 + timedelta(seconds=70))(ctx) >= 1
    # Nothing new to announce when the sweep runs again.
    again = await presence_sweep(lambda: T0 + timedelta(seconds=70))(ctx)
    rows = await ctx.pool.fetch(
        "SELECT device_id, announced_online FROM sync_devices WHERE user_id = $1", user
    )
    assert {r["device_id"]: r["announced_online"] for r in rows} == {
        "phone-1": False,
        "tv-1": True,
    }
    removal = DeviceRemoved(user_id=user, device_id="tv-1", timestamp=stamp(80))
    await device_handler(lambda: T0 + timedelta(seconds=80))(ctx, [env(removal, user)])
    doc = await document(ctx, SyncView.devices, user)
    assert [d["device_id"] for d in doc["devices"]] == ["phone-1"]

    presence = [(e.message.device_id, e.message.presence.value) for e in await realtime(ctx, user)]
    assert presence == [
        ("tv-1", "online"),
        ("phone-1", "online"),
        ("phone-1", "offline"),
        ("tv-1", "removed"),
    ]
    assert again == 0


# --- remote commands -----------------------------------------------------------------------------


def issue(user: str, body: dict[str, Any], target: str, issued_at: datetime) -> RemoteCommandIssued:
    return RemoteCommandIssued.model_validate(
        {
            "command_id": uuid.uuid4(),
            "user_id": user,
            "source_device_id": "phone-1",
            "target_device_id": target,
            "command": body,
            "issued_at": issued_at,
        }
    )


async def results(ctx: AgentContext, user: str) -> dict[uuid.UUID, CommandResult]:
    topic = f"{ctx.settings.kafka.topic_prefix}.sync.command_results"
    records = await read_topic(ctx.settings.kafka.bootstrap, topic, settle_s=0.3)
    out = {}
    for r in records:
        if r.key == user.encode():
            result = decode(r.value, CommandResult).payload
            out[result.command_id] = result
    return out


async def test_every_command_outcome_reaches_the_sender_and_only_delivered_ones_the_target(
    ctx: AgentContext, user: str
) -> None:
    await register(ctx, user, info("phone-1", remote_controllable=True, can_cast=True), 0)
    await register(ctx, user, info("tv-1", remote_controllable=True, can_cast=True), 0)
    await register(ctx, user, info("speaker-1"), 0)  # not remote controllable
    await register(ctx, user, info("tv-old", remote_controllable=True), -120)  # offline
    await register(ctx, user, info("tv-2", remote_controllable=True), 0)  # can_cast: False
    now = T0 + timedelta(seconds=2)
    cast = {"type": "cast_to", "content_id": str(MOVIE)}
    cases = {
        "delivered": issue(user, {"type": "play"}, "tv-1", now),
        # Issued 6 s before the router sees it: past the 5 s TTL (injected clock, no sleep).
        "expired": issue(user, {"type": "pause"}, "tv-1", now - timedelta(seconds=6)),
        "unknown": issue(user, {"type": "play"}, "tv-404", now),
        "offline": issue(user, {"type": "play"}, "tv-old", now),
        "not_supported": issue(user, {"type": "play"}, "speaker-1", now),
        "no_cast": issue(user, {**cast, "target_device_id": "tv-1"}, "tv-2", now),
        "cast_offline": issue(user, {**cast, "target_device_id": "tv-old"}, "tv-1", now),
        "volume": issue(user, {"type": "volume_set", "level": 1.5}, "tv-1", now),
        "cast_ok": issue(user, {**cast, "target_device_id": "tv-2"}, "tv-1", now),
    }
    route = command_router(lambda: now)
    await route(ctx, [env(c, user) for c in cases.values()])
    # Redelivered after a restart: decided once, delivered once.
    await route(ctx, [env(cases["delivered"], user)])

    got = await results(ctx, user)
    outcome = {name: got[c.command_id] for name, c in cases.items()}
    assert {name: (r.error.value if r.error else "delivered") for name, r in outcome.items()} == {
        "delivered": "delivered",
        "expired": "expired",
        "unknown": "device_offline",
        "offline": "device_offline",
        "not_supported": "not_supported",
        "no_cast": "not_supported",
        "cast_offline": "device_offline",
        "volume": "invalid_parameters",
        "cast_ok": "delivered",
    }
    messages = [e.message for e in await realtime(ctx, user)]
    commands = [m for m in messages if m.kind == "command"]
    assert sorted(str(m.command_id) for m in commands) == sorted(
        str(cases[n].command_id) for n in ("delivered", "cast_ok")
    )
    assert all(m.target_device_id == "tv-1" for m in commands)
    answers = [m for m in messages if m.kind == "command_result"]
    assert len(answers) == len(cases) and all(m.source_device_id == "phone-1" for m in answers)
    assert await ctx.pool.fetchval(
        "SELECT count(*) FROM sync_commands WHERE user_id = $1", user
    ) == len(cases)


# --- read-model misses ---------------------------------------------------------------------------


async def test_a_lookup_loads_the_view_from_postgres_and_answers_on_the_reply_channel(
    ctx: AgentContext, user: str
) -> None:
    await merge_progress(ctx, [report(user, MOVIE, 12, 1, "tv-1")])
    # Redis lost it (a restart): the document is gone, PostgreSQL still has the position.
    await ctx.redis.delete(f"{ctx.prefix}:sync:progress:{user}")
    channel = reply_channel(ctx.prefix, uuid.uuid4())
    pubsub = ctx.redis.pubsub()
    await pubsub.subscribe(channel)
    try:
        request = SyncLookupRequested(user_id=user, view="progress", reply_channel=channel)
        await answer_lookups(ctx, [env(request, user)])
        answer = None
        for _ in range(20):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                answer = orjson.loads(message["data"])
                break
    finally:
        await pubsub.unsubscribe(channel)
        await pubsub.aclose()
    assert answer is not None and answer["items"][0]["position_seconds"] == 12
    assert (await document(ctx, SyncView.progress, user)) == answer
    # A user with nothing gets an empty document, not a miss.
    nobody = f"nobody-{uuid.uuid4().hex[:6]}"
    request = SyncLookupRequested(user_id=nobody, view="watchlist", reply_channel=channel)
    await answer_lookups(ctx, [env(request, nobody)])
    assert (await document(ctx, SyncView.watchlist, nobody))["items"] == []


async def test_a_retried_operation_restamped_by_the_gateway_is_applied_once(
    ctx: AgentContext, user: str
) -> None:
    """A client retries after `outcome_unknown` with the same Idempotency-Key: the gateway
    gives the retry the same event id but a newer clock stamp (gateway/idempotency.py)."""
    first = env(
        WatchlistUpdate(
            user_id=user,
            operation="add",
            content_id=MOVIE,
            unique_tag=uuid.uuid4(),
            timestamp=stamp(1),
            device_id="phone-1",
        ),
        user,
    )
    retry = first.model_copy(
        update={"payload": first.payload.model_copy(update={"timestamp": stamp(2)})}
    )
    await merge_watchlist(ctx, [first])
    await merge_watchlist(ctx, [retry, retry])
    announced = [m for m in await realtime(ctx, user) if m.message.kind == "watchlist"]
    assert len(announced) == 1
    listed = (await document(ctx, SyncView.watchlist, user))["items"]
    assert [i["content_id"] for i in listed] == [str(MOVIE)]
    # Another operation (another id) still applies.
    await merge_watchlist(
        ctx, [env(first.payload.model_copy(update={"timestamp": stamp(3)}), user)]
    )
    assert len([m for m in await realtime(ctx, user) if m.message.kind == "watchlist"]) == 2


# --- the device register (the gateway's ownership check) -----------------------------------------


async def register_fields(ctx: AgentContext, user: str) -> dict[str, str]:
    raw = await ctx.redis.hgetall(register_key(ctx.prefix, user))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def test_the_register_follows_the_merge_and_keeps_a_newer_gateway_mark(
    ctx: AgentContext, user: str
) -> None:
    await register(ctx, user, info("tv-1"), 0)
    await register(ctx, user, info("phone-1"), 1)
    removal = DeviceRemoved(user_id=user, device_id="phone-1", timestamp=stamp(2))
    await device_handler(lambda: T0 + timedelta(seconds=2))(ctx, [env(removal, user)])
    fields = await register_fields(ctx, user)
    assert fields == {
        COMPLETE: "1",
        "tv-1": membership(stamp(0), registered=True),
        "phone-1": membership(stamp(2), registered=False),
    }
    # The gateway marked a registration at 5 s that the agent has not merged; the agent's next
    # full write (a heartbeat of the TV) still holds phone-1 removed at 2 s: the newer mark stays.
    await mark(ctx.redis, ctx.prefix, user, "phone-1", stamp(5), registered=True)
    beat = DeviceHeartbeat(user_id=user, device_id="tv-1", timestamp=stamp(6))
    await device_handler(lambda: T0 + timedelta(seconds=6))(ctx, [env(beat, user)])
    assert (await register_fields(ctx, user))["phone-1"] == membership(stamp(5), True)
    # An older mark never wins; on equal stamps the removal does (as the merge decides).
    await mark(ctx.redis, ctx.prefix, user, "tv-1", stamp(-1), registered=False)
    assert (await register_fields(ctx, user))["tv-1"] == membership(stamp(0), True)
    await mark(ctx.redis, ctx.prefix, user, "tv-1", stamp(0), registered=False)
    assert (await register_fields(ctx, user))["tv-1"] == membership(stamp(0), False)


async def test_a_devices_lookup_loads_the_register(ctx: AgentContext, user: str) -> None:
    await register(ctx, user, info("tv-1"), 0)
    # Redis lost the register: a devices lookup (the gateway's fallback) writes it back.
    await ctx.redis.delete(register_key(ctx.prefix, user))
    request = SyncLookupRequested(
        user_id=user, view="devices", reply_channel=reply_channel(ctx.prefix, uuid.uuid4())
    )
    await answer_lookups(ctx, [env(request, user)])
    assert await register_fields(ctx, user) == {
        COMPLETE: "1",
        "tv-1": membership(stamp(0), registered=True),
    }
    # A user without devices gets a complete, empty register: every device is unknown.
    nobody = f"nobody-{uuid.uuid4().hex[:6]}"
    request = SyncLookupRequested(
        user_id=nobody, view="devices", reply_channel=reply_channel(ctx.prefix, uuid.uuid4())
    )
    await answer_lookups(ctx, [env(request, nobody)])
    assert await register_fields(ctx, nobody) == {COMPLETE: "1"}


async def test_an_add_of_a_title_the_catalog_lacks_is_dead_lettered_and_the_rest_merged(
    ctx: AgentContext, user: str
) -> None:
    """Found by hand: an add written to sync.watchlist by another producer than the gateway
    (which refuses an unknown title with a 404) put a made-up id on the user's list for good.
    The merge now refuses it: the runtime sets that record aside on the dead-letter topic with
    the reason, and the batch's other operations (a known add, a remove of anything) merge."""
    made_up = uuid.uuid4()
    ops = [
        WatchlistUpdate(
            user_id=user,
            operation="add",
            content_id=MOVIE,
            unique_tag=uuid.uuid4(),
            timestamp=stamp(1),
        ),
        WatchlistUpdate(
            user_id=user,
            operation="add",
            content_id=made_up,
            unique_tag=uuid.uuid4(),
            timestamp=stamp(2),
        ),
        # A remove is never refused: a title the catalog dropped must stay removable.
        WatchlistUpdate(
            user_id=user, operation="remove", content_id=uuid.uuid4(), timestamp=stamp(3)
        ),
        WatchlistUpdate(
            user_id=user,
            operation="add",
            content_id=SHOW,
            unique_tag=uuid.uuid4(),
            timestamp=stamp(4),
        ),
    ]
    records = [
        Record(
            topic="sync.watchlist",
            partition=0,
            offset=n,
            key=user.encode(),
            value=encode(env(op, user)),
            headers=[("correlation_id", f"{user}-{n}".encode())],
        )
        for n, op in enumerate(ops)
    ]
    await process_batch(WATCHLIST_AGENT, ctx, ctx.publisher, records)

    doc = await document(ctx, SyncView.watchlist, user)
    assert {i["content_id"] for i in doc["items"]} == {str(MOVIE), str(SHOW)}
    dlq = f"{ctx.settings.kafka.topic_prefix}.sync.watchlist.dlq"
    letters = [
        dict(r.headers)
        for r in await read_topic(ctx.settings.kafka.bootstrap, dlq, settle_s=0.3)
        if r.key == user.encode()
    ]
    assert len(letters) == 1, letters
    (letter,) = letters
    assert letter["correlation_id"] == f"{user}-1".encode()
    assert letter["dlq.reason"] == b"processing_failed"
    error = letter["dlq.error"].decode()
    assert "catalog does not have" in error and str(made_up) in error
    # Nothing of the refused add reached the user's devices either.
    announced = await realtime(ctx, user)
    assert {e.message.content_id for e in announced if e.message.kind == "watchlist"} == {
        MOVIE,
        SHOW,
    }
