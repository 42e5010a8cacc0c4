"""Episodes and season listings for the sample catalog's series (devtools/sample_catalog.py).

Deterministic by seed, with its own random generator, so a catalog's titles are the same with
or without episodes. A share of the series masters gets 1-3 seasons of 4-8 episodes, listed by
each platform that lists the series, each platform its own way (docs/INGESTION.md, "Series"):

- the series named by the platform's parent id, by the series' ids (IMDb, TMDb tv) in various
  spellings, or by its title in another casing ("THE OFFICE", "Office, The");
- numbers as integers, strings, "S02"/"E05"; absolute numbers on some platforms; a few
  episodes with no number at all (only their own ids place them);
- some platforms split the last season in two parts (their season n+1 is the second half);
  the first episode of the second half carries its absolute number and its IMDb id, from
  which the mapping is learnt, and is delivered before the rest of that platform's part;
- specials (season 0) on some series, on one platform;
- season listings (content type "season") offering a whole season for purchase;
- episode titles in other casings, generic "Episode 5" titles on some platforms.

The variations stay resolvable by the rules: a series named by title only when no other series
master shares its normalized title; an episode without numbers always carries its own IMDb id.
`truth` maps each episode's record key to its episode's index, counted after the titles'.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

_WORDS = (
    "Arrival",
    "Reckoning",
    "Homecoming",
    "The Long Night",
    "Crossroads",
    "Ashes",
    "The Visitor",
    "Old Wounds",
    "Ghosts",
    "Fault Lines",
    "The Harvest",
    "Lost and Found",
    "Undertow",
    "The Offer",
    "Landfall",
    "Blackout",
    "Checkmate",
    "The Bridge",
    "Sanctuary",
    "Exodus",
    "Tides",
    "First Light",
    "The Deal",
    "Fallout",
    "Echoes",
    "Inheritance",
    "Wildfire",
)


@dataclass(frozen=True)
class SeriesSample:
    items: list[dict[str, Any]]
    truth: dict[str, int]  # record key -> episode index (a season listing: its series')
    series: int  # series with episodes
    episodes: int  # distinct canonical episodes


@dataclass(frozen=True)
class Listing:
    """A series master's listing on one platform (from the title catalog)."""

    master: int
    title: str
    year: int
    imdb: str | None
    tmdb: str | None
    platform: str
    item_id: str
    unique_title: bool  # no other series master has this normalized title


def generate_episodes(
    listings: list[Listing], seed: int, share: float, first_index: int
) -> SeriesSample:
    rng = random.Random(f"series:{seed}")
    by_master: dict[int, list[Listing]] = {}
    for listing in listings:
        by_master.setdefault(listing.master, []).append(listing)
    items: list[dict[str, Any]] = []
    # Platforms that split a season deliver after the others: the canonical numbering is
    # then the unsplit one (in a real feed either may come first; see docs/INGESTION.md).
    late: list[dict[str, Any]] = []
    pivots: list[dict[str, Any]] = []  # the first episode of each part two: first of the late
    truth: dict[str, int] = {}
    next_index = first_index
    chosen = 0
    for master in sorted(by_master):
        if rng.random() >= share:
            continue
        chosen += 1
        shows = by_master[master]
        seasons = [rng.randint(4, 8) for _ in range(rng.randint(1, 3))]
        specials = rng.randint(1, 2) if rng.random() < 0.15 else 0
        canon: list[tuple[int, int, int, str, str | None]] = []  # season, ep, abs, title, imdb
        absolute = 0
        for s, count in enumerate(seasons, start=1):
            for e in range(1, count + 1):
                absolute += 1
                name = rng.choice(_WORDS)
                imdb = f"tt{rng.randint(10_000_000, 99_999_999)}" if rng.random() < 0.3 else None
                canon.append((s, e, absolute, f"{name} ({s}.{e})", imdb))
        # The first episode of the last season's second half has an IMDb id on every platform:
        # a platform that splits the season there is mapped from it.
        pivot = next(
            k
            for k, (s, e, _, _, _) in enumerate(canon)
            if s == len(seasons) and e == seasons[-1] // 2 + 1
        )
        s_, e_, a_, t_, imdb_ = canon[pivot]
        pivot_at = (s_, e_)  # always numbered: its numbers say how a split maps
        canon[pivot] = (s_, e_, a_, t_, imdb_ or f"tt{rng.randint(10_000_000, 99_999_999)}")
        indexes = {(s, e): next_index + k for k, (s, e, _, _, _) in enumerate(canon)}
        next_index += len(canon)
        for show in shows:
            style = _style(rng, show)
            split = rng.random() < 0.25 and seasons[-1] >= 4
            part = seasons[-1] // 2
            for s, e, a, title, imdb in canon:
                own_s, own_e = s, e
                if split and s == len(seasons) and e > part:
                    own_s, own_e = s + 1, e - part
                item = _episode(
                    rng, show, style, own_s, own_e, a, title, imdb, numbered=(s, e) == pivot_at
                )
                if split and own_s == len(seasons) + 1 and own_e == 1:
                    item["absolute_number"] = a  # the first of part two says where it starts
                    pivots.append(item)
                else:
                    (late if split else items).append(item)
                truth[f"{show.platform}:{item['platform_item_id']}"] = indexes[(s, e)]
            if rng.random() < 0.3:
                for s in range(1, len(seasons) + 1):
                    if split and s == len(seasons):
                        continue  # its seasons are not the canonical ones
                    listing = _season_listing(rng, show, s)
                    items.append(listing)
                    truth[f"{show.platform}:{listing['platform_item_id']}"] = master
        if specials:
            show = shows[0]
            style = _style(rng, show)
            for k in range(1, specials + 1):
                item = _episode(
                    rng, show, style, 0, k, None, f"Behind the Scenes {k}", None, special=True
                )
                items.append(item)
                truth[f"{show.platform}:{item['platform_item_id']}"] = next_index
                next_index += 1
    rng.shuffle(items)
    rng.shuffle(late)
    return SeriesSample(items + pivots + late, truth, chosen, next_index - first_index)


