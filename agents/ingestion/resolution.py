"""Entity resolution: which canonical title is this platform item, if any?

Order (docs/RULES.md), first hit wins:
1. EIDR                                  confidence 1.0
2. IMDb, then TMDb, then TVDB            0.99  (TMDb/TVDB ids are per media kind: movie vs tv)
3. this platform's own item id, seen before  0.99  (re-delivery of a known item)
4. title, same content_type, year +-1      0.90-0.98 (agents/ingestion/title_match.py decides)
5. embedding cosine >= 0.92 (resolve_by_embedding; optional, for callers that have vectors)

Guards, because a wrong merge corrupts two titles while a missed merge only leaves a duplicate
that can be merged later:
- a candidate whose ids contradict the item's (both have an EIDR and they differ, ...) is not
  eligible: in the id steps for stronger ids, in the title step for every id, including this
  platform's own id (a platform listing two items does not consider them one title);
- titles match only when their normalized forms are the same, or differ the way one film's
  listings differ (split differently, one swapped pair of letters; reordered words only with
  evidence for it): never on a missing, extra or different word or number, however close the
  strings are ("The Brothers" vs "Brother", "Wood" vs "Woo", "I Still Know What You Did Last
  Summer" vs its original);
- the evidence the listings carry must not contradict the match: runtimes more than 10 % (at
  least 5 min) apart (remakes share titles, rarely runtimes: Dune 137 vs 155), casts of two
  names or more with no one in common, different original titles;
- when either side has no year, only an exact normalized title with a single candidate of that
  content type matches (confidence 0.90), with the same evidence guard.

rapidfuzz (`ratio` and `token_sort_ratio`) only shortlists the titles of a year bucket worth
classifying; it never decides a match. Its scores still set the confidence of a typo match.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.title_match import (
    Evidence,
    Relation,
    accepts,
    people,
    relation,
    title_numbers,
)
from agents.titles.names import normalize_title
from schemas.content import CanonicalContent, ContentType, ExternalIds

TITLE_THRESHOLD = 0.85
# rapidfuzz score (0-100) a title needs to be classified at all: below any real variant's
# (a swapped pair of letters in a five-letter word scores 80).
SHORTLIST_CUTOFF = 75.0
TITLE_CONFIDENCE_MIN = 0.90
TITLE_CONFIDENCE_MAX = 0.98
EMBEDDING_THRESHOLD = 0.92

# Fixed forever: canonical ids minted from it must be the same on every replay.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://media-gateway.invalid/canonical-content")

_TV_TYPES = frozenset({ContentType.series, ContentType.episode})

IdKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CanonicalMatch:
    """What resolving one item found: the canonical title it is, how, and how sure."""

    canonical_id: uuid.UUID | None
    method: str  # eidr | imdb | tmdb | tvdb | platform_id | title | embedding | new | none
    confidence: float
    # The title this platform item was attached to before, when resolution now points
    # elsewhere: the caller should drop this platform's availability from that record.
    previous_id: uuid.UUID | None = None


@dataclass(slots=True)
class KnownTitle:
    """A stored canonical title an item of the batch could resolve to, as resolution reads it."""

    canonical_id: uuid.UUID
    content_type: ContentType
    titles: set[str]  # normalized titles (title, original and alternate titles)
    year: int | None
    external_ids: ExternalIds
    platform_ids: dict[str, str] = field(default_factory=dict)
    runtime_minutes: int | None = None
    credits: frozenset[str] = frozenset()  # title_match.person_key of each credited name
    original_titles: frozenset[str] = frozenset()  # normalized

    @property
    def evidence(self) -> Evidence:
        return Evidence(self.runtime_minutes, self.credits, self.original_titles)

    @classmethod
    def from_content(cls, content: CanonicalContent) -> KnownTitle:
        names = [content.title, *content.alternate_titles]
        if content.original_title:
            names.append(content.original_title)
        return cls(
            canonical_id=content.canonical_id,
            content_type=content.content_type,
            titles={normalize_title(n) for n in names},
            year=content.release_year,
            external_ids=content.external_ids,
            platform_ids=dict(content.external_ids.platform_ids),
            runtime_minutes=content.runtime_minutes,
            credits=people(c.name for c in content.credits),
            original_titles=normalized_originals(content.original_title),
        )

    @classmethod
    def from_item(cls, canonical_id: uuid.UUID, item: NormalizedItem) -> KnownTitle:
        originals = normalized_originals(item.original_title)
        return cls(
            canonical_id=canonical_id,
            content_type=item.content_type,
            titles={item.normalized_title, *originals},
            year=item.year,
            external_ids=item.external_ids,
            platform_ids=dict(item.external_ids.platform_ids),
            runtime_minutes=item.runtime_minutes,
            credits=people(c.name for c in item.credits),
            original_titles=originals,
        )


def normalized_originals(original_title: str | None) -> frozenset[str]:
    return frozenset({normalize_title(original_title)}) if original_title else frozenset()


def item_evidence(item: NormalizedItem) -> Evidence:
    return Evidence(
        item.runtime_minutes,
        people(c.name for c in item.credits),
        normalized_originals(item.original_title),
    )


def media_kind(content_type: ContentType) -> str:
    """TMDb and TVDB number movies and TV shows separately: tmdb 603 (movie) != tmdb 603 (tv)."""
    return "tv" if content_type in _TV_TYPES else "movie"


def id_keys(ids: ExternalIds, content_type: ContentType) -> list[tuple[str, IdKey]]:
    """(method, index key) for each global id, strongest first."""
    kind = media_kind(content_type)
    out: list[tuple[str, IdKey]] = []
    if ids.eidr:
        out.append(("eidr", ("eidr", ids.eidr)))
    if ids.imdb:
        out.append(("imdb", ("imdb", ids.imdb)))
    if ids.tmdb:
        out.append(("tmdb", ("tmdb", kind, ids.tmdb)))
    if ids.tvdb:
        out.append(("tvdb", ("tvdb", kind, ids.tvdb)))
    return out


_STRENGTH = ("eidr", "imdb", "tmdb", "tvdb")


def _conflicts(a: ExternalIds, b: ExternalIds, kinds: Iterable[str]) -> bool:
    return any(
        getattr(a, k) is not None and getattr(b, k) is not None and getattr(a, k) != getattr(b, k)
        for k in kinds
    )


def title_similarity(a: str, b: str) -> float:
    """0-1 string similarity of two normalized titles; 0 when their numbers differ. It ranks
    and sets confidence; whether titles may match at all is title_match.relation's call."""
    if a == b:
        return 1.0
    if title_numbers(a) != title_numbers(b):
        return 0.0
    return max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)) / 100.0


