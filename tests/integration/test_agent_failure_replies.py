"""A request an agent cannot answer is answered at once with the reason, for every request/reply
topic through the one mechanism of the agent runtime (agreements/agent_reply.py): the gateway's
request_reply hears a failure, not its timeout. On the real broker and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from agents.framework import runtime
from agents.framework.context import AgentContext, ContextHolder
from agents.framework.runtime import AgentSpec, Record, process_batch
from agents.groups import ALL_AGENTS
from agreements.agent_reply import failure_of
from agreements.read_model import reply_channel
from gateway.lookup import AgentFailed, request_reply
from schemas.auth import (
    DeviceApprovalRequested,
    DeviceAuthorizationRequested,
    GrantType,
    RevocationRequested,
    TokenRequested,
)
from schemas.content import ContentLookupRequested
from schemas.discovery import SearchRequested
from schemas.envelope import Envelope, Payload
from schemas.ingestion import ItemMappingRequested
from schemas.notifications import InboxLookupRequested
from schemas.sona import RecommendationsRequested
from schemas.sync import (
    DeviceInfo,
    DevicePlatform,
    DeviceType,
    SyncLookupRequested,
    SyncView,
)
from tests.auth.helpers import bearer, running_gateway, user_token
from tests.conftest import Isolated
from tests.helpers import read_topic
from topics.registry import (
    AUTH_DEVICE_APPROVALS,
    AUTH_DEVICE_AUTHORIZATIONS,
    AUTH_REVOCATIONS,
    AUTH_TOKEN_REQUESTS,
    CONTENT_ITEM_LOOKUP,
    CONTENT_LOOKUP,
    DISCOVERY_SEARCH,
    NOTIFICATIONS_LOOKUP,
    SONA_RECOMMENDATIONS,
    SYNC_LOOKUP,
    TOPICS,
    TopicSpec,
)

TIMEOUT_S = 10.0  # the gateway would wait this long for an agent that never answers


def _channel() -> str:
    return reply_channel("t", uuid.uuid4())


REQUESTS: dict[str, tuple[TopicSpec, Callable[[], Payload]]] = {
    "content lookup": (
        CONTENT_LOOKUP,
        lambda: ContentLookupRequested(canonical_id=uuid.uuid4(), reply_channel=_channel()),
    ),
    "item mapping": (
        CONTENT_ITEM_LOOKUP,
        lambda: ItemMappingRequested(
            platform="netflix", platform_item_id="n-1", reply_channel=_channel()
        ),
    ),
    "search": (
        DISCOVERY_SEARCH,
        lambda: SearchRequested(query="heat", reply_channel=_channel()),
    ),
    "sync lookup": (
        SYNC_LOOKUP,
        lambda: SyncLookupRequested(
            user_id="u-1", view=SyncView.watchlist, reply_channel=_channel()
        ),
    ),
    "inbox lookup": (
        NOTIFICATIONS_LOOKUP,
        lambda: InboxLookupRequested(user_id="u-1", reply_channel=_channel()),
    ),
    "recommendations": (
        SONA_RECOMMENDATIONS,
        lambda: RecommendationsRequested(
            user_id="u-1", at=datetime.now(UTC), reply_channel=_channel()
        ),
    ),
    "token": (
        AUTH_TOKEN_REQUESTS,
        lambda: TokenRequested(
            grant_type=GrantType.refresh_token,
            refresh_token_hash="0" * 64,
            reply_channel=_channel(),
        ),
    ),
    "revocation": (
        AUTH_REVOCATIONS,
        lambda: RevocationRequested(refresh_token_hash="0" * 64, reply_channel=_channel()),
    ),
    "device authorization": (
        AUTH_DEVICE_AUTHORIZATIONS,
        lambda: DeviceAuthorizationRequested(
            device_code_hash="1" * 64,
            user_code_hash="2" * 64,
            client_id="tv-app",
            device=DeviceInfo(
                device_id="tv-1",
                device_type=DeviceType.tv,
                platform=DevicePlatform.tizen,
                app_version="1.0",
                device_name="TV",
            ),
            expires_in_s=600,
            interval_s=5,
            reply_channel=_channel(),
        ),
    ),
    "device approval": (
        AUTH_DEVICE_APPROVALS,
        lambda: DeviceApprovalRequested(
            user_code_hash="2" * 64, user_id="u-1", approved=True, reply_channel=_channel()
        ),
    ),
}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "FIRST_RETRY_DELAY_S", 0.01)


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield (await holder.get()).for_agent("test-agent")
    await holder.close()


class Failing:
    """A handler that fails `transient` times with a dependency error, then, when `broken`,
    on every call with a bug."""

    def __init__(self, *, transient: int = 0, broken: bool = True) -> None:
        self.transient = transient
        self.broken = broken

    async def __call__(self, ctx: Any, batch: list[Envelope[Any]]) -> None:
        if self.transient:
            self.transient -= 1
            raise ConnectionRefusedError("postgres restarting")
        if self.broken:
            raise ValueError("a zero vector has no direction to compare by cosine")


async def _ask_while_agent_runs(
    ctx: AgentContext, topic: TopicSpec, wanted: Payload, handler: Failing
) -> tuple[BaseException | bytes, float]:
    """The gateway asks; an agent with `handler` takes the request off the topic."""
    started = time.monotonic()
    asking = asyncio.create_task(
        request_reply(
            ctx.redis,
            ctx.publisher,
            topic,
            wanted,
            key="k",
            timeout_s=TIMEOUT_S,
            unanswered=TimeoutError("no answer"),
            breaker=f"test-{uuid.uuid4().hex[:6]}",
        )
    )
    name = topic.full_name(ctx.settings.kafka.topic_prefix)
    mine: list[Any] = []
    while not mine:
        records = await read_topic(ctx.settings.kafka.bootstrap, name, settle_s=0.2)
        mine = [r for r in records if wanted.reply_channel.encode() in r.value]  # type: ignore[attr-defined]
    record = mine[0]
    spec = AgentSpec("test-agent", "test", topic, handler)
    batch = [Record(name, record.partition, record.offset, record.key, record.value, [])]
    agent = asyncio.create_task(process_batch(spec, ctx, ctx.publisher, batch))
    try:
        answer: BaseException | bytes = await asking
    except Exception as exc:
        answer = exc
    elapsed = time.monotonic() - started
    await agent
    return answer, elapsed


@pytest.mark.parametrize("kind", list(REQUESTS))
async def test_a_request_the_handler_fails_on_is_answered_at_once_with_the_reason(
    ctx: AgentContext, kind: str
) -> None:
    topic, make = REQUESTS[kind]
    answer, elapsed = await _ask_while_agent_runs(ctx, topic, make(), Failing())
    assert isinstance(answer, AgentFailed), answer
    assert answer.failure.agent == "test-agent"
    assert not answer.failure.retryable
    assert "ValueError: a zero vector has no direction" in answer.failure.reason
    assert elapsed < TIMEOUT_S / 2, elapsed


async def test_a_dependency_down_is_answered_as_retryable(ctx: AgentContext) -> None:
    topic, make = REQUESTS["recommendations"]
    handler = Failing(transient=1, broken=False)
    answer, elapsed = await _ask_while_agent_runs(ctx, topic, make(), handler)
    assert isinstance(answer, AgentFailed), answer
    assert answer.failure.retryable
    assert "ConnectionRefusedError: postgres restarting" in answer.failure.reason
    assert elapsed < TIMEOUT_S / 2, elapsed
    assert handler.transient == 0  # and the batch was retried, as every batch is


async def test_a_request_the_agent_cannot_read_is_answered_too(ctx: AgentContext) -> None:
    channel = _channel()
    # A request of a newer shape than this agent knows (a field it refuses).
    value = orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "sona.recommendations.requested",
            "version": 1,
            "source": "gateway",
            "time": datetime.now(UTC).isoformat(),
            "key": "u-1",
            "payload": {"user_id": "u-1", "reply_channel": channel, "at": "soon"},
        }
    )
    pubsub = ctx.redis.pubsub()
    await pubsub.subscribe(channel)
    spec = AgentSpec("test-agent", "test", SONA_RECOMMENDATIONS, Failing(broken=False))
    name = SONA_RECOMMENDATIONS.full_name(ctx.settings.kafka.topic_prefix)
    await process_batch(spec, ctx, ctx.publisher, [Record(name, 0, 0, b"u-1", value, [])])
    message = None
    deadline = time.monotonic() + TIMEOUT_S
    while (message is None or message["type"] != "message") and time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    await pubsub.aclose()
    assert message is not None, "the agent left the asker waiting"
    failure = failure_of(message["data"])
    assert failure is not None and not failure.retryable
    assert "unreadable request" in failure.reason and "payload.at" in failure.reason


def test_every_request_topic_the_gateway_asks_is_answered_by_an_agent() -> None:
    requests = {spec.name for spec in TOPICS if spec.is_request}
    assert requests == {spec.name for spec, _ in REQUESTS.values()}
    consumed = {agent.topic.name for agent in ALL_AGENTS}
    assert requests <= consumed


async def _agent_answering_once(ctx: AgentContext, topic: TopicSpec, handler: Failing) -> None:
    """Take the first request off `topic` and run it through the runtime with `handler`."""
    name = topic.full_name(ctx.settings.kafka.topic_prefix)
    records: list[Any] = []
    while not records:
        records = await read_topic(ctx.settings.kafka.bootstrap, name, settle_s=0.2)
    record = records[0]
    spec = AgentSpec("sona-recommend", "sona", topic, handler)
    batch = [Record(name, record.partition, record.offset, record.key, record.value, [])]
    await process_batch(spec, ctx, ctx.publisher, batch)


@pytest.mark.parametrize(
    ("handler", "status", "code"),
    [
        (Failing(), 502, "agent_failed"),
        (Failing(transient=1, broken=False), 503, "agent_unavailable"),
    ],
)
async def test_the_gateway_answers_the_agents_reason_at_once(
    ctx: AgentContext, isolated: Isolated, handler: Failing, status: int, code: str
) -> None:
    """GET /api/v1/recommendations while the agent cannot answer: the status and the reason,
    long before the reply timeout (a 504 after SONA_REPLY_TIMEOUT_S before)."""
    settings = isolated.settings.model_copy(
        update={"sona": isolated.settings.sona.model_copy(update={"reply_timeout_s": TIMEOUT_S})}
    )
    token = user_token(settings, subject="u-stuck", scopes=["recommendations:read"])
    async with running_gateway(settings) as (_, http):
        agent = asyncio.create_task(_agent_answering_once(ctx, SONA_RECOMMENDATIONS, handler))
        started = time.monotonic()
        resp = await http.get("/api/v1/recommendations", headers=bearer(token))
        elapsed = time.monotonic() - started
        await agent
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code
    assert "sona-recommend" in body["detail"]
    reason = "postgres restarting" if status == 503 else "a zero vector has no direction"
    assert reason in body["detail"], body
    assert elapsed < TIMEOUT_S / 2, elapsed
    if status == 503:
        assert resp.headers["Retry-After"] == "1"
