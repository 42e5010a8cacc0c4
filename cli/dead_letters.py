"""Dead-lettered records, why, and back onto their topic (`mgw dlq`, cli/dlq.py).

A dead letter is the original record, byte for byte, with `dlq.*` headers saying why it was set
aside (topics/registry.py DEAD_LETTER_HEADERS). Replay produces it again on its original topic
with the original key and headers (minus `dlq.*`, plus `replay.source`), acknowledged by the
broker. Before sending, each record is checked against the topic's current schema: one that
would only be dead-lettered again is skipped unless `--force`. `--merge` fixes a record on
the way (an RFC 7386 JSON merge patch), for a producer's bug that cannot be fixed upstream.
The record keeps its event id, so the idempotent consumers apply it at most once however often
it is replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from cli.records import (
    UnknownTopic,
    known_ends,
    new_consumer,
    partitions_of,
    records_until,
    resolve_topic,
    validation_error,
)
from core.kafka import KafkaProducer, new_producer, stop_reader
from core.publisher import envelope_headers
from schemas.envelope import decode
from topics.registry import DLQ_SUFFIX, TopicSpec

REPLAY_SOURCE_HEADER = "replay.source"
# Rebuilt from the (possibly patched) envelope on replay, so they cannot contradict it.
_ENVELOPE_HEADERS = {"event_id", "event_type", "version", "content-type", "correlation_id"}


@dataclass(frozen=True)
class DeadLetterRecord:
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return (value or b"").decode("utf-8", errors="replace")
        return ""

    @property
    def reason(self) -> str:
        return self.header("dlq.reason") or "(none)"

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"


def topics_for(name: str, prefix: str) -> tuple[TopicSpec, TopicSpec, str, str]:
    """(original spec, dead-letter spec, original full name, dead-letter full name)."""
    spec, _ = resolve_topic(name.removesuffix(DLQ_SUFFIX), prefix)
    dead = spec.dead_letter
    if dead is None:
        raise UnknownTopic(f"{spec.name} has no dead-letter topic")
    return spec, dead, spec.full_name(prefix), dead.full_name(prefix)


async def read_dead_letters(bootstrap: str, dlq_topic: str) -> list[DeadLetterRecord]:
    """Every record the dead-letter topic keeps, oldest first."""
    consumer = new_consumer(bootstrap)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, dlq_topic)
        consumer.assign(tps)
        ends = await known_ends(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        return [
            DeadLetterRecord(
                r.partition,
                r.offset,
                datetime.fromtimestamp(r.timestamp / 1000, UTC),
                r.key,
                r.value or b"",
                [(k, v or b"") for k, v in r.headers or ()],
            )
            async for r in records_until(consumer, ends)
        ]
    finally:
        await stop_reader(consumer)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def parse_refs(refs: Sequence[str]) -> set[tuple[int | None, int]]:
    """`17` (any partition) or `0:17` (partition 0)."""
    out_refs: set[tuple[int | None, int]] = set()
    for ref in refs:
        part, _, offset = ref.rpartition(":")
        if not offset.isdigit() or (part and not part.isdigit()):
            raise ValueError(f"{ref!r}: give OFFSET or PARTITION:OFFSET")
        out_refs.add((int(part) if part else None, int(offset)))
    return out_refs


def chosen(
    letters: Sequence[DeadLetterRecord],
    refs: set[tuple[int | None, int]],
    every: bool,
    reason: str | None,
) -> list[DeadLetterRecord]:
    picked = []
    for letter in letters:
        by_ref = (letter.partition, letter.offset) in refs or (None, letter.offset) in refs
        if (every or by_ref or (not refs and reason)) and (
            reason is None or letter.reason == reason
        ):
            picked.append(letter)
    return picked


@dataclass(frozen=True)
class Replayed:
    ref: str
    reason: str
    status: str  # replayed, skipped, would replay
    detail: str


def replay_record(
    letter: DeadLetterRecord, spec: TopicSpec, dlq_topic: str, patch: Any
) -> tuple[bytes, list[tuple[str, bytes]], str | None]:
    """(value, headers, why it would fail again or None) of the record to send."""
    value = letter.value
    if patch is not None:
        try:
            value = orjson.dumps(merge_patch(orjson.loads(value), patch))
        except orjson.JSONDecodeError:
            return value, [], "the record is not JSON: a merge patch cannot apply"
    error = validation_error(spec, value)
    headers = [
        (k, v)
        for k, v in letter.headers
        if not k.startswith("dlq.") and k != REPLAY_SOURCE_HEADER and k not in _ENVELOPE_HEADERS
    ]
    if error is None and spec.payload is not None:
        headers = envelope_headers(decode(value, spec.payload, spec.older_payloads)) + headers
    else:
        headers = [(k, v) for k, v in letter.headers if k in _ENVELOPE_HEADERS] + headers
    headers.append((REPLAY_SOURCE_HEADER, f"{dlq_topic}:{letter.ref}".encode()))
    return value, headers, error


async def replay(
    bootstrap: str,
    prefix: str,
    topic: str,
    refs: set[tuple[int | None, int]],
    every: bool = False,
    reason: str | None = None,
    patch: Any = None,
    force: bool = False,
    dry_run: bool = False,
) -> list[Replayed]:
    spec, _, original, dlq_topic = topics_for(topic, prefix)
    letters = chosen(await read_dead_letters(bootstrap, dlq_topic), refs, every, reason)
    found = {(le.partition, le.offset) for le in letters} | {(None, le.offset) for le in letters}
    results = [
        Replayed(
            f"{'' if p is None else f'{p}:'}{o}",
            "-",
            "skipped",
            "no such dead letter (`mgw dlq list` lists the refs)",
        )
        for p, o in sorted(refs - found, key=lambda r: (r[0] or 0, r[1]))
    ]
    producer: KafkaProducer | None = None
    try:
        for letter in letters:
            value, headers, error = replay_record(letter, spec, dlq_topic, patch)
            if error is not None and not force:
                results.append(
                    Replayed(
                        letter.ref,
                        letter.reason,
                        "skipped",
                        f"would fail again ({error}); fix it or --force",
                    )
                )
                continue
            if dry_run:
                results.append(
                    Replayed(letter.ref, letter.reason, "would replay", f"to {original}")
                )
                continue
            if producer is None:
                producer = new_producer(bootstrap, "mgw-dlq-replay")
                await producer.start()
            sent = await producer.send_and_wait(original, value, key=letter.key, headers=headers)
            results.append(
                Replayed(
                    letter.ref,
                    letter.reason,
                    "replayed",
                    f"to {original}[{sent.partition}]@{sent.offset}",
                )
            )
    finally:
        if producer is not None:
            await producer.stop()
    return results
