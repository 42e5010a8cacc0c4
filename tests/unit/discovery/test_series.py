"""Series and episodes in search, the pure rules: an episode found stands for its series (once,
at its best rank, naming the episode), a series says where each season plays, and the
content-type filter."""

from __future__ import annotations

import uuid
from typing import Any

from agents.discovery.filters import matches
from agents.discovery.fusion import Hit
from agents.discovery.plan import plan_search
from agents.discovery.ranking import Retrieved, assemble
from agents.discovery.series import (
    MAX_MATCHED_EPISODES,
    collapse_hits,
    episode_label,
    matched_episodes,
    season_availability,
    series_payload,
)
from schemas.discovery import ParsedIntent, SearchFilters, SearchRequested

OFFICE, PARKS, MOVIE = (uuid.UUID(int=n) for n in (1, 2, 3))
E1, E2, E3, PILOT_P = (uuid.UUID(int=n) for n in (11, 12, 13, 21))


def show(title: str, **fields: Any) -> dict[str, Any]:
    return {
        "title": title,
        "content_type": "series",
        "genres": ["comedy"],
        "release_year": 2005,
        "availability": [],
        "popularity_score": 5.0,
        **fields,
    }


def episode(title: str, series: uuid.UUID, season: int | None, number: int | None) -> dict:
    return {
        "title": title,
        "content_type": "episode",
        "series_id": str(series),
        "season_number": season,
        "episode_number": number,
        "genres": ["comedy"],
        "availability": [{"platform": "netflix", "regions": ["US"]}],
    }


OFFICE_SEASONS = series_payload(
    show("The Office", availability=[{"platform": "peacock", "regions": ["US"]}]),
    {1: 2, 2: 1},
    [(1, "netflix", "US"), (2, "prime_video", "GB"), (2, "prime_video", "US")],
)
PAYLOADS = {
    OFFICE: OFFICE_SEASONS,
    PARKS: series_payload(show("Parks and Recreation"), {1: 1}, [(1, "netflix", "US")]),
    MOVIE: {**show("Office Space"), "content_type": "movie", "popularity_score": 1.0},
    E1: episode("Pilot", OFFICE, 1, 1),
    E2: episode("Diversity Day", OFFICE, 1, 2),
    E3: episode("The Dundies", OFFICE, 2, 1),
    PILOT_P: episode("Pilot", PARKS, 1, 1),
}
PARENTS = {E1: OFFICE, E2: OFFICE, E3: OFFICE, PILOT_P: PARKS}


def test_episode_labels() -> None:
    assert episode_label(1, 3) == "S1E3"
    assert episode_label(2, None) == "S2"
    assert episode_label(None, 7) == "E7"
    assert episode_label(None, None) == ""


def test_an_episode_stands_for_its_series_once_at_its_best_rank() -> None:
    hits = [Hit(MOVIE), Hit(E2), Hit(OFFICE), Hit(E1), Hit(PILOT_P)]
    collapsed = collapse_hits(hits, PARENTS, PAYLOADS)
    assert [h.canonical_id for h in collapsed] == [MOVIE, OFFICE, PARKS]
    assert collapsed[1].reason == "episode matches your query: S1E2 'Diversity Day'"
    assert collapsed[2].reason == "episode matches your query: S1E1 'Pilot'"
    # A series whose payload was not read cannot be shown: its episodes are left out too.
    assert (
        collapse_hits(hits, PARENTS, {k: v for k, v in PAYLOADS.items() if k != PARKS})[
            -1
        ].canonical_id
        == OFFICE
    )


def test_matched_episodes_in_fusion_order_and_capped() -> None:
    found = matched_episodes(
        # E1: 0.35 / 62 + 0.20 / 61 beats E3's 0.35 / 61 alone.
        {"vector": [Hit(E3), Hit(E1)], "keyword": [Hit(E1), Hit(E2), Hit(PILOT_P)]},
        PARENTS,
        PAYLOADS,
    )
    assert [e.title for e in found[OFFICE]] == ["Pilot", "The Dundies", "Diversity Day"]
    assert (found[OFFICE][0].season_number, found[OFFICE][0].episode_number) == (1, 1)
    assert [e.canonical_id for e in found[PARKS]] == [PILOT_P]
    many = {uuid.UUID(int=100 + n): episode(f"E{n}", OFFICE, 1, n) for n in range(6)}
    capped = matched_episodes({"keyword": [Hit(c) for c in many]}, {c: OFFICE for c in many}, many)
    assert len(capped[OFFICE]) == MAX_MATCHED_EPISODES


