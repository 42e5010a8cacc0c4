"""`mgw tail` and `mgw dlq` against the real broker and a real worker: a poisoned record is
dead-lettered by the catalog group, listed with its reason, refused for replay while still
invalid, replayed with a fix, stored once, and a second replay changes nothing."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cli.dead_letters import read_dead_letters
from core.publisher import Publisher, envelope_headers
from schemas.content import ContentSubmitted
from schemas.envelope import encode
from tests.conftest import ROOT, Isolated, Proc
from tests.contracts.examples import example
from tests.helpers import read_topic, run_cli, wait_for
from topics.registry import CONTENT_INGESTED, CONTENT_SUBMITTED, CONTENT_UPDATED

pytestmark = pytest.mark.slow
FIX = '{"payload": {"content": {"title": "Heat"}}}'


class Tail:
    """`mgw tail` as a subprocess: started, ready, its JSON lines collected."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, env: dict[str, str], *args: str) -> Tail:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli.main",
            "tail",
            *args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert b"tailing" in line, line
        return cls(proc)

    async def records(self, limit_s: float = 60) -> list[dict[str, Any]]:
        out, err = await asyncio.wait_for(self.proc.communicate(), limit_s)
        assert self.proc.returncode == 0, err.decode()
        return [orjson.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
async def tails() -> AsyncIterator[list[Tail]]:
    """Tails a test started; any still running at the end (a failed test) is stopped."""
    started: list[Tail] = []
    yield started
    for tail in started:
        if tail.proc.returncode is None:
            tail.proc.kill()
            await tail.proc.wait()


@pytest.fixture
async def publisher(isolated: Isolated) -> AsyncIterator[Publisher]:
    p = Publisher(isolated.settings.kafka, source="buggy-producer")
    await p.start()
    yield p
    await p.stop()


async def committed_past(
    isolated: Isolated, group: str, topic: str, partition: int, offset: int
) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=isolated.settings.kafka.bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topic, partition)
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return meta is not None and meta.offset > offset