def title_confidence(similarity: float) -> float:
    span = (similarity - TITLE_THRESHOLD) / (1.0 - TITLE_THRESHOLD)
    span = min(max(span, 0.0), 1.0)
    return round(TITLE_CONFIDENCE_MIN + span * (TITLE_CONFIDENCE_MAX - TITLE_CONFIDENCE_MIN), 4)


class KnownTitleIndex:
    """Known titles, in memory, for one batch.

    The agent fills it from PostgreSQL (by the batch's ids and normalized titles/years, see
    lookup_keys) and `assign` adds every title it creates or extends, so the same film from two
    platforms in one batch resolves to one canonical id.
    """

    def __init__(self, candidates: Iterable[KnownTitle] = ()) -> None:
        self._by_id: dict[uuid.UUID, KnownTitle] = {}
        self._ids: dict[IdKey, uuid.UUID] = {}
        self._by_year: dict[tuple[ContentType, int], dict[str, set[uuid.UUID]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self._by_title: dict[tuple[ContentType, str], set[uuid.UUID]] = defaultdict(set)
        for candidate in candidates:
            self.add(candidate)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, canonical_id: object) -> bool:
        return canonical_id in self._by_id

    def get(self, canonical_id: uuid.UUID) -> KnownTitle | None:
        return self._by_id.get(canonical_id)

    def add(self, candidate: KnownTitle) -> None:
        """Add a title, or fold more ids/titles into one already known under the same id."""
        held = self._by_id.get(candidate.canonical_id)
        if held is None:
            held = KnownTitle(
                canonical_id=candidate.canonical_id,
                content_type=candidate.content_type,
                titles=set(),
                year=candidate.year,
                external_ids=candidate.external_ids,
                platform_ids={},
                runtime_minutes=candidate.runtime_minutes,
                credits=candidate.credits,
                original_titles=candidate.original_titles,
            )
            self._by_id[candidate.canonical_id] = held
        else:
            if held.runtime_minutes is None:
                held.runtime_minutes = candidate.runtime_minutes
            # What every listing of the title said: merge.py keeps their credits together too.
            held.credits |= candidate.credits
            held.original_titles |= candidate.original_titles
            if held.year is None and candidate.year is not None:
                self._unindex_titles(held)
                held.year = candidate.year
                self._index_titles(held, held.titles)
            known = {k: getattr(held.external_ids, k) for k in (*_STRENGTH, "gracenote")}
            fill = {
                k: v
                for k, v in ((k, getattr(candidate.external_ids, k)) for k in known)
                if known[k] is None and v is not None
            }
            if fill:
                held.external_ids = held.external_ids.model_copy(update=fill)
        for _, key in id_keys(candidate.external_ids, held.content_type):
            self._ids.setdefault(key, held.canonical_id)
        for platform, item_id in candidate.platform_ids.items():
            # The platform's latest word wins: an item re-resolved elsewhere moves with it.
            key = ("platform", platform, item_id)
            moved_from = self._by_id.get(self._ids.get(key))  # type: ignore[arg-type]
            if moved_from is not None and moved_from is not held:
                moved_from.platform_ids.pop(platform, None)
            self._ids[key] = held.canonical_id
            held.platform_ids[platform] = item_id
        new_titles = candidate.titles - held.titles
        held.titles |= new_titles
        self._index_titles(held, new_titles)

    def _index_titles(self, held: KnownTitle, titles: Iterable[str]) -> None:
        for title in titles:
            self._by_title[(held.content_type, title)].add(held.canonical_id)
            if held.year is not None:
                bucket = (held.content_type, held.year)
                self._by_year[bucket][title].add(held.canonical_id)

    def _unindex_titles(self, held: KnownTitle) -> None:
        if held.year is None:
            return
        bucket = self._by_year.get((held.content_type, held.year), {})
        for title in held.titles:
            bucket.get(title, set()).discard(held.canonical_id)

    def by_id_key(self, key: IdKey) -> uuid.UUID | None:
        return self._ids.get(key)

    def exact_title(self, content_type: ContentType, title: str) -> set[uuid.UUID]:
        return self._by_title.get((content_type, title), set())

    def identical_titles(self, content_type: ContentType, year: int, title: str) -> set[uuid.UUID]:
        """Ids of titles of this type and year whose normalized form is `title`."""
        bucket = self._by_year.get((content_type, year))
        return set(bucket.get(title, ())) if bucket else set()

    def related_titles(
        self, content_type: ContentType, year: int, title: str
    ) -> list[tuple[Relation, float, uuid.UUID, int]]:
        """(relation, similarity, id, year) of titles of this type within year +-1 that could
        name the same film as `title` (any relation but `different`)."""
        out: list[tuple[Relation, float, uuid.UUID, int]] = []
        for y in (year - 1, year, year + 1):
            bucket = self._by_year.get((content_type, y))
            if not bucket:
                continue
            # Shortlisted in C by rapidfuzz, once per scorer; only the few hits are classified.
            titles = list(bucket)
            hits = {
                other
                for scorer in (fuzz.ratio, fuzz.token_sort_ratio)
                for other, _, _ in process.extract(
                    title, titles, scorer=scorer, score_cutoff=SHORTLIST_CUTOFF, limit=None
                )
            }
            for other in sorted(hits):
                kind = relation(title, other)
                if kind is not Relation.different:
                    similarity = title_similarity(title, other)
                    out.extend((kind, similarity, cid, y) for cid in bucket[other])
        return out


def resolve(item: NormalizedItem, index: KnownTitleIndex) -> CanonicalMatch:
    previous = index.by_id_key(("platform", item.platform, item.platform_item_id))
    found = _resolve(item, index, previous)
    if found.canonical_id is not None and previous is not None and previous != found.canonical_id:
        return CanonicalMatch(
            found.canonical_id, found.method, found.confidence, previous_id=previous
        )
    return found


def _resolve(
    item: NormalizedItem, index: KnownTitleIndex, previous: uuid.UUID | None
) -> CanonicalMatch:
    ids = item.external_ids
    for method, key in id_keys(ids, item.content_type):
        cid = index.by_id_key(key)
        if cid is None:
            continue
        held = index.get(cid)
        stronger = _STRENGTH[: _STRENGTH.index(method)]
        if held is not None and _conflicts(held.external_ids, ids, stronger):
            continue
        return CanonicalMatch(cid, method, 1.0 if method == "eidr" else 0.99)
    if previous is not None:
        held = index.get(previous)
        if held is not None and not _conflicts(held.external_ids, ids, _STRENGTH):
            return CanonicalMatch(previous, "platform_id", 0.99)
    if item.content_type is ContentType.episode:
        # Episode titles ("Pilot") name nothing outside their series: an episode is matched by
        # its ids here, or inside its series (agents/ingestion/series.py), never by title.
        return CanonicalMatch(None, "none", 0.0)
    return _resolve_by_title(item, index)


def _eligible(held: KnownTitle | None, item: NormalizedItem) -> bool:
    if held is None or _conflicts(held.external_ids, item.external_ids, _STRENGTH):
        return False
    other = held.platform_ids.get(item.platform)
    return other is None or other == item.platform_item_id


def _resolve_by_title(item: NormalizedItem, index: KnownTitleIndex) -> CanonicalMatch:
    none = CanonicalMatch(None, "none", 0.0)
    title = item.normalized_title
    evidence = item_evidence(item)

    def fits(cid: uuid.UUID, kind: Relation) -> bool:
        held = index.get(cid)
        return _eligible(held, item) and accepts(kind, evidence, held.evidence)  # type: ignore[union-attr]

    if item.year is None:
        return _unique_exact(item, index, require_yearless=False) or none
    # A listing may carry the title another platform lists the film under as its original.
    names = [title, *sorted(evidence.original_titles - {title})]
    # The same normalized title in the item's own year is the best any title can be (ties: the
    # smallest id), so when such a title fits, the rest of the buckets need no classifying.
    # Most items are another platform's listing of a known title under the same name.
    identical = sorted(
        {
            cid
            for name in names
            for cid in index.identical_titles(item.content_type, item.year, name)
            if fits(cid, Relation.same)
        },
        key=str,
    )
    if identical:
        return CanonicalMatch(identical[0], "title", title_confidence(1.0))
    hits = [
        (kind, similarity, cid, year)
        for name in names
        for kind, similarity, cid, year in index.related_titles(item.content_type, item.year, name)
        if fits(cid, kind)
    ]
    if hits:
        # The closest relation, then the exact year, then the highest similarity, then the
        # smallest id: no set-order luck.
        kind, similarity, cid, _ = min(
            hits, key=lambda h: (h[0], h[3] != item.year, -h[1], str(h[2]))
        )
        # A farther relation is less sure than its string similarity suggests ("man bites dog"
        # and "dog bites man" score 1.0).
        confidence = min(title_confidence(similarity), TITLE_CONFIDENCE_MAX - 0.01 * kind)
        return CanonicalMatch(cid, "title", confidence)
    return _unique_exact(item, index, require_yearless=True) or none


def _unique_exact(
    item: NormalizedItem, index: KnownTitleIndex, *, require_yearless: bool
) -> CanonicalMatch | None:
    ids = [
        cid
        for cid in sorted(index.exact_title(item.content_type, item.normalized_title))
        if (held := index.get(cid)) is not None and (not require_yearless or held.year is None)
    ]
    if len(ids) != 1:
        return None
    held = index.get(ids[0])
    if held is None or not _eligible(held, item):
        return None
    if not accepts(Relation.same, item_evidence(item), held.evidence):
        return None
    return CanonicalMatch(ids[0], "title", TITLE_CONFIDENCE_MIN)


def identity_key(item: NormalizedItem) -> str:
    """The strongest identity an item carries: what its new canonical id is minted from."""
    ids = item.external_ids
    kind = media_kind(item.content_type)
    if ids.eidr:
        return f"eidr:{ids.eidr}"
    if ids.imdb:
        return f"imdb:{ids.imdb}"
    if ids.tmdb:
        return f"tmdb:{kind}:{ids.tmdb}"
    if ids.tvdb:
        return f"tvdb:{kind}:{ids.tvdb}"
    return item.record_key


def new_canonical_id(item: NormalizedItem) -> uuid.UUID:
    """uuid5 of the identity key: replaying the same file creates the same ids."""
    return uuid.uuid5(NAMESPACE, identity_key(item))


def assign(item: NormalizedItem, index: KnownTitleIndex) -> CanonicalMatch:
    """Resolve, or mint a new canonical id; either way record the item in the index."""
    found = resolve(item, index)
    if found.canonical_id is None:
        cid = new_canonical_id(item)
        if cid in index:
            # The key's id belongs to a title this item contradicts (a conflicting id kept it
            # from matching): derive a distinct, still deterministic, id.
            cid = uuid.uuid5(NAMESPACE, f"{identity_key(item)}|{item.record_key}")
        previous = index.by_id_key(("platform", item.platform, item.platform_item_id))
        found = CanonicalMatch(cid, "new", 1.0, previous_id=previous if previous != cid else None)
    index.add(KnownTitle.from_item(cid if found.canonical_id is None else found.canonical_id, item))
    return found


def resolve_by_embedding(
    vector: Sequence[float],
    candidates: Iterable[tuple[uuid.UUID, Sequence[float]]],
    threshold: float = EMBEDDING_THRESHOLD,
) -> CanonicalMatch:
    """The candidate with the highest cosine similarity, when it reaches the threshold.

    Callers pass candidates of the item's content type only: vectors do not know movie from
    series.
    """
    query = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(query))
    pairs = list(candidates)
    if norm == 0 or not pairs:
        return CanonicalMatch(None, "none", 0.0)
    hits: list[tuple[float, uuid.UUID]] = []
    for cid, other in pairs:
        vec = np.asarray(other, dtype=np.float64)
        other_norm = float(np.linalg.norm(vec))
        if other_norm == 0 or vec.shape != query.shape:
            continue
        cosine = float(query @ vec) / (norm * other_norm)
        if cosine >= threshold:
            hits.append((cosine, cid))
    if not hits:
        return CanonicalMatch(None, "none", 0.0)
    cosine, cid = min(hits, key=lambda h: (-h[0], str(h[1])))
    return CanonicalMatch(cid, "embedding", round(min(cosine, 1.0), 4))


