"""The stored form of one user's watchlist titles, as plain JSON values (no I/O).

A title's OR-Set state is kept whole in one JSON column: live add tags with their stamps, the
tombstoned tags and the latest clear. `encode_title` / `decode_titles` convert between that and
`WatchlistState`, so the store loads the touched titles, the domain rules merge, and only the
titles that changed are written back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from agents.sync.watchlist import Added, WatchlistState
from schemas.sync import HLC

TitleState = dict[str, Any]


def _hlc(pair: list[int]) -> HLC:
    return HLC(physical_us=pair[0], logical=pair[1])


def encode_title(state: WatchlistState, content_id: uuid.UUID) -> TitleState:
    """One title of `state` as its stored JSON (sorted, so equal states store equal JSON)."""
    adds = state.adds.get(content_id, {})
    cleared = state.cleared.get(content_id)
    return {
        "adds": {
            str(tag): [a.timestamp.physical_us, a.timestamp.logical, a.device_id]
            for tag, a in sorted(adds.items())
        },
        "tombstones": {
            str(tag): [at.physical_us, at.logical]
            for tag, at in sorted(state.tombstones.get(content_id, {}).items())
        },
        "cleared": [cleared.physical_us, cleared.logical] if cleared is not None else None,
    }


# Rows written before tombstones carried stamps hold a list of tags: they count as stamped at
# the epoch, so the first compaction drops them (docs/SYNC.md, "Tombstones").
_UNSTAMPED = HLC(physical_us=0, logical=0)


def _tombstones(stored: Any) -> dict[uuid.UUID, HLC]:
    if isinstance(stored, dict):
        return {uuid.UUID(tag): _hlc(at) for tag, at in stored.items()}
    return {uuid.UUID(tag): _UNSTAMPED for tag in stored or ()}


def is_empty(stored: TitleState) -> bool:
    """A title that decides nothing any more (no adds, tombstones or clear): its row can go."""
    return not stored.get("adds") and not stored.get("tombstones") and not stored.get("cleared")


def decode_titles(user_id: str, titles: Mapping[uuid.UUID, TitleState]) -> WatchlistState:
    """A replica holding just these titles of the user's watchlist."""
    state = WatchlistState(user_id=user_id)
    for content_id, stored in titles.items():
        adds = {
            uuid.UUID(tag): Added(_hlc(value[:2]), value[2])
            for tag, value in stored.get("adds", {}).items()
        }
        if adds:
            state.adds[content_id] = adds
        tombstones = _tombstones(stored.get("tombstones"))
        if tombstones:
            state.tombstones[content_id] = tombstones
        if stored.get("cleared"):
            state.cleared[content_id] = _hlc(stored["cleared"])
    return state


def by_user(
    rows: Iterable[tuple[str, uuid.UUID, TitleState]],
) -> dict[str, dict[uuid.UUID, TitleState]]:
    out: dict[str, dict[uuid.UUID, TitleState]] = {}
    for user_id, content_id, stored in rows:
        out.setdefault(user_id, {})[content_id] = stored
    return out
