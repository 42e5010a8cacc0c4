"""Every topic declared once: name, partitions, key, payload schema, cleanup, dead letters.

Names are `{prefix}.{name}`; the prefix comes from KAFKA_TOPIC_PREFIX so several deployments
(or test sessions) can share one broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.content import ContentIngested
from schemas.envelope import Payload
from schemas.sync import WatchlistUpdate

DAY_MS = 24 * 60 * 60 * 1000
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the prefix
    payload: type[Payload] | None  # None: raw bytes (dead-letter topics)
    key: str  # what the record key is, for humans and for producers
    partitions: int = 4
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = 7 * DAY_MS
    description: str = ""
    has_dead_letters: bool = True
    extra_config: dict[str, str] = field(default_factory=dict)

    def full_name(self, prefix: str) -> str:
        return f"{prefix}.{self.name}" if prefix else self.name

    @property
    def dead_letter(self) -> TopicSpec | None:
        if not self.has_dead_letters:
            return None
        return TopicSpec(
            name=self.name + DLQ_SUFFIX,
            payload=None,
            key=self.key,
            partitions=1,
            retention_ms=30 * DAY_MS,
            description=f"records of {self.name} that could not be decoded or validated",
            has_dead_letters=False,
        )

    def broker_config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy, **self.extra_config}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


CONTENT_INGESTED = TopicSpec(
    name="content.ingested",
    payload=ContentIngested,
    key="canonical_id",
    description="a title new to the catalog, with its full canonical record",
)

SYNC_WATCHLIST = TopicSpec(
    name="sync.watchlist",
    payload=WatchlistUpdate,
    key="user_id",
    # Keyed by user: one user's operations stay in order on one partition.
    description="watchlist OR-Set operations (add/remove) from a user's devices",
)

TOPICS: tuple[TopicSpec, ...] = (CONTENT_INGESTED, SYNC_WATCHLIST)


def all_topics() -> list[TopicSpec]:
    """The declared topics followed by their dead-letter topics."""
    out = list(TOPICS)
    out.extend(spec.dead_letter for spec in TOPICS if spec.dead_letter is not None)
    return out


def by_name(name: str) -> TopicSpec:
    for spec in all_topics():
        if spec.name == name:
            return spec
    raise KeyError(f"no topic {name!r} in the catalog")
