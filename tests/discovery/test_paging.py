"""Paging through a real catalog: the pages of one query cut one ordered result, every page
says the same total, and a query whose words are all filters reaches every title passing them,
as SQL counts them over the documents (offers that ended or have not started do not count).

900 synthetic titles (devtools/bench/search_catalog.py) in PostgreSQL and the in-process vector
store, a quarter of their Netflix offers ended, some offers not started yet, some with a window
that is open now: more current Netflix titles than the 100 an earlier browse stopped at.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import pytest

from agents.adapters.embeddings.local import LocalEmbedder
from agents.adapters.vectors.edge import EdgeVectorStore
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.discovery import store
from agents.discovery.facets import facet_counts
from agents.discovery.ranking import Retrieved
from agents.titles.store import Versioned, upsert_contents
from devtools.bench.search_catalog import synthetic_content, synthetic_vectors
from schemas.content import CanonicalContent
from schemas.discovery import SearchFilters, SearchResponse, SearchResult
from tests.discovery.conftest import MakeEngine, Seeded, seeded_catalog

TITLES = 900
NOW = datetime.now(UTC)


def with_windows(content: CanonicalContent, i: int) -> CanonicalContent:
    """Some offers ended, some start later, some are within a window open now."""
    offers = content.model_dump(mode="json")["availability"]
    for offer in offers:
        if offer["platform"] == "netflix" and i % 4 == 1:
            offer["available_until"] = (NOW - timedelta(days=3)).isoformat()
        elif i % 9 == 2:
            offer["available_from"] = (NOW + timedelta(days=5)).isoformat()
        elif i % 7 == 3:
            offer["available_from"] = (NOW - timedelta(days=5)).isoformat()
            offer["available_until"] = (NOW + timedelta(days=30)).isoformat()
    return CanonicalContent.model_validate(
        {**content.model_dump(mode="json"), "availability": offers}
    )


async def load(pool: asyncpg.Pool, vectors: EdgeVectorStore, embedder: LocalEmbedder) -> None:
    contents = [with_windows(c, i) for i, c in enumerate(synthetic_content(TITLES, seed=21))]
    await upsert_contents(pool, [Versioned(c, uuid.uuid4()) for c in contents])
    matrix = synthetic_vectors(contents, np.random.default_rng(5))
    await vectors.upsert(
        [VectorPoint(c.canonical_id, matrix[i], content_payload(c)) for i, c in enumerate(contents)]
    )


@pytest.fixture(scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    async with seeded_catalog(tmp_path_factory, load) as catalog:
        yield catalog


async def every_page(
    engine: Any, query: str, page_size: int, **fields: Any
) -> list[SearchResponse]:
    """Pages 1, 2, ... up to the first empty one."""
    pages: list[SearchResponse] = []
    while True:
        page = await engine.search(query, page=len(pages) + 1, page_size=page_size, **fields)
        pages.append(page)
        if not page.results:
            return pages


def results(pages: list[SearchResponse]) -> list[SearchResult]:
    return [r for page in pages for r in page.results]


async def sql_ids(pool: asyncpg.Pool, where: str, *args: Any) -> list[uuid.UUID]:
    """What truly passes, most popular first, by the documents' own offers."""
    rows = await pool.fetch(
        f"SELECT canonical_id FROM content c WHERE {where} ORDER BY popularity DESC, canonical_id",
        *args,
    )
    return [r["canonical_id"] for r in rows]


CURRENT_OFFER_ON = """EXISTS (
    SELECT 1 FROM jsonb_array_elements(c.doc->'availability') o
    WHERE o->>'platform' = $1 AND jsonb_array_length(o->'regions') > 0
      AND ($2::text IS NULL OR o->'regions' ? $2)
      AND (o->>'available_from' IS NULL OR (o->>'available_from')::timestamptz <= now())
      AND (o->>'available_until' IS NULL OR (o->>'available_until')::timestamptz > now()))"""


