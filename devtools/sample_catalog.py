"""A realistic, messy, multi-platform catalog for demos, tests and benchmarks.

Deterministic by seed (random.Random only, no set iteration, no clock). Each of the n_titles
"master" titles is listed by 1-3 of six platforms, each platform describing it its own way:
variant titles ("Matrix, The", "The Matrix (1999)", upper case, accents, a typo in one
listing of a long title), years as ints, strings, missing or off by one, runtimes as
"1h 52m" / "112 min" / "PT112M", platform-specific and odd genre names in any casing, null
fields, external ids on some items in various spellings, subscription offers, rentals and
purchases with prices, offers with an empty region list (the title left the platform), and
offers expiring within days of BASE_TIME. A few series share a title and year with a movie
(they must not merge); a few masters are sequels of others ("... 2").

Every item validates as a RawCatalogItem, except with invalid_fraction > 0: that fraction of
items is broken in one of four ways (unknown content type, rating 42, a rental without a
price, a blank title), and their record keys are listed in SampleCatalog.invalid.

The variations are chosen so that the pipeline's rules CAN resolve every duplicate (truth says
which items are one title): a master never gets both a typo and a year-less listing, at most
one typo, and its year deviations all go the same way, and its listings credit people of one
cast of three (two listings crediting two people each always share one, as real listings of one
film do). docs/INGESTION.md has the details.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rapidfuzz import fuzz, process

from agents.ingestion.resolution import title_numbers
from agents.titles.names import normalize_title
from devtools.sample_series import Listing, generate_episodes

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)

PLATFORMS: tuple[str, ...] = (
    "netflix",
    "prime_video",
    "disney_plus",
    "hulu",
    "hbo_max",
    "apple_tv_plus",
)
# How feeds spell the platform (normalized by RawCatalogItem).
_PLATFORM_SPELLINGS: dict[str, tuple[str, ...]] = {
    "netflix": ("netflix", "Netflix", "NETFLIX"),
    "prime_video": ("prime_video", "Prime Video", "Amazon Prime Video", "prime"),
    "disney_plus": ("disney_plus", "Disney+", "disney-plus"),
    "hulu": ("hulu", "Hulu"),
    "hbo_max": ("hbo_max", "HBO Max", "Max"),
    "apple_tv_plus": ("apple_tv_plus", "Apple TV+", "appletv"),
}

_ADJECTIVES = (
    "Silent",
    "Crimson",
    "Hidden",
    "Broken",
    "Golden",
    "Frozen",
    "Distant",
    "Electric",
    "Savage",
    "Hollow",
    "Burning",
    "Velvet",
    "Iron",
    "Paper",
    "Wild",
    "Bitter",
    "Lucky",
    "Midnight",
    "Northern",
    "Restless",
    "Scarlet",
    "Sacred",
    "Shattered",
    "Stolen",
    "Twisted",
    "Violet",
    "Wandering",
    "Crooked",
    "Endless",
    "Forgotten",
    "Gentle",
    "Haunted",
    "Infinite",
    "Neon",
    "Pale",
    "Perfect",
    "Rising",
    "Secret",
    "Sleeping",
    "Strange",
    "Sunken",
    "Winter",
    "Amber",
    "Cobalt",
    "Desert",
    "Emerald",
    "Falling",
    "Hungry",
    "Jagged",
    "Marble",
    "Brave",
    "Copper",
    "Dusty",
    "Fearless",
    "Gilded",
    "Humble",
    "Lunar",
    "Mighty",
    "Narrow",
    "Ordinary",
    "Polar",
    "Quicksilver",
    "Rusty",
    "Solar",
    "Tender",
    "Urban",
    "Vanishing",
    "Wicked",
    "Young",
    "Zealous",
    "Bright",
    "Cursed",
    "Drifting",
    "Eternal",
    "Fragile",
)
_NOUNS = (
    "Harbor",
    "Kingdom",
    "Signal",
    "Garden",
    "Empire",
    "Horizon",
    "Orchard",
    "Protocol",
    "Frontier",
    "Lighthouse",
    "Mirror",
    "Canyon",
    "Circus",
    "Citadel",
    "Compass",
    "Covenant",
    "Dynasty",
    "Echo",
    "Engine",
    "Falcon",
    "Fortress",
    "Gambit",
    "Glacier",
    "Highway",
    "Island",
    "Jungle",
    "Labyrinth",
    "Meadow",
    "Monarch",
    "Nebula",
    "Outpost",
    "Paradise",
    "Pilgrim",
    "Prophet",
    "Quarry",
    "Requiem",
    "Reservoir",
    "Sanctuary",
    "Sentinel",
    "Serpent",
    "Station",
    "Summit",
    "Tempest",
    "Thief",
    "Tower",
    "Valley",
    "Voyage",
    "Witness",
    "Wolf",
    "Lantern",
    "Anchor",
    "Bandit",
    "Cathedral",
    "Delta",
    "Ember",
    "Ferry",
    "Guardian",
    "Hunter",
    "Inferno",
    "Jester",
    "Knight",
    "Legacy",
    "Mountain",
    "Nomad",
    "Oracle",
    "Pendulum",
    "Rebel",
    "Scholar",
    "Tundra",
    "Umbrella",
    "Vault",
    "Whisper",
    "Zephyr",
    "Archive",
    "Blizzard",
)
_PLACES = (
    "Avalon",
    "Marrakesh",
    "Reykjavik",
    "Kyoto",
    "Patagonia",
    "Siberia",
    "Zanzibar",
    "Tangier",
    "Montana",
    "Lisbon",
    "Oaxaca",
    "Tasmania",
    "Bombay",
    "Manitoba",
    "Galway",
    "Sicily",
    "Yukon",
    "Cairo",
    "Havana",
    "Okinawa",
    "Valparaiso",
    "Dakar",
    "Helsinki",
    "Quebec",
    "Nairobi",
    "Istanbul",
    "Tbilisi",
    "Bergen",
    "Hokkaido",
    "Ushuaia",
)
_NAMES = (
    "Amélie",
    "Zoë",
    "José",
    "Björn",
    "Noémie",
    "Jürgen",
    "Chloé",
    "Ingrid",
    "Malcolm",
    "Priya",
    "Tomás",
    "Oksana",
    "Rafael",
    "Hélène",
    "Dmitri",
    "Ayumi",
    "Ciarán",
    "Léa",
)
_PEOPLE = (
    "Ava Lindqvist",
    "Marcus Obi",
    "Lena Park",
    "Tom Reyes",
    "Nadia Haddad",
    "Owen Clarke",
    "Sofia Marin",
    "Ken Watanabe-Hale",
    "Iris Novak",
    "Jonah Pike",
    "Maya Castell",
)

_GENRE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    # canonical genre -> how each platform (or "" for anyone) tends to name it
    "action": {
        "": ("Action", "action", "ACTION"),
        "netflix": ("Action & Adventure",),
        "hbo_max": ("Action/Adventure",),
        "disney_plus": ("Action-Adventure",),
    },
    "adventure": {"": ("Adventure",), "netflix": ("TV Action & Adventure",)},
    "animation": {
        "": ("Animation", "Animated", "Anime"),
        "netflix": ("Anime Features",),
        "hulu": ("Cartoons",),
    },
    "comedy": {
        "": ("Comedy", "Comedies", "comedy "),
        "hulu": ("Rom-Com", "Sitcom"),
        "netflix": ("Stand-Up Comedy", "TV Comedies"),
    },
    "crime": {"": ("Crime", "Crime TV Shows"), "disney_plus": ("Police/Cop",)},
    "documentary": {
        "": ("Documentary", "Documentaries", "Docuseries"),
        "prime_video": ("Arts, Entertainment, and Culture",),
    },
    "drama": {"": ("Drama", "Dramas", "TV Dramas", "drama")},
    "family": {
        "": ("Family",),
        "prime_video": ("Kids",),
        "netflix": ("Children & Family Movies",),
        "hbo_max": ("Kids & Family",),
    },
    "fantasy": {
        "": ("Fantasy",),
        "netflix": ("Sci-Fi & Fantasy",),
        "hbo_max": ("Fantasy & Sci-Fi",),
    },
    "history": {"": ("History", "Historical"), "disney_plus": ("Biographical",)},
    "horror": {"": ("Horror", "Horror Movies", "horror  ")},
    "music": {"": ("Music", "Musicals"), "netflix": ("Music & Musicals",)},
    "mystery": {"": ("Mystery", "TV Mysteries", "Mysteries")},
    "romance": {"": ("Romance", "Romantic Movies", "romance")},
    "science_fiction": {
        "": ("Science Fiction", "Sci-Fi", "sci fi", "SciFi"),
        "netflix": ("Sci-Fi & Fantasy",),
        "hulu": ("Sci Fi",),
    },
    "thriller": {
        "": ("Thriller", "Thrillers"),
        "prime_video": ("Suspense",),
        "disney_plus": ("Spy/Espionage",),
    },
    "war": {"": ("War", "War & Politics"), "prime_video": ("Military and War",)},
    "western": {"": ("Western", "Westerns")},
}
_ODD_GENRES = (
    "Independent Movies",
    "International TV Shows",
    "Sports",
    "Cult Movies",
    "Reality TV",
    "Feel-good",
    "Critically Acclaimed",
    "Binge-worthy",
    "Thriler",
    "Documentry",
)
_REGIONS = ("US", "CA", "GB", "DE", "FR", "ES", "IT", "BR", "MX", "JP", "AU", "IN")
_QUALITIES = (
    ("HD",),
    ("HD", "4K"),
    ("1080p",),
    ("SD", "HD", "UHD", "HDR10"),
    ("Dolby Vision", "4K"),
    ("HD", "IMAX Enhanced"),
)
_MATURITY = {
    "movie": ("G", "PG", "PG-13", "R", "pg13", "Rated R", "NR", "16+", None),
    "series": ("TV-14", "TV-MA", "tvpg", "TV-Y7", "TV MA", None),
    "documentary": ("PG", "TV-PG", "NR", None),
}
_TYPE_SPELLINGS = {
    "movie": ("movie", "Movie", "film", "Feature", "MOVIE"),
    "series": ("series", "TV Series", "tv", "show", "TV Show"),
    "documentary": ("documentary", "Documentary", "doc"),
}
_PLOT = (
    "A {a} {r} must {g} before {t}.",
    "When {t}, a {a} {r} sets out to {g}.",
    "Years after {t}, a {a} {r} is forced to {g}.",
)
_ROLES = ("detective", "pilot", "chef", "smuggler", "teacher", "mapmaker", "nurse", "thief")
_GOALS = (
    "find a missing sister",
    "clear a family name",
    "win one last race",
    "cross a frozen border",
    "repay an old debt",
    "decode a buried signal",
)
_THREATS = (
    "the storm arrives",
    "the city falls",
    "the war ends",
    "the lights go out",
    "an old friend returns",
)


@dataclass
class _Master:
    index: int
    content_type: str
    title: str
    year: int
    runtime: int
    genres: list[str]
    description: str
    eidr: str | None
    imdb: str | None
    tmdb: str | None
    year_shift: int  # the one direction this title's off-by-one years go
    allow_typo: bool
    allow_yearless: bool

    @property
    def cast(self) -> list[str]:
        # Its own generator: the main one's sequence, so every other value, stays as it was.
        return random.Random(f"cast:{self.index}:{self.title}").sample(_PEOPLE, 3)


@dataclass(frozen=True)
class SampleCatalog:
    items: list[dict[str, Any]]
    # record key ("platform:item_id", platform normalized) -> index of the true title
    truth: dict[str, int]
    invalid: frozenset[str] = field(default_factory=frozenset)


def generate_catalog(
    n_titles: int, seed: int, *, invalid_fraction: float = 0.0
) -> list[dict[str, Any]]:
    """JSON-able dicts in the RawCatalogItem shape; see the module doc for what is in them."""
    return generate_sample(n_titles, seed, invalid_fraction=invalid_fraction).items


def generate_sample(
    n_titles: int, seed: int, *, invalid_fraction: float = 0.0, episode_share: float = 0.0
) -> SampleCatalog:
    """`episode_share`: the share of series that get seasons, episodes and season listings
    (devtools/sample_series.py), delivered after the titles; their truth indexes follow the
    titles' (a season listing's is its series')."""
    if n_titles < 0:
        raise ValueError("n_titles must be >= 0")
    if not 0.0 <= invalid_fraction <= 1.0:
        raise ValueError("invalid_fraction must be within 0-1")
    rng = random.Random(seed)
    masters = _masters(rng, n_titles)
    items: list[dict[str, Any]] = []
    truth: dict[str, int] = {}
    used_ids: set[tuple[str, str]] = set()
    for master in masters:
        count = rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
        platforms = rng.sample(PLATFORMS, count)
        for position, platform in enumerate(platforms):
            item_id = _item_id(rng, platform, used_ids)
            items.append(_listing(rng, master, platform, item_id, first=position == 0))
            truth[f"{platform}:{item_id}"] = master.index
    rng.shuffle(items)
    invalid: list[str] = []
    if invalid_fraction > 0 and items:
        count = max(1, round(len(items) * invalid_fraction))
        for item in rng.sample(items, count):
            _break(rng, item)
            invalid.append(f"{item['_platform']}:{item['platform_item_id']}")
    listings = _series_listings(masters, items, set(invalid)) if episode_share > 0 else []
    for item in items:
        del item["_platform"], item["_master"]
    if listings:
        tv = generate_episodes(listings, seed, episode_share, first_index=n_titles)
        items += tv.items
        truth.update(tv.truth)
    return SampleCatalog(items=items, truth=truth, invalid=frozenset(invalid))


