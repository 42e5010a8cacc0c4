"""Which dependency each kind of process needs: the one table readiness is judged by.

REQUIRED: the process cannot do its job without it; /health/ready answers 503 while it is
down. OPTIONAL: the process degrades without it (a cache, a fan-out); /health/ready answers
200 with status "degraded". A dependency not listed is not checked at all.

Process kinds are "gateway" and "worker:<group>"; a worker running several groups needs the
union (the stricter requirement wins). Unknown groups get DEFAULT_WORKER.
"""

from __future__ import annotations

from enum import StrEnum


class Need(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"


REQUIRED, OPTIONAL = Need.REQUIRED, Need.OPTIONAL

KAFKA, POSTGRES, REDIS, QDRANT, PUBNUB = "kafka", "postgres", "redis", "qdrant", "pubnub"
# Not a service but the state of one: the Redis read model after a loss, until rebuilt.
READ_MODEL = "read_model"

DEFAULT_WORKER: dict[str, Need] = {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: OPTIONAL}

PROCESS_DEPENDENCIES: dict[str, dict[str, Need]] = {
    # Writes are published to Kafka; reads come from Redis read models. The response cache
    # alone could do without Redis, the read models cannot.
    "gateway": {KAFKA: REQUIRED, REDIS: REQUIRED, READ_MODEL: OPTIONAL},
    # Normalizing and storing the catalog: Postgres only.
    "worker:ingestion": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: OPTIONAL},
    "worker:catalog": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: OPTIONAL},
    # Rebuilds read-model documents from Postgres into Redis (and drops cached responses).
    "worker:readmodel": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: REQUIRED},
    # Availability rows are in Postgres; read-model refreshes can wait for Redis.
    "worker:availability": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: OPTIONAL},
    # Embeddings go to Qdrant; without it enrichment cannot finish a record.
    "worker:enrichment": {KAFKA: REQUIRED, POSTGRES: REQUIRED, QDRANT: REQUIRED, REDIS: OPTIONAL},
    # Search reads vectors and caches intents/results; both are on the request path.
    "worker:discovery": {KAFKA: REQUIRED, POSTGRES: REQUIRED, QDRANT: REQUIRED, REDIS: REQUIRED},
    # Device state is in Redis; PubNub only pushes changes to clients, which resync anyway.
    "worker:sync": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: REQUIRED, PUBNUB: OPTIONAL},
    # Preference vectors fall back to content-only recommendations without Qdrant.
    "worker:sona": {KAFKA: REQUIRED, POSTGRES: REQUIRED, QDRANT: OPTIONAL, REDIS: OPTIONAL},
    # The token service and the accounts own their tables and publish their state to Redis.
    "worker:auth": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: REQUIRED},
    "worker:accounts": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: REQUIRED},
    # Watchlists and preferences are in Postgres; the inbox and the devices' messages go
    # through Redis, without which an alert cannot be delivered.
    "worker:notifications": {KAFKA: REQUIRED, POSTGRES: REQUIRED, REDIS: REQUIRED},
}


def process_kind(groups: list[str] | None = None) -> list[str]:
    """The table keys for a process: ["gateway"] or one "worker:<group>" per group."""
    if groups is None:
        return ["gateway"]
    return [f"worker:{g}" for g in groups]


def dependencies_for(kinds: list[str]) -> dict[str, Need]:
    """What a process of these kinds needs (pass real group names, not "all")."""
    merged: dict[str, Need] = {}
    for kind in kinds:
        default = DEFAULT_WORKER if kind.startswith("worker:") else {}
        for dep, need in PROCESS_DEPENDENCIES.get(kind, default).items():
            if merged.get(dep) != REQUIRED:
                merged[dep] = need
    return merged
