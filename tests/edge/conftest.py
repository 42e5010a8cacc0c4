"""Fixtures of the edge tests."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import pytest

from core.config import KafkaSettings, Settings
from core.embedded import ServiceProcess, start_broker
from topics.admin import create_topics


@pytest.fixture
async def own_broker(settings: Settings) -> AsyncIterator[tuple[ServiceProcess, Settings]]:
    """A broker of this test's own, to pause (SIGSTOP) without disturbing the session's, and
    settings that publish to it with a 1 s confirmation timeout."""
    broker = start_broker()
    kafka = KafkaSettings.model_validate(
        {**settings.kafka.model_dump(), "brokers": broker.url, "publish_timeout_s": 1.0}
    )
    await create_topics(kafka.bootstrap, kafka.topic_prefix)
    try:
        yield broker, settings.model_copy(update={"kafka": kafka})
    finally:
        if broker.process is not None:
            os.kill(broker.process.pid, signal.SIGCONT)
        broker.stop()
