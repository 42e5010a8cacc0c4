"""The loop every agent runs: take a batch, decode, dead-letter the bad, handle the rest, ack.

Offsets are acknowledged only after the handler returned, i.e. after its effects are durable;
Faust then commits the highest contiguous acknowledged offset. A crash mid-batch therefore
redelivers the batch, and handlers are idempotent so the redelivery changes nothing.

Someone waits for each record of a request topic (`TopicSpec.is_request`): a request the agent
cannot answer is answered at once with a failure on its reply channel (agreements/agent_reply.py)
rather than left to the asker's timeout: a record that cannot be decoded or is dead-lettered
(the reason, not retryable), and every request of a batch whose first try hit a transient
failure (a dependency down: retryable; the batch is still retried as any other).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import asyncpg
from loguru import logger
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agreements.agent_reply import AgentFailure, failure_reply, reply_channel_in
from core.observability import correlation
from core.observability.metrics import (
    AGENT_BATCH_SECONDS,
    AGENT_FAILURE_REPLIES,
    AGENT_RETRIES,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
)
from core.observability.stages import timed
from core.publisher import BrokerUnavailable, Headers, RawRecord
from core.resilience import CircuitOpen
from schemas.envelope import Envelope, decode
from schemas.storable import describe_validation_error
from topics.registry import TopicSpec

# Failures worth waiting out: the dependency will come back and the same batch will then pass.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerUnavailable,
    # An open breaker: the dependency is known to be down; wait for its half-open trial.
    CircuitOpen,
)
MAX_ERROR_CHARS = 2000
# The first wait after a transient failure; it doubles up to MAX_RETRY_DELAY_S.
FIRST_RETRY_DELAY_S = 0.2
MAX_RETRY_DELAY_S = 10.0


@dataclass(frozen=True)
class Record:
    """One consumed record, as much as the runtime needs of it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    reason: str  # short code: undecodable, invalid, processing_failed
    error: str


Handler = Callable[[Any, list[Envelope[Any]]], Awaitable[None]]
Event = TypeVar("Event")


class DeadLetterSink(Protocol):
    """What the loop needs of a publisher: core/publisher.py, or an in-memory one in tests."""

    def topic_name(self, spec: TopicSpec) -> str: ...

    async def send_raw(self, records: Iterable[RawRecord]) -> Any: ...


# batch_within_s for agents someone waits on (a request/reply, a remote command): take what is
# ready instead of waiting for a batch to fill (agents/framework/kafka/app.py `take_batches`).
TAKE_WHAT_IS_READY = 0.0


@dataclass(frozen=True)
class AgentSpec:
    name: str
    group: str
    topic: TopicSpec
    handler: Handler
    batch_size: int = 500
    batch_within_s: float = 0.05
    description: str = ""


@dataclass(frozen=True)
class TimerSpec:
    """Periodic work of a worker group (sweeps, expiry checks), given the worker's context."""

    name: str
    group: str
    interval_s: float
    run: Callable[[Any], Awaitable[Any]]
    # Also run once as the worker starts, rather than only after the first interval.
    at_start: bool = False


@dataclass(frozen=True)
class BroadcastSpec:
    """A topic every worker of the group reads whole: no consumer group, every partition from
    the log start, no offset ever committed (agents/framework/kafka/broadcast.py). For what each
    process must hear, e.g. to evict its own cache; never for effects that must happen once.
    Records that cannot be decoded are logged and skipped: there is no offset to hold back."""

    name: str
    group: str
    topic: TopicSpec
    handler: Handler
    description: str = ""


@dataclass
class Decoded:
    good: list[tuple[Record, Envelope[Any]]] = field(default_factory=list)
    bad: list[DeadLetter] = field(default_factory=list)


def decode_batch(records: Sequence[Record], spec: TopicSpec) -> Decoded:
    """Split records into valid envelopes and dead letters with the reason."""
    assert spec.payload is not None, f"{spec.name} carries raw bytes and cannot be decoded"
    out = Decoded()
    for record in records:
        if not record.value:
            out.bad.append(DeadLetter(record, "undecodable", "empty record value"))
            continue
        try:
            envelope = decode(record.value, spec.payload, spec.older_payloads)
        except ValidationError as exc:
            json_errors = [e for e in exc.errors() if e["type"] == "json_invalid"]
            if json_errors:
                out.bad.append(
                    DeadLetter(record, "undecodable", f"not JSON: {json_errors[0]['msg']}")
                )
            else:
                out.bad.append(DeadLetter(record, "invalid", describe_validation_error(exc)))
            continue
        except ValueError as exc:
            out.bad.append(DeadLetter(record, "invalid", str(exc)))
            continue
        out.good.append((record, envelope))
    return out


def dead_letter_headers(letter: DeadLetter, agent: str) -> Headers:
    record = letter.record
    kept = [(k, v) for k, v in record.headers if not k.startswith("dlq.")]
    return [
        *kept,
        ("dlq.reason", letter.reason.encode()),
        ("dlq.error", letter.error[:MAX_ERROR_CHARS].encode()),
        ("dlq.original_topic", record.topic.encode()),
        ("dlq.original_partition", str(record.partition).encode()),
        ("dlq.original_offset", str(record.offset).encode()),
        ("dlq.agent", agent.encode()),
        ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
    ]


