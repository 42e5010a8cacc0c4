"""Which cached result pages a change drops, and how long a page may be kept. Pure.

A page depends on subjects (agreements/discovery_cache.py): the titles whose change can change
it (agents.discovery.ranking.Assembled.depends_on), and the platforms or the region its filters
ask for, where an offer appearing can bring in a title no page holds yet. A change touches its
title and, when it is one of offers, the platforms and regions of the offers it added, changed
or ended. Offers also change without any event, when a window opens or closes: a page is kept
no longer than until the next start or end of an offer of a title it depends on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from schemas.content import AvailabilityChanged, ContentUpdated, MetadataEnriched
from schemas.discovery import SearchFilters

Change = AvailabilityChanged | ContentUpdated | MetadataEnriched


def title_subject(canonical_id: uuid.UUID | str) -> str:
    return f"title:{str(canonical_id).lower()}"


def platform_subject(platform: str) -> str:
    return f"platform:{platform}"


def region_subject(region: str) -> str:
    return f"region:{region.upper()}"


def page_subjects(filters: SearchFilters, titles: Iterable[uuid.UUID]) -> list[str]:
    """What a page of a search with these filters, depending on these titles, depends on."""
    subjects = [title_subject(cid) for cid in titles]
    if filters.platforms:
        subjects += [platform_subject(p) for p in filters.platforms]
    elif filters.region:
        # Any platform in the region will do: an offer on any platform there counts.
        subjects.append(region_subject(filters.region))
    return subjects


def changed_subjects(change: Change) -> list[str]:
    """What a change of the catalog touches."""
    if isinstance(change, AvailabilityChanged):
        rows = [*change.appeared, *change.changed, *change.expired]
        subjects = [title_subject(change.canonical_id), platform_subject(change.platform)]
        subjects += [region_subject(row.region) for row in rows]
    elif isinstance(change, ContentUpdated):
        content = change.content
        subjects = [title_subject(content.canonical_id)]
        # An episode is shown as its series, whose seasons show where the episode plays: a
        # page showing the series depends on it (agents/discovery/series.py).
        if content.series is not None and content.series.parent_id is not None:
            subjects.append(title_subject(content.series.parent_id))
        # No list of changed fields: nothing says the offers stayed as they were.
        if not change.changed_fields or "availability" in change.changed_fields:
            subjects += [platform_subject(offer.platform) for offer in content.availability]
            subjects += [region_subject(r) for offer in content.availability for r in offer.regions]
    else:
        subjects = [title_subject(change.canonical_id)]
    return list(dict.fromkeys(subjects))


def page_lifetime(ttl_s: float, offers_change_in_s: float | None, elapsed_s: float) -> float:
    """How long a page may be kept: DISCOVERY_RESULTS_TTL_S, but not past the next start or end
    of an offer it depends on, `offers_change_in_s` from when the search read the offers,
    `elapsed_s` ago. Zero or less: the page is stale already and is not kept."""
    if offers_change_in_s is None:
        return ttl_s
    return min(ttl_s, offers_change_in_s - elapsed_s)