def _series_listings(
    masters: list[_Master], items: list[dict[str, Any]], invalid: set[str]
) -> list[Listing]:
    """Each valid listing of a series master, with the ids it actually carried (an episode
    naming its series by an id nobody sent could never find it)."""
    from schemas.ingestion import RawCatalogItem

    series = {m.index: m for m in masters if m.content_type == "series"}
    counts: dict[str, int] = {}
    for m in series.values():
        counts[normalize_title(m.title)] = counts.get(normalize_title(m.title), 0) + 1
    by_key = {f"{i['_platform']}:{i['platform_item_id']}": i for i in items}
    out: list[Listing] = []
    for key, item in by_key.items():
        if key in invalid:
            continue
        raw = RawCatalogItem.model_validate(item)
        master = series.get(item["_master"])
        if master is None:
            continue
        out.append(
            Listing(
                master=master.index,
                title=master.title,
                year=master.year,
                imdb=raw.external_ids.imdb,
                tmdb=raw.external_ids.tmdb,
                platform=raw.platform,
                item_id=raw.platform_item_id,
                unique_title=counts[normalize_title(master.title)] == 1,
            )
        )
    return sorted(out, key=lambda listing: (listing.master, listing.platform))


def _masters(rng: random.Random, n: int) -> list[_Master]:
    masters: list[_Master] = []
    # (type, year) -> normalized titles, to keep distinct masters clearly distinct.
    # (dicts: ordered like lists, with set-speed membership)
    taken: dict[tuple[str, int], dict[str, None]] = {}
    for index in range(n):
        content_type = rng.choices(("movie", "series", "documentary"), weights=(70, 25, 5))[0]
        year = _year(rng)
        title = None
        movies = [m for m in masters[-50:] if m.content_type == "movie"]
        if content_type == "series" and movies and rng.random() < 0.04:
            # A series sharing title and year with a movie: the type must keep them apart.
            twin = rng.choice(movies)
            if not _clashes(taken, "series", twin.year, twin.title):
                title, year = twin.title, twin.year
        elif masters and rng.random() < 0.03:
            base = rng.choice(masters[-50:])
            sequel = f"{base.title} {rng.choice(('2', '3', 'II', 'III'))}"
            if not _clashes(taken, base.content_type, base.year + 3, sequel):
                title, year, content_type = sequel, base.year + 3, base.content_type
        for _ in range(8):
            if title is not None:
                break
            candidate = _title(rng)
            if not _clashes(taken, content_type, year, candidate):
                title = candidate
        if title is None:
            # The word space is crowded around this year: a number sets it apart (numbers
            # never fuzzy-match a different number).
            title = f"{_title(rng)} {index}"
        taken.setdefault((content_type, year), {})[normalize_title(title)] = None
        allow_typo = len(normalize_title(title)) >= 12 and rng.random() < 0.5
        masters.append(
            _Master(
                index=index,
                content_type=content_type,
                title=title,
                year=year,
                runtime=rng.randint(80, 175) if content_type != "series" else rng.randint(22, 62),
                genres=_genres(rng, content_type),
                description=_plot(rng),
                eidr=_eidr(rng) if rng.random() < 0.25 else None,
                imdb=_imdb(rng, index) if rng.random() < 0.6 else None,
                tmdb=str(rng.randint(1, 999_999)) if rng.random() < 0.5 else None,
                year_shift=rng.choice((-1, 1)),
                allow_typo=allow_typo,
                allow_yearless=not allow_typo,
            )
        )
    _dedupe_ids(masters)
    # The same title decades apart (a remake): a year-less listing of either could not be
    # told apart, so such titles always carry a year.
    shared: dict[tuple[str, str], int] = {}
    for m in masters:
        key = (m.content_type, normalize_title(m.title))
        shared[key] = shared.get(key, 0) + 1
    for m in masters:
        if shared[(m.content_type, normalize_title(m.title))] > 1:
            m.allow_yearless = False
    return masters