@dataclass(frozen=True, slots=True)
class LookupKeys:
    """What to load from the store before resolving a batch."""

    eidr: frozenset[str]
    imdb: frozenset[str]
    tmdb: frozenset[str]
    tvdb: frozenset[str]
    platform_ids: frozenset[tuple[str, str]]
    titles: frozenset[tuple[ContentType, str]]  # exact normalized titles
    years: frozenset[tuple[ContentType, int]]  # (type, year) with year +-1 already expanded


def lookup_keys(items: Iterable[NormalizedItem]) -> LookupKeys:
    batch = list(items)
    years = {
        (item.content_type, item.year + delta)
        for item in batch
        if item.year is not None
        for delta in (-1, 0, 1)
    }
    return LookupKeys(
        eidr=frozenset(i.external_ids.eidr for i in batch if i.external_ids.eidr),
        imdb=frozenset(i.external_ids.imdb for i in batch if i.external_ids.imdb),
        tmdb=frozenset(i.external_ids.tmdb for i in batch if i.external_ids.tmdb),
        tvdb=frozenset(i.external_ids.tvdb for i in batch if i.external_ids.tvdb),
        platform_ids=frozenset((i.platform, i.platform_item_id) for i in batch),
        # Original titles too: another platform may list the film under its original title.
        titles=frozenset(
            (i.content_type, t)
            for i in batch
            for t in (i.normalized_title, *normalized_originals(i.original_title))
        ),
        years=frozenset(years),
    )