def test_seasons_say_where_each_plays_the_series_own_offers_in_every_one() -> None:
    seasons = season_availability(OFFICE_SEASONS)
    assert seasons is not None
    assert [(s.season_number, s.episode_count, s.platforms) for s in seasons] == [
        (1, 2, ["netflix", "peacock"]),
        (2, 1, ["peacock", "prime_video"]),
    ]
    gb = season_availability(OFFICE_SEASONS, "GB")
    assert gb is not None and [s.platforms for s in gb] == [[], ["prime_video"]]
    # The series passes a platform filter one of its seasons meets.
    assert matches(OFFICE_SEASONS, SearchFilters(platforms=["prime_video"], region="GB"))
    assert not matches(OFFICE_SEASONS, SearchFilters(platforms=["hulu"]))
    assert season_availability(PAYLOADS[MOVIE]) is None


def test_unnumbered_episodes_come_last_specials_first() -> None:
    payload = series_payload(show("S"), {None: 2, 0: 1, 3: 4}, [])
    assert [s["season_number"] for s in payload["seasons"]] == [0, 3, None]


def test_content_type_filter() -> None:
    assert matches(PAYLOADS[MOVIE], SearchFilters(content_types=["movie"]))
    assert not matches(OFFICE_SEASONS, SearchFilters(content_types=["movie"]))
    assert matches(OFFICE_SEASONS, SearchFilters(content_types=["series", "movie"]))
    assert not matches({"title": "unknown type"}, SearchFilters(content_types=["movie"]))


def search(query: str, rankings: dict, **filters: Any):  # type: ignore[no-untyped-def]
    request = SearchRequested.model_validate(
        {"query": query, "reply_channel": "c", "filters": filters, "page_size": 1}
    )
    intent = ParsedIntent(confidence=1.0, source="rules", fallback_query=query)
    pages = []
    for page in (1, 2, 3, 4):
        paged = request.model_copy(update={"page": page})
        plan = plan_search(paged, intent)
        retrieved = Retrieved(rankings=rankings, payloads=PAYLOADS)
        pages.append(assemble(paged, intent, plan, retrieved, 1.0).response)
    return pages


def test_a_result_holds_each_series_once_with_seasons_and_the_episode() -> None:
    pages = search("pilot", {"keyword": [Hit(E1), Hit(PILOT_P), Hit(E2)], "vector": [Hit(E3)]})
    ids = [r.canonical_id for p in pages for r in p.results]
    assert ids == [OFFICE, PARKS]  # one per page, each once, page by page
    assert {p.total_count for p in pages} == {2}
    office = pages[0].results[0]
    assert office.content_type == "series"
    assert "episode matches your query: S1E1 'Pilot'" in office.match_reasons
    # In fusion's order: the vector list weighs more than the keyword list.
    assert [e.title for e in office.matched_episodes] == ["The Dundies", "Pilot", "Diversity Day"]
    assert office.seasons is not None and [s.platforms for s in office.seasons] == [
        ["netflix", "peacock"],
        ["peacock", "prime_video"],
    ]
    assert office.platforms == ["netflix", "peacock", "prime_video"]
    # Facets count a series once, whatever number of its episodes matched.
    assert pages[0].facets.genre == {"comedy": 2}
    assert pages[0].facets.platform == {"netflix": 2, "peacock": 1, "prime_video": 1}


def test_content_type_movie_leaves_series_out() -> None:
    pages = search(
        "office", {"keyword": [Hit(E1), Hit(MOVIE), Hit(OFFICE)]}, content_types=["movie"]
    )
    assert [r.canonical_id for p in pages for r in p.results] == [MOVIE]
    assert pages[0].total_count == 1 and pages[0].results[0].seasons is None
