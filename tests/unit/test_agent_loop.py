"""The agent loop without a broker or a database: acks, retries, dead letters, batch splits.

Driven through `consume` with an in-memory stream and publisher (tests/fakes/memory_stream.py);
the same loop runs on the real broker in tests/integration and tests/e2e.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.framework import runtime
from agents.framework.runtime import AgentSpec, Record, consume
from schemas.content import CanonicalContent, ContentSubmitted
from schemas.envelope import Envelope, encode, wrap
from tests.fakes.memory_stream import MemoryPublisher, MemoryStream, records
from topics.registry import CONTENT_SUBMITTED


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "FIRST_RETRY_DELAY_S", 0.001)


def submitted(title: str) -> bytes:
    content = CanonicalContent.model_validate(
        {
            "canonical_id": "6f1c2a8e-1111-4a4a-9b9b-123456789abc",
            "content_type": "movie",
            "title": title,
            "genres": ["drama"],
            "updated_at": "2026-11-01T00:00:00Z",
        }
    )
    return encode(wrap(ContentSubmitted(content=content), key="k", source="test"))


@dataclass
class Ctx:
    publisher: MemoryPublisher = field(default_factory=MemoryPublisher)
    stream: MemoryStream | None = None


@dataclass
class Handler:
    """Records what it handled; fails as told: transient `outages` times, or on `poison` titles."""

    outages: int = 0
    poison: set[str] = field(default_factory=set)
    calls: list[list[str]] = field(default_factory=list)
    handled: list[str] = field(default_factory=list)

    async def __call__(self, ctx: Any, batch: list[Envelope[Any]]) -> None:
        titles = [env.payload.content.title for env in batch]
        self.calls.append(titles)
        if self.outages:
            self.outages -= 1
            raise ConnectionRefusedError("database restarting")
        if self.poison & set(titles):
            raise ValueError("cannot store this title")
        self.handled.extend(titles)


async def run(handler: Handler, batches: list[list[Record]], ctx: Ctx | None = None) -> Ctx:
    ctx = ctx or Ctx()
    stream = MemoryStream(batches)
    spec = AgentSpec("test-agent", "test", CONTENT_SUBMITTED, handler)

    async def context() -> Ctx:
        return ctx

    ctx.stream = stream
    await consume(spec, context, stream, lambda r: r, stream.ack)
    return ctx


def acked(ctx: Ctx) -> list[int]:
    assert ctx.stream is not None
    return ctx.stream.acked


async def test_every_event_is_acked_after_its_batch_was_handled() -> None:
    handler = Handler()
    ctx = await run(
        handler,
        [
            records("content.submitted", [submitted("A"), submitted("B")]),
            records("content.submitted", [submitted("C")], first_offset=2),
        ],
    )
    assert handler.handled == ["A", "B", "C"]
    assert handler.calls == [["A", "B"], ["C"]]
    assert acked(ctx) == [0, 1, 2]
    assert ctx.publisher.sent == []


async def test_a_transient_failure_is_retried_without_acking_until_it_passes() -> None:
    handler = Handler(outages=3)
    ctx = await run(handler, [records("content.submitted", [submitted("A"), submitted("B")])])
    # Three failed tries of the whole batch, then one that passed; nothing dead-lettered.
    assert handler.calls == [["A", "B"]] * 4
    assert handler.handled == ["A", "B"]
    assert acked(ctx) == [0, 1]
    assert ctx.publisher.sent == []


async def test_a_crash_mid_batch_acks_nothing_of_that_batch() -> None:
    class Crash(BaseException):
        pass

    async def crashing(ctx: Any, batch: list[Envelope[Any]]) -> None:
        raise Crash

    stream = MemoryStream([records("content.submitted", [submitted("A"), submitted("B")])])
    spec = AgentSpec("test-agent", "test", CONTENT_SUBMITTED, crashing)

    async def context() -> Ctx:
        return Ctx()

    with pytest.raises(Crash):
        await consume(spec, context, stream, lambda r: r, stream.ack)
    assert stream.acked == []


async def test_a_cancelled_batch_is_not_acked() -> None:
    started = asyncio.Event()

    async def slow(ctx: Any, batch: list[Envelope[Any]]) -> None:
        started.set()
        await asyncio.sleep(3600)

    stream = MemoryStream([records("content.submitted", [submitted("A")])])
    spec = AgentSpec("test-agent", "test", CONTENT_SUBMITTED, slow)

    async def context() -> Ctx:
        return Ctx()

    task = asyncio.create_task(consume(spec, context, stream, lambda r: r, stream.ack))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.acked == []


async def test_undecodable_and_invalid_records_are_dead_lettered_with_reasons_and_acked() -> None:
    handler = Handler()
    invalid = b'{"event_id": "not a uuid"}'
    ctx = await run(
        handler,
        [records("content.submitted", [b"{not json", submitted("A"), None, invalid])],
    )
    assert handler.handled == ["A"]
    assert acked(ctx) == [0, 1, 2, 3]
    assert [r[0] for r in ctx.publisher.sent] == ["content.submitted.dlq"] * 3
    reasons = [ctx.publisher.headers_of(i)["dlq.reason"] for i in range(3)]
    assert reasons == ["undecodable", "undecodable", "invalid"]
    first = ctx.publisher.headers_of(0)
    assert first["dlq.original_topic"] == "content.submitted"
    assert first["dlq.original_offset"] == "0"
    assert first["dlq.agent"] == "test-agent"
    assert first["x-test"] == "1"  # the record's own headers are kept
    assert "not JSON" in first["dlq.error"]
    # The dead letter carries the original bytes, for a replay after a fix.
    assert ctx.publisher.sent[0][2] == b"{not json"


async def test_a_deterministic_failure_is_split_out_and_only_the_culprit_dead_lettered() -> None:
    handler = Handler(poison={"C"})
    titles = ["A", "B", "C", "D", "E"]
    ctx = await run(handler, [records("content.submitted", [submitted(t) for t in titles])])
    assert sorted(handler.handled) == ["A", "B", "D", "E"]
    assert acked(ctx) == [0, 1, 2, 3, 4]
    assert len(ctx.publisher.sent) == 1
    headers = ctx.publisher.headers_of(0)
    assert headers["dlq.reason"] == "processing_failed"
    assert headers["dlq.original_offset"] == "2"
    assert "ValueError: cannot store this title" in headers["dlq.error"]


async def test_a_dead_letter_the_broker_refuses_is_retried_before_the_batch_is_acked() -> None:
    handler = Handler()
    ctx = Ctx(publisher=MemoryPublisher(fail_next=2))
    await run(handler, [records("content.submitted", [b"garbage", submitted("A")])], ctx)
    assert len(ctx.publisher.sent) == 1
    assert ctx.publisher.headers_of(0)["dlq.reason"] == "undecodable"
    assert acked(ctx) == [0, 1]