def _dedupe_ids(masters: list[_Master]) -> None:
    # Random ids can repeat by chance; two titles sharing an id would be (rightly) merged.
    seen: set[tuple[str, str]] = set()
    for m in masters:
        for kind in ("eidr", "imdb", "tmdb"):
            value = getattr(m, kind)
            # TMDb numbers movies and TV separately, so only a clash within one kind counts.
            scope = ("tv" if m.content_type == "series" else "movie") if kind == "tmdb" else ""
            key = (kind, f"{scope}:{value}")
            if value is not None and key in seen:
                setattr(m, kind, None)
            elif value is not None:
                seen.add(key)


def _clashes(
    taken: dict[tuple[str, int], dict[str, None]], content_type: str, year: int, title: str
) -> bool:
    """Whether a new master would be confusable with one already made (similarity >= 0.75)."""
    normalized = normalize_title(title)
    numbers = title_numbers(normalized)
    # Variants are off by one year at most and fuzzy matching spans +-1: look 3 years around.
    keys = [(content_type, y) for y in range(year - 3, year + 4)]
    buckets = [taken[k] for k in keys if k in taken]
    if any(normalized in titles for titles in buckets):
        return True  # the cheap, common case: the very same title
    hits = [
        hit
        for titles in buckets
        for scorer in (fuzz.ratio, fuzz.token_sort_ratio)
        for hit, _, _ in process.extract(
            normalized, titles.keys(), scorer=scorer, score_cutoff=75, limit=None
        )
    ]
    # Sequels ("... 2") are meant to sit next to their original: numbers tell them apart.
    return any(title_numbers(hit) == numbers for hit in hits)


