"""Prometheus metrics shared by every process (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_CONSUMED = Counter(
    "mgw_events_consumed_total", "Records taken from a topic by an agent", ["agent", "topic"]
)
EVENTS_PRODUCED = Counter(
    "mgw_events_produced_total", "Records acknowledged by the broker", ["topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "mgw_events_dead_lettered_total",
    "Records sent to a dead-letter topic",
    ["agent", "topic", "reason"],
)
AGENT_BATCH_SECONDS = Histogram(
    "mgw_agent_batch_duration_seconds",
    "Time an agent spent on one batch, decode to durable effect",
    ["agent"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AGENT_RETRIES = Counter(
    "mgw_agent_retries_total", "Batches retried after a transient failure", ["agent"]
)
