"""The lifecycle events of ingestion, planned as plain values (no I/O): what a batch plan or
an availability update announces, each caused by the item behind its title."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agents.framework.outgoing import Outgoing
from agents.ingestion.availability import AvailabilityDiff, Slot, ended_at
from agents.ingestion.merge import changed_fields
from agents.ingestion.pipeline import Plan
from schemas.content import (
    AvailabilityChanged,
    AvailabilityRow,
    CanonicalContent,
    ContentIngested,
    ContentUpdated,
)
from schemas.envelope import Envelope, Payload
from topics.registry import (
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_INGESTED,
    CONTENT_UPDATED,
    TopicSpec,
)


def _row(slot: Slot, **update: Any) -> AvailabilityRow:
    # Read straight from the slot's attributes by pydantic-core (`asdict` deep-copies, slowly).
    row = AvailabilityRow.model_validate(slot, from_attributes=True)
    return row.model_copy(update=update) if update else row


def availability_event(
    cid: uuid.UUID, platform: str, diff: AvailabilityDiff, now: datetime
) -> AvailabilityChanged:
    return AvailabilityChanged(
        canonical_id=cid,
        platform=platform,
        appeared=[_row(s) for s in diff.appeared],
        changed=[_row(new) for _, new in diff.changed],
        previous=[_row(old) for old, _ in diff.changed],
        # What left the feed expires now (docs/RULES.md: an empty region list expires the title
        # there), unless it had ended already.
        expired=[_row(s, expires_at=ended_at(s.expires_at, now)) for s in diff.expired],
    )


def plan_events(plan: Plan, causes: Sequence[Envelope[Any]], now: datetime) -> list[Outgoing]:
    """The lifecycle events of a plan, each carrying the correlation id of the item behind it."""

    def event(topic: TopicSpec, payload: Payload, cid: uuid.UUID) -> Outgoing:
        return Outgoing.caused_by(causes[plan.cause[cid]], topic, payload, str(cid))

    out = [event(CONTENT_INGESTED, ContentIngested(content=c), cid) for cid, c in plan.new.items()]
    out += [
        event(
            CONTENT_UPDATED,
            ContentUpdated(content=after, changed_fields=changed_fields(before, after)),
            cid,
        )
        for cid, (before, after) in plan.changed.items()
    ]
    out += [
        event(CONTENT_AVAILABILITY_CHANGED, availability_event(cid, platform, diff, now), cid)
        for (cid, platform), diff in plan.availability.items()
    ]
    return out


def with_platform_availability(
    content: CanonicalContent, platform: str, availability: Sequence[Any]
) -> CanonicalContent:
    others = [a for a in content.availability if a.platform != platform]
    return content.model_copy(update={"availability": [*others, *availability]})