def _year(rng: random.Random) -> int:
    return 2024 - min(int(rng.expovariate(1 / 18)), 74)


def _title(rng: random.Random) -> str:
    pattern = rng.random()
    if pattern < 0.55:
        adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
        return f"The {adjective} {noun}" if rng.random() < 0.4 else f"{adjective} {noun}"
    if pattern < 0.8:
        return f"The {rng.choice(_NOUNS)} of {rng.choice(_PLACES)}"
    return f"{rng.choice(_NAMES)}'s {rng.choice(_NOUNS)}"


def _genres(rng: random.Random, content_type: str) -> list[str]:
    if content_type == "documentary":
        return ["documentary", *rng.sample(("history", "music", "crime"), rng.randint(0, 1))]
    pool = [g for g in _GENRE_NAMES if g != "documentary"]
    return rng.sample(pool, rng.randint(1, 3))


def _plot(rng: random.Random) -> str:
    return rng.choice(_PLOT).format(
        a=rng.choice(_ADJECTIVES).lower(),
        r=rng.choice(_ROLES),
        g=rng.choice(_GOALS),
        t=rng.choice(_THREATS),
    )


def _imdb(rng: random.Random, index: int) -> str:
    return f"tt{rng.randint(1_000_000, 9_999_999)}{index % 10}"


