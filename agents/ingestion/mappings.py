"""What the pipeline knows of a platform item it saw before: its mapping to a canonical title
(the `entity_mappings` table), as plain data the pure pipeline and the store share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from contracts.catalog_warnings import ItemWarning

ItemKey = tuple[str, str]  # platform, platform_item_id


@dataclass(frozen=True)
class Mapping:
    canonical_id: uuid.UUID
    source_updated_at: datetime
    availability_updated_at: datetime | None

    @property
    def availability_as_of(self) -> datetime:
        """The source time of the offers applied for this item: a catalog item carries its
        platform's availability too, so the newer of the two topics' clocks."""
        if self.availability_updated_at is None:
            return self.source_updated_at
        return max(self.source_updated_at, self.availability_updated_at)


@dataclass(frozen=True)
class MappingRow:
    platform: str
    platform_item_id: str
    canonical_id: uuid.UUID
    method: str
    confidence: float
    source_updated_at: datetime
    # What normalization dropped or changed of this version of the item.
    warnings: tuple[ItemWarning, ...] = ()