async def test_poisoned_record_is_listed_replayed_after_a_fix_and_processed_once(
    isolated: Isolated, spawn: Callable[..., Proc], publisher: Publisher, tails: list[Tail]
) -> None:
    settings = isolated.settings
    prefix, bootstrap = settings.kafka.topic_prefix, settings.kafka.bootstrap
    env = {**os.environ, **isolated.env}
    spawn("worker", "catalog", extra_env=isolated.env)
    submitted = example(CONTENT_SUBMITTED, ContentSubmitted)
    assert isinstance(submitted, ContentSubmitted)
    cid = str(submitted.content.canonical_id)
    envelope = publisher.build_envelope(submitted, key=cid, correlation_id="poison-1")
    # A producer's bug: the title is missing.
    value = orjson.loads(encode(envelope))
    del value["payload"]["content"]["title"]
    tail = await Tail.start(env, "content.submitted", "--format", "json", "--limit", "3")
    tails.append(tail)
    topic = CONTENT_SUBMITTED.full_name(prefix)
    await publisher.send_raw(
        [
            (
                topic,
                cid.encode(),
                orjson.dumps(value),
                envelope_headers(envelope),
                str(envelope.event_id),
            )
        ]
    )

    dlq = CONTENT_SUBMITTED.dead_letter.full_name(prefix)  # type: ignore[union-attr]
    (letter,) = await wait_for(lambda: read_dead_letters(bootstrap, dlq), timeout=60)
    assert letter.reason == "invalid" and "payload.content.title" in letter.header("dlq.error")

    code, out, _ = await run_cli("dlq", "list", "content.submitted", env=env)
    assert code == 0 and "invalid" in out and "1 dead letter(s) (invalid: 1)" in out
    code, out, _ = await run_cli("dlq", "show", "content.submitted", letter.ref, env=env)
    assert code == 0 and "still invalid" in out and "payload.content.title" in out

    # Unfixed, a replay would only be dead-lettered again: refused.
    code, out, _ = await run_cli("dlq", "replay", "content.submitted", letter.ref, env=env)
    assert code == 1 and "would fail again" in out
    code, out, _ = await run_cli(
        "dlq", "replay", "content.submitted", letter.ref, "--merge", FIX, env=env
    )
    assert code == 0, out
    assert "replayed" in out

    async def stored() -> Any:
        return await isolated.pool.fetchval(
            "SELECT title FROM content WHERE canonical_id = $1", uuid.UUID(cid)
        )

    assert await wait_for(stored, timeout=60) == "Heat"

    # Replayed again: the same event id and version, so nothing changes downstream.
    code, out, _ = await run_cli(
        "dlq", "replay", "content.submitted", letter.ref, "--merge", FIX, env=env
    )
    assert code == 0, out
    (last,) = [r for r in await read_topic(bootstrap, topic) if r.key == cid.encode()][-1:]
    group = f"{prefix}-catalog"
    await wait_for(
        lambda: committed_past(isolated, group, topic, last.partition, last.offset), timeout=60
    )
    for spec in (CONTENT_INGESTED, CONTENT_UPDATED):
        events = [
            r for r in await read_topic(bootstrap, spec.full_name(prefix)) if r.key == cid.encode()
        ]
        assert len(events) == (1 if spec is CONTENT_INGESTED else 0), spec.name
    assert len(await read_dead_letters(bootstrap, dlq)) == 1
    assert (
        await isolated.pool.fetchval(
            "SELECT count(*) FROM content WHERE canonical_id = $1", uuid.UUID(cid)
        )
        == 1
    )

    # What the tail saw: the poison (with why it is invalid), then the two replays.
    poison, first, second = await tail.records()
    assert poison["key"] == cid and "payload.content.title" in poison["error"]
    assert "envelope" not in poison
    for replayed in (first, second):
        assert replayed["envelope"]["payload"]["content"]["title"] == "Heat"
        assert replayed["envelope"]["event_id"] == str(envelope.event_id)
        assert replayed["headers"]["replay.source"] == f"{dlq}:{letter.ref}"
        assert replayed["headers"]["correlation_id"] == "poison-1"


async def test_tail_reads_from_the_beginning_filtered_and_stops_at_the_end(
    isolated: Isolated, publisher: Publisher
) -> None:
    env = {**os.environ, **isolated.env}
    items = [example(CONTENT_SUBMITTED, ContentSubmitted) for _ in range(3)]
    keys = [str(i.content.canonical_id) for i in items]  # type: ignore[attr-defined]
    for item, key in zip(items, keys, strict=True):
        await publisher.publish(CONTENT_SUBMITTED, item, key)
    code, out, err = await run_cli(
        "tail",
        "content.submitted",
        "--from-beginning",
        "--no-follow",
        "--format",
        "json",
        "--key",
        keys[1],
        env=env,
    )
    assert code == 0, err
    (only,) = [orjson.loads(line) for line in out.splitlines()]
    assert only["key"] == keys[1] and only["envelope"]["event_type"] == "content.submitted"
    code, out, _ = await run_cli(
        "tail",
        "content.submitted",
        "--from-beginning",
        "--no-follow",
        "--format",
        "json",
        "--type",
        "content.updated",
        env=env,
    )
    assert code == 0 and out.strip() == ""
    code, out, _ = await run_cli(
        "tail", "content.submitted", "--since", "1h", "--no-follow", "--format", "json", env=env
    )
    assert {orjson.loads(line)["key"] for line in out.splitlines()} == set(keys)
    code, out, _ = await run_cli(
        "tail", "content.submitted", "--since", "2099-01-01T00:00:00Z", "--no-follow", env=env
    )
    assert code == 0 and out.strip() == ""
    code, _, err = await run_cli("tail", "no.such.topic", "--no-follow", env=env)
    assert code == 2 and "no topic 'no.such.topic'" in err