def _eidr(rng: random.Random) -> str:
    groups = "-".join(f"{rng.getrandbits(16):04X}" for _ in range(5))
    return f"10.5240/{groups}-{rng.choice('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ')}"


def _item_id(rng: random.Random, platform: str, used: set[tuple[str, str]]) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    while True:
        if platform == "netflix":
            item_id = str(rng.randint(60_000_000, 81_999_999))
        elif platform == "prime_video":
            item_id = "B0" + "".join(rng.choices(alphabet, k=8))
        elif platform in ("disney_plus", "hulu"):
            item_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        elif platform == "hbo_max":
            item_id = "urn:hbo:feature:GX" + "".join(rng.choices(alphabet, k=12))
        else:
            item_id = "umc.cmc." + "".join(rng.choices(alphabet.lower(), k=25))
        if (platform, item_id) not in used:
            used.add((platform, item_id))
            return item_id


def _variant_title(rng: random.Random, master: _Master, first: bool) -> str:
    title = master.title
    roll = rng.random()
    if first or roll < 0.35:
        return title
    if roll < 0.5 and title.startswith("The "):
        return f"{title[4:]}, The"
    if roll < 0.6:
        return f"{title} ({master.year})"
    if roll < 0.7:
        return title.upper()
    if roll < 0.78:
        return "  ".join(title.split())
    if roll < 0.86:
        return title.replace("e", "é", 1)
    if master.allow_typo:
        words = title.split()
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[longest]
        if len(word) >= 5:
            i = rng.randint(1, len(word) - 3)
            words[longest] = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
            # One misspelt listing per title: two different typos of a short title can be
            # further apart than the 0.85 threshold.
            master.allow_typo = False
            return " ".join(words)
    return title


