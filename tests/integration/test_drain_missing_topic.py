"""`mgw up`'s drain measures what the broker holds: a topic of the catalog the broker does not
have (the code was updated under a running stack, and its catalog gained a topic) holds no
accepted event, so the drain must not retry for ever on it (found by hand: Ctrl-C of such a
stack printed "backlog unknown (... no topic mgw.notifications.lookup ...); retrying" until a
second Ctrl-C)."""

from __future__ import annotations

import asyncio

from cli.backlog import BacklogProbe
from tests.conftest import Isolated
from topics.registry import CONTENT_RAW


async def test_a_topic_the_broker_lacks_is_left_out_of_the_backlog(isolated: Isolated) -> None:
    settings = isolated.settings
    prefix = settings.kafka.topic_prefix

    def measure() -> tuple[int, bool, set[str]]:
        probe = BacklogProbe(
            settings.kafka.bootstrap,
            prefix,
            f"{prefix}-all",
            None,
            index={CONTENT_RAW.name: (), "catalog.gained.this": ()},
        )
        try:
            backlog = probe.measure()
            return backlog.total, backlog.drained, set(backlog.by_topic)
        finally:
            probe.close()

    total, drained, topics = await asyncio.to_thread(measure)
    assert (total, drained) == (0, True)
    assert CONTENT_RAW.name in topics and "catalog.gained.this" not in topics
