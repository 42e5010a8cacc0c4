"""Publishing a platform's catalog items to `content.raw`, item by item, with a result for each.

Shared by the gateway's batch endpoint, `mgw ingest`, and any service that writes to Kafka
directly. Like Confluent's REST Proxy, a batch is not all-or-nothing: every item is validated
on its own, the valid ones are published (and acknowledged by the broker), and each item gets
either its offset or its reasons. An accepted item also gets its warnings: what the pipeline
will drop or change of it, and the fields the schema ignores (agreements/catalog_warnings.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from agreements.catalog_warnings import (
    SUPERSEDED_IN_BATCH,
    ItemWarning,
    item_warnings,
    unknown_fields,
)
from core.publisher import Published, Publisher
from schemas.ingestion import CatalogItemReceived, RawCatalogItem, normalize_platform
from schemas.storable import error_reason
from topics.registry import CONTENT_RAW

MAX_BATCH_ITEMS = 1000
# How far ahead of the receiving clock an item's source_updated_at may be: a day covers clock
# skew and a local time sent without its offset (read as UTC, up to 14 hours early).
CLOCK_AHEAD_MAX = timedelta(days=1)

# What an accepted item's availability was understood as (schemas/ingestion.py):
# - replaced: its platform's offers of the title become the item's;
# - unchanged: no `availability` (or null), a metadata-only update: the offers stay;
# - left_platform: `[]`, the title is no longer on the platform.
AvailabilityReading = Literal["replaced", "unchanged", "left_platform"]
AVAILABILITY_READINGS: dict[AvailabilityReading, str] = {
    "replaced": "the platform's offers replaced by the item's",
    "unchanged": "no `availability`: the offers left as they are",
    "left_platform": "`availability: []`: the title left the platform",
}


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str


@dataclass(frozen=True)
class ItemResult:
    index: int
    status: Literal["accepted", "rejected"]
    key: str | None = None
    event_id: str | None = None
    partition: int | None = None
    offset: int | None = None
    errors: list[FieldProblem] = field(default_factory=list)
    # Accepted items only: what the pipeline will drop or change (kind, field, message).
    warnings: list[ItemWarning] = field(default_factory=list)
    # Accepted items only: what the item's availability was understood as.
    availability: AvailabilityReading | None = None


@dataclass(frozen=True)
class Checked:
    """An item that validated, with its index in the batch and its warnings."""

    index: int
    item: RawCatalogItem
    warnings: list[ItemWarning]


def availability_reading(item: RawCatalogItem) -> AvailabilityReading:
    if item.availability is None:
        return "unchanged"
    return "replaced" if item.availability else "left_platform"


def problems_of(exc: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(".".join(str(p) for p in err["loc"]) or "(item)", error_reason(err))
        for err in exc.errors()
    ]


def validate_items(
    items: Sequence[Mapping[str, Any] | RawCatalogItem],
    platform: str | None = None,
    now: datetime | None = None,
) -> tuple[list[Checked], list[ItemResult]]:
    """Split into valid items (with their index and warnings) and rejections naming each field
    and reason.

    `platform`: the platform the batch was sent for, in any spelling an item may use
    ("prime", "Disney+"); items may omit it, and must not name another one. `now`: the
    receiving clock, which a `source_updated_at` may not run ahead of by more than a day.
    """
    if platform is not None:
        platform = normalize_platform(platform)
    latest = (now or datetime.now(UTC)) + CLOCK_AHEAD_MAX
    valid: list[Checked] = []
    rejected: list[ItemResult] = []
    for index, item in enumerate(items):
        ignored: list[ItemWarning] = []
        if isinstance(item, RawCatalogItem):
            parsed = item
        elif not isinstance(item, Mapping):
            # One item that is not an object is one rejected item, not a rejected batch.
            problem = FieldProblem("(item)", f"an item is a JSON object, not {_json_type(item)}")
            rejected.append(ItemResult(index, "rejected", errors=[problem]))
            continue
        else:
            data = dict(item)
            if platform is not None:
                data.setdefault("platform", platform)
            try:
                parsed = RawCatalogItem.model_validate(data)
            except ValidationError as exc:
                rejected.append(ItemResult(index, "rejected", errors=problems_of(exc)))
                continue
            ignored = unknown_fields(data)
        if platform is not None and parsed.platform != platform:
            rejected.append(
                ItemResult(
                    index,
                    "rejected",
                    errors=[
                        FieldProblem(
                            "platform",
                            f"this batch is for {platform!r}, the item names {parsed.platform!r}",
                        )
                    ],
                )
            )
            continue
        if parsed.source_updated_at > latest:
            # The newest clock wins for good: an item from the future would make every later,
            # true version of it change nothing (agents/titles/versions.py).
            problem = FieldProblem(
                "source_updated_at",
                f"{parsed.source_updated_at.isoformat()} is more than a day ahead of this "
                f"clock ({(latest - CLOCK_AHEAD_MAX).isoformat(timespec='seconds')}); it would "
                "win over every later version of the item: send when the item last changed",
            )
            rejected.append(ItemResult(index, "rejected", errors=[problem]))
            continue
        valid.append(Checked(index, parsed, [*ignored, *item_warnings(parsed)]))
    superseded_in_batch(valid)
    return valid, rejected


def superseded_in_batch(valid: Sequence[Checked]) -> None:
    """Warn each item that another item of the batch, of the same platform item, supersedes.

    Both are accepted and published, but the ingestion agent stores one version per platform
    item: the newest `source_updated_at`, the first of a tie (agents/titles/versions.py). A feed
    that sends one item twice, or two edits of it with one clock, was told "accepted" for each
    and never learnt that all but one change nothing.
    """
    winners: dict[str, Checked] = {}
    for checked in valid:
        best = winners.get(checked.item.record_key)
        if best is None or checked.item.source_updated_at > best.item.source_updated_at:
            winners[checked.item.record_key] = checked
    for checked in valid:
        winner = winners[checked.item.record_key]
        if winner is checked:
            continue
        clock, theirs = checked.item.source_updated_at, winner.item.source_updated_at
        why = "a newer source_updated_at" if theirs > clock else "the same source_updated_at, first"
        checked.warnings.append(
            ItemWarning(
                SUPERSEDED_IN_BATCH,
                "platform_item_id",
                f"item {winner.index} of this batch is the same platform item "
                f"({checked.item.record_key}) with {why}: it is the version stored, "
                "not this one; give a correction a newer source_updated_at",
            )
        )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list | tuple) else type(value).__name__


class CatalogProducer:
    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    async def send(
        self,
        items: Sequence[Mapping[str, Any] | RawCatalogItem],
        platform: str | None = None,
        correlation_id: str | None = None,
        operation: uuid.UUID | None = None,
    ) -> list[ItemResult]:
        """Validate and publish; raises BrokerUnavailable if the broker did not acknowledge.

        `operation` names the batch (an Idempotency-Key's operation id): each item's event id
        is then derived from it and the item's place, so a retried batch publishes the same
        events, which the pipeline applies once."""
        valid, rejected = validate_items(items, platform)
        envelopes = [
            (
                CONTENT_RAW,
                self._publisher.build_envelope(
                    CatalogItemReceived(item=checked.item),
                    key=checked.item.record_key,
                    correlation_id=correlation_id,
                    event_id=None
                    if operation is None
                    else uuid.uuid5(operation, str(checked.index)),
                ),
            )
            for checked in valid
        ]
        published: list[Published] = (
            await self._publisher.send_envelopes(envelopes) if envelopes else []
        )
        accepted = [
            ItemResult(
                checked.index,
                "accepted",
                key=checked.item.record_key,
                event_id=p.event_id,
                partition=p.partition,
                offset=p.offset,
                warnings=checked.warnings,
                availability=availability_reading(checked.item),
            )
            for checked, p in zip(valid, published, strict=True)
        ]
        return sorted([*accepted, *rejected], key=lambda r: r.index)


def summarize(results: Iterable[ItemResult]) -> dict[str, int]:
    out = {"accepted": 0, "rejected": 0}
    for r in results:
        out[r.status] += 1
    return out
