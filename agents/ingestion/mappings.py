"""What the pipeline knows of a platform item it saw before: its mapping to a canonical title
(the `entity_mappings` table), as plain data the pure pipeline and the store share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from agreements.catalog_warnings import ItemWarning

ItemKey = tuple[str, str]  # platform, platform_item_id


@dataclass(frozen=True)
class Mapping:
    canonical_id: uuid.UUID
    source_updated_at: datetime
    # The source time of the offers applied for this item, by either topic (a catalog item
    # that carries availability, or an availability-only update); None while none was stated.
    # A catalog item without availability leaves it as it was.
    offers_as_of: datetime | None


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
    # The item's clock when it stated its offers (None: it said nothing of them); the stored
    # offers clock only ever moves forward (Mapping.offers_as_of).
    offers_as_of: datetime | None = None
