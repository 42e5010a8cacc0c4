"""Which cached result pages a change of the catalog drops, and how long a page is kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from agents.discovery.invalidation import (
    changed_subjects,
    page_lifetime,
    page_subjects,
    platform_subject,
    region_subject,
    title_subject,
)
from schemas.content import (
    AvailabilityChanged,
    AvailabilityRow,
    CanonicalContent,
    ContentUpdated,
    MetadataEnriched,
)
from schemas.discovery import SearchFilters

A, B = uuid.UUID(int=1), uuid.UUID(int=2)


def row(region: str) -> AvailabilityRow:
    return AvailabilityRow(platform="hulu", region=region, availability_type="subscription")


def content(**fields: object) -> CanonicalContent:
    return CanonicalContent.model_validate(
        {
            "canonical_id": str(A),
            "content_type": "movie",
            "title": "Alpha",
            "genres": ["drama"],
            "updated_at": "2026-01-01T00:00:00Z",
            **fields,
        }
    )


def test_a_page_depends_on_its_titles_and_the_offers_its_filters_ask_for() -> None:
    assert page_subjects(SearchFilters(), [A]) == [title_subject(A)]
    on = page_subjects(SearchFilters(platforms=["netflix", "hulu"], region="GB"), [A, B])
    assert on == [
        title_subject(A),
        title_subject(B),
        platform_subject("hulu"),
        platform_subject("netflix"),
    ]
    # Any platform in the region will do, so an offer on any platform there counts.
    assert page_subjects(SearchFilters(region="gb"), []) == [region_subject("GB")]


def test_an_availability_change_touches_its_title_platform_and_regions() -> None:
    change = AvailabilityChanged(
        canonical_id=A, platform="hulu", appeared=[row("US")], expired=[row("GB"), row("US")]
    )
    assert changed_subjects(change) == [
        title_subject(A),
        platform_subject("hulu"),
        region_subject("US"),
        region_subject("GB"),
    ]


def test_an_update_touches_offers_only_when_they_changed() -> None:
    offered = content(
        availability=[
            {"platform": "netflix", "availability_type": "subscription", "regions": ["US"]},
            {"platform": "hulu", "availability_type": "subscription", "regions": []},
        ]
    )
    titled = ContentUpdated(content=offered, changed_fields=["title"])
    assert changed_subjects(titled) == [title_subject(A)]
    moved = ContentUpdated(content=offered, changed_fields=["availability", "title"])
    assert changed_subjects(moved) == [
        title_subject(A),
        platform_subject("netflix"),
        platform_subject("hulu"),  # left it: the pages holding the title go by the title
        region_subject("US"),
    ]
    # Nothing says what changed: the offers may have.
    assert platform_subject("netflix") in changed_subjects(ContentUpdated(content=offered))


def test_an_episode_update_touches_its_series_shown_in_its_place() -> None:
    ep = content(content_type="episode", series={"parent_id": str(B), "season_number": 1})
    assert changed_subjects(ContentUpdated(content=ep, changed_fields=["title"])) == [
        title_subject(A),
        title_subject(B),
    ]


def test_an_enrichment_touches_its_title() -> None:
    enriched = MetadataEnriched(
        canonical_id=B,
        source_version=datetime(2026, 1, 1, tzinfo=UTC),
        data_quality_score=0.5,
        embedding_model="m",
        dimension=384,
    )
    assert changed_subjects(enriched) == [title_subject(B)]


@pytest.mark.parametrize(
    ("change_in_s", "elapsed_s", "lifetime_s"),
    [
        (None, 0.2, 1800.0),  # no offer will start or end
        (5000.0, 0.2, 1800.0),
        (2.0, 0.5, 1.5),  # until the next start or end, from when it was read
        (0.3, 0.5, -0.2),  # over already: not kept
    ],
)
def test_a_page_lives_until_the_next_offer_change(
    change_in_s: float | None, elapsed_s: float, lifetime_s: float
) -> None:
    assert page_lifetime(1800.0, change_in_s, elapsed_s) == pytest.approx(lifetime_s)
