"""docs/SUBSCRIBING.md's examples work: the aiokafka subscriber runs against the real broker and
receives an envelope our publisher wrote; the Faust one builds its app; the topics it names are
in the catalog."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.publisher import Publisher
from schemas.content import ContentUpdated
from tests.contracts.examples import example
from topics.registry import CONTENT_UPDATED, all_topics

DOC = Path(__file__).resolve().parents[2] / "docs" / "SUBSCRIBING.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def block(marker: str) -> str:
    (found,) = [b for b in python_blocks() if marker in b]
    return found


def test_every_example_compiles_and_names_real_topics() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 3
    for code in blocks:
        compile(code, str(DOC), "exec")
    known = {spec.name for spec in all_topics()}
    named = set(
        re.findall(r"`(?:mgw\.)?((?:content|sync|discovery)\.[a-z_.]*[a-z_])`", DOC.read_text())
    )
    named |= set(
        re.findall(r"mgw tail ((?:content|sync|discovery)\.[a-z_.]*[a-z_])", DOC.read_text())
    )
    assert named and named <= known, named - known


def test_the_faust_example_builds_its_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "docs")
    namespace: dict[str, Any] = {"__name__": "subscriber"}
    exec(compile(block("import faust"), "faust-example", "exec"), namespace)
    assert namespace["changes"].get_topic_name() == "docs.content.availability_changed"
    assert namespace["app"].conf.id == "search-team-availability"


async def test_the_aiokafka_example_receives_a_published_envelope(
    settings: Settings, topics_created: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", settings.kafka.bootstrap)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", settings.kafka.topic_prefix)
    namespace: dict[str, Any] = {"__name__": "subscriber"}
    exec(compile(block("from aiokafka import"), "aiokafka-example", "exec"), namespace)
    namespace["GROUP"] = f"docs-example-{uuid.uuid4().hex[:6]}"
    seen: list[dict[str, Any]] = []

    async def apply(envelope: dict[str, Any]) -> None:
        seen.append(envelope)

    namespace["apply"] = apply
    update = example(CONTENT_UPDATED, ContentUpdated)
    key = str(update.content.canonical_id)  # type: ignore[attr-defined]
    publisher = Publisher(settings.kafka, source="docs-test")
    await publisher.start()
    try:
        published = await publisher.publish(CONTENT_UPDATED, update, key)
    finally:
        await publisher.stop()
    task = asyncio.create_task(namespace["main"]())
    try:
        async with asyncio.timeout(60):
            while not any(e["event_id"] == published.event_id for e in seen):
                assert not task.done(), task.exception()
                await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    (mine,) = [e for e in seen if e["event_id"] == published.event_id]
    assert mine["payload"]["content"]["canonical_id"] == key
