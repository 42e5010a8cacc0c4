"""The training handler's pure decisions: sessions and viewings of a batch of progress reports,
the profiles they fold into, who is due for training and what the round answers to; and the
recommendation handler's: favourite genres, a mood narrowing the answer, cold-start scoring."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from agents.sona.folding import (
    due_for_training,
    fold_viewings,
    latest_causes,
    sessions_of,
    settle_rows,
)
from agents.sona.lora import EPOCHS
from agents.sona.profile import StoredProfile, UserProfile
from agents.sona.sources import (
    Anchor,
    TitleRow,
    favourite_genres,
    mood_first,
    personal_candidates,
)
from agents.sona.training import Viewing, training_steps
from agents.sync.clock import to_physical_us
from schemas.envelope import Envelope, wrap
from schemas.sync import HLC, ProgressUpdate
from tests.unit.sona.factories import DIM, basis, random_unit, unit

T0 = datetime(2026, 11, 2, 20, tzinfo=UTC)
TITLES = [uuid.uuid5(uuid.NAMESPACE_URL, f"fold/{i}") for i in range(12)]


def report(
    user: str, cid: uuid.UUID, fraction: float, minutes: int, state: str = "stopped"
) -> Envelope[Any]:
    payload = ProgressUpdate(
        user_id=user,
        content_id=cid,
        position_seconds=3600 * fraction,
        duration_seconds=3600,
        state=state,
        timestamp=HLC(physical_us=to_physical_us(T0 + timedelta(minutes=minutes))),
        device_id="tv-1",
    )
    return wrap(payload, key=user, source="test")


def stream(user: str, titles: list[uuid.UUID]) -> list[Envelope[Any]]:
    """Per title: playing at 10 %, then finished."""
    out = []
    for i, cid in enumerate(titles):
        out += [report(user, cid, 0.1, 3 * i, "playing"), report(user, cid, 1.0, 3 * i + 1)]
    return out


def test_a_batch_of_reports_is_one_viewing_per_finished_session() -> None:
    reports = stream("a", TITLES[:2]) + stream("b", TITLES[:1])
    before: dict[tuple[str, uuid.UUID], Any] = {}
    changed, counted, _ = sessions_of(reports, before)
    assert before == {}  # the stored sessions are not changed in place
    assert set(changed) == {("a", TITLES[0]), ("a", TITLES[1]), ("b", TITLES[0])}
    assert [(c.user_id, c.state.content_id) for c in counted] == [
        ("a", TITLES[0]),
        ("a", TITLES[1]),
        ("b", TITLES[0]),
    ]
    assert all(c.viewing == Viewing(completion=1.0) for c in counted)
    # A finish reported again on the counted session counts nothing more.
    _, again, _ = sessions_of([report("a", TITLES[0], 1.0, 10)], changed)
    assert again == []


def test_folding_counts_events_towards_training_and_keeps_taste_without_a_vector() -> None:
    rng = np.random.default_rng(1)
    rows, counted, _ = sessions_of(stream("a", TITLES[:3]), {})
    vectors = {cid: random_unit(rng) for cid in TITLES[:2]}  # the third is not embedded yet
    profiles = {"a": StoredProfile(UserProfile.empty(DIM), events_since_training=8)}
    folded = fold_viewings(
        profiles,
        counted,
        genres={TITLES[0]: ("Comedy",), TITLES[2]: ("drama",)},
        devices={("a", "tv-1"): "tv"},
    )
    folded, moved = settle_rows(folded, rows, vectors)
    assert profiles["a"].events_since_training == 8  # the input is left as it was
    stored = folded["a"]
    assert stored.events_since_training == 11
    assert stored.profile.events_applied == 3
    assert stored.profile.hourly[20] == 3
    assert dict(stored.profile.device_mix) == {"tv": 3}
    assert set(stored.profile.genre_affinities) == {"comedy", "drama"}
    # Taste: the two embedded titles only (equal weights: same engagement, minutes apart).
    expected = vectors[TITLES[0]] + vectors[TITLES[1]]
    cosine = float(stored.profile.preference @ expected) / float(np.linalg.norm(expected))
    assert cosine == pytest.approx(1.0, abs=1e-4)
    # The third title's weight waits for its vector; once it comes, it joins the taste.
    assert set(moved) == {("a", TITLES[0]), ("a", TITLES[1])}
    waiting = rows[("a", TITLES[2])]
    assert waiting.folded_weight == 0.0 and waiting.taste_weight > 0
    late = random_unit(rng)
    later, moved = settle_rows(folded, {("a", TITLES[2]): waiting}, {TITLES[2]: late})
    assert moved[("a", TITLES[2])].folded_weight == waiting.taste_weight
    expected = expected + late
    cosine = float(later["a"].profile.preference @ expected) / float(np.linalg.norm(expected))
    assert cosine == pytest.approx(1.0, abs=1e-4)


def test_an_unknown_device_type_is_no_device() -> None:
    _, counted, _ = sessions_of(stream("a", TITLES[:1]), {})
    folded = fold_viewings(
        {"a": StoredProfile(UserProfile.empty(DIM))},
        counted,
        genres={},
        devices={("a", "tv-1"): "toaster"},
    )
    assert dict(folded["a"].profile.device_mix) == {}


def test_cutting_the_stream_into_other_batches_gives_the_same_profile() -> None:
    rng = np.random.default_rng(2)
    vectors = {cid: random_unit(rng) for cid in TITLES}
    reports = stream("a", TITLES[:6])

    def run(cuts: list[int]) -> StoredProfile:
        sessions: dict[tuple[str, uuid.UUID], Any] = {}
        profiles = {"a": StoredProfile(UserProfile.empty(DIM))}
        for start, end in zip([0, *cuts], [*cuts, len(reports)], strict=True):
            changed, counted, _ = sessions_of(reports[start:end], sessions)
            profiles = fold_viewings(profiles, counted, genres={}, devices={})
            profiles, moved = settle_rows(profiles, changed, vectors)
            sessions.update({**changed, **moved})
        return profiles["a"]

    whole, cut = run([]), run([1, 4, 7, 11])
    assert whole.events_since_training == cut.events_since_training == 6
    assert np.array_equal(whole.profile.taste, cut.profile.taste)
    assert whole.profile.hourly == cut.profile.hourly


def test_training_is_due_from_the_minimum_and_answers_to_the_latest_viewing() -> None:
    profiles = {
        "a": StoredProfile(UserProfile.empty(DIM), 10),
        "b": StoredProfile(UserProfile.empty(DIM), 9),
        "c": StoredProfile(UserProfile.empty(DIM), 14),
    }
    assert due_for_training(profiles, 10) == ["a", "c"]
    _, counted, _ = sessions_of(stream("a", TITLES[:2]) + stream("b", TITLES[:1]), {})
    causes = latest_causes(counted)
    assert causes["a"] is counted[1].cause
    assert set(causes) == {"a", "b"}


def test_training_steps_are_epochs_times_usable_viewings() -> None:
    viewings = [Viewing(1.0), Viewing(0.5), Viewing(0.29), Viewing(0.3, rewatch=True)]
    assert training_steps(viewings) == EPOCHS * 3


def row(genre: str) -> TitleRow:
    return TitleRow(uuid.uuid4(), f"a {genre}", 1.0, (genre.title(),), 90)


def test_favourite_genres_are_those_at_least_half_as_watched_as_the_top() -> None:
    assert favourite_genres({"comedy": 1.0, "drama": 0.5, "horror": 0.49}) == ["comedy", "drama"]
    assert favourite_genres({}) == []


def test_a_mood_narrows_the_answer_only_when_its_titles_can_fill_it() -> None:
    rows = {r.canonical_id: r for r in [row("horror"), row("thriller"), row("comedy")]}
    scary = mood_first(rows, ("horror", "thriller"), limit=2)
    assert {r.genres[0] for r in scary.values()} == {"Horror", "Thriller"}
    assert mood_first(rows, ("horror", "thriller"), limit=3) == rows
    assert mood_first(rows, (), limit=1) == rows


def test_a_user_without_history_is_scored_by_popularity_and_context_only() -> None:
    rng = np.random.default_rng(3)
    rows = {r.canonical_id: r for r in [row("comedy"), row("drama")]}
    vectors = {cid: random_unit(rng) for cid in rows}
    new = personal_candidates(
        rows, vectors, UserProfile.empty(DIM), bucket_counts={"comedy": 3}, co_watched={}
    )
    assert all(c.content is None and c.graph is None for c in new)
    seen = UserProfile(
        dim=DIM,
        taste=np.asarray(next(iter(vectors.values())), dtype=np.float64),
        taste_as_of=T0,
        genre_affinities={"comedy": 0.5},
    )
    known = personal_candidates(rows, vectors, seen, bucket_counts={"comedy": 3}, co_watched={})
    by_genre = {c.genres[0]: c for c in known}
    assert by_genre["Comedy"].graph == 1.0 and by_genre["Drama"].graph == 0.0
    assert all(c.content is not None for c in known)


def test_the_reason_names_the_liked_title_adding_most_to_the_content_score() -> None:
    heat, amelie = basis(0), basis(1)
    rows = {r.canonical_id: r for r in [row("crime"), row("romance")]}
    crime_id, romance_id = list(rows)
    vectors = {crime_id: unit(heat + 0.2 * amelie), romance_id: unit(amelie + 0.1 * heat)}
    profile = UserProfile(
        dim=DIM, taste=np.asarray(heat + amelie, dtype=np.float64), taste_as_of=T0
    )
    liked = [Anchor("Heat", heat, 1.0), Anchor("Amelie", amelie, 1.0)]
    found = personal_candidates(
        rows, vectors, profile, bucket_counts={}, co_watched={}, liked=liked
    )
    because = {c.canonical_id: c.because_of for c in found}
    assert because == {crime_id: "Heat", romance_id: "Amelie"}
    # The anchor's kind (rated well, or only watched) comes with it.
    seen = [Anchor("Heat", heat, 1.0, "watched"), Anchor("Amelie", amelie, 1.0)]
    kinds = {
        c.canonical_id: c.anchor
        for c in personal_candidates(
            rows, vectors, profile, bucket_counts={}, co_watched={}, liked=seen
        )
    }
    assert kinds == {crime_id: "watched", romance_id: "liked"}
    # A term that weighs little in the taste (an old viewing) is not what scored the title.
    faded = [Anchor("Heat", heat, 0.01), Anchor("Amelie", amelie, 1.0)]
    found = personal_candidates(
        rows, vectors, profile, bucket_counts={}, co_watched={}, liked=faded
    )
    assert {c.canonical_id: c.because_of for c in found}[crime_id] == "Amelie"
    # A watchlist title closer than the taste takes over the content score, and the reason.
    listed = [Anchor("Ronin", unit(heat + 0.2 * amelie))]
    found = personal_candidates(
        rows, vectors, profile, bucket_counts={}, co_watched={}, liked=liked, watchlist=listed
    )
    crime = next(c for c in found if c.canonical_id == crime_id)
    assert (crime.anchor, crime.because_of, crime.content) == (
        "watchlist",
        "Ronin",
        pytest.approx(1.0),
    )
