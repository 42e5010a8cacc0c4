"""The worker side of `mgw bench ingest`: one Faust agent over a pre-filled topic, timed.

Both modes run the same Faust machinery (batches of the same size, acks after the batch);
`count` only counts the records, `pipeline` runs the real process-batch handler into
PostgreSQL. Each measures from the first batch it receives to the moment the last of
`expected` records is done, and writes the figures to a JSON file: the time in the handler
and in each of its stages (`mgw_agent_stage_duration_seconds`), so the rest is Faust's.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Literal

import faust
import orjson

from agents.framework.kafka.app import create_app, take_batches
from agents.framework.runtime import process_batch, record_of
from agents.ingestion.handlers import AGENTS as INGESTION_AGENTS
from core.config import Settings
from core.gc_tuning import tune_for_batches
from core.observability.stages import stage_totals

Mode = Literal["count", "pipeline"]
HANDED_BACK_QUIET_S = 3.0


def run_bench_worker(settings: Settings, mode: Mode, expected: int, result_file: Path) -> None:
    spec = next(s for s in INGESTION_AGENTS if s.name == "process-batch")
    # A consumer group of its own per mode, so both read the same records from the start.
    app, holder = create_app(settings, [f"bench-{mode}"], [])
    topic = app.topic(
        spec.topic.full_name(settings.kafka.topic_prefix),
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.topic.partitions,
    )
    state: dict[str, Any] = {"done": 0, "first": None, "handler": 0.0, "result": None}
    # Records are counted once by event id: an episode parked until its series arrives comes
    # back to the topic with its own event id (docs/INGESTION.md, "Series").
    seen: set[bytes] = set()

    def figures() -> dict[str, Any]:
        return {
            "mode": mode,
            "events": state["done"],
            "seconds": time.perf_counter() - state["first"],
            "handler_seconds": state["handler"],
            "stages": stage_totals(spec.name),
        }

    def finish() -> None:
        result_file.write_bytes(orjson.dumps(state["result"] or figures()))
        # The figures are written; nothing else of this process matters any more.
        os._exit(0)

    async def drain_then_finish() -> None:
        # Parked items handed back after the last original record are still applied (so the
        # store is complete), but not timed: the figures are those of the originals.
        while True:
            quiet = time.perf_counter() - state["last"]
            if quiet >= HANDED_BACK_QUIET_S:
                break
            await asyncio.sleep(HANDED_BACK_QUIET_S - quiet)
        finish()

    async def agent(stream: faust.StreamT) -> None:
        async for events in take_batches(stream, spec.batch_size, spec.batch_within_s):
            if state["first"] is None:
                state["first"] = time.perf_counter()
            records = [record_of(e) for e in events]
            if mode == "pipeline":
                ctx = (await holder.get()).for_agent(spec.name)
                started = time.perf_counter()
                await process_batch(spec, ctx, ctx.publisher, records)
                state["handler"] += time.perf_counter() - started
            for event in events:
                await stream.ack(event)
            for r in records:
                seen.add(dict(r.headers).get("event_id") or f"{r.partition}:{r.offset}".encode())
            state["done"] = len(seen)
            state["last"] = time.perf_counter()
            if state["done"] >= expected and state["result"] is None:
                state["result"] = figures()
                if mode != "pipeline":
                    finish()
                asyncio.get_running_loop().create_task(drain_then_finish())

    agent.__name__ = f"bench_{mode}"
    app.agent(topic, name=f"bench-{mode}")(agent)
    # As the real worker does (agents/framework/kafka/worker.py), in both modes.
    tune_for_batches()
    worker = faust.Worker(
        app, loglevel="WARN", override_logging=False, redirect_stdouts=False, quiet=True
    )
    worker.spinner = None
    worker.execute_from_commandline()
