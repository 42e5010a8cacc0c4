"""Search over a catalog with series and episodes, against PostgreSQL, the in-process vector
store with real embeddings and Redis: a series is one result however many of its episodes
match, says where each season plays, and is found by an episode's own title, which it names;
`content_types` filters series out or in.

The relations (seasons, episodes, a season listing's offers) are written by ingestion's own
store (agents/ingestion/series_store.py), as the pipeline writes them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from agents.adapters.embeddings.base import content_text
from agents.adapters.embeddings.local import LocalEmbedder
from agents.adapters.vectors.edge import EdgeVectorStore
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.ingestion.series import season_id
from agents.ingestion.series_plan import EpisodeRow
from agents.ingestion.series_store import replace_season_offers, write_episodes
from agents.titles.store import Versioned, upsert_contents
from schemas.content import PlatformAvailability
from schemas.discovery import SearchResult
from tests.discovery.catalog import US, Title, seed
from tests.discovery.conftest import MakeEngine, Seeded, seeded_catalog

OFFICE = Title(
    "The Office",
    2005,
    ("comedy",),
    "A mockumentary on a group of office workers at a paper company in Scranton.",
    (),
    "TV-14",
    8.9,
    90.0,
    content_type="series",
)
PARKS = Title(
    "Parks and Recreation",
    2009,
    ("comedy",),
    "A mockumentary on the staff of a parks department in small-town Indiana.",
    (("peacock", US),),
    "TV-14",
    8.6,
    70.0,
    content_type="series",
)
OFFICE_SPACE = Title(
    "Office Space",
    1999,
    ("comedy",),
    "Three office workers at a software company, fed up with their jobs, plot revenge.",
    (("hulu", US),),
    "R",
    7.6,
    40.0,
)
HEAT = Title(
    "Heat",
    1995,
    ("crime", "thriller"),
    "A master thief and a driven detective face off in Los Angeles.",
    (("netflix", US),),
    "R",
    8.3,
    60.0,
)


# The Office: 3 episodes on 2 platforms (S1 on Netflix, S2 on Peacock), and its season 2 also
# sold as a season listing on Prime Video. Parks and Recreation has a "Pilot" too.
EPISODES = (
    (
        OFFICE,
        1,
        1,
        Title(
            "Pilot",
            2005,
            ("comedy",),
            "A documentary crew arrives at the Scranton branch of Dunder Mifflin.",
            (("netflix", US),),
            "TV-14",
            content_type="episode",
        ),
    ),
    (
        OFFICE,
        1,
        2,
        Title(
            "Diversity Day",
            2005,
            ("comedy",),
            "A consultant leads a sensitivity training session after an offensive routine.",
            (("netflix", US),),
            "TV-14",
            content_type="episode",
        ),
    ),
    (
        OFFICE,
        2,
        1,
        Title(
            "The Dundies",
            2005,
            ("comedy",),
            "The regional manager hosts the annual office awards at a local restaurant.",
            (("peacock", US),),
            "TV-14",
            content_type="episode",
        ),
    ),
    (
        PARKS,
        1,
        1,
        Title(
            "Pilot ",  # another show's "Pilot": a canonical title of its own
            2009,
            ("comedy",),
            "A mid-level bureaucrat tries to turn a construction pit into a park.",
            (("peacock", US),),
            "TV-14",
            content_type="episode",
        ),
    ),
)


def episode_id(show: Title, season: int, number: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mgw-test-discovery/{show.title}/S{season}E{number}")


async def load(pool: asyncpg.Pool, vectors: EdgeVectorStore, embedder: LocalEmbedder) -> None:
    shows = [OFFICE, PARKS, OFFICE_SPACE, HEAT]
    await seed(pool, vectors, embedder, shows)
    contents = []
    for show, season, number, ep in EPISODES:
        contents.append(
            ep.content(
                canonical_id=str(episode_id(show, season, number)),
                title=ep.title.strip(),
                series={
                    "parent_id": str(show.canonical_id),
                    "season_id": str(season_id(show.canonical_id, season)),
                    "season_number": season,
                    "episode_number": number,
                },
            )
        )

    await upsert_contents(pool, [Versioned(c, uuid.uuid4()) for c in contents])
    matrix = await embedder.embed([content_text(c) for c in contents])
    await vectors.upsert(
        [
            VectorPoint(c.canonical_id, v, content_payload(c))
            for c, v in zip(contents, matrix, strict=True)
        ]
    )
    async with pool.acquire() as conn, conn.transaction():
        await write_episodes(
            conn,
            [
                EpisodeRow(
                    episode_id(show, season, number),
                    show.canonical_id,
                    season_id(show.canonical_id, season),
                    season,
                    number,
                    None,
                )
                for show, season, number, _ in EPISODES
            ],
            [],
        )
        await replace_season_offers(
            conn,
            OFFICE.canonical_id,
            2,
            "prime_video",
            [
                PlatformAvailability.model_validate(
                    {
                        "platform": "prime_video",
                        "availability_type": "subscription",
                        "regions": ["US"],
                    }
                )
            ],
        )


@pytest.fixture(scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    async with seeded_catalog(tmp_path_factory, load) as catalog:
        yield catalog


def one(results: list[SearchResult], canonical_id: uuid.UUID) -> SearchResult:
    found = [r for r in results if r.canonical_id == canonical_id]
    assert len(found) == 1, [(r.title, r.content_type) for r in results]
    return found[0]


def no_episodes(results: list[SearchResult]) -> None:
    assert all(r.content_type != "episode" for r in results), [r.title for r in results]


async def test_the_office_is_one_series_with_where_each_season_plays(
    make_engine: MakeEngine,
) -> None:
    found = await make_engine().search("the office")
    no_episodes(found.results)
    office = one(found.results, OFFICE.canonical_id)
    assert found.results[0].canonical_id == OFFICE.canonical_id
    assert office.content_type == "series"
    assert office.seasons is not None
    assert [(s.season_number, s.episode_count, s.platforms) for s in office.seasons] == [
        (1, 2, ["netflix"]),
        (2, 1, ["peacock", "prime_video"]),
    ]
    assert office.platforms == ["netflix", "peacock", "prime_video"]
    # Counted once: the total and the facets count titles, not episodes.
    assert found.total_count == len(found.results) == len({r.canonical_id for r in found.results})
    assert found.facets.genre.get("comedy", 0) == sum("comedy" in r.genres for r in found.results)


async def test_an_episode_title_finds_its_series_which_names_it(make_engine: MakeEngine) -> None:
    found = await make_engine().search("diversity day")
    no_episodes(found.results)
    office = one(found.results, OFFICE.canonical_id)
    assert found.results[0].canonical_id == OFFICE.canonical_id
    assert "episode matches your query: S1E2 'Diversity Day'" in office.match_reasons
    first = office.matched_episodes[0]
    assert (first.title, first.season_number, first.episode_number) == ("Diversity Day", 1, 2)


async def test_two_shows_with_a_pilot_are_each_found_once(make_engine: MakeEngine) -> None:
    found = await make_engine().search("pilot")
    no_episodes(found.results)
    ids = [r.canonical_id for r in found.results]
    assert set(ids[:2]) == {OFFICE.canonical_id, PARKS.canonical_id}, ids
    for show in (OFFICE, PARKS):
        result = one(found.results, show.canonical_id)
        assert any("'Pilot'" in reason for reason in result.match_reasons), result.match_reasons
    # Page by page, the same two, each once, and the same total.
    pages = [await make_engine().search("pilot", page=n, page_size=1) for n in (1, 2)]
    assert [p.results[0].canonical_id for p in pages] == ids[:2]
    assert {p.total_count for p in pages} == {found.total_count}


async def test_content_type_movie_leaves_series_out(make_engine: MakeEngine) -> None:
    engine = make_engine()
    movies = await engine.search("office", filters={"content_types": ["movie"]})
    assert [r.canonical_id for r in movies.results] == [OFFICE_SPACE.canonical_id]
    assert movies.total_count == 1
    shows = await engine.search("office", filters={"content_types": ["series"]})
    assert {r.content_type for r in shows.results} == {"series"}
    assert OFFICE.canonical_id in {r.canonical_id for r in shows.results}
    # An episode's title under a series filter still finds its series.
    pilot = await engine.search("dundies", filters={"content_types": ["series"]})
    assert [r.canonical_id for r in pilot.results] == [OFFICE.canonical_id]


async def test_a_browse_lists_series_not_episodes(make_engine: MakeEngine) -> None:
    found = await make_engine().search("comedy")
    assert "popularity" in found.strategies_used
    ids = [r.canonical_id for r in found.results]
    assert set(ids) == {OFFICE.canonical_id, PARKS.canonical_id, OFFICE_SPACE.canonical_id}
    assert found.total_count == 3 and found.facets.genre == {"comedy": 3}
    series_only = await make_engine().search("comedy", filters={"content_types": ["series"]})
    assert series_only.total_count == 2
