"""Following a topic for `mgw tail` (cli/tail.py): where to start, what to show, how.

Reads without a consumer group (no offsets move). JSON lines (one object per record) when the
output is not a terminal or with `--format json`; a readable form otherwise.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from rich.markup import escape

from cli.console import out
from cli.records import (
    Shown,
    UnknownTopic,
    known_ends,
    new_consumer,
    partitions_of,
    records_until,
    resolve_topic,
    shown,
)
from core.kafka import KafkaConsumer, KafkaError, TopicPartition, stop_reader

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`15m`, `2h`, `1d` ago, or an ISO 8601 time (UTC when it names no offset)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (30s, 15m, 2h, 1d) nor an ISO 8601 time"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Start:
    """Where each partition starts: exactly one of these, or none for 'from now'."""

    beginning: bool = False
    offset: int | None = None
    since: datetime | None = None

    def describe(self) -> str:
        if self.beginning:
            return "the beginning"
        if self.offset is not None:
            return f"offset {self.offset}"
        if self.since is not None:
            return self.since.isoformat()
        return "now"


@dataclass(frozen=True)
class Filters:
    key: str | None = None
    event_type: str | None = None
    since: datetime | None = None

    def accepts(self, record: Shown) -> bool:
        if self.key is not None and record.key != self.key:
            return False
        if self.event_type is not None and record.event_type != self.event_type:
            return False
        return self.since is None or record.timestamp >= self.since


async def _position(
    consumer: KafkaConsumer,
    tps: list[TopicPartition],
    start: Start,
    ends: dict[TopicPartition, int],
) -> None:
    if start.beginning:
        await consumer.seek_to_beginning(*tps)
    elif start.offset is not None:
        for tp in tps:
            consumer.seek(tp, min(start.offset, ends[tp]))
    elif start.since is not None:
        stamp = int(start.since.timestamp() * 1000)
        try:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, stamp))
        except KafkaError:
            # A broker without time lookups: read from the start, the time filter skips.
            await consumer.seek_to_beginning(*tps)
            return
        for tp in tps:
            hit = found.get(tp)
            # No record that late: start at the end. The time filter also drops earlier
            # records, for brokers that answer this lookup loosely (Tansu answers offset 0).
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])
    else:
        for tp in tps:
            consumer.seek(tp, ends[tp])


def chosen_partitions(
    topic: str, held: list[TopicPartition], wanted: list[int]
) -> list[TopicPartition]:
    """The partitions of `held` that `--partition` names; a number the broker does not hold
    for `topic` is refused, naming the ones it does (nothing to tail there, ever)."""
    numbers = [tp.partition for tp in held]
    missing = sorted(set(wanted) - set(numbers))
    if missing:
        raise UnknownTopic(
            f"{topic} has no partition {', '.join(map(str, missing))}: the broker holds "
            f"{len(numbers)} ({', '.join(map(str, numbers))}); choose --partition among them"
        )
    return [tp for tp in held if tp.partition in wanted]


async def tail_topic(
    bootstrap: str,
    prefix: str,
    topic: str,
    start: Start,
    filters: Filters,
    emit: Callable[[Shown], None],
    partitions: list[int] | None = None,
    follow: bool = True,
    limit: int | None = None,
    ready: Callable[[str], None] | None = None,
) -> int:
    """Print matching records; returns how many. Stops at `limit`, or at the end when not
    following."""
    spec, full = resolve_topic(topic, prefix)
    consumer = new_consumer(bootstrap)
    await consumer.start()
    printed = 0
    try:
        tps = await partitions_of(consumer, full)
        if partitions:
            tps = chosen_partitions(full, tps, partitions)
        consumer.assign(tps)
        ends = await known_ends(consumer, tps)
        await _position(consumer, tps, start, ends)
        if ready is not None:
            ready(f"tailing {full} ({len(tps)} partition(s)) from {start.describe()}")
        if follow:
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        item = shown(record, spec)
                        if filters.accepts(item):
                            emit(item)
                            printed += 1
                            if limit is not None and printed >= limit:
                                return printed
        async for record in records_until(consumer, ends):
            item = shown(record, spec)
            if filters.accepts(item):
                emit(item)
                printed += 1
                if limit is not None and printed >= limit:
                    return printed
        return printed
    finally:
        await stop_reader(consumer)


def print_json(item: Shown) -> None:
    sys.stdout.buffer.write(orjson.dumps(item.as_json()) + b"\n")
    sys.stdout.flush()


def print_pretty(item: Shown) -> None:
    head = (
        f"[dim]{item.timestamp.isoformat(timespec='milliseconds')}[/dim] "
        f"[cyan]{escape(item.topic)}[/cyan][{item.partition}]@{item.offset} "
        f"key=[bold]{escape(item.key or '-')}[/bold]"
    )
    if item.envelope is not None:
        env = item.envelope
        cid = env.get("correlation_id")
        head += f" {escape(env['event_type'])} v{env['version']} from {escape(env['source'])}"
        head += f" cid={escape(cid)}" if cid else ""
        out.print(head)
        out.print_json(data=env["payload"])
        return
    reason = item.headers.get("dlq.reason")
    if reason:
        head += f" [yellow]dead letter: {escape(reason)}[/yellow]"
    out.print(head)
    if item.error and not reason:
        out.print(f"[red]not a valid envelope of this topic:[/red] {escape(item.error)}")
    if reason:
        out.print(f"  error: {escape(item.headers.get('dlq.error', ''))}")
    out.print(f"  {escape((item.value or '')[:2000])}")
