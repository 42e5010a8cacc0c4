"""Planning a batch without a database: resolution across platforms, replays, events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from agents.ingestion.events import plan_events
from agents.ingestion.mappings import Mapping
from agents.ingestion.pipeline import fresh_items, plan_batch
from schemas.envelope import wrap
from schemas.ingestion import CatalogItemReceived
from tests.unit.ingestion_factories import T0, at, content, item, raw

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def offer(regions: list[str]) -> dict[str, object]:
    return {"availability_type": "subscription", "regions": regions}


def test_one_film_from_two_platforms_in_one_batch_is_one_new_title() -> None:
    items = [
        item(
            platform="netflix",
            platform_item_id="n1",
            title="The Matrix",
            year=1999,
            availability=[offer(["us"])],
        ),
        item(
            platform="hulu",
            platform_item_id="h1",
            title="Matrix, The",
            year=2000,
            availability=[offer(["US", "ca"])],
        ),
    ]
    plan = plan_batch(items, {}, {})
    assert len(plan.new) == 1 and not plan.changed
    (cid,) = plan.new
    record = plan.new[cid]
    assert record.source_platforms == ["hulu", "netflix"]
    assert {(a.platform, tuple(a.regions)) for a in record.availability} == {
        ("netflix", ("US",)),
        ("hulu", ("CA", "US")),
    }
    assert {m.canonical_id for m in plan.mappings} == {cid}
    assert set(plan.availability) == {(cid, "netflix"), (cid, "hulu")}


def test_a_replayed_or_older_item_is_skipped_and_plans_nothing() -> None:
    first = plan_batch([item(platform_item_id="n1")], {}, {})
    (cid,) = first.new
    stored = {("netflix", "n1"): Mapping(cid, T0, None)}
    replay = plan_batch([item(platform_item_id="n1")], stored, first.new)
    assert replay.skipped_stale == 1
    assert not replay.new and not replay.changed and not replay.availability and not replay.mappings
    older = plan_batch([item(platform_item_id="n1", source_updated_at=at(-5))], stored, first.new)
    assert older.skipped_stale == 1 and not older.mappings


def test_a_newer_version_that_changes_nothing_but_its_clock_emits_no_update() -> None:
    first = plan_batch([item(platform_item_id="n1")], {}, {})
    (cid,) = first.new
    stored = {("netflix", "n1"): Mapping(cid, T0, None)}
    same = plan_batch([item(platform_item_id="n1", source_updated_at=at(1))], stored, first.new)
    assert not same.changed and not same.new and not same.availability
    assert len(same.mappings) == 1  # the newer clock is still recorded


def test_a_region_list_emptied_expires_the_offer_there() -> None:
    first = plan_batch([item(platform_item_id="n1", availability=[offer(["US", "GB"])])], {}, {})
    (cid,) = first.new
    stored = {("netflix", "n1"): Mapping(cid, T0, None)}
    later = item(platform_item_id="n1", source_updated_at=at(1), availability=[offer([])])
    plan = plan_batch([later], stored, first.new)
    diff = plan.availability[(cid, "netflix")]
    assert {s.region for s in diff.expired} == {"US", "GB"} and not diff.appeared
    assert cid in plan.changed


def test_the_newest_version_of_an_item_in_one_batch_wins() -> None:
    items = [
        item(platform_item_id="n1", title="Old", source_updated_at=at(2)),
        item(platform_item_id="n1", title="New", source_updated_at=at(3)),
    ]
    order, skipped = fresh_items(items, {})
    assert order == [1] and skipped == 1


def test_events_carry_the_causing_items_correlation_id_and_key() -> None:
    raws = [
        raw(platform_item_id="n1"),
        raw(
            platform="hulu",
            platform_item_id="h9",
            title="Heat",
            year=1995,
            availability=[offer(["US"])],
        ),
    ]
    envelopes = [
        wrap(CatalogItemReceived(item=r), key=r.record_key, source="t", correlation_id=f"cid-{i}")
        for i, r in enumerate(raws)
    ]
    plan = plan_batch(
        [
            item(platform_item_id="n1"),
            item(
                platform="hulu",
                platform_item_id="h9",
                title="Heat",
                year=1995,
                availability=[offer(["US"])],
            ),
        ],
        {},
        {},
    )
    events = plan_events(plan, envelopes, NOW)
    by_type: dict[str, list[tuple[str, str | None]]] = {}
    for event in events:
        by_type.setdefault(event.topic.name, []).append((event.key, event.correlation_id))
    assert len(by_type["content.ingested"]) == 2
    heat = next(c for c, doc in plan.new.items() if doc.title == "Heat")
    assert (str(heat), "cid-1") in by_type["content.ingested"]
    assert by_type["content.availability_changed"] == [(str(heat), "cid-1")]
    assert all(uuid.UUID(key) in plan.new for key, _ in by_type["content.ingested"])


def _regions(record: object, platform: str) -> set[str]:
    return {r for a in record.availability if a.platform == platform for r in a.regions}  # type: ignore[attr-defined]


def test_an_item_older_than_an_applied_availability_update_keeps_that_update_s_offers() -> None:
    first = plan_batch([item(platform_item_id="n1", availability=[offer(["US", "GB"])])], {}, {})
    (cid,) = first.new
    # An availability-only update (content.availability.raw) of hour 3 narrowed it to GB.
    stored = first.new[cid].model_copy(
        update={
            "availability": [
                a.model_copy(update={"regions": ["GB"]}) for a in first.new[cid].availability
            ]
        }
    )
    mapping = {("netflix", "n1"): Mapping(cid, T0, T0 + timedelta(hours=3))}
    # A catalog item of hour 2 (newer than the last one, older than that update) changes the
    # description, and still lists the old offers: the newer offers stay.
    older = item(
        platform_item_id="n1",
        description="A new description.",
        availability=[offer(["US", "GB"])],
        source_updated_at=at(2),
    )
    plan = plan_batch([older], mapping, {cid: stored})
    after = plan.changed[cid][1]
    assert after.description == "A new description."
    assert _regions(after, "netflix") == {"GB"}
    assert not plan.availability
    # One of hour 4 is newer than both: its offers win.
    newer = item(platform_item_id="n1", availability=[offer(["US"])], source_updated_at=at(4))
    plan = plan_batch([newer], mapping, {cid: stored})
    assert _regions(plan.changed[cid][1], "netflix") == {"US"}
    assert set(plan.availability) == {(cid, "netflix")}


def test_an_item_without_availability_leaves_the_platform_s_offers_as_they_are() -> None:
    first = plan_batch([item(platform_item_id="n1", availability=[offer(["US", "GB"])])], {}, {})
    (cid,) = first.new
    mapping = {("netflix", "n1"): Mapping(cid, T0, T0)}
    metadata_only = item(platform_item_id="n1", description="New.", source_updated_at=at(1))
    plan = plan_batch([metadata_only], mapping, first.new)
    assert plan.changed[cid][1].description == "New."
    assert _regions(plan.changed[cid][1], "netflix") == {"US", "GB"}
    assert not plan.availability
    # Its mapping keeps the offers' clock (None: the item stated no offers).
    assert plan.mappings[0].offers_as_of is None
    # An explicit [] is the title leaving the platform.
    gone = item(platform_item_id="n1", availability=[], source_updated_at=at(2))
    plan = plan_batch([gone], mapping, first.new)
    assert {s.region for s in plan.availability[(cid, "netflix")].expired} == {"US", "GB"}
    assert plan.mappings[0].offers_as_of == T0 + timedelta(hours=2)


def test_an_item_that_resolves_to_another_title_takes_its_listing_along() -> None:
    first = plan_batch(
        [item(platform_item_id="n1", title="Some Film", year=2001, availability=[offer(["US"])])],
        {},
        {},
    )
    (old,) = first.new
    mapping = {("netflix", "n1"): Mapping(old, T0, T0)}
    eidr = "10.5240/AAAA-BBBB-CCCC-DDDD-EEEE-C"
    other = content(
        canonical_id=uuid.UUID(int=7),
        title="Another Film",
        release_year=2001,
        external_ids={"eidr": eidr},
    )
    # A newer version names the other title's EIDR and says nothing of its offers: they move.
    moved = item(
        platform_item_id="n1",
        title="Another Film",
        year=2001,
        external_ids={"eidr": eidr},
        source_updated_at=at(1),
    )
    plan = plan_batch([moved], mapping, {**first.new, other.canonical_id: other})
    left = plan.changed[old][1]
    assert "netflix" not in left.external_ids.platform_ids
    assert not left.availability and left.source_platforms == []
    arrived = plan.changed[other.canonical_id][1]
    assert arrived.external_ids.platform_ids == {"netflix": "n1"}
    assert _regions(arrived, "netflix") == {"US"}
    assert {s.region for s in plan.availability[(old, "netflix")].expired} == {"US"}
    assert {s.region for s in plan.availability[(other.canonical_id, "netflix")].appeared} == {"US"}
    assert plan.mappings[0].canonical_id == other.canonical_id


def test_of_two_versions_with_the_same_clock_in_one_batch_the_first_keeps() -> None:
    items = [
        item(platform_item_id="n1", title="First", source_updated_at=at(2)),
        item(platform_item_id="n1", title="Second", source_updated_at=at(2)),
    ]
    order, skipped = fresh_items(items, {})
    assert order == [0] and skipped == 1