async def send_dead_letters(
    publisher: DeadLetterSink, spec: TopicSpec, agent: str, letters: Sequence[DeadLetter]
) -> None:
    if not letters:
        return
    dlq = spec.dead_letter
    assert dlq is not None, f"{spec.name} declares no dead-letter topic"
    topic = publisher.topic_name(dlq)
    await publisher.send_raw(
        (
            topic,
            letter.record.key,
            letter.record.value or b"",
            dead_letter_headers(letter, agent),
            "",
        )
        for letter in letters
    )
    for letter in letters:
        EVENTS_DEAD_LETTERED.labels(agent, spec.name, letter.reason).inc()
        cid = dict(letter.record.headers).get(correlation.KAFKA_HEADER)
        logger.bind(
            correlation_id=cid.decode() if cid else None,
            topic=letter.record.topic,
            partition=letter.record.partition,
            offset=letter.record.offset,
            reason=letter.reason,
        ).warning("record dead-lettered: {}", letter.error[:300])


async def answer_failure(
    spec: AgentSpec, ctx: Any, channels: Sequence[str], failure: AgentFailure
) -> None:
    """Tell whoever waits on `channels` that this request will not be answered, and why. Best
    effort: with Redis away nobody hears it, and the asker's timeout answers instead."""
    if not channels:
        return
    body = failure_reply(failure)
    try:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.publish(channel, body)
            await pipe.execute()
    except Exception as exc:
        logger.warning(
            "{}: could not answer {} request(s) with their failure: {!r}",
            spec.name,
            len(channels),
            exc,
        )
        return
    kind = "retryable" if failure.retryable else "failed"
    AGENT_FAILURE_REPLIES.labels(spec.name, kind).inc(len(channels))


def _channels(envelopes: Sequence[Envelope[Any]]) -> list[str]:
    return [env.payload.reply_channel for env in envelopes]


async def retry_transient(
    name: str,
    operation: Callable[[], Awaitable[None]],
    on_first_failure: Callable[[BaseException], Awaitable[None]] | None = None,
) -> None:
    """Run until it succeeds, waiting out transient failures with capped exponential backoff;
    `on_first_failure` hears the first of them."""
    delay = FIRST_RETRY_DELAY_S
    while True:
        try:
            await operation()
            return
        except TRANSIENT_ERRORS as exc:
            if on_first_failure is not None:
                await on_first_failure(exc)
                on_first_failure = None
            AGENT_RETRIES.labels(name).inc()
            logger.warning("{}: transient failure, retrying in {:.1f}s: {!r}", name, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)


async def process_batch(
    spec: AgentSpec, ctx: Any, publisher: DeadLetterSink, records: Sequence[Record]
) -> None:
    """Everything but the ack: decode, dead-letter, handle (retrying transient failures)."""
    started = time.perf_counter()
    EVENTS_CONSUMED.labels(spec.name, spec.topic.name).inc(len(records))
    with timed(spec.name, "decode"):
        decoded = decode_batch(records, spec.topic)
    await retry_transient(
        spec.name, lambda: send_dead_letters(publisher, spec.topic, spec.name, decoded.bad)
    )
    if spec.topic.is_request:
        for letter in decoded.bad:
            channel = reply_channel_in(letter.record.value)
            if channel is not None:
                failure = AgentFailure(spec.name, f"unreadable request: {letter.error}", False)
                await answer_failure(spec, ctx, [channel], failure)
    if decoded.good:
        await _handle(spec, ctx, publisher, decoded.good)
    AGENT_BATCH_SECONDS.labels(spec.name).observe(time.perf_counter() - started)


async def _handle(
    spec: AgentSpec,
    ctx: Any,
    publisher: DeadLetterSink,
    good: list[tuple[Record, Envelope[Any]]],
) -> None:
    envelopes = [env for _, env in good]

    async def unavailable(exc: BaseException) -> None:
        reason = f"a dependency is unavailable ({type(exc).__name__}: {exc})"
        await answer_failure(spec, ctx, _channels(envelopes), AgentFailure(spec.name, reason, True))

    try:
        await retry_transient(
            spec.name,
            lambda: spec.handler(ctx, envelopes),
            unavailable if spec.topic.is_request else None,
        )
        return
    except Exception as exc:
        if len(good) == 1:
            record, env = good[0]
            error = f"{type(exc).__name__}: {exc}"
            with correlation.bound(env.correlation_id):
                logger.exception("{} failed on event {}", spec.name, env.event_id)
            if spec.topic.is_request:
                failure = AgentFailure(spec.name, error, retryable=False)
                await answer_failure(spec, ctx, _channels(envelopes), failure)
            await retry_transient(
                spec.name,
                lambda: send_dead_letters(
                    publisher,
                    spec.topic,
                    spec.name,
                    [DeadLetter(record, "processing_failed", error)],
                ),
            )
            return
    # A deterministic failure somewhere in the batch: split it so only the culprit is set aside.
    middle = len(good) // 2
    await _handle(spec, ctx, publisher, good[:middle])
    await _handle(spec, ctx, publisher, good[middle:])


async def consume(
    spec: AgentSpec,
    context: Callable[[], Awaitable[Any]],
    batches: AsyncIterable[Sequence[Event]],
    record: Callable[[Event], Record],
    ack: Callable[[Event], Awaitable[Any]],
) -> None:
    """The agent loop: each batch is processed whole, then every event of it is acked.

    Transport-neutral so it runs on a Faust stream (agents/framework/kafka/app.py) and on the
    in-memory stream of the fast tests alike. A batch that raises (a crash, a cancellation)
    is not acked, so the broker redelivers it.
    """
    async for events in batches:
        ctx = await context()
        await process_batch(spec, ctx, ctx.publisher, [record(e) for e in events])
        for event in events:
            await ack(event)


def record_of(event: Any) -> Record:
    """A Faust event as a Record."""
    message = event.message
    headers = message.headers or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=[(k, v or b"") for k, v in headers],
    )
