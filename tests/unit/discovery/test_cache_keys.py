"""Discovery cache keys: one request, one key; anything that changes the answer, a new key."""

from __future__ import annotations

import re
import uuid

import pytest

from agents.discovery.invalidation import platform_subject, region_subject, title_subject
from agreements.discovery_cache import (
    EMBEDDING_TTL_S,
    INTENT_TTL_S,
    RESULTS_TTL_S,
    embedding_key,
    intent_key,
    normalize_query,
    request_results_set_key,
    results_index_key,
    results_key,
)
from schemas.content import MaturityRating
from schemas.discovery import SearchFilters, SearchRequested

PREFIX = "mgw"
_KEY = re.compile(r"^mgw:discovery:(intent|qembed|results):[0-9a-f]{64}$")


def test_ttls_are_domain_values() -> None:
    assert (INTENT_TTL_S, EMBEDDING_TTL_S, RESULTS_TTL_S) == (600, 3600, 1800)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("  Sci-Fi   like  Shrek ", "sci-fi like shrek"),
        ("FUNNY\tmovies\n", "funny movies"),
        ("Amélie", "amélie"),
        ("AMÉLIE", "amélie"),
        ("Ame\u0301lie", "amélie"),  # decomposed é: same text, same key
        ("", ""),
    ],
)
def test_normalize_query(text: str, normalized: str) -> None:
    assert normalize_query(text) == normalized


def test_accents_are_kept() -> None:
    assert normalize_query("Amélie") != normalize_query("Amelie")
    assert intent_key(PREFIX, "Amélie") != intent_key(PREFIX, "Amelie")


def test_key_shape() -> None:
    assert _KEY.match(intent_key(PREFIX, "shrek"))
    assert _KEY.match(embedding_key(PREFIX, "shrek", "all-MiniLM-L6-v2"))
    assert _KEY.match(results_key(PREFIX, "shrek", SearchFilters(), 1, 20))


def test_intent_key_follows_the_normalized_query() -> None:
    assert intent_key(PREFIX, "Funny  like Shrek") == intent_key(PREFIX, " funny like shrek ")
    assert intent_key(PREFIX, "funny like shrek") != intent_key(PREFIX, "funny like shrek 2")
    assert intent_key("other", "shrek") != intent_key(PREFIX, "shrek")
    assert intent_key("other", "shrek").startswith("other:discovery:intent:")


def test_embedding_key_includes_the_model() -> None:
    one = embedding_key(PREFIX, "Shrek", "all-MiniLM-L6-v2")
    assert one == embedding_key(PREFIX, " shrek", "all-MiniLM-L6-v2")
    assert one != embedding_key(PREFIX, "shrek", "text-embedding-3-small")
    # A cached intent and a cached embedding of one query never share a key.
    assert one.split(":")[-1] != intent_key(PREFIX, "shrek").split(":")[-1]


def test_same_request_same_results_key() -> None:
    first = results_key(
        PREFIX,
        "Funny like Shrek",
        SearchFilters(genres=["comedy", "animation"], platforms=["Netflix"], region="us"),
        2,
        20,
    )
    again = results_key(
        PREFIX,
        " funny like  shrek",
        SearchFilters(genres=["animation", "comedy", "comedy"], platforms=["netflix"], region="US"),
        2,
        20,
    )
    assert first == again


def test_default_filters_written_out_are_the_same_request() -> None:
    assert results_key(PREFIX, "q", SearchFilters(), 1, 20) == results_key(
        PREFIX, "q", SearchFilters(genres=[], region=None, blocked_genres=[]), 1, 20
    )


@pytest.mark.parametrize(
    ("change", "other"),
    [
        ("page", ("q", SearchFilters(), 2, 20, None)),
        ("page_size", ("q", SearchFilters(), 1, 50, None)),
        ("query", ("q2", SearchFilters(), 1, 20, None)),
        ("genres", ("q", SearchFilters(genres=["comedy"]), 1, 20, None)),
        ("platforms", ("q", SearchFilters(platforms=["hulu"]), 1, 20, None)),
        ("region", ("q", SearchFilters(region="GB"), 1, 20, None)),
        ("years", ("q", SearchFilters(year_range=(1990, 1999)), 1, 20, None)),
        ("ratings", ("q", SearchFilters(rating_range=(5, 10)), 1, 20, None)),
        ("maturity", ("q", SearchFilters(content_rating_limit=MaturityRating.PG), 1, 20, None)),
        ("blocked", ("q", SearchFilters(blocked_genres=["horror"]), 1, 20, None)),
        ("user", ("q", SearchFilters(), 1, 20, "user-1")),
    ],
)
def test_anything_that_changes_the_answer_changes_the_results_key(
    change: str, other: tuple[str, SearchFilters, int, int, str | None]
) -> None:
    base = results_key(PREFIX, "q", SearchFilters(), 1, 20)
    query, filters, page, page_size, user = other
    assert results_key(PREFIX, query, filters, page, page_size, user) != base, change


def test_personalized_keys_differ_per_user() -> None:
    filters = SearchFilters(region="US")
    assert results_key(PREFIX, "q", filters, 1, 20, "alice") != results_key(
        PREFIX, "q", filters, 1, 20, "bob"
    )
    assert results_key(PREFIX, "q", filters, 1, 20, "alice") == results_key(
        PREFIX, "q", filters, 1, 20, "alice"
    )


def test_results_index_key_per_subject() -> None:
    cid = uuid.UUID("0b5a3b8e-3c39-4f4e-9b3b-2f6d6f1f4a10")
    title = results_index_key(PREFIX, title_subject(cid))
    assert title == f"mgw:discovery:result-sets-of:title:{cid}"
    assert results_index_key(PREFIX, title_subject(str(cid).upper())) == title
    assert results_index_key(PREFIX, title_subject(uuid.uuid4())) != title
    assert results_index_key(PREFIX, platform_subject("netflix")).endswith(":platform:netflix")
    assert results_index_key(PREFIX, region_subject("gb")).endswith(":region:GB")


def test_every_page_of_a_result_shares_its_set() -> None:
    def request(**fields: object) -> SearchRequested:
        return SearchRequested.model_validate({"query": "q", "reply_channel": "c", **fields})

    first = request_results_set_key(PREFIX, request())
    assert request_results_set_key(PREFIX, request(page=7, page_size=5)) == first
    assert request_results_set_key(PREFIX, request(query="  Q ")) == first
    assert request_results_set_key(PREFIX, request(filters={"region": "GB"})) != first
    assert request_results_set_key(PREFIX, request(query="other")) != first
    assert first.startswith("mgw:discovery:result-set:")
