"""The sample catalog generator, and the whole pure pipeline run over it against its truth."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from agents.enrichment.quality import quality_score
from agents.ingestion.genres import classify_genres
from agents.ingestion.merge import merge_into
from agents.ingestion.normalize import normalize_item
from agents.ingestion.resolution import KnownTitleIndex, assign
from devtools.sample_catalog import PLATFORMS, generate_catalog, generate_sample
from schemas.content import CanonicalContent
from schemas.ingestion import RawCatalogItem, normalize_platform


@pytest.fixture(scope="module")
def sample_400() -> Any:
    return generate_sample(400, seed=11)


def test_deterministic_by_seed() -> None:
    assert generate_catalog(60, seed=3) == generate_catalog(60, seed=3)
    assert generate_catalog(60, seed=3) != generate_catalog(60, seed=4)
    assert generate_catalog(0, seed=1) == []


def test_items_are_json_and_all_validate(sample_400: Any) -> None:
    orjson.dumps(sample_400.items)
    parsed = [RawCatalogItem.model_validate(d) for d in sample_400.items]
    keys = [p.record_key for p in parsed]
    assert len(keys) == len(set(keys)) == len(sample_400.truth)
    assert set(keys) == set(sample_400.truth)
    assert sample_400.invalid == frozenset()
    assert {p.platform for p in parsed} == set(PLATFORMS)


def test_the_catalog_is_messy(sample_400: Any) -> None:
    items = sample_400.items
    titles = [d["title"] for d in items]
    assert any(t.endswith(", The") for t in titles)
    assert any(t.endswith(")") and t[-5:-1].isdigit() for t in titles)
    assert any(t.isupper() for t in titles)
    assert any(isinstance(d.get("year"), str) for d in items)
    assert any("year" in d and d["year"] is None for d in items)
    assert any("year" not in d for d in items)
    assert any(isinstance(d["runtime"], str) and "h" in d["runtime"] for d in items)
    assert any(d["genres"] is None for d in items) and any(d["genres"] == [] for d in items)
    assert any(isinstance(d["genres"], str) for d in items)
    assert any("overview" in d for d in items)
    offers = [o for d in items for o in d["availability"]]
    assert any(o["regions"] == [] for o in offers)
    assert any("price" in o or "price_cents" in o for o in offers)
    assert any("available_until" in o for o in offers)
    per_title = defaultdict(set)
    for key, master in sample_400.truth.items():
        per_title[master].add(key.split(":", 1)[0])
    assert max(len(p) for p in per_title.values()) == 3
    assert any(len(p) == 1 for p in per_title.values())


def test_invalid_fraction_breaks_exactly_the_listed_items() -> None:
    sample = generate_sample(200, seed=5, invalid_fraction=0.05)
    assert sample.invalid
    failed = set()
    for data in sample.items:
        try:
            RawCatalogItem.model_validate(data)
        except ValidationError:
            failed.add(f"{normalize_platform(data['platform'])}:{data['platform_item_id']}")
    assert failed == set(sample.invalid)
    assert len(failed) == round(len(sample.items) * 0.05)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pipeline_groups_every_listing_with_its_true_title(seed: int) -> None:
    sample = generate_sample(500, seed=seed)
    index = KnownTitleIndex()
    docs: dict[uuid.UUID, CanonicalContent] = {}
    resolved: dict[str, uuid.UUID] = {}
    for data in sample.items:
        item = normalize_item(RawCatalogItem.model_validate(data))
        resolution = assign(item, index)
        assert resolution.canonical_id is not None
        genres = classify_genres(item.platform, item.raw_genres).genres
        cid = resolution.canonical_id
        docs[cid] = merge_into(docs.get(cid), item, cid, genres)
        resolved[item.record_key] = cid
    by_title: dict[int, set[uuid.UUID]] = defaultdict(set)
    by_id: dict[uuid.UUID, set[int]] = defaultdict(set)
    for key, master in sample.truth.items():
        by_title[master].add(resolved[key])
        by_id[resolved[key]].add(master)
    false_merges = [cid for cid, masters in by_id.items() if len(masters) > 1]
    split = [m for m, cids in by_title.items() if len(cids) > 1]
    assert (false_merges, split) == ([], [])
    assert len(docs) == 500
    for doc in docs.values():
        assert doc.genres
        assert 0.3 <= quality_score(doc, has_embedding=False) <= 0.9
        assert {a.platform for a in doc.availability} <= set(doc.source_platforms)
        assert len(doc.external_ids.platform_ids) == len(doc.source_platforms)


def test_replaying_the_catalog_yields_the_same_ids() -> None:
    items = generate_catalog(150, seed=9)

    def run() -> list[uuid.UUID | None]:
        index = KnownTitleIndex()
        return [
            assign(normalize_item(RawCatalogItem.model_validate(d)), index).canonical_id
            for d in items
        ]

    assert run() == run()