def assert_one_ordered_result(pages: list[SearchResponse], expected: list[uuid.UUID]) -> None:
    shown = [r.canonical_id for r in results(pages)]
    assert len(shown) == len(set(shown)), "a title is on two pages"
    assert shown == expected
    assert {page.total_count for page in pages} == {len(expected)}
    # The facets count the whole result, on every page, as facet_counts counts results.
    assert all(page.facets == facet_counts(results(pages)) for page in pages)


async def test_a_genre_pages_through_every_title_of_it(
    make_engine: MakeEngine, seeded: Seeded
) -> None:
    pages = await every_page(make_engine(), "drama", 20)
    assert pages[0].query_parsed.filters.genres == ["drama"]
    expected = await sql_ids(seeded.pool, "c.doc->'genres' ? 'drama'")
    assert len(expected) > 40
    assert_one_ordered_result(pages, expected)


async def test_on_netflix_reaches_every_current_netflix_title(
    make_engine: MakeEngine, seeded: Seeded
) -> None:
    engine = make_engine()
    pages = await every_page(engine, "on netflix", 30)
    expected = await sql_ids(seeded.pool, CURRENT_OFFER_ON, "netflix", None)
    assert len(expected) > 100  # past what a browse used to stop at
    ever = await sql_ids(seeded.pool, "c.doc->'availability' @> '[{\"platform\": \"netflix\"}]'")
    assert len(ever) > len(expected)  # and some Netflix offers are over
    assert_one_ordered_result(pages, expected)
    assert all("netflix" in r.platforms for r in results(pages))


async def test_a_region_is_the_one_offers_are_stored_in(
    make_engine: MakeEngine, seeded: Seeded
) -> None:
    engine = make_engine()
    uk = await every_page(engine, "on netflix", 50, filters={"region": "uk"})
    assert uk[0].results, "UK is stored as GB, and asked for as either"
    expected = await sql_ids(seeded.pool, CURRENT_OFFER_ON, "netflix", "GB")
    assert_one_ordered_result(uk, expected)
    gb = await every_page(engine, "on netflix", 50, filters={"region": "GB"})
    assert [r.canonical_id for r in results(gb)] == expected
    assert all("netflix" in r.platforms for r in results(uk))


async def test_a_search_by_words_pages_through_one_result(make_engine: MakeEngine) -> None:
    engine = make_engine()
    query = "a story of revenge and betrayal in the city"
    pages = await every_page(engine, query, 7)
    assert "vector" in pages[0].strategies_used and not pages[0].strategies_failed
    whole = await engine.search(query, page_size=100)
    assert whole.total_count <= 100
    assert_one_ordered_result(pages, [r.canonical_id for r in whole.results])
    # Another page size cuts the same result.
    by_ten = await every_page(engine, query, 10)
    assert [r.canonical_id for r in results(by_ten)] == [r.canonical_id for r in whole.results]


async def test_a_browse_without_filters_reaches_every_title(
    make_engine: MakeEngine, seeded: Seeded
) -> None:
    # Only stop words: every title, the popularity index's order, exact total. ("movies"
    # would ask for films only: docs/DISCOVERY.md, "The intent".)
    pages = await every_page(make_engine(), "something to watch tonight", 100)
    assert pages[0].strategies_used == ["popularity"]
    expected = await sql_ids(seeded.pool, "true")
    assert len(expected) == TITLES
    assert_one_ordered_result(pages, expected)


async def test_a_browse_whose_counts_run_out_of_time_still_answers_its_page_and_total(
    seeded: Seeded,
) -> None:
    # No time at all for the facets: the page and the exact total stand, the facets are
    # empty, and the answer is partial (answered, not kept: a later asker gets the facets).
    page = await store.browse(seeded.pool, SearchFilters(genres=["drama"]), 5, 5, 0.0)
    expected = await sql_ids(seeded.pool, "c.doc->'genres' ? 'drama'")
    assert list(page.ids) == expected[5:10]
    assert page.total == len(expected)
    assert not page.counted and page.facets.genre == {}
    assert Retrieved(browse=page).partial
    counted = await store.browse(seeded.pool, SearchFilters(genres=["drama"]), 5, 5, 30.0)
    assert counted.counted and counted.facets.genre["drama"] == len(expected)
    assert not Retrieved(browse=counted).partial
