"""The raw catalog item schema (messy upstream data in, clean types out) and normalization."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from agents.ingestion.normalize import clean_display_title, normalize_item
from agents.titles.names import normalize_title
from agreements.catalog_warnings import DESCRIPTION_MAX, normalize_maturity
from schemas.content import AvailabilityType, ContentType, MaturityRating, VideoQuality
from schemas.envelope import decode, encode, wrap
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from tests.unit.ingestion_factories import T0, item, raw, raw_dict


def _error(**overrides: object) -> dict:
    with pytest.raises(ValidationError) as caught:
        RawCatalogItem.model_validate(raw_dict(**overrides))
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return errors[0]


# --- RawCatalogItem -----------------------------------------------------------------------------


def test_minimal_item_and_record_key() -> None:
    parsed = raw()
    assert parsed.platform == "netflix"
    assert parsed.content_type is ContentType.movie
    assert parsed.record_key == "netflix:80000001"
    assert parsed.genres == [] and parsed.rating_count == 0
    # No availability sent (or null): the offers are left as they are; [] is "none left".
    assert parsed.availability is None and raw(availability=None).availability is None
    assert raw(availability=[]).availability == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("film", ContentType.movie),
        ("Movie", ContentType.movie),
        ("feature", ContentType.movie),
        ("Feature Film", ContentType.movie),
        ("tv", ContentType.series),
        ("show", ContentType.series),
        ("TV Series", ContentType.series),
        ("  Mini-Series ", ContentType.series),
        ("tv_show", ContentType.series),
        ("Episode", ContentType.episode),
        ("short film", ContentType.short),
        ("doc", ContentType.documentary),
        ("TV Special", ContentType.special),
    ],
)
def test_content_type_synonyms(text: str, expected: ContentType) -> None:
    assert raw(content_type=text).content_type is expected


def test_unknown_content_type_is_named_with_its_reason() -> None:
    error = _error(content_type="podcast")
    assert error["loc"] == ("content_type",)
    assert "unknown content type 'podcast'" in error["msg"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1999, 1999),
        ("1999", 1999),
        (" 1999 ", 1999),
        (1999.0, 1999),
        ("2011\u20132019", 2011),
        ("2011-", 2011),
        (None, None),
        ("", None),
        ("N/A", None),
    ],
)
def test_year_accepts_numbers_strings_ranges_and_blanks(
    value: object, expected: int | None
) -> None:
    assert raw(year=value).year == expected


@pytest.mark.parametrize("value", ["abc", 1999.5, 1700, 2200, True, "19999"])
def test_year_rejects_what_is_not_a_plausible_year(value: object) -> None:
    assert _error(year=value)["loc"] == ("year",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (112, 112),
        (112.4, 112),
        ("112", 112),
        ("112 min", 112),
        ("112 minutes", 112),
        ("1h 52m", 112),
        ("1h52", 112),
        ("1 hr. 52 min.", 112),
        ("2h", 120),
        ("45m", 45),
        ("1:52", 112),
        ("PT1H52M", 112),
        ("pt112m", 112),
        ("PT6720S", 112),
        (0, None),
        ("0", None),
        (None, None),
        ("", None),
    ],
)
def test_runtime_formats(value: object, expected: int | None) -> None:
    assert raw(runtime=value).runtime == expected


@pytest.mark.parametrize("value", ["forever", -5, "1h 99x", 20000, False])
def test_runtime_rejects_unreadable_values(value: object) -> None:
    error = _error(runtime=value)
    assert error["loc"] == ("runtime",)


@pytest.mark.parametrize("value", [7.5, "7.5", 0, 10, None])
def test_rating_on_the_0_to_10_scale(value: object) -> None:
    expected = None if value is None else float(value)
    assert raw(rating=value).rating == expected


@pytest.mark.parametrize("value", [42, -1, 10.5, "nan", float("inf")])
def test_rating_outside_0_to_10_is_rejected(value: object) -> None:
    assert _error(rating=value)["loc"] == ("rating",)


def test_genres_null_string_and_duplicates() -> None:
    assert raw(genres=None).genres == []
    assert raw(genres="Action, Comedy | Drama").genres == ["Action", "Comedy", "Drama"]
    assert raw(genres=["Drama", " drama ", "", "  Sci-Fi   &  Fantasy "]).genres == [
        "Drama",
        "Sci-Fi & Fantasy",
    ]


def test_overview_is_an_alias_of_description_and_description_wins() -> None:
    assert raw(overview="From TMDb").description == "From TMDb"
    assert raw(overview="From TMDb", description="Own").description == "Own"
    assert raw(description="   ").description is None


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("Netflix", "netflix"),
        ("Prime Video", "prime_video"),
        ("prime", "prime_video"),
        ("Disney+", "disney_plus"),
        ("HBO", "hbo_max"),
        ("Max", "hbo_max"),
        ("Apple TV+", "apple_tv_plus"),
        ("Crunchy-Roll", "crunchy_roll"),
    ],
)
def test_platform_spellings(spelling: str, expected: str) -> None:
    assert raw(platform=spelling).platform == expected


def test_blank_platform_and_title_are_rejected() -> None:
    assert _error(platform="  ")["loc"] == ("platform",)
    assert _error(title="   ")["loc"] == ("title",)
    assert _error(title="x" * 501)["loc"] == ("title",)


def test_title_whitespace_is_collapsed_and_item_id_may_be_a_number() -> None:
    parsed = raw(title="  The   Matrix ", platform_item_id=80000001)
    assert parsed.title == "The Matrix"
    assert parsed.platform_item_id == "80000001"


@pytest.mark.parametrize(
    "value",
    ["tt0133093", "TT0133093", "0133093", 133093, "https://www.imdb.com/title/tt0133093/"],
)
def test_imdb_spellings(value: object) -> None:
    assert raw(external_ids={"imdb": value}).external_ids.imdb == "tt0133093"


@pytest.mark.parametrize(
    "value",
    [
        "10.5240/7791-8534-2C23-9030-8610-5",
        "doi:10.5240/7791-8534-2c23-9030-8610-5",
        "https://doi.org/10.5240/7791-8534-2C23-9030-8610-5",
    ],
)
def test_eidr_spellings(value: str) -> None:
    parsed = raw(external_ids={"eidr": value}).external_ids
    assert parsed.eidr == "10.5240/7791-8534-2C23-9030-8610-5"


@pytest.mark.parametrize(
    ("ids", "field"),
    [({"eidr": "10.5240/XYZ"}, "eidr"), ({"imdb": "nm0000206"}, "imdb"), ({"tmdb": "abc"}, "tmdb")],
)
def test_malformed_ids_are_rejected_with_their_path(ids: dict, field: str) -> None:
    assert _error(external_ids=ids)["loc"] == ("external_ids", field)


def test_blank_ids_and_null_objects() -> None:
    parsed = raw(external_ids={"imdb": "N/A", "tmdb": 603, "tvdb": ""}, images=None)
    assert parsed.external_ids.imdb is None
    assert parsed.external_ids.tmdb == "603"
    assert parsed.external_ids.tvdb is None
    assert raw(external_ids=None).external_ids.eidr is None


def test_availability_regions_types_and_prices() -> None:
    parsed = raw(
        availability=[
            {"availability_type": "SVOD", "regions": ["us", "Ca", "uk", "US"]},
            {"availability_type": "rent", "price": "3.99", "currency": "usd", "regions": "us, ca"},
            {"availability_type": "buy", "price_cents": 1499, "currency": "EUR", "regions": []},
        ]
    )
    sub, rent, buy = parsed.availability
    assert sub.availability_type is AvailabilityType.subscription
    assert sub.regions == ["CA", "GB", "US"]
    assert (rent.availability_type, rent.price_cents, rent.currency) == ("rental", 399, "USD")
    assert rent.regions == ["CA", "US"]
    assert buy.regions == []


@pytest.mark.parametrize(
    ("offer", "reason"),
    [
        ({"availability_type": "rental", "regions": ["US"]}, "needs price_cents and currency"),
        ({"availability_type": "lease", "regions": ["US"]}, "unknown availability type"),
        ({"availability_type": "subscription", "regions": ["USA"]}, "ISO 3166-1"),
        (
            {"availability_type": "rental", "price": "3.99", "price_cents": 499, "currency": "USD"},
            "disagree",
        ),
        (
            {
                "availability_type": "free",
                "available_from": "2025-02-01T00:00:00Z",
                "available_until": "2025-01-01T00:00:00Z",
            },
            "before available_from",
        ),
        ({"availability_type": "free", "deep_link": "not a url"}, "pattern"),
    ],
)
def test_bad_offers_are_rejected_with_path_and_reason(offer: dict, reason: str) -> None:
    error = _error(availability=[offer])
    assert error["loc"][:2] == ("availability", 0)
    assert reason in error["msg"]


def test_naive_datetimes_are_taken_as_utc() -> None:
    parsed = raw(
        source_updated_at="2025-01-01T12:00:00",
        availability=[{"availability_type": "free", "available_until": "2025-03-01T00:00:00"}],
    )
    assert parsed.source_updated_at == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert parsed.availability[0].available_until == datetime(2025, 3, 1, tzinfo=UTC)


def test_source_clock_is_required() -> None:
    data = raw_dict()
    del data["source_updated_at"]
    with pytest.raises(ValidationError) as caught:
        RawCatalogItem.model_validate(data)
    assert caught.value.errors()[0]["loc"] == ("source_updated_at",)


def test_unknown_fields_are_ignored() -> None:
    assert raw(trailer_url="https://example.com/t.mp4").title == "The Matrix"


def test_credits_accept_bare_names() -> None:
    parsed = raw(credits=["Keanu Reeves", {"name": "Lana Wachowski", "role": "Director"}])
    assert [(c.name, c.role) for c in parsed.credits] == [
        ("Keanu Reeves", "cast"),
        ("Lana Wachowski", "director"),
    ]


def test_catalog_item_received_round_trips_through_an_envelope() -> None:
    payload = CatalogItemReceived(item=raw(genres=["Sci-Fi"]))
    assert CatalogItemReceived.event_type == "content.raw"
    envelope = wrap(payload, key=payload.item.record_key, source="test")
    decoded = decode(encode(envelope), CatalogItemReceived)
    assert decoded.key == "netflix:80000001"
    assert decoded.payload == payload


# --- normalize_title / clean_display_title ------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("The Matrix", "matrix"),
        ("Matrix, The", "matrix"),
        ("The Matrix (1999)", "matrix"),
        ("THE MATRIX", "matrix"),
        ("  The   Matrix  ", "matrix"),
        ("Amélie", "amelie"),
        ("Léon: The Professional", "leon the professional"),
        ("Straße", "strasse"),
        ("Schindler's List", "schindlers list"),
        ("Schindler\u2019s List", "schindlers list"),
        ("Fast & Furious", "fast and furious"),
        ("Spider-Man: No Way Home", "spider man no way home"),
        ("A Quiet Place", "quiet place"),
        ("Office, An", "office"),
        ("Star Wars: Episode IV \u2013 A New Hope", "star wars episode 4 a new hope"),
        ("Rocky II", "rocky 2"),
        ("I, Robot", "i robot"),
        ("V for Vendetta", "v for vendetta"),
        ("The", "the"),
        ("?!", "?!"),
        ("千と千尋の神隠し", "千と千尋の神隠し"),
    ],
)
def test_normalize_title(title: str, expected: str) -> None:
    assert normalize_title(title) == expected


def test_variants_of_one_title_normalize_alike() -> None:
    forms = {"The Matrix", "Matrix, The", "The Matrix (1999)", "the matrix", "THE  MATRIX"}
    assert {normalize_title(f) for f in forms} == {"matrix"}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Matrix, The (1999)", ("The Matrix", 1999)),
        ("The Matrix [1999]", ("The Matrix", 1999)),
        ("Matrix, the", ("The Matrix", None)),
        ("The Matrix", ("The Matrix", None)),
        ("(500) Days of Summer", ("(500) Days of Summer", None)),
        ("1917", ("1917", None)),
        ("Blade Runner 2049", ("Blade Runner 2049", None)),
        ("Movie (12345)", ("Movie (12345)", None)),
    ],
)
def test_clean_display_title(title: str, expected: tuple[str, int | None]) -> None:
    assert clean_display_title(title) == expected


# --- normalize_item -----------------------------------------------------------------------------


def test_year_comes_from_release_date_then_from_the_title() -> None:
    assert item(year=None, release_date="1999-03-31").year == 1999
    assert item(year=None, title="The Matrix (1999)").year == 1999
    assert item(year=2000, title="The Matrix (1999)").year == 2000
    assert item(year=None).year is None


def test_release_date_far_from_year_is_warned_about() -> None:
    normalized = item(year=1999, release_date="2021-05-01")
    assert normalized.year == 1999
    assert normalized.release_date == date(2021, 5, 1)
    assert any("disagrees with release_date" in w.message for w in normalized.warnings)


def test_display_title_is_cleaned_and_matching_title_derived() -> None:
    normalized = item(title="Matrix, The (1999)", year=None)
    assert (normalized.title, normalized.normalized_title, normalized.year) == (
        "The Matrix",
        "matrix",
        1999,
    )


@pytest.mark.parametrize(
    ("text", "expected", "warned"),
    [
        ("pg-13", MaturityRating.PG_13, False),
        ("PG13", MaturityRating.PG_13, False),
        ("Rated R", MaturityRating.R, False),
        ("TV MA", MaturityRating.TV_MA, False),
        ("tv-y7-fv", MaturityRating.TV_Y7, False),
        ("NC-17", MaturityRating.NC_17, False),
        ("NR", None, False),
        ("Not Rated", None, False),
        ("16+", None, True),
        (None, None, False),
    ],
)
def test_maturity_ratings(text: str | None, expected: MaturityRating | None, warned: bool) -> None:
    rating, warning = normalize_maturity(text)
    assert rating == expected
    assert (warning is not None) == warned
    assert item(maturity_rating=text).maturity_rating == expected


def test_deep_links_are_built_per_platform_when_missing() -> None:
    offer = {"availability_type": "subscription", "regions": ["US"]}
    netflix = item(availability=[offer]).availability[0]
    assert netflix.deep_link == "netflix://title/80000001"
    assert netflix.web_url == "https://netflix.com/watch/80000001"
    prime = item(platform="Prime Video", platform_item_id="B0ABC", availability=[offer])
    assert prime.availability[0].web_url == "https://primevideo.com/watch/B0ABC"
    unknown = item(platform="crunchy_roll", platform_item_id="urn:x/1", availability=[offer])
    link = unknown.availability[0]
    assert link.web_url == "https://crunchyroll.com/watch/urn%3Ax%2F1"
    assert link.deep_link == link.web_url


def test_given_links_are_kept() -> None:
    offer = {
        "availability_type": "free",
        "deep_link": "netflix://title/999",
        "web_url": "https://www.netflix.com/title/999",
    }
    kept = item(availability=[offer]).availability[0]
    assert (kept.deep_link, kept.web_url) == (
        "netflix://title/999",
        "https://www.netflix.com/title/999",
    )


def test_offers_are_cleaned_into_platform_availability() -> None:
    normalized = item(
        availability=[
            {
                "availability_type": "subscription",
                "price_cents": 1599,
                "currency": "usd",
                "regions": ["us"],
                "video_qualities": ["4K", "1080p", "HDR10", "IMAX Enhanced", "hd"],
            },
            {"availability_type": "subscription", "regions": []},
        ]
    )
    first, gone = normalized.availability
    assert first.platform == "netflix"
    assert (first.price_cents, first.currency) == (None, None)
    assert first.video_qualities == [VideoQuality.HD, VideoQuality.UHD, VideoQuality.HDR]
    assert gone.regions == []
    assert any("price dropped" in w.message for w in normalized.warnings)
    assert any("IMAX Enhanced" in w.message for w in normalized.warnings)


def test_platform_id_is_recorded_with_the_external_ids() -> None:
    normalized = item(external_ids={"imdb": "tt0133093"})
    assert normalized.external_ids.imdb == "tt0133093"
    assert normalized.external_ids.platform_ids == {"netflix": "80000001"}


def test_long_description_is_cut_to_the_canonical_limit() -> None:
    text = ("word " * 2000).strip()
    cut = item(description=text).description
    assert cut is not None and len(cut) <= DESCRIPTION_MAX and cut.endswith("\u2026")
    assert item(description="short").description == "short"


def test_normalized_item_is_frozen_and_keeps_the_clock() -> None:
    normalized = item(source_updated_at="2025-01-01T00:00:00Z")
    assert normalized.source_updated_at == T0
    assert normalized.record_key == "netflix:80000001"
    with pytest.raises(dataclasses.FrozenInstanceError):
        normalized.title = "x"  # type: ignore[misc]


def test_series_metadata_and_images() -> None:
    normalized = item(
        content_type="TV Series", season_count=3, images={"poster": "https://p/x.jpg"}
    )
    assert normalized.series is not None and normalized.series.season_count == 3
    assert normalized.images.poster == "https://p/x.jpg"
    assert item().series is None


def test_normalize_is_deterministic() -> None:
    data = raw(
        genres=["Drama"],
        availability=[
            {
                "availability_type": "rent",
                "price_cents": 399,
                "currency": "USD",
                "regions": ["us", "gb"],
            }
        ],
    )
    assert normalize_item(data) == normalize_item(data)
