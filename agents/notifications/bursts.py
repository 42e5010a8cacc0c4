"""Bursts (no I/O): a user who got `BURST` alerts within `WINDOW_S` has the next ones held to
the end of the current window slot, and gets them there as one digest message, not one
message each. The slots are fixed (multiples of `WINDOW_S` since the epoch), so every alert of
one burst waits for the same instant and the release timer takes them together."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

BURST = 3
WINDOW_S = 600
# Fixed namespace of digest message ids (uuid5).
DIGEST_IDS = uuid.UUID("c3a4f0de-5b71-4e0c-a6a3-9d8e2f417b20")


def slot_end(now: datetime) -> datetime:
    """The end of the fixed window slot `now` falls in."""
    start = int(now.timestamp()) // WINDOW_S * WINDOW_S
    return datetime.fromtimestamp(start + WINDOW_S, tz=UTC)


def held_until(now: datetime, recent: int, quiet_end: datetime | None) -> datetime | None:
    """When an alert raised now may go out: None (now), the end of quiet hours, or, for a
    user who got `BURST` or more within the window, the end of the slot (whichever is later)."""
    burst = slot_end(now) if recent >= BURST else None
    held = [t for t in (quiet_end, burst) if t is not None]
    return max(held) if held else None


def digest_id(notification_ids: Sequence[uuid.UUID]) -> uuid.UUID:
    """The message id of a digest: fixed by what it holds, so sending it again is a no-op."""
    return uuid.uuid5(DIGEST_IDS, ",".join(sorted(str(i) for i in notification_ids)))