def _year_fields(rng: random.Random, master: _Master, first: bool) -> dict[str, Any]:
    year = master.year
    if not first and rng.random() < 0.1:
        year += master.year_shift
    roll = rng.random()
    release = date(year, rng.randint(1, 12), rng.randint(1, 28))
    if first or roll < 0.45:
        return {"year": year, "release_date": release.isoformat() if rng.random() < 0.4 else None}
    if roll < 0.65:
        return {"year": str(year)}
    if roll < 0.8:
        return {"release_date": release.isoformat()}  # year derived from the date
    if roll < 0.9 and master.allow_yearless:
        return {"year": None}
    return {"year": f" {year} "}


def _runtime(rng: random.Random, minutes: int) -> Any:
    roll = rng.random()
    if roll < 0.4:
        return minutes
    if roll < 0.55:
        return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"
    if roll < 0.7:
        return f"{minutes} min"
    if roll < 0.8:
        return f"PT{minutes}M"
    if roll < 0.9:
        return None
    return 0


def _genre_names(rng: random.Random, master: _Master, platform: str) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.1:
        return []
    names: list[str] = []
    for genre in master.genres:
        spellings = _GENRE_NAMES[genre]
        options = spellings.get(platform, ()) + spellings[""]
        name = rng.choice(options)
        if rng.random() < 0.15:
            name = rng.choice((name.upper(), name.lower(), f"  {name} "))
        names.append(name)
    if rng.random() < 0.2:
        names.append(rng.choice(_ODD_GENRES))
    if rng.random() < 0.1:
        return ", ".join(names)  # some feeds send one comma-separated string
    return names


def _availability(rng: random.Random, platform: str, item_id: str) -> list[dict[str, Any]]:
    offers: list[dict[str, Any]] = []
    regions = rng.sample(_REGIONS, rng.randint(1, 4))
    if rng.random() < 0.2:
        regions = [r.lower() for r in regions]
    if rng.random() < 0.05:
        regions = ["uk" if r.upper() == "GB" else r for r in regions] + ["uk"]
    if platform in ("prime_video", "apple_tv_plus") and rng.random() < 0.6:
        rent = rng.choice((299, 399, 499, 599))
        offers.append(
            {
                "availability_type": rng.choice(("rental", "rent", "TVOD")),
                "price_cents": rent,
                "currency": "USD",
                "regions": ["US"],
            }
        )
        buy = {
            "availability_type": rng.choice(("purchase", "buy")),
            "regions": ["us", "CA"],
            "currency": "usd",
        }
        if rng.random() < 0.3:
            buy["price"] = f"{rng.choice((9, 12, 14, 19))}.99"
        else:
            buy["price_cents"] = rng.choice((999, 1299, 1499, 1999))
        offers.append(buy)
    if platform != "apple_tv_plus" or not offers or rng.random() < 0.5:
        offers.append(
            {
                "availability_type": rng.choice(("subscription", "svod", "Subscription")),
                "regions": regions if rng.random() >= 0.05 else [],
            }
        )
    for offer in offers:
        if rng.random() < 0.15:
            offer["available_until"] = (
                BASE_TIME + timedelta(days=rng.uniform(0.2, 10))
            ).isoformat()
        if rng.random() < 0.1:
            offer["available_from"] = (BASE_TIME - timedelta(days=rng.randint(30, 900))).isoformat()
        if rng.random() < 0.5:
            offer["video_qualities"] = list(rng.choice(_QUALITIES))
        if rng.random() < 0.3:
            offer["deep_link"] = f"{platform.replace('_', '')}://item/{item_id}"
    return offers


