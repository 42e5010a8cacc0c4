"""Every topic declared once: name, partitions, key, payload schema, cleanup, dead letters.

Names are `{prefix}.{name}`; the prefix comes from KAFKA_TOPIC_PREFIX so several deployments
(or test sessions) can share one broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.content import (
    AvailabilityChanged,
    ContentExpiring,
    ContentIngested,
    ContentLookupRequested,
    ContentSubmitted,
    ContentUpdated,
    MetadataEnriched,
)
from schemas.envelope import Payload
from schemas.ingestion import AvailabilityReceived, CatalogItemReceived
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


# Upstream: what producers write.
CONTENT_RAW = TopicSpec(
    name="content.raw",
    payload=CatalogItemReceived,
    key="platform:platform_item_id",
    # Platform feeds are bursty and large; raw items are replayable for two weeks.
    partitions=8,
    retention_ms=14 * DAY_MS,
    description="one raw catalog item of a platform's batch, before normalization",
)
AVAILABILITY_RAW = TopicSpec(
    name="content.availability.raw",
    payload=AvailabilityReceived,
    key="platform:platform_item_id",
    description="a platform's current availability of one item (no metadata)",
)
CONTENT_SUBMITTED = TopicSpec(
    name="content.submitted",
    payload=ContentSubmitted,
    key="canonical_id",
    description="a canonical record from a trusted producer, stored if new or newer",
)

# Request/reply: the gateway asks an agent for a title the read model does not have.
CONTENT_LOOKUP = TopicSpec(
    name="content.lookup",
    payload=ContentLookupRequested,
    key="canonical_id",
    # A request nobody answered within a second is worthless soon after.
    retention_ms=60 * 60 * 1000,
    description="a read-model miss at the gateway; answered over Redis pub/sub",
)

# Lifecycle: emitted by agents after the change is in PostgreSQL.
CONTENT_INGESTED = TopicSpec(
    name="content.ingested",
    payload=ContentIngested,
    key="canonical_id",
    description="a title new to the catalog, with its full canonical record",
)
CONTENT_UPDATED = TopicSpec(
    name="content.updated",
    payload=ContentUpdated,
    key="canonical_id",
    description="a known title changed: the new record and the fields that changed",
)
CONTENT_AVAILABILITY_CHANGED = TopicSpec(
    name="content.availability_changed",
    payload=AvailabilityChanged,
    key="canonical_id",
    description="per title and platform: availability rows that appeared, changed, expired",
)
CONTENT_METADATA_ENRICHED = TopicSpec(
    name="content.metadata_enriched",
    payload=MetadataEnriched,
    key="canonical_id",
    description="a title version has its vector in the vector store and its quality score",
)
CONTENT_EXPIRING = TopicSpec(
    name="content.expiring",
    payload=ContentExpiring,
    key="canonical_id",
    description="a title leaves a platform in a region within 7, 3 or 1 day(s)",
)

SYNC_WATCHLIST = TopicSpec(
    name="sync.watchlist",
    payload=WatchlistUpdate,
    key="user_id",
    # Keyed by user: one user's operations stay in order on one partition.
    description="watchlist OR-Set operations (add/remove) from a user's devices",
)

TOPICS: tuple[TopicSpec, ...] = (
    CONTENT_RAW,
    AVAILABILITY_RAW,
    CONTENT_SUBMITTED,
    CONTENT_LOOKUP,
    CONTENT_INGESTED,
    CONTENT_UPDATED,
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_METADATA_ENRICHED,
    CONTENT_EXPIRING,
    SYNC_WATCHLIST,
)


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