@dataclass(frozen=True)
class _Style:
    by: str  # parent | ids | title
    absolute: bool
    text_numbers: bool
    generic_titles: bool


def _style(rng: random.Random, show: Listing) -> _Style:
    options = ["parent", "parent"]
    if show.imdb or show.tmdb:
        options.append("ids")
    if show.unique_title:
        options.append("title")
    return _Style(
        by=rng.choice(options),
        absolute=rng.random() < 0.4,
        text_numbers=rng.random() < 0.3,
        generic_titles=rng.random() < 0.2,
    )


def _series_fields(rng: random.Random, show: Listing, style: _Style) -> dict[str, Any]:
    if style.by == "parent":
        return {"parent_id": show.item_id}
    if style.by == "ids":
        ids: dict[str, Any] = {}
        if show.imdb:
            ids["imdb"] = rng.choice((show.imdb, f"https://www.imdb.com/title/{show.imdb}/"))
        if show.tmdb and (not ids or rng.random() < 0.5):
            ids["tmdb"] = rng.choice((show.tmdb, int(show.tmdb)))
        if rng.random() < 0.5:
            return {"series_ids": ids}
        return {f"series_{k}": v for k, v in ids.items()}  # flat spellings
    title = show.title
    if title.startswith("The ") and rng.random() < 0.4:
        title = f"{title[4:]}, The"
    title = rng.choice((title, title.upper(), title.lower()))
    return {rng.choice(("series_title", "series_name", "show_title")): title}


def _episode(
    rng: random.Random,
    show: Listing,
    style: _Style,
    season: int,
    episode: int,
    absolute: int | None,
    title: str,
    imdb: str | None,
    *,
    special: bool = False,
    numbered: bool = False,
) -> dict[str, Any]:
    item_id = f"{show.item_id}-S{season}E{episode}"
    shown = f"Episode {episode}" if style.generic_titles and not special else title
    shown = shown.upper() if rng.random() < 0.1 else shown
    item: dict[str, Any] = {
        "platform": show.platform,
        "platform_item_id": item_id,
        "title": shown,
        "content_type": rng.choice(("episode", "Episode", "TV Episode")),
        "year": show.year,
        "runtime": rng.randint(22, 62),
        "genres": [],
        "source_updated_at": "2025-01-01T00:00:00+00:00",
        "availability": [{"availability_type": "subscription", "regions": ["US"]}],
        **_series_fields(rng, show, style),
    }
    if imdb:
        item["external_ids"] = {"imdb": imdb}
    missing = imdb is not None and rng.random() < 0.15 and not numbered
    if not missing:
        if style.text_numbers:
            item["season_number"] = f"S{season:02d}"
            item["episode_number"] = f"E{episode:02d}"
        else:
            item["season_number"], item["episode_number"] = season, episode
    if style.absolute and absolute is not None:
        item["absolute_number"] = absolute
    return item


def _season_listing(rng: random.Random, show: Listing, season: int) -> dict[str, Any]:
    return {
        "platform": show.platform,
        "platform_item_id": f"{show.item_id}-season-{season}",
        "title": rng.choice((f"{show.title}: Season {season}", f"{show.title} - Season {season}")),
        "content_type": "season",
        "season_number": season,
        "parent_id": show.item_id,
        "genres": [],
        "source_updated_at": "2025-01-01T00:00:00+00:00",
        "availability": [
            {
                "availability_type": "purchase",
                "price": rng.choice(("14.99", "19.99", "24.99")),
                "currency": "USD",
                "regions": ["US"],
            }
        ],
    }
