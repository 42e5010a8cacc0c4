"""Series and episodes in search (docs/DISCOVERY.md, "Series and episodes"): a search shows a
series once, never its episodes one by one; an episode a strategy found stands for its series,
which says which episode matched; a series result says where each season can be watched.

Pure: payloads in (agents/discovery/store.py reads them), payloads and hits out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.discovery.filters import payload_platforms
from agents.discovery.fusion import WEIGHTS, Hit, rrf_term
from schemas.discovery import MatchedEpisode, SeasonAvailability, Strategy

# A series found through many episodes ("the office" in the text of every episode) names the
# best-ranked few: enough to say why, short enough to read.
MAX_MATCHED_EPISODES = 3


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def series_of(payload: Mapping[str, Any]) -> uuid.UUID | None:
    """The series of an episode's payload (None: not an episode, or one without a series)."""
    if payload.get("content_type") != "episode":
        return None
    value = payload.get("series_id")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def episode_label(season: int | None, episode: int | None) -> str:
    """'S1E3', 'S2' (no episode number), 'E7' (no season), '' (neither)."""
    return (f"S{season}" if season is not None else "") + (
        f"E{episode}" if episode is not None else ""
    )


def matched_episode(canonical_id: uuid.UUID, payload: Mapping[str, Any]) -> MatchedEpisode:
    return MatchedEpisode(
        canonical_id=canonical_id,
        title=str(payload.get("title") or "?"),
        season_number=_int(payload.get("season_number")),
        episode_number=_int(payload.get("episode_number")),
    )


def episode_reason(episode: MatchedEpisode) -> str:
    """The match reason of a series found through one of its episodes."""
    label = episode_label(episode.season_number, episode.episode_number)
    return f"episode matches your query: {label + ' ' if label else ''}'{episode.title}'"


def collapse_hits(
    hits: Sequence[Hit], parents: Mapping[uuid.UUID, uuid.UUID], shown: Mapping[uuid.UUID, Any]
) -> list[Hit]:
    """One strategy's list with each episode replaced by its series (its reason naming the
    episode), each title once at its best rank. An episode whose series cannot be shown (no
    payload) is left out: the result holds series, not episodes."""
    out: dict[uuid.UUID, Hit] = {}
    for hit in hits:
        series = parents.get(hit.canonical_id)
        if series is None:
            out.setdefault(hit.canonical_id, hit)
        elif series in shown:
            episode = matched_episode(hit.canonical_id, shown[hit.canonical_id])
            out.setdefault(series, Hit(series, episode_reason(episode)))
    return list(out.values())


def collapse_ids(
    ids: Iterable[uuid.UUID], parents: Mapping[uuid.UUID, uuid.UUID]
) -> list[uuid.UUID]:
    """Ids in order with each episode replaced by its series, each once."""
    return list(dict.fromkeys(parents.get(cid, cid) for cid in ids))


def matched_episodes(
    rankings: Mapping[Strategy, Sequence[Hit]],
    parents: Mapping[uuid.UUID, uuid.UUID],
    payloads: Mapping[uuid.UUID, Mapping[str, Any]],
) -> dict[uuid.UUID, list[MatchedEpisode]]:
    """Per series, the episodes the strategies found, in the order fusion would rank them
    (each list's weight over 60 + its rank), at most MAX_MATCHED_EPISODES."""
    fused: dict[uuid.UUID, float] = {}
    for strategy, hits in rankings.items():
        for rank, hit in enumerate(hits, start=1):
            if hit.canonical_id in parents:
                fused[hit.canonical_id] = fused.get(hit.canonical_id, 0.0) + rrf_term(
                    WEIGHTS[strategy], rank
                )
    out: dict[uuid.UUID, list[MatchedEpisode]] = {}
    for cid in sorted(fused, key=lambda c: (-fused[c], str(c))):
        episodes = out.setdefault(parents[cid], [])
        if len(episodes) < MAX_MATCHED_EPISODES:
            episodes.append(matched_episode(cid, payloads[cid]))
    return out


def series_payload(
    payload: Mapping[str, Any],
    episode_counts: Mapping[int | None, int],
    season_offers: Iterable[tuple[int | None, str, str]],
) -> dict[str, Any]:
    """A series' payload with its seasons: each season's episode count and offers now (the
    series' own, the season's listings', its episodes'), as (season, platform, region) rows.
    The series' `availability` gains every season's offers, so a platform filter passes a
    series one of whose seasons or episodes is on that platform."""
    own = [o for o in payload.get("availability") or () if isinstance(o, Mapping)]
    by_season: dict[int | None, dict[str, set[str]]] = {n: {} for n in episode_counts}
    for season, platform, region in season_offers:
        by_season.setdefault(season, {}).setdefault(platform, set()).add(region)
    numbered: list[int | None] = sorted(n for n in by_season if n is not None)
    order = [*numbered, *([None] if None in by_season else [])]
    seasons = []
    extra: dict[str, set[str]] = {}
    for number in order:
        offers = [
            {"platform": p, "regions": sorted(r)} for p, r in sorted(by_season[number].items())
        ]
        for platform, regions in by_season[number].items():
            extra.setdefault(platform, set()).update(regions)
        seasons.append(
            {
                "season_number": number,
                "episode_count": episode_counts.get(number, 0),
                "offers": [*own, *offers],
            }
        )
    availability = [
        *own,
        *({"platform": p, "regions": sorted(r)} for p, r in sorted(extra.items())),
    ]
    return {**payload, "availability": availability, "seasons": seasons}


def season_availability(
    payload: Mapping[str, Any], region: str | None = None
) -> list[SeasonAvailability] | None:
    """Where each season of a series payload can be watched (in `region` when given); None
    for a payload that is not a series'."""
    if payload.get("content_type") != "series":
        return None
    seasons = payload.get("seasons")
    if not isinstance(seasons, list):
        # A payload without seasons read (the vector store's, when PostgreSQL was not): the
        # series' seasons are unknown, not absent.
        return None
    return [
        SeasonAvailability(
            season_number=_int(season.get("season_number")),
            episode_count=_int(season.get("episode_count")) or 0,
            platforms=payload_platforms({"availability": season.get("offers") or []}, region),
        )
        for season in seasons
        if isinstance(season, Mapping)
    ]