def _ids(rng: random.Random, master: _Master) -> dict[str, Any] | None:
    ids: dict[str, Any] = {}
    if master.eidr and rng.random() < 0.6:
        ids["eidr"] = rng.choice((master.eidr, master.eidr.lower(), f"doi:{master.eidr}"))
    if master.imdb and rng.random() < 0.7:
        ids["imdb"] = rng.choice(
            (master.imdb, f"https://www.imdb.com/title/{master.imdb}/", master.imdb.upper())
        )
    if master.tmdb and rng.random() < 0.6:
        ids["tmdb"] = int(master.tmdb) if rng.random() < 0.5 else master.tmdb
    if not ids:
        return None if rng.random() < 0.5 else {}
    return ids


def _listing(
    rng: random.Random, master: _Master, platform: str, item_id: str, *, first: bool
) -> dict[str, Any]:
    updated = BASE_TIME - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
    item: dict[str, Any] = {
        "_platform": platform,
        "_master": master.index,
        "platform": rng.choice(_PLATFORM_SPELLINGS[platform]),
        "platform_item_id": item_id,
        "title": _variant_title(rng, master, first),
        "content_type": rng.choice(_TYPE_SPELLINGS[master.content_type]),
        **_year_fields(rng, master, first),
        "runtime": _runtime(rng, master.runtime),
        "genres": _genre_names(rng, master, platform),
        "rating": round(rng.uniform(3.5, 9.5), 1) if rng.random() < 0.8 else None,
        "rating_count": rng.choice((0, rng.randint(5, 250_000), None)),
        "popularity": round(rng.uniform(0, 100), 2),
        "maturity_rating": rng.choice(_MATURITY[master.content_type]),
        "original_language": rng.choice(("en", "EN", "en-US", "fr", None)),
        "external_ids": _ids(rng, master),
        "availability": _availability(rng, platform, item_id),
        "keywords": rng.sample(
            (
                "heist",
                "friendship",
                "revenge",
                "coming of age",
                "road trip",
                "small town",
                "betrayal",
            ),
            rng.randint(0, 3),
        ),
        "source_updated_at": updated.isoformat()
        if rng.random() < 0.9
        else updated.replace(tzinfo=None).isoformat(),
    }
    text_key = "overview" if rng.random() < 0.2 else "description"
    item[text_key] = rng.choice((master.description, master.description, None, ""))
    if rng.random() < 0.4:
        item["credits"] = [
            rng.choice(({"name": p, "role": "Actor"}, p))
            for p in rng.sample(master.cast, rng.randint(1, 3))
        ]
    if rng.random() < 0.5:
        item["images"] = {"poster": f"https://img.example.com/{platform}/{item_id}/poster.jpg"}
    if master.content_type == "series" and rng.random() < 0.7:
        item["season_count"] = rng.randint(1, 8)
    if rng.random() < 0.05:
        item["trailer_url"] = "https://video.example.com/trailer"  # unknown field: ignored
    return item


def _break(rng: random.Random, item: dict[str, Any]) -> None:
    way = rng.randrange(4)
    if way == 0:
        item["content_type"] = "podcast"
    elif way == 1:
        item["rating"] = 42
    elif way == 2:
        item["availability"] = [{"availability_type": "rental", "regions": ["US"]}]
    else:
        item["title"] = "   "
